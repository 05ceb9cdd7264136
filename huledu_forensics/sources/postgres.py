"""Read-only, scoped queries against one HuleEdu PostgreSQL database.

:class:`PostgresSource` implements :class:`~huledu_forensics.sources.base.TableSource` with SQLAlchemy 2
and psycopg 3. Every session is a ``READ ONLY`` transaction (the connection also starts with
``default_transaction_read_only=on``) with ``statement_timeout`` and ``lock_timeout`` set; every value
is a bound parameter; identifiers come only from the model or from ``information_schema`` and are
quoted by SQLAlchemy (statements are built with SQLAlchemy Core: ``table()``, ``column()``, ``select()``). The schema is introspected first, so a table or column that does not exist (Alembic-built and
``create_all``-built databases differ) becomes a warning in :attr:`PostgresSource.warnings`, never a
failed query. psycopg and SQLAlchemy errors are translated once, here, into
:class:`~huledu_forensics.errors.SourceUnavailable` with a one-line message that never holds the
password.

Filters passed to :meth:`PostgresSource.rows` map a column name, or a JSON path written like
``event_data->data->>entity_id``, to ids. A key ending in ``[]`` (``expected_essay_ids[]`` or
``event_data->data->essay_ids[]``) matches rows whose JSON array at that path contains any of the ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Executable,
    Select,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    column,
    create_engine,
    func,
    literal,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, JSONB, UUID
from sqlalchemy.dialects.postgresql.psycopg import dialect as _psycopg_dialect
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.expression import TableClause

from .. import model
from .._time import to_utc_series
from ..errors import ConfigError, SourceUnavailable
from ..world import coerce_table

__all__ = [
    "DEFAULT_LOCK_TIMEOUT_MS",
    "DEFAULT_ROW_LIMIT",
    "DEFAULT_STATEMENT_TIMEOUT_MS",
    "PostgresSource",
    "filter_key",
    "mask_url",
    "quote_identifier",
]

DEFAULT_STATEMENT_TIMEOUT_MS = 15_000
DEFAULT_LOCK_TIMEOUT_MS = 2_000
DEFAULT_CONNECT_TIMEOUT_S = 5
DEFAULT_ROW_LIMIT = 50_000

_TEXT_TYPES = {"json", "jsonb", "uuid", "USER-DEFINED", "ARRAY", "inet", "interval", "xml", "bytea"}
_INT_TYPES = {"smallint", "integer", "bigint"}
_TS_TYPES = {"timestamp without time zone", "timestamp with time zone"}
_STR_TYPES = {"character varying", "text", "character"}
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def filter_key(column: str, path: tuple[str, ...] = (), *, array: bool = False) -> str:
    """Return the filter key for ``column`` and a JSON ``path`` (``col->a->>b``; ``[]`` for arrays)."""
    if not path:
        return f"{column}[]" if array else column
    if array:
        return column + "".join(f"->{p}" for p in path) + "[]"
    return column + "".join(f"->{p}" for p in path[:-1]) + f"->>{path[-1]}"


def mask_url(url: str | URL) -> str:
    """Render a database URL with its password replaced by ``***``."""
    try:
        u = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<unparseable database URL>"
    return u.render_as_string(hide_password=True)


_PREPARER = _psycopg_dialect().identifier_preparer  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it unannotated


def quote_identifier(name: str) -> str:
    """``name`` as PostgreSQL reads it, quoted by SQLAlchemy's PostgreSQL dialect where it must be (for
    SQL that Core cannot express, e.g. :mod:`huledu_forensics.scan`'s aggregate queries)."""
    return str(_PREPARER.quote(name))


def _table(name: str, cols: Iterable[str] = ()) -> TableClause:
    """A Core table clause: SQLAlchemy quotes the table and column names wherever they need it."""
    return table(name, *(column(c) for c in cols))


def _any(col: ColumnElement[Any], pname: str, of: Any) -> ColumnElement[bool]:
    """``col = ANY(CAST(:pname AS of[]))``: the values bound as one array, compared in the column's type."""
    return col == any_(cast(bindparam(pname), ARRAY(of)))


def _path(expr: ColumnElement[Any], path: Iterable[str], last: str | None = None) -> ColumnElement[Any]:
    """``expr -> 'a' -> 'b'`` (then ``->> last``), the path keys bound as text."""
    for p in path:
        expr = expr.op("->")(literal(p, Text))
    return expr.op("->>")(literal(last, Text)) if last is not None else expr


