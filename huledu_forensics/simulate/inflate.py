"""Inflate a simulated world loaded into PostgreSQL to many batches, server-side, for scale tests and bench/.

:func:`inflate_world_into_postgres` takes the databases a world was loaded into (one per HuleEdu
database, see ``tests/support/pg_world.py``) and copies the world's batches until there are
``n_batches``. Every copy is made by ``INSERT ... SELECT`` from the existing rows joined to a plan of
(template batch, copy number) rows, so nothing travels through Python. A copy is the template with every
UUID rewritten the same way in every column, JSON payload and database (the last 12 hex digits become the
copy number), so ids stay unique and still join across BOS, ELS and the File Service; serial ids come from
their sequences and ``batch_tracker_id`` follows the copied tracker.

Stuck and healthy templates are copied separately: ``n_stuck`` says how many stuck batches the inflated
world has (``None`` keeps the world's own), the rest are healthy copies. Which templates are stuck, and
with which signature, is read from a scan of the world before inflating, so the inflated world's
expected scan (:attr:`Inflation.expected_groups`) is known at any size. The world's DDL already has
HuleEdu's indexes (``simulate/ddl.py``); the tables are ``ANALYZE``d at the end so the planner sees
the real sizes.

Only for test databases: it writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .. import model
from ..model import names as N
from ..model.services import BOS_DB, ELS_DB, FILE_DB

__all__ = ["Inflation", "inflate_world_into_postgres"]

_UUID_RE = "([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-)[0-9a-fA-F]{12}"
# Content Service storage ids (text_storage_id, raw_file_storage_id): 32 hex digits, no dashes
_HEX32_RE = "\\m([0-9a-f]{20})[0-9a-f]{12}\\M"
# either, in one pass: keep the prefix (\1), replace the last 12 hex digits
_ANY_ID_RE = "([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-|\\m[0-9a-f]{20})[0-9a-fA-F]{12}\\M"
_TRACKER_FK = "batch_tracker_id"
_MARK = "@@@@@@@@@@@@"  # 12 characters no id or payload holds


@dataclass
class Inflation:
    """What :func:`inflate_world_into_postgres` made.

    ``expected_groups`` maps a scan signature ``(state, awaited event, error class)`` to the number of
    stuck batches the inflated world holds with it; ``stuck_templates`` are the world's own stuck
    batch ids, ``copies`` how many copies each template got.
    """

    n_batches: int
    n_stuck: int
    expected_groups: dict[tuple[str, str, str], int]
    stuck_templates: list[str]
    healthy_templates: list[str]
    copies: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def _libpq(dsn: str) -> str:
    """A libpq conninfo from a SQLAlchemy URL or a libpq DSN."""
    if "+psycopg" in dsn:
        dsn = dsn.replace("postgresql+psycopg://", "postgresql://", 1)
    return make_conninfo("", **conninfo_to_dict(dsn))


def _plan(stuck: list[str], healthy: list[str], n_batches: int, n_stuck: int | None) -> dict[str, int]:
    """Copies per template: stuck templates round-robin up to ``n_stuck``, healthy ones fill the rest."""
    base = len(stuck) + len(healthy)
    want_stuck = len(stuck) if n_stuck is None else n_stuck
    if not healthy:
        want_stuck = max(want_stuck, n_batches)
    if stuck and want_stuck < len(stuck):
        raise ValueError(f"n_stuck={want_stuck} is below the world's own {len(stuck)} stuck batches.")
    if not stuck and want_stuck:
        raise ValueError("The world has no stuck batch to copy; load a world with one (e.g. seed_variant_a).")
    copies = {b: 0 for b in [*stuck, *healthy]}
    for i in range(max(0, want_stuck - len(stuck))):
        copies[stuck[i % len(stuck)]] += 1
    extra_healthy = max(0, n_batches - base - sum(copies.values()))
    if extra_healthy and not healthy:
        raise ValueError("The world has no healthy batch to copy; lower n_batches or raise n_stuck.")
    for i in range(extra_healthy):
        copies[healthy[i % len(healthy)]] += 1
    return copies


def _columns(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str, bool]]:
    """(column, data_type, has_default_serial) for ``table``."""
    rows = conn.execute(
        "SELECT column_name, data_type, coalesce(column_default, '') LIKE 'nextval(%%' "
        "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s "
        "ORDER BY ordinal_position", (table,)).fetchall()
    return [(str(r[0]), str(r[1]), bool(r[2])) for r in rows]


def _remap(col: str, dtype: str, kind: str = "embedded", spread_s: float = 0.0) -> str:
    """SQL that rewrites every UUID in ``col`` for copy ``p.n`` (same rule in every table and database).

    ``kind`` says what the template rows hold: ``none`` (no UUID: copied as is), ``exact`` (each value
    is one UUID: a cheap prefix + copy number) or ``embedded`` (UUIDs inside text or JSON: a regexp).
    """
    q = f's."{col}"'
    if dtype in ("timestamp without time zone", "timestamp with time zone"):
        return f"{q} - make_interval(secs => p.n * {float(spread_s)!r})"  # copy n happened n spreads earlier
    if kind == "none":
        return q
    if kind in ("exact", "exact32") and dtype in ("character varying", "text", "character", "uuid"):
        keep = 24 if kind == "exact" else 20
        expr = f"left(CAST({q} AS text), {keep}) || lpad(to_hex(p.n), 12, '0')"
        return f"CAST({expr} AS uuid)" if dtype == "uuid" else expr
    # ids inside text or JSON: the template text was marked once (_mark); a copy is one literal replace
    inner = f"replace(s.\"_m_{col}\", '{_MARK}', lpad(to_hex(p.n), 12, '0'))"
    if dtype in ("character varying", "text", "character"):
        return inner
    if dtype in ("uuid", "json", "jsonb"):
        return f"CAST({inner} AS {dtype})"
    return q


def _uuid_kinds(conn: psycopg.Connection[Any], src: str, cols: list[tuple[str, str, bool]]) -> dict[str, str]:
    """Per text/uuid/JSON column of the template rows: ``none``, ``exact`` or ``embedded`` UUIDs."""
    cand = [(c, t) for c, t, serial in cols if not serial and t in (
        "character varying", "text", "character", "uuid", "json", "jsonb")]
    if not cand:
        return {}
    parts = []
    for c, _ in cand:
        v = f'CAST("{c}" AS text)'
        parts.append(f"bool_or({v} ~ '{_UUID_RE}' OR {v} ~ '{_HEX32_RE}'), "
                     f"bool_and({v} IS NULL OR {v} ~ '^{_UUID_RE}$'), "
                     f"bool_and({v} IS NULL OR {v} ~ '^[0-9a-f]{{32}}$')")
    row = conn.execute(f'SELECT {", ".join(parts)} FROM "{src}"').fetchone()
    out = {}
    for i, (c, t) in enumerate(cand):
        anyv, exact, exact32 = (row[3 * i], row[3 * i + 1], row[3 * i + 2]) if row else (False, False, False)
        if not anyv:
            out[c] = "none"
        elif t in ("json", "jsonb"):
            out[c] = "embedded"
        else:
            out[c] = "exact" if exact else ("exact32" if exact32 else "embedded")
    return out


def _inflate_db(dsn: str, db: str, copies: dict[str, int], say: Callable[[str], None],
                spread_s: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    tables = [t for (d, t) in model.TABLES if d == db]
    with psycopg.connect(_libpq(dsn), autocommit=False) as conn:
        conn.execute("SET session_replication_role = replica")  # copies are inserted parents-first anyway
        conn.execute("CREATE TEMP TABLE _plan (batch_id text PRIMARY KEY, copies int NOT NULL) ON COMMIT DROP")
        with conn.cursor() as cur:
            cur.execute("INSERT INTO _plan SELECT * FROM unnest(%s::text[], %s::int[])",
                        (list(copies), list(copies.values())))
        present = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").fetchall()}
        tracker_table = N.TRACKERS[1]
        # parents first: trackers before the tables that point at them
        order = sorted((t for t in tables if t in present), key=lambda t: (t != tracker_table, t))
        for table in order:
            cols = _columns(conn, table)
            names = [c for c, _, _ in cols]
            # which template batch a row belongs to: the first template id its row text mentions
            # (or, for rows that only hold batch_tracker_id, the tracker's batch)
            owner = ("(SELECT pl.batch_id FROM _plan pl WHERE strpos(CAST(row_to_json(s) AS text), "
                     "pl.batch_id) > 0 ORDER BY pl.batch_id LIMIT 1)")
            if _TRACKER_FK in names and db == ELS_DB:
                owner = (f"COALESCE((SELECT t.batch_id FROM \"{tracker_table}\" t WHERE t.id = "
                         f"s.\"{_TRACKER_FK}\"), {owner})")
            conn.execute(f'CREATE TEMP TABLE "_src_{table}" ON COMMIT DROP AS '
                         f'SELECT s.*, {owner} AS _owner FROM "{table}" s')
            for c, _, serial in cols:
                if serial:  # the world was loaded with explicit ids: move the sequence past them
                    conn.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{c}'), "
                                 f"COALESCE((SELECT max(\"{c}\") FROM \"{table}\"), 0) + 1, false)")
            kinds = _uuid_kinds(conn, f"_src_{table}", cols)
            for c, k in kinds.items():
                if k == "embedded":  # mark the 12 digits each copy rewrites, once, on the few template rows
                    conn.execute(f'ALTER TABLE "_src_{table}" ADD COLUMN "_m_{c}" text')
                    conn.execute(f'UPDATE "_src_{table}" SET "_m_{c}" = regexp_replace(CAST("{c}" AS text), '
                                 f"'{_ANY_ID_RE}', '\\1{_MARK}', 'g')")
            select = []
            insert = []
            for c, dtype, serial in cols:
                if serial:
                    continue  # a new serial id from the sequence
                insert.append(f'"{c}"')
                if c == _TRACKER_FK and db == ELS_DB:
                    select.append(f"CASE WHEN s.\"{c}\" IS NULL THEN NULL ELSE (SELECT t.id FROM "
                                  f"\"{tracker_table}\" t WHERE t.batch_id = left(s._owner, 24) "
                                  "|| lpad(to_hex(p.n), 12, '0')) END")
                else:
                    select.append(_remap(c, dtype, kinds.get(c, "embedded"), spread_s))
            sql = (f'INSERT INTO "{table}" ({", ".join(insert)}) SELECT {", ".join(select)} '
                   f'FROM "_src_{table}" s JOIN _plan pl ON pl.batch_id = s._owner '
                   "CROSS JOIN LATERAL generate_series(1, pl.copies) AS p(n)")
            cur = conn.execute(sql)
            counts[f"{db}.{table}"] = cur.rowcount
            say(f"{db}.{table}: +{cur.rowcount} rows")
        conn.commit()
    with psycopg.connect(_libpq(dsn), autocommit=True) as conn:
        for table in tables:
            if table in present:
                conn.execute(f'ANALYZE "{table}"')
    return counts


def inflate_world_into_postgres(world_dsns: dict[str, str], n_batches: int, *, n_stuck: int | None = None,
                                at: datetime | None = None, spread: timedelta = timedelta(minutes=1),
                                progress: Callable[[str], None] | None = None) -> Inflation:
    """Copy the loaded world's batches until it holds ``n_batches``, ``n_stuck`` of them stuck.

    Args:
        world_dsns: ``{model database name: DSN}`` as returned by ``load_world_into_postgres``.
        n_batches: the total number of batches wanted (the world's own count as well).
        n_stuck: how many of them stuck (copies of the world's stuck batches, round robin); ``None``
            keeps the world's own stuck batches and adds healthy copies only. A world with no healthy
            batch (the seed variants) can only grow stuck batches.
        at: the "now" of the template scan (the world's ``collected_at``); ``None``: the server clock.
        spread: copy ``n`` of a batch has every timestamp moved ``n * spread`` earlier, so the batches
            spread over time like a production history (ages only grow: stuck stays stuck, a finished
            batch stays finished).
        progress: called with one line per step.

    Returns:
        The plan and the scan result expected on the inflated world (:attr:`Inflation.expected_groups`).

    Raises:
        ValueError: the wanted mix cannot be made from this world's batches.
    """
    from ..profiles import DatabaseTarget, Profile
    from ..scan import scan_profile

    say = progress or (lambda m: None)
    targets = {db: DatabaseTarget(name=db, dsn=dsn if "+psycopg" in dsn or "://" not in dsn
                                  else dsn.replace("postgresql://", "postgresql+psycopg://", 1))
               for db, dsn in world_dsns.items()}
    prof = Profile(name="inflate", databases=targets, docker_url=None, loki_url=None, logs_dir=None,
                   origin="inflate")
    before = scan_profile(prof, at=at)
    stuck = sorted(before.batches["batch_id"])
    sig = {r["batch_id"]: (str(r["state"] or "-"), str(r["awaited_event"] or "-"), str(r["error_class"]))
           for r in before.batches.to_dict("records")}
    with psycopg.connect(_libpq(world_dsns[BOS_DB])) as conn:
        ids = [str(r[0]).lower() for r in conn.execute(f'SELECT id FROM "{N.BATCHES[1]}" ORDER BY id')]
    healthy = [b for b in ids if b not in set(stuck)]
    if before.total != len(ids):
        say(f"note: {before.total - len(ids)} batch(es) exist outside BOS and are not copied")
    copies = _plan(stuck, healthy, n_batches, n_stuck)
    rows: dict[str, int] = {}
    for db in (BOS_DB, ELS_DB, FILE_DB):
        if db in world_dsns:
            rows.update(_inflate_db(world_dsns[db], db, copies, say, spread.total_seconds()))
    expected: Counter[tuple[str, str, str]] = Counter()
    for b in stuck:
        expected[sig[b]] += 1 + copies.get(b, 0)
    total = before.total + sum(copies.values())
    return Inflation(n_batches=total, n_stuck=sum(expected.values()), expected_groups=dict(expected),
                     stuck_templates=stuck, healthy_templates=healthy, copies=copies, rows=rows)
