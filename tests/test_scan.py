"""`scan`: every batch classified in SQL, stuck ones grouped by signature; the same answer from a bundle, from
a live stack, at 5 batches and at 20,000; and every kit query on the large world uses HuleEdu's indexes."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import event
from sqlalchemy.engine import Engine

from huledu_forensics import collect
from huledu_forensics.bundle import Bundle, write_world_bundle
from huledu_forensics.investigation import investigate
from huledu_forensics.model import names as N
from huledu_forensics.model.services import BOS_DB, ELS_DB, FILE_DB
from huledu_forensics.overview import batch_overview
from huledu_forensics.scan import BATCH_COLUMNS, GROUP_COLUMNS, ScanResult, load_scan, scan_bundle, scan_profile
from huledu_forensics.simulate import build_world
from huledu_forensics.simulate.inflate import inflate_world_into_postgres
from tests.support.pg_world import DatabaseFactory, load_world_into_postgres, profile_for

REGISTERED = (N.S_AWAITING_CONTENT, N.T_CONTENT_COMPLETED)
ENUM_DRIFT = (*REGISTERED, f"enum.label_missing:{ELS_DB}.essay_status_enum.{N.ESSAY_EMPTY_SLOT}")
# What each simulated world holds: signature -> stuck batches (the worlds' own ground truth, see test_overview)
TRUTH: dict[str, dict[tuple[str, str, str], int]] = {
    "healthy_guest": {},
    "healthy_regular": {},
    "seed_variant_a": {ENUM_DRIFT: 6},
    "seed_variant_b": {ENUM_DRIFT: 4},
    "outbox_poisoned": {(*REGISTERED, "outbox.unpublished.retries_exhausted"): 1},
    "validation_failure": {(*REGISTERED, "validation.failures:EMPTY_CONTENT"): 1},
}
LARGE = int(os.environ.get("HULEDU_TEST_LARGE_BATCHES", "20000"))
LARGE_STUCK = 37
VALIDATION_STUCK = "3cc17b2d-34ec-4f1c-8083-21ab62cfc555"  # the validation_failure world's stuck batch
COMPARED = ["batch_id", "flow", "state", "step", "awaited_event", "producer", "outbox_row", "essays_expected",
            "essays", "essays_assigned", "pending_content", "validation_failures", "files", "files_failed",
            "error_class"]


def _signatures(result: ScanResult) -> dict[tuple[str, str, str], int]:
    return {(r["state"], r["awaited_event"], r["error_class"]): int(r["count"])
            for r in result.groups.to_dict("records")}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Bundle]:
    root = tmp_path_factory.mktemp("scan")
    return {name: write_world_bundle(build_world(name), root / name) for name in TRUTH}


@pytest.fixture(scope="module")
def factory(pg_admin_dsn: str) -> Iterator[DatabaseFactory]:
    f = DatabaseFactory(pg_admin_dsn)
    yield f
    f.drop_all()


# --------------------------------------------------------------------------------------- small worlds
@pytest.mark.parametrize("name", list(TRUTH))
def test_bundle_scan_finds_each_worlds_stuck_batches_and_agrees_with_the_investigation(
        name: str, bundles: dict[str, Bundle]) -> None:
    result = scan_bundle(bundles[name])
    assert list(result.batches.columns) == list(BATCH_COLUMNS)
    assert list(result.groups.columns) == list(GROUP_COLUMNS)
    assert _signatures(result) == TRUTH[name]
    ov = batch_overview(bundles[name], progress=False)
    assert result.total == len(ov)
    assert set(result.batches["batch_id"]) == set(ov.loc[ov["status"] == "stuck", "batch_id"])
    assert (result.batches["age_s"] > result.batches["expected_dwell_s"]).all()


def test_a_group_carries_count_first_last_and_an_example(bundles: dict[str, Bundle]) -> None:
    result = scan_bundle(bundles["seed_variant_a"])
    g = result.groups.iloc[0]
    b = result.batches
    assert g["count"] == 6 and g["example_batch"] in set(b["batch_id"])
    assert g["first_at"] == b["entered_at"].min() and g["last_at"] == b["entered_at"].max()
    assert set(b["outbox_row"]) == {"missing"}  # ELS never produced the completion event
    assert set(b["essays"].dropna()) == {0}  # the enum stopped every essay row


def test_scan_json_round_trip_and_files(bundles: dict[str, Bundle], tmp_path: Path) -> None:
    result = scan_bundle(bundles["outbox_poisoned"])
    paths = result.write(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["groups.csv", "scan.json", "stuck_batches.csv"]
    data = json.loads(paths["json"].read_text())
    assert data["total"] == 5 and data["stuck"] == 1 and data["stuck_batches"][0]["outbox_row"] == "unpublished"
    back = load_scan(tmp_path)
    assert _signatures(back) == _signatures(result) and back.total == result.total
    assert back.batches[COMPARED].equals(result.batches[COMPARED])


@pytest.mark.parametrize("name", list(TRUTH))
def test_live_scan_equals_the_bundle_scan(name: str, bundles: dict[str, Bundle], make_pg_database: Any) -> None:
    world = build_world(name)
    dsns = load_world_into_postgres(world, make_pg_database)
    lines: list[str] = []
    live = scan_profile(profile_for(dsns), at=world.collected_at, progress=lines.append)
    offline = scan_bundle(bundles[name])
    assert live.total == offline.total and live.complete
    assert _signatures(live) == TRUTH[name]
    assert live.batches[COMPARED].reset_index(drop=True).equals(offline.batches[COMPARED].reset_index(drop=True))
    assert live.batches["age_s"].round(3).tolist() == offline.batches["age_s"].round(3).tolist()
    assert any(line.startswith("BOS:") for line in lines)


def test_a_database_down_makes_the_scan_partial(make_pg_database: Any) -> None:
    world = build_world("seed_variant_a")
    dsns = load_world_into_postgres(world, make_pg_database)
    dsns[FILE_DB] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    result = scan_profile(profile_for(dsns), at=world.collected_at)
    assert not result.complete and any("huleedu_file_service" in w for w in result.warnings)
    assert _signatures(result) == TRUTH["seed_variant_a"]  # BOS and ELS still say what they know


# --------------------------------------------------------------------------------------- large world
@pytest.fixture(scope="module")
def large(factory: DatabaseFactory) -> dict[str, Any]:
    world = build_world("validation_failure")
    dsns = load_world_into_postgres(world, factory)
    inflation = inflate_world_into_postgres(dsns, LARGE, n_stuck=LARGE_STUCK, at=world.collected_at)
    return {"world": world, "dsns": dsns, "inflation": inflation}


@pytest.fixture(scope="module")
def small(factory: DatabaseFactory) -> dict[str, Any]:
    world = build_world("validation_failure")
    return {"world": world, "dsns": load_world_into_postgres(world, factory)}


def test_large_world_scan_finds_exactly_the_planted_stuck_batches(large: dict[str, Any]) -> None:
    inf = large["inflation"]
    assert inf.n_batches == LARGE and inf.n_stuck == LARGE_STUCK
    result = scan_profile(profile_for(large["dsns"]), at=large["world"].collected_at)
    assert result.total == LARGE and result.stuck == LARGE_STUCK
    assert _signatures(result) == inf.expected_groups == {
        (*REGISTERED, "validation.failures:EMPTY_CONTENT"): LARGE_STUCK}
    assert result.batches["batch_id"].is_unique


def test_scan_and_snapshot_verdict_are_the_same_at_small_and_large_size(
        small: dict[str, Any], large: dict[str, Any], tmp_path: Path) -> None:
    at = small["world"].collected_at
    s_scan = scan_profile(profile_for(small["dsns"]), at=at)
    l_scan = scan_profile(profile_for(large["dsns"]), at=at)
    assert set(_signatures(s_scan)) == set(_signatures(l_scan))
    one = l_scan.batches[l_scan.batches["batch_id"] == VALIDATION_STUCK]
    assert one[COMPARED].reset_index(drop=True).equals(
        s_scan.batches[COMPARED].reset_index(drop=True))
    verdicts = []
    for name, dsns in (("small", small["dsns"]), ("large", large["dsns"])):
        b = collect.snapshot(profile_for(dsns), VALIDATION_STUCK, tmp_path / name, progress=False)
        v = investigate(b, VALIDATION_STUCK).verdict.to_json()
        rc = v.get("root_cause") or {}
        verdicts.append((v.get("status"), v.get("current_state"), v.get("current_step"), v.get("awaited_event"),
                         rc.get("finding"), sorted((f["id"], f["severity"]) for f in v.get("findings") or []),
                         len(b.table(*N.ESSAY_STATES)), len(b.table(*N.FILE_UPLOADS))))
    assert verdicts[0] == verdicts[1]
    assert verdicts[0][0] == "stuck"


# ------------------------------------------------------------------------------------------ EXPLAIN
class _Recorder:
    """Every statement the kit sends through SQLAlchemy, with its database and parameters."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any]] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                 executemany: bool) -> None:
        self.seen.append((str(conn.engine.url.database), statement, parameters))

    def kit_queries(self) -> list[tuple[str, str, Any]]:
        out = []
        for db, sql, params in self.seen:
            head = sql.lstrip().upper()
            if not (head.startswith("SELECT") or head.startswith("WITH")):
                continue
            if "INFORMATION_SCHEMA" in head or "PG_CATALOG" in head or "SET_CONFIG" in head \
                    or head.startswith("SELECT NOW()"):
                continue
            out.append((db, sql, params))
        return out


