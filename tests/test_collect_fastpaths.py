"""The snapshot's fast paths collect exactly the rows of the plain queries.

``PostgresSource`` finds rows through ``(aggregate_type, aggregate_id)``-style indexes by listing the
leading column's values, and matches JSON-payload filters against one projection of the table's rows
inside the collection window instead of scanning the table once per round (read in the background
from the start, once the window is known); filters no index serves are asked once, when the indexed
ones find nothing new, instead of every round. All are optimisations only: with them switched off (no
index knowledge, no window projection, every filter every round) every query is the plain filter, and
the bundle must hold the same rows, table by table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from huledu_forensics import collect, model
from huledu_forensics.bundle import Bundle
from huledu_forensics.collect import snapshot
from huledu_forensics.simulate import build_world
from huledu_forensics.simulate.inflate import inflate_world_into_postgres
from huledu_forensics.sources.postgres import PostgresSource
from tests.support.pg_world import load_world_into_postgres, profile_for


def _rows(bundle: Bundle) -> dict[tuple[str, str], pd.DataFrame]:
    out = {}
    for db, table in bundle.tables():
        df = bundle.table(db, table)
        assert df is not None
        spec = model.TABLES.get((db, table))
        key = [c for c in (spec.key if spec else ()) if c in df.columns] or list(df.columns)
        out[(db, table)] = df.astype(str).sort_values(key).reset_index(drop=True)
    return out


@pytest.mark.parametrize(("world", "requested"), [
    ("outbox_poisoned", "batch_id"), ("seed_variant_a", "batch_id"), ("validation_failure", "batch_id"),
    # only JSON payloads and unindexed correlation_id columns hold it: discovery starts in the net
    ("outbox_poisoned", "registration_correlation_id")])
def test_fast_paths_collect_the_same_rows_as_plain_queries(world: str, requested: str,
                                                           make_pg_database: Callable[..., str],
                                                           tmp_path: Path, monkeypatch: Any) -> None:
    w = build_world(world)
    dsns = load_world_into_postgres(w, make_pg_database)
    # other batches around the target (copies earlier in time), so the window holds foreign rows too
    inflate_world_into_postgres(dsns, 24, at=w.collected_at)
    target = str(w.target[requested])
    profile = profile_for(dsns)

    fast = snapshot(profile, target, tmp_path / "fast", progress=False, log_sources=[], state_source=None)
    calls: list[str] = []
    real = PostgresSource._window_rows

    def counted(self: PostgresSource, *a: Any, **k: Any) -> Any:
        got = real(self, *a, **k)
        calls.append("cache" if got is not None else "none")
        return got

    read_by: list[str] = []
    real_read = PostgresSource._read_window

    def read(self: PostgresSource, *a: Any, **k: Any) -> Any:
        read_by.append(threading.current_thread().name)
        return real_read(self, *a, **k)

    deferred: list[str] = []
    real_indexed = PostgresSource._indexed

    def indexed(self: PostgresSource, table: str, key: str, cols: dict[str, str]) -> bool:
        got = real_indexed(self, table, key, cols)
        if not got:
            deferred.append(f"{table}.{key}")
        return got

    monkeypatch.setattr(PostgresSource, "_window_rows", counted)
    monkeypatch.setattr(PostgresSource, "_read_window", read)
    monkeypatch.setattr(PostgresSource, "_indexed", indexed)
    fast2 = snapshot(profile, target, tmp_path / "fast2", progress=False, log_sources=[], state_source=None)
    assert "cache" in calls, "the window projection was never used: this test would not test it"
    if requested == "batch_id":  # the registration time is looked up first, so the window is known up front
        assert any(n.startswith("hf-") for n in read_by), "no window projection was read in the background"
    assert any(d.endswith(".correlation_id") for d in deferred), "no unindexed filter was left to the net"

    monkeypatch.setattr(PostgresSource, "_window_rows", lambda *a, **k: None)
    monkeypatch.setattr(PostgresSource, "_indexes", lambda self: ({}, {}))
    monkeypatch.setattr(collect, "_DEFER_UNINDEXED", False)  # every filter asked in every round
    plain = snapshot(profile, target, tmp_path / "plain", progress=False, log_sources=[], state_source=None)

    a, a2, b = _rows(fast), _rows(fast2), _rows(plain)
    assert sorted(a) == sorted(b)
    assert sum(len(df) for df in b.values()) > 0
    for key in b:
        pd.testing.assert_frame_equal(a[key], b[key], obj=f"{key}")
        pd.testing.assert_frame_equal(a2[key], b[key], obj=f"{key}")


def test_window_projection_matches_each_json_filter_like_sql(make_pg_database: Callable[..., str]) -> None:
    w = build_world("outbox_poisoned")
    dsns = load_world_into_postgres(w, make_pg_database)
    inflate_world_into_postgres(dsns, 24, at=w.collected_at)
    since = w.collected_at - pd.Timedelta(minutes=10).to_pytimedelta()  # some copies in, the older out
    checked = 0
    for (db, table), spec in model.TABLES.items():
        if db not in dsns or not spec.json_id_paths:
            continue
        fast = PostgresSource("fast", db, dsns[db])
        plain = PostgresSource("plain", db, dsns[db])
        plain._window_rows = lambda *a, **k: None  # type: ignore[method-assign]
        for src in (fast, plain):
            src.json_window = (since, None)
        cols = fast.columns(table)
        if cols is None:
            continue
        for col, path, kind in spec.json_id_paths:
            key = (col + "".join(f"->{p}" for p in path) + "[]" if kind in ("essay_list", "essay_refs")
                   else col + "".join(f"->{p}" for p in path[:-1]) + f"->>{path[-1]}") if path else col + "[]"
            if cols.get(col) not in ("json", "jsonb"):
                continue
            expr = fast._json_projection(key, sa.cast(sa.column(col), JSONB))
            values: set[str] = set()
            stmt = sa.select(expr).select_from(sa.table(table)).where(expr.is_not(None))
            for (x,) in fast._query(stmt, doing="t"):
                values.update(e for e in x if isinstance(e, str)) if isinstance(x, list) else values.add(str(x))
            if not values:
                continue
            some = sorted(values)[:: max(1, len(values) // 6)] + ["not-an-id"]
            a, b = fast.rows(table, {key: some}), plain.rows(table, {key: some})
            assert fast._window_cache, "the window projection was not used"
            key_cols = list(spec.key)
            a = a.astype(str).sort_values(key_cols).reset_index(drop=True)
            b = b.astype(str).sort_values(key_cols).reset_index(drop=True)
            pd.testing.assert_frame_equal(a, b, obj=f"{db}.{table} {key}")
            checked += len(b)
        fast.close()
        plain.close()
    assert checked > 0
