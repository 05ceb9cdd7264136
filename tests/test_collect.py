"""Live collection against real PostgreSQL databases loaded with corpus worlds, logs from captured files."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from huledu_forensics.bundle import Bundle
from huledu_forensics.collect import snapshot
from huledu_forensics.errors import ScopeError
from huledu_forensics.world import load_world_dir
from tests.support.corpus import CORPUS_DIR
from tests.support.pg_world import (
    DatabaseFactory,
    load_world_into_postgres,
    profile_for,
    sqlalchemy_url,
)

pytestmark = pytest.mark.postgres

WORLD = str(CORPUS_DIR / "seed-variant-a")
BOS, ELS, FILE = "huleedu_batch_orchestrator", "huleedu_essay_lifecycle", "huleedu_file_service"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _idless_alert(line: str) -> bool:
    """A warning or error line that names no id (kept because it follows a scoped line)."""
    return ('"level": "error"' in line or '"level": "warning"' in line) and not UUID_RE.search(
        line.split(" ", 1)[1])


BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
REG_CORRELATION = "9437fe03-1195-4241-b532-91d36df0b1c2"
PIPELINE_CORRELATION = "7242c19e-039b-43d3-b37f-b144133706c9"  # only in BOS logs in this world
ESSAYS = ["62431c17-f141-444a-b709-6c08e7c6eff2", "fc35b304-58eb-44b6-936a-789055876b56"]
TEXT_STORAGE = ["b2f1d444e90243fc8a79c2285242c352", "cf3ea970ffc94727b79cdb6051f76e6a"]
SECRET = "Pw-never-on-disk-7731"

LOGS_DIR = f"{WORLD}/logs"


@pytest.fixture(scope="module")
def seed_a(pg_admin_dsn: str) -> Iterator[dict[str, str]]:
    factory = DatabaseFactory(pg_admin_dsn)
    try:
        yield load_world_into_postgres(load_world_dir(WORLD), factory)
    finally:
        factory.drop_all()


def _with_password(url: str) -> str:
    return make_url(url).set(password=SECRET).render_as_string(hide_password=False)


def test_batch_id_and_registration_correlation_reach_the_same_scope(
        seed_a: dict[str, str], tmp_path: Path) -> None:
    profile = profile_for(seed_a, logs_dir=LOGS_DIR)
    a = snapshot(profile, BATCH, tmp_path / "by-batch", progress=False)
    b = snapshot(profile, REG_CORRELATION, tmp_path / "by-corr", progress=False)
    for bundle in (a, b):
        ids = bundle.manifest["scope"]["ids"]
        assert ids["batch"] == [BATCH]
        assert ids["essay"] == ESSAYS
        assert ids["text_storage"] == TEXT_STORAGE
        assert REG_CORRELATION in ids["correlation"]
        assert bundle.manifest["scope"]["mode"] == "scoped"
        assert bundle.table(BOS, "batches")["id"].tolist() == [BATCH]
        assert bundle.table(ELS, "batch_essay_trackers")["batch_id"].tolist() == [BATCH]
        assert sorted(bundle.table(ELS, "batch_pending_content")["text_storage_id"]) == TEXT_STORAGE
        assert set(bundle.table(FILE, "file_uploads")["batch_id"]) == {BATCH}
        # only this batch's rows: the world holds several background batches
        outbox = bundle.table(FILE, "event_outbox")
        assert len(outbox) == 4 and outbox["event_data"].str.contains(BATCH).all()
        assert len(bundle.enums[ELS]["essay_status_enum"]) == 10
        assert str(bundle.table(ELS, "batch_essay_trackers")["created_at"].dtype) == \
            "datetime64[ns, UTC]"
    assert a.manifest["scope"]["ids"] == b.manifest["scope"]["ids"]
    Bundle.open(a.path, verify=True)


def test_logs_are_scoped_and_db_container_logs_kept_whole(seed_a: dict[str, str], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    bundle = snapshot(profile_for(seed_a, logs_dir=LOGS_DIR), BATCH, tmp_path / "b")
    # the pipeline-request correlation id lives only in BOS log lines; it joins the scope
    assert PIPELINE_CORRELATION in bundle.manifest["scope"]["ids"]["correlation"]
    scope_ids = {i for v in bundle.manifest["scope"]["ids"].values() for i in v} | {BATCH}
    bos_lines = list(bundle.iter_log_lines("huleedu_batch_orchestrator_service", "combined"))
    # every kept line mentions the scope, or is an id-less error right after a scoped line (such as
    # ELS's "offset not committed", which names no batch)
    def mentions(ln: str) -> bool:
        return any(i in ln for i in scope_ids)
    assert bos_lines and all(mentions(ln) or _idless_alert(ln) for ln in bos_lines)
    els_lines = list(bundle.iter_log_lines("huleedu_essay_lifecycle_worker", "combined"))
    assert any("offset not committed" in ln for ln in els_lines)
    all_bos = Path(f"{WORLD}/logs/huleedu_batch_orchestrator_service.log").read_text().splitlines()
    assert len(bos_lines) < len(all_bos)
    els_db = list(bundle.iter_log_lines("huleedu_essay_lifecycle_db", "combined"))
    assert els_db == Path(f"{WORLD}/logs/huleedu_essay_lifecycle_db.log").read_text().splitlines()
    assert any('invalid input value for enum essay_status_enum: "uploaded"' in ln for ln in els_db)
    err = capsys.readouterr().err
    assert f"{ELS}: connected" in err and "huleedu_essay_lifecycle_worker:" in err
    assert "line(s) mention the scope" in err


def test_log_window_limits_lines(seed_a: dict[str, str], tmp_path: Path) -> None:
    bundle = snapshot(profile_for(seed_a, logs_dir=LOGS_DIR), BATCH, tmp_path / "b", progress=False,
                      since="2025-11-20T18:41:00Z", until="2025-11-20T18:42:00Z")
    lines = list(bundle.iter_log_lines("huleedu_batch_orchestrator_service", "combined"))
    assert lines and all(ln.startswith("2025-11-20T18:41:") for ln in lines)
    assert bundle.window[0] is not None and bundle.window[0].isoformat().startswith("2025-11-20T18:41")


def test_password_never_reaches_a_written_file(seed_a: dict[str, str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_TEST_DB_PASSWORD", SECRET)
    dsns = {BOS: _with_password(seed_a[BOS]), ELS: seed_a[ELS], FILE: seed_a[FILE]}
    profile = profile_for(dsns, logs_dir=LOGS_DIR, password_env="HF_TEST_DB_PASSWORD")
    assert profile.databases[ELS].url().password == SECRET  # read from the env var, in memory
    bundle = snapshot(profile, BATCH, tmp_path / "b")
    written = [p for p in bundle.path.rglob("*") if p.is_file()]
    assert written
    for p in written:
        assert SECRET.encode() not in p.read_bytes(), p
    assert SECRET not in capsys.readouterr().err
    assert "***" in bundle.manifest["origin"]["profile"]["databases"][BOS]["dsn"]


def test_unreachable_database_is_a_gap_not_a_crash(seed_a: dict[str, str], tmp_path: Path) -> None:
    profile = profile_for({BOS: seed_a[BOS], ELS: seed_a[ELS]}, logs_dir=LOGS_DIR)  # File: port 1
    bundle = snapshot(profile, BATCH, tmp_path / "b", progress=False)
    report = {s.name: s for s in bundle.sources}[f"postgres:{FILE}"]
    assert report.completeness == "missing"
    gap = next(g for g in bundle.gaps if g["part"] == f"tables/{FILE}")
    assert "127.0.0.1:1" in gap["reason"]
    assert bundle.table(ELS, "batch_essay_trackers")["batch_id"].tolist() == [BATCH]
    assert not bundle.has_table(FILE, "file_uploads")


def test_missing_table_is_recorded_in_the_bundle(make_pg_database: Callable[..., str],
                                                 tmp_path: Path) -> None:
    dsns = load_world_into_postgres(load_world_dir(WORLD), make_pg_database)
    admin = make_url(dsns[ELS]).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP TABLE slot_assignments")
    bundle = snapshot(profile_for(dsns), BATCH, tmp_path / "b", progress=False)
    assert any(g["part"] == f"tables/{ELS}/slot_assignments" for g in bundle.gaps)
    report = {s.name: s for s in bundle.sources}[f"postgres:{ELS}"]
    assert report.completeness == "partial"
    assert not bundle.has_table(ELS, "slot_assignments")
    assert bundle.has_table(ELS, "batch_essay_trackers")


def test_unknown_id_is_a_scope_error(seed_a: dict[str, str], tmp_path: Path) -> None:
    profile = profile_for(seed_a, logs_dir=LOGS_DIR, name="dev")
    with pytest.raises(ScopeError, match=r"No row or log line mentions 'no-such-id' in profile 'dev'\. "
                                         r"Check the id, the profile, and the time window\."):
        snapshot(profile, "no-such-id", tmp_path / "b", progress=False)
    assert not (tmp_path / "b").exists()
    assert not list(tmp_path.glob(".b.*"))  # no partial bundle left behind


def test_sqlalchemy_url_accepts_conninfo() -> None:
    url = sqlalchemy_url("host=127.0.0.1 port=5432 user=postgres dbname=x")
    assert url == "postgresql+psycopg://postgres@127.0.0.1:5432/x"


def test_unreachable_docker_engine_is_a_gap(seed_a: dict[str, str], tmp_path: Path) -> None:
    profile = profile_for(seed_a, logs_dir=LOGS_DIR, docker="tcp://127.0.0.1:1")
    bundle = snapshot(profile, BATCH, tmp_path / "b", progress=False)
    parts = {g["part"]: g["reason"] for g in bundle.gaps}
    assert "127.0.0.1:1" in parts["containers.json"]
    assert any(p.startswith("logs (docker") for p in parts)
    assert bundle.containers == []
    assert bundle.table(BOS, "batches")["id"].tolist() == [BATCH]


@pytest.mark.docker
@pytest.mark.slow
def test_live_round_trip_through_docker(seed_a: dict[str, str], tmp_path: Path, docker_client: Any,
                                        busybox_image: str) -> None:
    """seed-variant-a in PostgreSQL and in Docker containers with HuleEdu's names: logs, states, rows."""
    from tests.support.docker_world import running_world

    world = load_world_dir(WORLD)
    url = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    with running_world(docker_client, busybox_image, world):
        bundle = snapshot(profile_for(seed_a, docker=url), REG_CORRELATION, tmp_path / "b",
                          progress=False)
    states = {c.name: c.state for c in bundle.containers}
    assert states["huleedu_essay_lifecycle_worker"] == "running"
    assert states["huleedu_essay_lifecycle_db"] == "running"
    assert bundle.manifest["scope"]["ids"]["batch"] == [BATCH]
    assert PIPELINE_CORRELATION in bundle.manifest["scope"]["ids"]["correlation"]
    worker = [ln for _, _, p in bundle.log_files() if "essay_lifecycle_worker" in str(p)
              for ln in p.read_text().splitlines()]
    scope_ids = {i for v in bundle.manifest["scope"]["ids"].values() for i in v}
    assert worker and all(any(i in ln for i in scope_ids) or _idless_alert(ln) for ln in worker)
    assert any("offset not committed" in ln for ln in worker)
    db_lines = [ln for c, s, p in bundle.log_files() if c == "huleedu_essay_lifecycle_db"
                for ln in p.read_text().splitlines()]
    assert any('invalid input value for enum essay_status_enum: "uploaded"' in ln for ln in db_lines)