SMALL_TABLE_ROWS = 1000  # below this a Seq Scan is the planner's right choice, whatever the indexes


def _indexed_leading_columns(conn: psycopg.Connection[Any]) -> dict[str, set[str]]:
    """Per large table, the columns that lead one of its indexes."""
    rows = conn.execute(
        "SELECT c.relname, a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
        "AND c.reltuples >= %s", (SMALL_TABLE_ROWS,)).fetchall()
    out: dict[str, set[str]] = {}
    for rel, col in rows:
        out.setdefault(rel, set()).add(col)
    return out


def _seq_scans(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if plan.get("Node Type") == "Seq Scan":
        yield plan
    for child in plan.get("Plans", []) or []:
        yield from _seq_scans(child)


def _violations(conn: psycopg.Connection[Any], sql: str, params: Any,
                indexed: dict[str, set[str]]) -> list[str]:
    """Seq Scans whose filter reads a column that leads an index of that table."""
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0][0]["Plan"]  # type: ignore[index]
    bad = []
    for node in _seq_scans(plan):
        filt = node.get("Filter")
        if not filt:
            continue
        rel = node.get("Relation Name", "")
        tokens = set(re.findall(r"[a-z_][a-z0-9_]*", re.sub(r"'[^']*'", "", filt)))
        hit = tokens & indexed.get(rel, set())
        if hit:
            bad.append(f"Seq Scan on {rel} filtering indexed {sorted(hit)}: {filt[:160]}")
    return bad