def _split(key: str) -> tuple[str, list[str], bool]:
    """A filter key (``col``, ``col->a->>b``, ``col->a[]``) as its column, JSON path and array flag."""
    array = key.endswith("[]")
    parts = re.split(r"->>|->", key[:-2] if array else key)
    return parts[0], parts[1:], array


class PostgresSource:
    """One HuleEdu database, read only.

    Args:
        name: the source's name in bundle reports (``postgres:<database>``).
        database: the model database name (``huleedu_essay_lifecycle`` ...).
        url: SQLAlchemy URL for psycopg 3 (``postgresql+psycopg://user@host:port/db``).
        password: the password, when it is not in ``url`` (read from the env var the profile names).
        statement_timeout_ms: per-statement timeout set in every session.
        lock_timeout_ms: lock-wait timeout set in every session.
        connect_timeout_s: TCP/connect timeout.
        row_limit: at most this many rows per table query; more marks the result as cut.

    Example::

        src = PostgresSource("postgres:huleedu_essay_lifecycle", "huleedu_essay_lifecycle",
                             "postgresql+psycopg://huleedu_user@127.0.0.1:5433/huleedu_essay_lifecycle")
        frame = src.rows("essay_states", {"batch_id": ["278f7fd9-..."]})
    """

    def __init__(self, name: str, database: str, url: str | URL, *, password: str | None = None,
                 statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
                 lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
                 connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S,
                 row_limit: int = DEFAULT_ROW_LIMIT) -> None:
        self.name = name
        self.database = database
        try:
            u = make_url(url) if isinstance(url, str) else url
        except ArgumentError:
            raise ConfigError(f"The database URL for '{database}' cannot be parsed. Write it as "
                              "postgresql+psycopg://user@host:port/dbname.") from None
        if u.drivername in ("postgresql", "postgres"):
            u = u.set(drivername="postgresql+psycopg")
        if password and not u.password:
            u = u.set(password=password)
        self._url = u
        self._secret = u.password if isinstance(u.password, str) else None
        self.statement_timeout_ms = int(statement_timeout_ms)
        self.lock_timeout_ms = int(lock_timeout_ms)
        self.row_limit = int(row_limit)
        self.warnings: list[str] = []
        # (since, until) bounding filters on JSON payloads, which HuleEdu does not index (aware UTC)
        self.json_window: tuple[datetime | None, datetime | None] = (None, None)
        # incremental: rows() asks each filter only for ids it was not asked before (live collection,
        # which keeps every round's rows, sets this); _asked remembers (table, filter key) -> ids
        self.incremental = False
        # defer_unindexed: rows() leaves out the plain-column filters no btree index serves (each would
        # scan its table); they are not marked asked, so a later call without it asks them, once, with
        # every id known by then (live collection's "net" round)
        self.defer_unindexed = False
        self._asked: dict[tuple[str, str], set[str]] = {}
        self._columns: dict[str, dict[str, str]] | None = None
        self._empty: dict[str, pd.DataFrame] = {}
        # btree indexes: per table, the columns that lead one and {second column: (leading column,
        # leading column NOT NULL)}, read once from pg_index (partial and expression indexes left out)
        self._index_info: tuple[dict[str, set[str]], dict[str, dict[str, tuple[str, bool]]]] | None = None
        self._distinct: dict[tuple[str, str], list[str]] = {}
        # JSON-payload projections of the rows inside json_window: (table, window) -> (keys, rows)
        self._window_cache: dict[tuple[str, Any], tuple[list[str], list[tuple[Any, ...]]] | None] = {}
        # window projections being read in the background (prefetch_windows), by the same cache key
        self._pending: dict[tuple[str, Any], Future[Any]] = {}
        self._prefetcher: ThreadPoolExecutor | None = None
        options = (f"-c default_transaction_read_only=on -c statement_timeout={self.statement_timeout_ms}"
                   f" -c lock_timeout={self.lock_timeout_ms} -c TimeZone=UTC")
        # one pooled connection, reused by every session (each session is its own READ ONLY transaction)
        self._engine: Engine = create_engine(
            u, poolclass=QueuePool, pool_size=1, max_overflow=1, pool_reset_on_return="rollback",
            connect_args={"options": options, "connect_timeout": int(connect_timeout_s),
                          "application_name": "huledu-forensics"})

    # -- plumbing ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"PostgresSource({self.name!r}, url={self.display_url!r})"

    @property
    def display_url(self) -> str:
        """The URL with the password masked."""
        return mask_url(self._url)

    def _scrub(self, message: str) -> str:
        line = " ".join(str(message).split())
        if self._secret:
            line = line.replace(self._secret, "***")
        return line[:300]

    def _unavailable(self, exc: BaseException, doing: str) -> SourceUnavailable:
        orig = getattr(exc, "orig", None) or exc
        reason = self._scrub(str(orig).splitlines()[0] if str(orig) else type(orig).__name__)
        where = f"{self._url.host or 'localhost'}:{self._url.port or 5432}/{self._url.database}"
        return SourceUnavailable(
            f"Cannot {doing} database '{self.database}' at {where}: {reason}. Check that the database "
            "is up, and the profile's host, port, user and password env var.", source=self.name)

    @contextmanager
    def session(self) -> Iterator[Connection]:
        """Yield a connection inside a READ ONLY transaction with the timeouts set; always rolled back."""
        try:
            conn = self._engine.connect()
        except SQLAlchemyError as exc:
            raise self._unavailable(exc, "connect to") from exc
        try:
            conn.execute(text("SET TRANSACTION READ ONLY"))
            conn.execute(text("SELECT set_config('statement_timeout', :st, true), "
                              "set_config('lock_timeout', :lt, true)"),
                         {"st": f"{self.statement_timeout_ms}ms", "lt": f"{self.lock_timeout_ms}ms"})
            yield conn
        finally:
            try:
                conn.rollback()
                conn.close()
            except SQLAlchemyError:  # pragma: no cover - connection already gone
                pass

    def _query(self, sql: str | Executable, params: dict[str, Any] | None = None, *, doing: str) -> list[Any]:
        try:
            with self.session() as conn:
                return list(conn.execute(text(sql) if isinstance(sql, str) else sql, params or {}).all())
        except SQLAlchemyError as exc:
            raise self._unavailable(exc, doing) from exc

    def query(self, sql: str | Executable, params: dict[str, Any] | None = None, *,
              doing: str = "query") -> pd.DataFrame:
        """Run one read-only ``SELECT`` (text or a Core statement) with bound parameters; return its rows
        as a frame. Used by :mod:`huledu_forensics.scan` for SQL that aggregates in the database.
        """
        try:
            with self.session() as conn:
                result = conn.execute(text(sql) if isinstance(sql, str) else sql, params or {})
                cols = list(result.keys())
                return pd.DataFrame.from_records([tuple(r) for r in result.all()], columns=cols)
        except SQLAlchemyError as exc:
            raise self._unavailable(exc, doing) from exc

    def close(self) -> None:
        """Release the engine (after any background read has stopped)."""
        if self._prefetcher is not None:
            self._prefetcher.shutdown(wait=True, cancel_futures=True)
            self._prefetcher = None
        self._engine.dispose()

    # -- introspection ----------------------------------------------------------------------------
    def server_version(self) -> str:
        """The server's ``server_version``."""
        return str(self._query("SHOW server_version", doing="read the server version of")[0][0])

    def _schema(self) -> dict[str, dict[str, str]]:
        if self._columns is None:
            rows = self._query(
                "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
                "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
                "AND t.table_name = c.table_name "
                "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
                "ORDER BY c.table_name, c.ordinal_position", doing="list the tables and columns of")
            cols: dict[str, dict[str, str]] = {}
            for tname, cname, dtype in rows:
                cols.setdefault(str(tname), {})[str(cname)] = str(dtype)
            self._columns = cols
        return self._columns

    def tables(self) -> list[str]:
        """Tables that exist in the database's current schema."""
        return sorted(self._schema())

    def columns(self, table: str) -> dict[str, str] | None:
        """``{column: data_type}`` of ``table``, or ``None`` when the table does not exist."""
        return self._schema().get(table)

    def enums(self) -> dict[str, list[str]]:
        """Labels of every enum type visible in the search path, in ``pg_enum`` order."""
        rows = self._query(
            "SELECT t.typname, e.enumlabel FROM pg_catalog.pg_enum e "
            "JOIN pg_catalog.pg_type t ON t.oid = e.enumtypid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = ANY(current_schemas(false)) ORDER BY t.typname, e.enumsortorder",
            doing="read the enum labels of")
        out: dict[str, list[str]] = {}
        for typname, label in rows:
            out.setdefault(str(typname), []).append(str(label))
        return out

    def _indexes(self) -> tuple[dict[str, set[str]], dict[str, dict[str, tuple[str, bool]]]]:
        """Leading and second columns of the btree indexes of the current schema (read once)."""
        if self._index_info is None:
            rows = self._query(
                "SELECT c.relname, i.indexrelid, k, a.attname, a.attnotnull FROM pg_catalog.pg_index i "
                "JOIN pg_catalog.pg_class c ON c.oid = i.indrelid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
                "JOIN pg_catalog.pg_am am ON am.oid = ic.relam AND am.amname = 'btree' "
                "CROSS JOIN generate_series(0, 1) AS k "
                "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[k] "
                "WHERE n.nspname = current_schema() AND i.indpred IS NULL",
                doing="read the indexes of")
            lead: dict[str, set[str]] = {}
            first: dict[Any, tuple[str, bool]] = {}
            second: dict[Any, str] = {}
            for rel, idx, k, col, notnull in rows:
                if int(k) == 0:
                    lead.setdefault(str(rel), set()).add(str(col))
                    first[idx] = (str(col), bool(notnull))
                else:
                    second[idx] = str(col)
            seconds: dict[str, dict[str, tuple[str, bool]]] = {}
            for rel, idx, k, _col, _nn in rows:
                if int(k) == 0 and idx in second:
                    seconds.setdefault(str(rel), {}).setdefault(second[idx], first[idx])
            self._index_info = (lead, seconds)
        return self._index_info

    def _distinct_values(self, table: str, column: str) -> list[str]:
        """Every value of ``column`` (which leads a btree index), by a loose index scan: one index
        probe per distinct value, so ``column = ANY(those) AND second = ANY(ids)`` can use the index."""
        key = (table, column)
        if key not in self._distinct:
            c = _table(table, [column]).c[column]
            v = select(func.min(c).label("x")).cte("v", recursive=True)
            nxt = select(func.min(c)).where(c > v.c.x).scalar_subquery()
            v = v.union_all(select(nxt).select_from(v).where(v.c.x.is_not(None)))
            rows = self._query(select(v.c.x).where(v.c.x.is_not(None)),
                               doing=f"list the {column} values of {table} in")
            self._distinct[key] = [str(r[0]) for r in rows]
        return self._distinct[key]

    @staticmethod
    def _json_projection(key: str, doc: ColumnElement[Any]) -> ColumnElement[Any]:
        """What a JSON-path filter ``key`` compares, read from ``doc`` (its column as ``jsonb``): the text
        at the path, or for ``[]`` keys the array (``jsonb_exists_any`` matches its string elements)."""
        _, path, array = _split(key)
        if array:
            arr = _path(doc, path)
            return case((func.jsonb_typeof(arr) == "array", arr))
        return _path(doc, path[:-1], path[-1])

    WINDOW_CACHE_ROWS = 20_000
    """At most this many rows of a table's JSON window are projected once and matched in Python."""

    @staticmethod
    def _window_keys(cols: dict[str, str], keys: Iterable[str]) -> list[str]:
        """The filter keys a window projection can serve: JSON paths into JSON columns (of ``cols``)."""
        out = []
        for k in keys:
            col, path, array = _split(k)
            if cols.get(col) in ("json", "jsonb") and (path or array):
                out.append(k)
        return out

    def prefetch_windows(self, keys: Mapping[str, Iterable[str]]) -> None:
        """Start reading the JSON-window projections of these tables (``{table: filter keys}``) in one
        background thread, so their scans (tables HuleEdu does not index by time are read whole) overlap
        with the indexed queries of discovery. The same statements run as without it; :meth:`rows`
        waits for a table's projection when it needs it, and a failure surfaces there."""
        if self.json_window == (None, None):
            return
        for name, ks in keys.items():
            cols = self.columns(name)
            spec = model.TABLES.get((self.database, name))
            if cols is None or spec is None or len(spec.key) != 1 or spec.key[0] not in cols:
                continue
            wanted = self._window_keys(cols, ks)
            ck = (name, self.json_window)
            if not wanted or ck in self._window_cache or ck in self._pending:
                continue
            if self._prefetcher is None:
                self._prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hf-{self.database}")
            self._pending[ck] = self._prefetcher.submit(self._read_window, name, cols, wanted)

    def _window_rows(self, table: str, cols: dict[str, str], keys: list[str]) -> tuple[list[str], list[Any]] | None:
        """The primary key and every JSON-path filter's value of each row inside :attr:`json_window`,
        read in one scan per table and window (later rounds match their new ids against it instead of
        scanning the table again); ``None`` when the window is open or holds too many rows."""
        spec = model.TABLES.get((self.database, table))
        if spec is None or len(spec.key) != 1 or spec.key[0] not in cols:
            return None
        if self.json_window == (None, None):
            return None
        keys = self._window_keys(cols, keys)
        ck = (table, self.json_window)
        pending = self._pending.pop(ck, None)
        if pending is not None:
            pending.result()  # the background read fills the cache (or raises its error here)
        if ck in self._window_cache:
            got = self._window_cache[ck]
            if got is None or all(k in got[0] for k in keys):
                return got
        return self._read_window(table, cols, keys)

    def _read_window(self, table: str, cols: dict[str, str], keys: list[str]) -> tuple[list[str], list[Any]] | None:
        """Read and cache one window projection (see :meth:`_window_rows`).

        Each JSON column is parsed once per row (cast to ``jsonb`` in a subquery the planner keeps, as
        it has a ``LIMIT``), not once per path: on ``json`` columns every ``->`` parses the document.
        """
        spec = model.TABLES[(self.database, table)]
        ck = (table, self.json_window)
        window = self._window_condition(table, cols)
        if not window or not keys:
            return None
        docs = sorted({_split(k)[0] for k in keys})
        t = _table(table, cols)
        inner = select(cast(t.c[spec.key[0]], Text).label("pk"),
                       *(cast(t.c[d], JSONB).label(f"doc{i}") for i, d in enumerate(docs))) \
            .where(*window).limit(self.WINDOW_CACHE_ROWS + 1).subquery("w")
        stmt = select(inner.c.pk, *(self._json_projection(k, inner.c[f"doc{docs.index(_split(k)[0])}"])
                                    for k in keys))
        rows = self._query(stmt, doing=f"read table '{table}' of")
        out = None if len(rows) > self.WINDOW_CACHE_ROWS else (keys, [tuple(r) for r in rows])
        self._window_cache[ck] = out
        return out

    # -- rows ---------------------------------------------------------------------------------------
    def _indexed(self, table: str, key: str, cols: dict[str, str]) -> bool:
        """Whether the filter ``key`` is answered without scanning the table: a column that leads a
        btree index or follows a NOT NULL text column that does (see :meth:`rows`), or a JSON path (those
        are matched against the window projection, read once)."""
        if "->" in key or key.endswith("[]"):
            return True
        lead, seconds = self._indexes()
        second = seconds.get(table, {}).get(key)
        return key in lead.get(table, set()) or (second is not None and second[1]
                                                 and cols.get(second[0]) in _STR_TYPES)

    def _condition(self, t: TableClause, key: str, cols: dict[str, str], pname: str,
                   values: list[str]) -> tuple[ColumnElement[bool], list[Any], bool] | None:
        """The condition for one filter, its bound values and whether it reads JSON (no index:
        time-bounded).

        Values are compared in the column's own type (``uuid = ANY(uuid[])``, ``varchar = ANY(text[])``,
        ``int = ANY(bigint[])``) and JSON paths are written as ``col -> 'a' ->> 'b'``, the form HuleEdu's
        queries use, so the planner can use an index on the column; a value that cannot be of the
        column's type (a non-UUID against a uuid column) cannot match and is left out.
        """
        column_, path, array = _split(key)
        if column_ not in cols:
            self.warnings.append(f"{self.database}.{t.name} has no column '{column_}'; filter '{key}' "
                                 "skipped")
            return None
        col = t.c[column_]
        ctype = cols[column_]
        if not path and not array:
            if ctype == "uuid":
                vals: list[Any] = [v for v in values if _UUID_RE.match(v)]
                return (_any(col, pname, UUID()), vals, False) if vals else None
            if ctype in _STR_TYPES:
                return _any(col, pname, Text()), values, False
            if ctype in _INT_TYPES:
                ints = [int(v) for v in values if re.fullmatch(r"-?\d{1,18}", v)]
                return (_any(col, pname, BIGINT()), ints, False) if ints else None
            return _any(cast(col, Text), pname, Text()), values, False
        if ctype not in ("json", "jsonb"):
            self.warnings.append(f"{self.database}.{t.name}.{column_} is {ctype}, not JSON; "
                                 f"filter '{key}' skipped")
            return None
        if array:
            arr = _path(cast(col, JSONB) if ctype == "json" else col, path)
            return (and_(func.jsonb_typeof(arr) == "array",
                         func.jsonb_exists_any(arr, cast(bindparam(pname), ARRAY(Text())))), values, True)
        return _any(_path(col, path[:-1], path[-1]), pname, Text()), values, True

    def _window_condition(self, table: str, cols: dict[str, str]) -> list[ColumnElement[bool]]:
        """Conditions bounding a JSON scan by :attr:`json_window` on the table's time column."""
        since, until = self.json_window
        spec = model.TABLES.get((self.database, table))
        tcol = spec.time_column if spec is not None else None
        if tcol is None or tcol not in cols or (since is None and until is None):
            return []
        aware = cols[tcol] != "timestamp without time zone"

        def bound(name: str, t: datetime) -> Any:
            t = t.astimezone(UTC)
            return bindparam(name, t if aware else t.replace(tzinfo=None), type_=DateTime(timezone=aware))

        c: ColumnElement[Any] = column(tcol)
        return ([c >= bound("w_since", since)] if since is not None else []) + \
            ([c <= bound("w_until", until)] if until is not None else [])

    def rows(self, table: str, filters: Mapping[str, Iterable[str]]) -> pd.DataFrame:
        """Rows of ``table`` matching any filter (column or JSON path → ids), with the kit's dtypes.

        Each filter runs as its own ``SELECT`` (one read-only transaction), so every one can use the
        index on its column; an ``OR`` of indexed and unindexed conditions would make PostgreSQL scan
        the whole table. JSON-path filters (HuleEdu has no index on JSON payloads) are bounded by
        :attr:`json_window` on the table's time column when one is set.
        Only columns that exist are selected; a missing table gives an empty frame and a warning.
        An empty ``filters`` returns no rows (the kit never dumps whole tables by accident).
        """
        cols = self.columns(table)
        if cols is None:
            self.warnings.append(f"{self.database}.{table} does not exist; skipped")
            return pd.DataFrame()
        spec = model.TABLES.get((self.database, table))
        if spec is not None:
            missing = [c for c in (*spec.key, *spec.id_columns) if c not in cols]
            if missing:
                self.warnings.append(f"{self.database}.{table} lacks column(s) {', '.join(missing)}")
        t = _table(table, cols)
        everything = select(*(cast(t.c[c], Text).label(c) if ct in _TEXT_TYPES else t.c[c]
                              for c, ct in cols.items()))
        queries: list[tuple[Select[Any], dict[str, Any]]] = []
        json_conds: list[ColumnElement[bool]] = []
        json_params: dict[str, Any] = {}
        json_values: list[tuple[str, list[str]]] = []
        for i, (key, ids) in enumerate(filters.items()):
            if self.defer_unindexed and not self._indexed(table, key, cols):
                continue
            values = sorted({str(v) for v in ids if v is not None and str(v) != ""})
            if self.incremental:  # only ids not asked before: earlier calls returned their rows already
                asked = self._asked.setdefault((table, key), set())
                values = [v for v in values if v not in asked]
                asked.update(values)
            if not values:
                continue
            cond = self._condition(t, key, cols, f"p{i}", values)
            if cond is None:
                continue
            where, bound, is_json = cond
            if is_json:  # no index on JSON payloads: all of them in one scan of the table
                json_conds.append(where)
                json_params[f"p{i}"] = bound
                json_values.append((key, values))
                continue
            params = {f"p{i}": bound}
            lead, seconds = self._indexes()
            second = seconds.get(table, {}).get(key)
            if key not in lead.get(table, set()) and second is not None and second[1] \
                    and cols.get(second[0]) in _STR_TYPES:
                # e.g. aggregate_id behind aggregate_type in (aggregate_type, aggregate_id): every
                # aggregate_type (NOT NULL) is listed, so the same rows come back through the index
                where = and_(_any(t.c[second[0]], f"l{i}", Text()), where)
                params[f"l{i}"] = self._distinct_values(table, second[0])
            queries.append((everything.where(where).limit(self.row_limit + 1), params))
        cached = self._window_rows(table, cols, [k for k in filters if "->" in k or k.endswith("[]")]) \
            if json_conds else None
        if cached is not None and all(k in cached[0] for k, _ in json_values):
            # the window's rows were projected once: match the ids here, fetch the hits by primary key
            pos = {k: j + 1 for j, k in enumerate(cached[0])}
            wanted = [(pos[k], set(v), k.endswith("[]")) for k, v in json_values]
            hits = []
            for r in cached[1]:
                for j, vals, array in wanted:
                    x = r[j]
                    if x is not None and (any(isinstance(e, str) and e in vals for e in x) if array
                                          else x in vals):
                        hits.append(str(r[0]))
                        break
            if hits:
                pk = spec.key[0]  # type: ignore[union-attr]
                cond = self._condition(t, pk, cols, "pk", hits[: self.row_limit + 1])
                if cond is not None:
                    queries.append((everything.where(cond[0]), {"pk": cond[1]}))
            json_conds = []
        if json_conds:
            # the cheap time bound first, so rows outside the window are never parsed as JSON
            queries.append((everything.where(*self._window_condition(table, cols), or_(*json_conds))
                            .limit(self.row_limit + 1), json_params))
        if not queries:
            return self._frame(table, cols, [])
        names = list(cols)
        key_idx = [names.index(c) for c in (spec.key if spec is not None else ()) if c in names]
        seen: dict[Any, tuple[Any, ...]] = {}
        cut = False
        try:
            with self.session() as conn:
                for stmt, params in queries:
                    got = [tuple(r) for r in conn.execute(stmt, params).all()]
                    if len(got) > self.row_limit:
                        got, cut = got[: self.row_limit], True
                    for rec in got:
                        k = tuple(rec[j] for j in key_idx) if key_idx else rec
                        seen.setdefault(k, rec)
        except SQLAlchemyError as exc:
            raise self._unavailable(exc, f"read table '{table}' of") from exc
        records = list(seen.values())
        if cut or len(records) > self.row_limit:
            records = records[: self.row_limit]
            self.warnings.append(f"{self.database}.{table}: more than {self.row_limit} rows matched; "
                                 "only the first were kept")
        df = self._frame(table, cols, records)
        if spec is not None and spec.time_column in df.columns and len(df) > 1:
            df = df.sort_values(spec.time_column, kind="stable", na_position="last").reset_index(drop=True)  # type: ignore[call-overload]  # time_column is in df.columns, so not None
        return df

    def _frame(self, table: str, cols: dict[str, str], records: list[tuple[Any, ...]]) -> pd.DataFrame:
        if not records:
            if table not in self._empty:
                self._empty[table] = self._build(table, cols, [])
            return self._empty[table].copy()
        return self._build(table, cols, records)

    def _build(self, table: str, cols: dict[str, str], records: list[tuple[Any, ...]]) -> pd.DataFrame:
        names = list(cols)
        df = pd.DataFrame.from_records(records, columns=names) if records else pd.DataFrame(
            {c: pd.Series([], dtype=object) for c in names})
        for c, t in cols.items():
            if t in _TS_TYPES:
                df[c] = to_utc_series(df[c]) if records else pd.Series(
                    [], dtype="datetime64[ns, UTC]")
            elif t in _INT_TYPES:
                df[c] = pd.array([None if v is None or pd.isna(v) else int(v) for v in df[c]],
                                 dtype="Int64")
            elif df[c].dtype != object and t not in ("double precision", "real", "numeric"):
                df[c] = df[c].astype(object)
        return coerce_table(self.database, table, df)

    def take_warnings(self) -> list[str]:
        """Return and clear the warnings recorded so far (missing tables, columns, cut results)."""
        out, self.warnings = list(dict.fromkeys(self.warnings)), []
        return out
