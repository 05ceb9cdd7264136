"""Database benchmarks for bench/run.py: scan of N batches, single-batch snapshot on N vs 8 batches.

A simulator world is loaded into fresh PostgreSQL databases (127.0.0.1:5432, user postgres, trust auth;
``HF_BENCH_PG`` overrides the admin DSN) twice: one copy inflated to 8 batches, one to N batches
(``huledu_forensics.simulate.inflate``). Every database made here is dropped at the end.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

ADMIN = os.environ.get("HF_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
WORLD = "outbox_poisoned"


class Databases:
    """Uniquely named databases (``hf_bench_<prefix>_<hex>``), all force-dropped by :meth:`drop`."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def __call__(self, prefix: str = "db") -> str:
        name = f"hf_bench_{prefix}_{uuid.uuid4().hex[:10]}".lower()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.made.append(name)
        return ADMIN.rsplit("/", 1)[0] + "/" + name

    def drop(self) -> None:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            for name in self.made:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self.made.clear()


def _world(make: Databases, n: int, say: Callable[[str], None], n_stuck: int | None = None
           ) -> tuple[dict[str, str], Any]:
    from huledu_forensics.simulate import build_world
    from huledu_forensics.simulate.inflate import inflate_world_into_postgres
    from tests.support.pg_world import load_world_into_postgres

    w = build_world(WORLD)
    dsns = load_world_into_postgres(w, make)
    t = time.perf_counter()
    inf = inflate_world_into_postgres(dsns, n, n_stuck=n_stuck, at=w.collected_at)
    say(f"world {WORLD} inflated to {inf.n_batches} batches ({inf.n_stuck} stuck) in "
        f"{time.perf_counter() - t:.0f} s")
    return dsns, w


def _pull(dsns: dict[str, str]) -> int:
    """The baseline: every table of the three databases read into pandas (what a notebook would do)."""
    from sqlalchemy import create_engine, select, table, text

    rows = 0
    for dsn in dsns.values():
        eng = create_engine(dsn)
        with eng.connect() as conn:
            tables = [r[0] for r in conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                "AND table_type = 'BASE TABLE'"))]
            for t in tables:
                rows += len(pd.read_sql(select(text("*")).select_from(table(t)), conn))
        eng.dispose()
    return rows


def bench_db(work: Path, n_batches: int, repeat: int, add: Callable[..., None], na: Callable[..., None],
             say: Callable[[str], None]) -> None:
    from huledu_forensics.collect import snapshot
    from huledu_forensics.scan import scan_profile
    from tests.support.pg_world import profile_for

    make = Databases()
    if n_batches > 20_000:
        repeat = 1  # minutes per run at this size
    try:
        say(f"loading and inflating worlds in PostgreSQL (8 and {n_batches} batches)")
        small, w = _world(make, 8, say)
        # a fleet with one incident: 300 batches stuck the same way (fewer on small runs)
        big, _ = _world(make, n_batches, say, n_stuck=min(300, max(1, n_batches // 100)))
        target = str(w.target["batch_id"])
        p_small, p_big = profile_for(small, name="bench-8"), profile_for(big, name="bench-n")

        res: dict[str, Any] = {}

        def scan() -> float:
            t = time.perf_counter()
            res["scan"] = scan_profile(p_big, at=w.collected_at)
            return time.perf_counter() - t

        def pull() -> float:
            t = time.perf_counter()
            res["rows"] = _pull(big)
            return time.perf_counter() - t

        s = min(scan() for _ in range(repeat))
        pl = min(pull() for _ in range(max(1, repeat - 1)))
        r = pl / s
        result = res["scan"]
        add(f"scan of {result.total} batches ({result.stuck} stuck, {len(result.groups)} groups) vs "
            f"pulling {res['rows']} rows into pandas (speed)", f"{s:.2f} s", f"{pl:.2f} s", r, ">= 20x",
            r >= 20)
        add("scan under the 15 s statement timeout", f"{s:.2f} s", "15 s", None, "< 15 s", s < 15)

        def snap(profile: Any) -> float:
            out = work / f"snap-{uuid.uuid4().hex[:6]}"
            t = time.perf_counter()
            snapshot(profile, target, out, progress=False, log_sources=[], state_source=None)
            return time.perf_counter() - t

        # a snapshot takes about a second even at 100k batches: best of at least 3, the sizes interleaved,
        # so load from other processes hits both alike
        s8, sn = float("inf"), float("inf")
        for _ in range(max(3, repeat)):
            s8, sn = min(s8, snap(p_small)), min(sn, snap(p_big))
        r = sn / s8
        add(f"single-batch snapshot on {result.total} vs 8 batches (time)", f"{sn:.2f} s", f"{s8:.2f} s", r,
            "<= 2x", r <= 2)
    finally:
        make.drop()