def test_a_shared_correlation_id_does_not_pull_in_another_batch(
        make_pg_database: Callable[..., str], tmp_path: Path) -> None:
    dsns = load_world_into_postgres(load_world_dir(WORLD), make_pg_database)
    admin = make_url(dsns[ELS]).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:  # another batch reusing the correlation id
        conn.execute("INSERT INTO batch_pending_content (batch_id, text_storage_id, content_metadata) "
                     "VALUES ('other-batch', 'other-storage', %s::jsonb)",
                     (f'{{"correlation_id": "{REG_CORRELATION}"}}',))
    # asked for the batch, its rows are collected and the other batch's row is refused; asked for the
    # shared correlation id itself, the snapshot refuses (tests/test_collect_scope.py)
    bundle = snapshot(profile_for(dsns), BATCH, tmp_path / "b", progress=False)
    scope = bundle.manifest["scope"]
    assert scope["ids"]["batch"] == [BATCH] and scope["other_batches"] == ["other-batch"]
    assert "other-storage" not in scope["ids"]["text_storage"]
    assert set(bundle.table(ELS, "batch_pending_content")["batch_id"]) == {BATCH}


def test_byte_level_search_of_log_files_keeps_the_same_lines_as_a_full_read(
        seed_a: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huledu_forensics import collect

    fast = snapshot(profile_for(seed_a, logs_dir=LOGS_DIR), BATCH, tmp_path / "fast", progress=False)
    full_read = collect._lines
    monkeypatch.setattr(collect, "_lines", lambda src, c, w, contains, follow=False:
                        full_read(src, c, w, None if follow else contains))  # every line, line by line
    slow = snapshot(profile_for(seed_a, logs_dir=LOGS_DIR), BATCH, tmp_path / "slow", progress=False)
    logs_fast = {p.relative_to(fast.path): p.read_text() for p in fast.path.glob("logs/*/*.log")}
    logs_slow = {p.relative_to(slow.path): p.read_text() for p in slow.path.glob("logs/*/*.log")}
    assert logs_fast == logs_slow
    assert any(BATCH in text for text in logs_fast.values())
    assert fast.manifest["scope"] == slow.manifest["scope"]