def _explain_all(dsns: dict[str, str], queries: list[tuple[str, str, Any]]) -> list[str]:
    by_name = {str(conninfo_to_dict(d.replace("+psycopg", "")).get("dbname")): d
               for d in dsns.values()}
    problems = []
    conns: dict[str, psycopg.Connection[Any]] = {}
    try:
        for db, sql, params in queries:
            if db not in conns:
                conns[db] = psycopg.connect(by_name[db].replace("+psycopg", ""))
            indexed = _indexed_leading_columns(conns[db])
            for v in _violations(conns[db], sql, params, indexed):
                problems.append(f"{db}: {v}\n    query: {' '.join(sql.split())[:300]}")
    finally:
        for c in conns.values():
            c.close()
    return problems


def test_every_kit_query_on_the_large_world_uses_the_indexes(large: dict[str, Any], tmp_path: Path) -> None:
    rec = _Recorder()
    event.listen(Engine, "before_cursor_execute", rec)
    try:
        scan_profile(profile_for(large["dsns"]), at=large["world"].collected_at)
        collect.snapshot(profile_for(large["dsns"]), VALIDATION_STUCK, tmp_path / "b", progress=False)
    finally:
        event.remove(Engine, "before_cursor_execute", rec)
    queries = rec.kit_queries()
    assert len(queries) > 30  # scan + every table of every snapshot round
    (tmp_path / "explained.txt").write_text("\n".join(" ".join(q[1].split()) for q in queries))
    problems = _explain_all(large["dsns"], queries)
    assert not problems, "\n".join(problems)


def test_the_index_check_catches_a_cast_column(large: dict[str, Any]) -> None:
    """The check above can fail: the old CAST(uuid AS text) form is a Seq Scan on the indexed primary key."""
    sql = f'SELECT * FROM "{N.BOS_OUTBOX[1]}" WHERE CAST(id AS text) = ANY(CAST(%(p)s AS text[]))'
    problems = _explain_all(large["dsns"], [(_dbname(large["dsns"][BOS_DB]), sql, {"p": [VALIDATION_STUCK]})])
    assert problems and "['id']" in problems[0]


def _dbname(dsn: str) -> str:
    return str(conninfo_to_dict(dsn.replace("+psycopg", "")).get("dbname"))
