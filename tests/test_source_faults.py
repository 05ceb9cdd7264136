"""Faulty sources (issue 10): a live collection from real PostgreSQL databases and a Loki that is down,
empty, slow, hung, failing or lying (huledu_forensics.testing.FakeLoki's fault modes), and databases
that are unreachable or given by malformed DSNs.

For each: no crash; the database rows already read are kept; the bundle records which source is
missing or partial and why; the command exits 2 (evidence incomplete) or, for bad input, 4 with one
line; Loki is asked no more than the collection's own deadline allows; a canary password reaches no
file and no output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from huledu_forensics import model
from huledu_forensics.bundle import Bundle
from huledu_forensics.testing import FakeLoki
from huledu_forensics.testing.fake_loki import FAULTS
from huledu_forensics.world import load_world_dir
from tests.support.corpus import CORPUS_DIR
from tests.support.hostile import CANARY
from tests.support.pg_world import DatabaseFactory, load_world_into_postgres

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]
WORLD = str(CORPUS_DIR / "seed-variant-a")
BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
WINDOW = ("--since", "2025-11-19T00:00:00Z", "--until", "2025-11-22T00:00:00Z")
PW_ENV = "HF_FAULTS_DB_PASSWORD"


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    return load_world_dir(WORLD)


@pytest.fixture(scope="module")
def dsns(pg_admin_dsn: str, world) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    factory = DatabaseFactory(pg_admin_dsn)
    try:
        yield load_world_into_postgres(world, factory)
    finally:
        factory.drop_all()


@pytest.fixture()
def loki(world) -> Iterator[FakeLoki]:  # type: ignore[no-untyped-def]
    with FakeLoki() as fake:
        fake.load_world(world)
        yield fake


def _config(path: Path, dsns: dict[str, str], loki_url: str | None, **override: str) -> Path:
    lines = ["[profiles.t]", "docker = false", f'password_env = "{PW_ENV}"']
    if loki_url:
        lines.append(f'loki = "{loki_url}"')
    for db in model.DATABASES:
        dsn = override.get(db) or dsns.get(db) or f"postgresql+psycopg://nobody@127.0.0.1:1/{db}"
        lines += [f"[profiles.t.databases.{db}]", f'dsn = "{dsn}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), PW_ENV: CANARY}
    return subprocess.run([sys.executable, "-m", "huledu_forensics.cli", *args], capture_output=True,
                          env=env, timeout=timeout, cwd=str(ROOT))


def _snapshot(cfg: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return _cli("snapshot", "--profile", "t", "--config", str(cfg), "--id", BATCH, *WINDOW,
                "--out", str(out), *extra)


def _no_canary(r: subprocess.CompletedProcess, *dirs: Path) -> None:
    assert CANARY.encode() not in r.stdout + r.stderr
    for d in dirs:
        assert not [p for p in d.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]


def _loki_problems(b: Bundle) -> list[str]:
    """Warnings and gaps that name a Loki source, and Loki sources not complete."""
    out = [f"{s.name}: {s.completeness}" for s in b.sources if s.kind == "loki" and s.completeness != "complete"]
    out += [g["reason"] for g in b.gaps if "loki" in (g.get("source") or "") or "loki" in g.get("part", "")]
    return out


def _rows(b: Bundle) -> int:
    return sum(len(b.table(db, t)) for db, t in b.tables())  # type: ignore[arg-type]


def _service_lines(b: Bundle) -> int:
    services = {c for db in model.DATABASES.values() for c in model.SERVICES[db.service].containers}
    return sum(1 for c, s, _ in b.log_files() if c in services for _ in b.iter_log_lines(c, s))


def test_a_healthy_loki_gives_complete_logs(dsns: dict[str, str], loki: FakeLoki, tmp_path: Path) -> None:
    r = _snapshot(_config(tmp_path / "c.toml", dsns, loki.url), tmp_path / "b")
    b = Bundle.open(tmp_path / "b")
    assert r.returncode == 2  # no Docker in this profile: container states are missing
    assert _loki_problems(b) == [] and _rows(b) > 0 and _service_lines(b) > 0
    _no_canary(r, tmp_path)


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "slow"])
def test_a_faulty_loki_keeps_the_rows_and_records_what_is_missing(
        dsns: dict[str, str], loki: FakeLoki, tmp_path: Path, fault: str) -> None:
    loki.fault = fault
    r = _snapshot(_config(tmp_path / "c.toml", dsns, loki.url), tmp_path / "b", "--timeout", "6")
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 2, err[-2000:]
    assert b"evidence incomplete" in r.stdout
    b = Bundle.open(tmp_path / "b")
    assert _rows(b) > 0  # the database rows already read are kept
    assert _loki_problems(b), b.manifest["sources"]
    if fault == "hung":  # one request waited for; none after it
        assert len([q for q in loki.requests if q.status == 0]) == 1
    if fault in ("malformed", "out_of_window"):  # the good entries are kept
        assert _service_lines(b) > 0
    _no_canary(r, tmp_path)


def test_a_loki_failing_part_way_keeps_what_it_gave(dsns: dict[str, str], loki: FakeLoki,
                                                    tmp_path: Path) -> None:
    loki.fault, loki.fault_after = "query_fails", 3
    r = _snapshot(_config(tmp_path / "c.toml", dsns, loki.url), tmp_path / "b")
    b = Bundle.open(tmp_path / "b")
    assert r.returncode == 2 and _rows(b) > 0 and _service_lines(b) > 0
    assert any("read stopped" in g for g in _loki_problems(b)), _loki_problems(b)


def test_a_slow_loki_is_bounded_by_the_collection_deadline(dsns: dict[str, str], loki: FakeLoki,
                                                           tmp_path: Path) -> None:
    loki.fault, loki.fault_delay_s = "slow", 1.0
    r = _snapshot(_config(tmp_path / "c.toml", dsns, loki.url), tmp_path / "b", "--timeout", "4")
    b = Bundle.open(tmp_path / "b")
    assert r.returncode == 2 and _rows(b) > 0
    assert any("deadline" in p for p in _loki_problems(b)), _loki_problems(b)
    # every request was sent before the deadline; at 1 s each, at most a handful fit in 4 s
    assert len([q for q in loki.requests if q.path.endswith("query_range")]) <= 5


def test_a_slow_loki_within_the_deadline_is_read_completely(dsns: dict[str, str], loki: FakeLoki,
                                                            tmp_path: Path) -> None:
    loki.fault, loki.fault_delay_s = "slow", 0.05
    r = _snapshot(_config(tmp_path / "c.toml", dsns, loki.url), tmp_path / "b", "--timeout", "300")
    b = Bundle.open(tmp_path / "b")
    assert r.returncode == 2 and _loki_problems(b) == [] and _service_lines(b) > 0


def test_a_loki_that_is_down_is_a_gap(dsns: dict[str, str], tmp_path: Path) -> None:
    with FakeLoki() as gone:
        url = gone.url
    r = _snapshot(_config(tmp_path / "c.toml", dsns, url), tmp_path / "b")
    b = Bundle.open(tmp_path / "b")
    assert r.returncode == 2 and _rows(b) > 0 and _loki_problems(b)


def test_an_unreachable_database_is_a_gap_and_exit_2(dsns: dict[str, str], loki: FakeLoki,
                                                     tmp_path: Path) -> None:
    down = next(iter(dsns))
    cfg = _config(tmp_path / "c.toml", dsns, loki.url, **{down: f"postgresql+psycopg://u:{CANARY}@127.0.0.1:1/x"})
    r = _snapshot(cfg, tmp_path / "b")
    b = Bundle.open(tmp_path / "b")
    assert r.returncode == 2 and _rows(b) > 0
    assert any(g["part"] == f"tables/{down}" for g in b.gaps)
    _no_canary(r, tmp_path / "b")  # (the config file given holds it)


@pytest.mark.parametrize("dsn", ["postgresql+psycopg://u@127.0.0.1:notaport/db", "mysql://u@127.0.0.1/db",
                                 "postgresql+psycopg://u@127.0.0.1:70000/db", "::garbage::",
                                 f"sqlite:///{CANARY}.db"])
def test_a_malformed_dsn_is_one_line_bad_input(dsns: dict[str, str], tmp_path: Path, dsn: str) -> None:
    cfg = _config(tmp_path / "c.toml", dsns, None, **{next(iter(dsns)): dsn})
    for args in (("snapshot", "--profile", "t", "--config", str(cfg), "--id", BATCH, "--out", str(tmp_path / "b")),
                 ("check", "--profile", "t", "--config", str(cfg))):
        r = _cli(*args)
        err = r.stderr.decode(errors="replace").strip()
        assert r.returncode == 4 and len(err.splitlines()) == 1 and "DSN" in err, err
        assert "internal error" not in err and CANARY not in err
    assert not (tmp_path / "b").exists()


def test_a_malformed_loki_url_is_bad_input(dsns: dict[str, str], tmp_path: Path) -> None:
    r = _snapshot(_config(tmp_path / "c.toml", dsns, "http://loki:notaport"), tmp_path / "b")
    assert r.returncode == 4 and b"Loki URL" in r.stderr, r.stderr


def test_check_fails_a_loki_whose_query_api_fails(dsns: dict[str, str], loki: FakeLoki,
                                                  tmp_path: Path) -> None:
    cfg = _config(tmp_path / "c.toml", dsns, loki.url)
    ok = _cli("check", "--profile", "t", "--config", str(cfg))
    assert b"[ OK ] loki" in ok.stdout, ok.stdout
    loki.fault = "query_fails"
    r = _cli("check", "--profile", "t", "--config", str(cfg))
    assert r.returncode == 3 and b"[FAIL] loki" in r.stdout and b"query API" in r.stdout, r.stdout


def test_report_timeout_leaves_the_output_directory_it_names(dsns: dict[str, str], loki: FakeLoki,
                                                             tmp_path: Path) -> None:
    loki.fault = "hung"
    out = tmp_path / "out"
    r = _cli("report", "--profile", "t", "--config", str(_config(tmp_path / "c.toml", dsns, loki.url)),
             "--id", BATCH, *WINDOW, "--out", str(out), "--timeout", "3")
    err = r.stderr.decode(errors="replace")
    assert r.returncode in (2, 3), err[-2000:]
    assert out.is_dir()
    if r.returncode == 3:
        assert str(out) in err.splitlines()[-1]


@pytest.mark.slow
def test_redacted_live_report_leaves_no_raw_evidence_in_out(dsns: dict[str, str], loki: FakeLoki,
                                                            world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    r = _cli("report", "--profile", "t", "--config", str(_config(tmp_path / "c.toml", dsns, loki.url)),
             "--id", BATCH, *WINDOW, "--out", str(out), "--redact-ids", timeout=600)
    assert r.returncode in (1, 2), r.stderr.decode(errors="replace")[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["bundle", "plotly.min.js", "report.html", "report.ipynb",
                                                     "verdict.json"]
    users: set[str] = set()
    for (db, table), _spec in model.TABLES.items():
        df = world.table(db, table)
        if df is not None and "user_id" in df.columns:
            users |= {str(u) for u in df["user_id"].dropna() if len(str(u)) >= 6}
    assert users
    leaked = [p for p in out.rglob("*") if p.is_file() and any(u.encode() in p.read_bytes() for u in users)]
    assert leaked == []
    assert json.loads((out / "bundle" / "manifest.json").read_text())["origin"]["redaction"]["redacted"]
    _no_canary(r, out)
