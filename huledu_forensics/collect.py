"""Live collection: from one id to an evidence bundle, reading a HuleEdu stack through a profile.

:func:`snapshot` discovers the scope against the live databases (every model table is queried for rows
whose id columns or JSON id paths match the ids known so far, with the ids pushed down as bound
parameters; new ids found in those rows are followed until nothing new appears), then reads the logs of
the model's service containers (the blocks that mention a scope id, with their traceback or DETAIL lines,
and the id-less warning/error blocks right after them, as :func:`huledu_forensics.logs.scope_filter`
keeps them offline) and of the database containers
(every line in the window: PostgreSQL's own lines carry no ids, yet they hold errors such as
``invalid input value for enum``), the container states, and writes it all to a bundle atomically.

Which rows and log lines belong, and which of their ids are followed, is decided by
:class:`huledu_forensics.scope.ScopeWalk`, the rule :func:`huledu_forensics.scope.discover` replays a
bundle with: once the scope has reached a batch, a row or log line about *another* batch is never
followed (a shared correlation id cannot pull a second batch in).

Parts that cannot be read (a database down, no Docker engine) become gaps in the bundle with the
reason; they never abort the collection.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from . import _fields as F
from . import model
from ._time import parse_option_time, parse_utc, utcnow
from .bundle import Bundle, BundleWriter, SourceReport
from .errors import ConfigError, ScopeError, SourceUnavailable
from .logs import BlockSelector
from .model import columns as C
from .model import names as N
from .profiles import Profile
from .safety import printable
from .scope import ID_KINDS, ScopeWalk, normalise_id, row_ids
from .sources.base import LogLine, LogSource, StateSource, Window
from .sources.docker import DockerSource
from .sources.files import FilesSource
from .sources.loki import LokiSource
from .sources.postgres import PostgresSource, filter_key

__all__ = ["MAX_ROUNDS", "log_sources_for", "snapshot"]

MAX_ROUNDS = 6
_LOG_CHUNK = 2000
# Which known-id kinds a model column kind is searched with.
_COLUMN_SEARCH = {"batch_correlation": ("batch", "correlation"),
                  "aggregate": ("batch", "file_upload", "essay"),
                  **{k: (k,) for k in ID_KINDS}}


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[snapshot] {printable(message, 500)}", file=sys.stderr, flush=True)


@dataclass
class _ScopeState:
    """The scope walked so far (:class:`~huledu_forensics.scope.ScopeWalk`, the rule replay uses too)
    and the rows it admitted, per table."""

    requested: str
    walk: ScopeWalk = field(init=False)
    frames: dict[tuple[str, str], list[pd.DataFrame]] = field(default_factory=dict)
    asked: dict[tuple[str, str], tuple[dict[str, set[str]], bool]] = field(default_factory=dict)
    json_since: datetime | None = None  # lower bound for JSON-payload scans once the batch is known

    def __post_init__(self) -> None:
        self.walk = ScopeWalk(self.requested)

    def values_for(self, kinds: Iterable[str]) -> set[str]:
        out = {self.requested}
        for k in kinds:
            out |= self.walk.ids.get(k, set())
        return out

    def scope_json(self) -> dict[str, list[str]]:
        return {k: sorted(v) for k, v in self.walk.ids.items() if v}


def _json_filters(spec: model.Table) -> Iterator[tuple[str, tuple[str, ...]]]:
    """The table's JSON-path filter keys, each with the id kinds it is searched with."""
    for col, path, kind in spec.json_id_paths:
        if kind == "essay_list":
            yield filter_key(col, path, array=True), ("essay",)
        elif kind == "entity":  # an entity_id: a batch, essay or file upload id (scope.row_ids)
            yield filter_key(col, path), _COLUMN_SEARCH["aggregate"]
        elif kind in ID_KINDS:
            yield filter_key(col, path), (kind,)


def _filters(spec: model.Table, state: _ScopeState) -> dict[str, set[str]]:
    filters: dict[str, set[str]] = {}
    for col, kind in spec.id_columns.items():
        kinds = _COLUMN_SEARCH.get(kind)
        if kinds:
            filters[col] = state.values_for(kinds)
    for key, kinds in _json_filters(spec):
        filters[key] = state.values_for(kinds)
    return filters


def _prefetch_json_windows(sources: dict[str, PostgresSource], state: _ScopeState) -> None:
    """Once the JSON window is known, start every table's window projection in the background."""
    for db, src in sources.items():
        _bound_json_scans(src, state)
        present = set(src.tables())
        src.prefetch_windows({t: [k for k, _ in _json_filters(spec)] for (d, t), spec in model.TABLES.items()
                              if d == db and t in present and spec.json_id_paths})


def _db_round(sources: dict[str, PostgresSource], reports: dict[str, SourceReport],
              state: _ScopeState, progress: _Progress, round_no: str, *, net: bool) -> int:
    """Query every model table of every reachable database once; return the number of new ids.
    Without ``net``, filters no index serves are left for a later round with ``net``."""
    new = 0
    lost: list[str] = []
    for db, src in sources.items():
        src.defer_unindexed = not net
        try:
            new += _db_round_one(db, src, reports[db], state, progress, round_no, net)
        except SourceUnavailable as exc:  # the database went away mid-collection
            reports[db].warn(f"collection stopped in round {round_no}: {exc}")
            progress(f"round {round_no}: {db}: lost ({exc})")
            lost.append(db)
    for db in lost:
        sources.pop(db).close()
    return new


def _db_round_one(db: str, src: PostgresSource, report: SourceReport, state: _ScopeState,
                  progress: _Progress, round_no: str, net: bool) -> int:
    """Query every model table of one database; keep rows in scope; return the number of new ids."""
    new = 0
    present = set(src.tables())
    counts = []
    for (tdb, tname), spec in model.TABLES.items():
        if tdb != db or tname not in present:
            continue
        _bound_json_scans(src, state)
        filters = _filters(spec, state)
        if state.asked.get((db, tname)) == (filters, net):
            counts.append(f"{tname} =")
            continue  # no new id of a kind this table is searched by
        state.asked[(db, tname)] = (filters, net)
        frame = src.rows(tname, filters)
        if not frame.empty:
            keep = []
            for row in frame.to_dict("records"):
                got = state.walk.admit(row_ids(db, tname, row))  # type: ignore[arg-type]  # stubs: record keys are Hashable; ours are str
                keep.append(got is not None)
                new += len(got or ())
            frame = frame[pd.Series(keep, index=frame.index)]
        state.frames.setdefault((db, tname), []).append(frame)
        _note_registration(state, (db, tname), frame)
        counts.append(f"{tname} {len(frame)}")
    for w in src.take_warnings():
        if w not in report.warnings:
            report.warn(w)
    progress(f"round {round_no}: {db}: " + (", ".join(counts) or "no model tables"))
    return new


def _refuse_shared(state: _ScopeState, any_id: str, sources: dict[str, PostgresSource]) -> None:
    """The bundle path's refusal (:meth:`ScopeWalk.refuse_shared`): a correlation id rows or lines of
    two batches carry names no one batch, so no bundle is written (the connections are closed)."""
    try:
        state.walk.refuse_shared(any_id)
    except ScopeError:
        for src in sources.values():
            src.close()
        raise


# Rows about a batch are written after it was registered; this margin absorbs clock skew between services.
_JSON_BOUND_MARGIN = pd.Timedelta(hours=1)


def _note_registration(state: _ScopeState, key: tuple[str, str], frame: pd.DataFrame) -> None:
    """Once the batch's BOS row or ELS tracker is in, remember its registration time (minus a margin)."""
    batch = state.walk.batch
    if batch is None or frame.empty or key not in (N.BATCHES, N.TRACKERS):
        return
    idcol = C.ID if key == N.BATCHES else C.BATCH_ID
    if idcol not in frame.columns or C.CREATED_AT not in frame.columns:
        return
    hit = frame.loc[frame[idcol].astype(str).str.lower() == batch, C.CREATED_AT].dropna()
    if hit.empty:
        return
    t = parse_utc(hit.min())
    if t is not None:
        bound = t - _JSON_BOUND_MARGIN.to_pytimedelta()
        state.json_since = bound if state.json_since is None else min(state.json_since, bound)


def _prime_json_bound(sources: dict[str, PostgresSource], state: _ScopeState) -> None:
    """When the requested id is a batch id (or BOS's batch correlation), read its registration time up
    front with indexed lookups, so even the first round's JSON-payload scans are time-bounded."""
    lookups = ((N.BATCHES, C.ID, C.CORRELATION_ID), (N.TRACKERS, C.BATCH_ID, None))
    times = []
    for (db, table), key, alt in lookups:
        src = sources.get(db)
        cols = src.columns(table) if src is not None else None
        if src is None or not cols or key not in cols or C.CREATED_AT not in cols:
            continue
        tab = sa.table(table, *(sa.column(c) for c in (key, alt, C.CREATED_AT) if c and c in cols))
        rid: sa.BindParameter[str] = sa.bindparam("id")
        cond = sa.or_(tab.c[key] == rid, *([tab.c[alt] == rid] if alt and alt in cols else []))
        try:
            df = src.query(sa.select(sa.func.min(tab.c[C.CREATED_AT]).label("t")).where(cond),
                           {"id": state.requested}, doing="look up the registration time in")
        except SourceUnavailable:
            continue
        t = parse_utc(df["t"].iloc[0]) if not df.empty else None
        if t is not None:
            times.append(t)
    if times:
        state.json_since = min(times) - _JSON_BOUND_MARGIN.to_pytimedelta()


def _bound_json_scans(src: PostgresSource, state: _ScopeState) -> None:
    """HuleEdu has no index on JSON payloads: bound those scans from the batch's registration on."""
    since, until = src.json_window
    if since is None and state.json_since is not None:
        src.json_window = (state.json_since, until)


def _merge(db: str, table: str, frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    nonempty = [f for f in frames if not f.empty]
    if not nonempty:
        return frames[-1]
    df = pd.concat(nonempty, ignore_index=True) if len(nonempty) > 1 else nonempty[0].copy()
    spec = model.TABLES.get((db, table))
    key = [c for c in (spec.key if spec else ()) if c in df.columns]
    df = df.drop_duplicates(subset=key or None, keep="last")
    if spec is not None and spec.time_column in df.columns:
        df = df.sort_values(spec.time_column, kind="stable", na_position="last")  # type: ignore[call-overload]  # in df.columns, so not None
    return df.reset_index(drop=True)


def log_sources_for(profile: Profile) -> tuple[list[LogSource], list[tuple[str, str]]]:
    """Build the profile's log sources (files, Docker, Loki); return them and ``(name, why)`` failures."""
    sources: list[LogSource] = []
    failed: list[tuple[str, str]] = []
    if profile.logs_dir:
        try:
            sources.append(FilesSource(profile.logs_dir))
        except SourceUnavailable as exc:
            failed.append(("files", str(exc)))
    if profile.docker_url:
        sources.append(DockerSource(profile.docker_url))
    if profile.loki_url:
        try:
            sources.append(LokiSource(profile.loki_url))
        except (SourceUnavailable, ConfigError) as exc:
            failed.append(("loki", str(exc)))
    return sources, failed


def _containers_of(src: LogSource, window: Window) -> set[str] | None:
    try:
        return set(src.containers(window))  # Loki's label API needs the window to see old data
    except SourceUnavailable:
        raise
    except Exception:  # noqa: BLE001 - a source that cannot list is asked container by container
        return None


def _lines(src: LogSource, container: str, window: Window,
           contains: set[str] | None, follow: bool = False) -> Iterator[LogLine]:
    # follow (files, Loki): search for the ids, only the stretches around matches are read
    return iter(src.iter_lines(container, window, contains_any=sorted(contains) if contains else None,
                               follow=follow))


def _write_lines(writer: BundleWriter, container: str, lines: Iterable[LogLine],
                 rep: SourceReport) -> int:
    n = 0
    buf: dict[str, list[str]] = {}
    try:
        for line in lines:
            buf.setdefault(line.stream, []).append(line.text)
            if len(buf[line.stream]) >= _LOG_CHUNK:
                n += writer.add_log_lines(container, line.stream, buf.pop(line.stream), source=rep)
    finally:  # a source failing part-way: the lines read so far are still written
        for stream, texts in buf.items():
            n += writer.add_log_lines(container, stream, texts, source=rep)
    return n


def snapshot(profile: Profile, any_id: str, out: str | Path, *, since: datetime | str | None = None,
             until: datetime | str | None = None, progress: bool = True, overwrite: bool = False,
             log_sources: list[LogSource] | None = None, state_source: StateSource | None = None,
             max_rounds: int = MAX_ROUNDS, deadline_s: float | None = None) -> Bundle:
    """Collect the evidence about ``any_id`` from the stack ``profile`` points at, into bundle ``out``.

    Args:
        profile: where the databases, Docker engine, Loki and log files are.
        any_id: a batch id, either correlation id, an essay, text storage or file upload id.
        out: the bundle directory to create.
        since: start of the log window (aware UTC datetime or ISO text); ``None``: open.
        until: end of the log window; ``None``: open.
        progress: print short progress lines to stderr.
        overwrite: replace an existing bundle at ``out``.
        log_sources: log sources to read instead of the profile's (files, Docker, Loki).
        state_source: where container states come from instead of the profile's Docker engine.
        max_rounds: cap on scope-discovery rounds against the databases.
        deadline_s: the collection's own time budget (seconds). Log sources that honour a deadline
            (Loki) cut every request to the time left; once it has passed no further container is
            read, and the bundle is written with what was read, the rest recorded as gaps (partial).

    Returns:
        The written bundle (scope mode ``scoped``).

    Raises:
        ScopeError: the id is empty, or no row and no service log line mentions it, or it is not a
            batch id and rows or lines of more than one batch carry it (the error names them).
        ConfigError: the window is inverted or unparseable.
    """
    say = _Progress(progress)
    requested = normalise_id(any_id)
    if not requested:
        raise ScopeError("An empty id was given. Pass a batch id, correlation id, essay id, text storage "
                         "id or file upload id.", id=str(any_id))
    t_since, t_until = parse_option_time(since, "since"), parse_option_time(until, "until")
    if t_since and t_until and t_until < t_since:
        raise ConfigError(f"The window ends ({t_until.isoformat()}) before it starts "
                          f"({t_since.isoformat()}). Swap --since and --until.")
    window = Window(t_since, t_until)
    state = _ScopeState(requested)
    deadline = time.monotonic() + deadline_s if deadline_s is not None and deadline_s > 0 else None

    def late() -> bool:
        return deadline is not None and time.monotonic() >= deadline
    with BundleWriter(out, overwrite=overwrite) as writer:
        # -- databases -----------------------------------------------------------------------------
        sources: dict[str, PostgresSource] = {}
        reports: dict[str, SourceReport] = {}
        for db, target in profile.databases.items():
            rep = writer.source(f"postgres:{db}", "postgres")
            reports[db] = rep
            try:
                src = PostgresSource(f"postgres:{db}", db, target.url())
                src.json_window = (t_since, t_until)  # JSON payloads have no index: bound their scans
                src.incremental = True  # each round asks only for ids not asked before (rounds are merged)
                tables = set(src.tables())
            except (SourceUnavailable, ConfigError) as exc:
                writer.gap(f"tables/{db}", str(exc), source=rep)
                rep.completeness = "missing"
                say(f"{db}: unreachable ({target.masked_dsn()})")
                continue
            sources[db] = src
            missing = [t for t in model.DATABASES[db].tables if t not in tables] if db in model.DATABASES \
                else []
            for t in missing:
                writer.gap(f"tables/{db}/{t}", "the table does not exist in this database", source=rep)
            say(f"{db}: connected, {len(tables)} tables")
        _prime_json_bound(sources, state)
        _prefetch_json_windows(sources, state)
        rounds = _discover(sources, reports, state, say, max_rounds, start=1)
        _refuse_shared(state, any_id, sources)

        # -- logs ------------------------------------------------------------------------------------
        if log_sources is None:
            log_sources, failed = log_sources_for(profile)
            for name, why in failed:
                rep = writer.source(f"{name}:logs", name)
                writer.gap(f"logs ({name})", why, source=rep)
                rep.completeness = "missing"
        listed: list[tuple[LogSource, set[str] | None]] = []
        ls: LogSource | None
        for ls in log_sources:
            if deadline is not None and hasattr(ls, "deadline"):
                ls.deadline = deadline
            try:
                names = _containers_of(ls, window)
                if names is not None and not names:  # e.g. an empty Loki: that is missing evidence
                    rep = writer.source(f"{ls.name}", getattr(ls, "kind", "logs"))
                    writer.gap(f"logs ({ls.name})", "the source holds no container logs in the window",
                               source=rep)
                listed.append((ls, names))
            except (SourceUnavailable, ValueError, TypeError, KeyError, OSError) as exc:
                rep = writer.source(f"{ls.name}", getattr(ls, "kind", "logs"))
                writer.gap(f"logs ({ls.name})", str(exc), source=rep)
                rep.completeness = "missing"
                say(f"logs: {ls.name} unreachable")

        def pick(container: str) -> LogSource | None:
            for ls, names in listed:
                if names is None or container in names:
                    return ls
            return None

        usable = [ls for ls, _ in listed]
        log_gaps: set[str] = set()

        service_containers = [c for c in profile.service_containers()]
        db_containers = [c for c in profile.db_containers() if c not in service_containers]
        kept: dict[str, list[LogLine]] = {}
        kept_src: dict[str, LogSource] = {}

        def scan_services() -> int:
            ids = state.walk.all_ids()
            found = 0

            def admit(pairs: list[tuple[str, str]]) -> bool:
                nonlocal found
                got = state.walk.admit(pairs)
                found += len(got or ())
                return got is not None

            for c in service_containers:
                ls = pick(c)
                if ls is None:
                    continue
                if late():
                    rep = writer.source(f"{ls.kind}:logs:{c}", ls.kind)
                    if c not in log_gaps:
                        log_gaps.add(c)
                        writer.gap(f"logs/{c}", "not read: the collection's deadline had passed",
                                   source=rep)
                    continue
                # files and Loki search for the ids and yield the stretches around the matches; Docker
                # streams everything. Either way the kit keeps, per stream, the blocks the offline
                # logs.scope_filter keeps: a block (a line and its traceback or DETAIL lines) that
                # mentions a scope id, and the id-less warning/error blocks right after one (e.g.
                # "offset not committed"); the ScopeWalk refuses blocks about another batch.
                selectors: dict[str, BlockSelector[LogLine]] = {}
                failure: Exception | None = None
                try:
                    search = getattr(ls, "kind", "") in ("files", "loki")
                    for ln in _lines(ls, c, window, ids if search else None, follow=search):
                        sel = selectors.get(ln.stream)
                        if sel is None:
                            sel = selectors[ln.stream] = BlockSelector(ids, admit=admit)
                        sel.feed(ln.text, ln)
                except (SourceUnavailable, ValueError, TypeError, KeyError, OSError) as exc:
                    failure = exc
                accepted = [ln for sel in selectors.values() for ln in sel.finish()]
                if failure is not None:
                    # a source that fails part-way: keep what it gave, record the rest as a gap
                    rep = writer.source(f"{ls.kind}:logs:{c}", ls.kind)
                    if c not in log_gaps:
                        log_gaps.add(c)
                        why = str(failure) if isinstance(failure, SourceUnavailable) else \
                            f"{type(failure).__name__}: {str(failure)[:200]}"
                        writer.gap(f"logs/{c}", f"read stopped after {len(accepted)} line(s): {why}",
                                   source=rep)
                    if len(accepted) >= len(kept.get(c, [])):
                        kept[c], kept_src[c] = accepted, ls
                    continue
                kept[c], kept_src[c] = accepted, ls
                say(f"logs: {c}: {len(accepted)} line(s) mention the scope")
            return found

        if usable and scan_services():
            # ids only the logs hold (the pipeline-request correlation id): one more DB round, then
            # rescan the service logs with the grown scope
            _discover(sources, reports, state, say, 1, start=rounds + 1)
            scan_services()
        _refuse_shared(state, any_id, sources)
        n_service_lines = 0
        for c, lines in kept.items():
            rep = writer.source(f"{kept_src[c].kind}:logs:{c}", kept_src[c].kind)
            n_service_lines += _write_lines(writer, c, lines, rep)
            if not lines:
                rep.warn(f"no line of {c} in the window mentions a scope id", partial=False)
        for c in db_containers:
            ls = pick(c)
            if ls is None:
                continue
            rep = writer.source(f"{ls.kind}:logs:{c}", ls.kind)
            if late():
                writer.gap(f"logs/{c}", "not read: the collection's deadline had passed", source=rep)
                continue
            try:
                n = _write_lines(writer, c, _lines(ls, c, window, None), rep)
            except (SourceUnavailable, ValueError, TypeError, KeyError, OSError) as exc:
                why = str(exc) if isinstance(exc, SourceUnavailable) else f"{type(exc).__name__}: {str(exc)[:200]}"
                writer.gap(f"logs/{c}", f"read stopped part-way (lines read before are kept): {why}",
                           source=rep)
                continue
            say(f"logs: {c}: {n} line(s) in the window")
        for ls in usable:
            for w in getattr(ls, "warnings", []) or []:
                writer.source(f"{ls.kind}:logs", ls.kind).warn(str(w))

        # -- tables and enums ---------------------------------------------------------------------
        n_rows = 0
        for (db, tname), frames in state.frames.items():
            df = _merge(db, tname, frames)
            n_rows += len(df)
            writer.add_table(db, tname, df, source=reports[db])
        for db, src in sources.items():
            try:
                writer.add_enums(db, src.enums(), source=reports[db])
            except SourceUnavailable as exc:
                writer.gap(f"enums/{db}", str(exc), source=reports[db])
            src.close()

        # -- container states -----------------------------------------------------------------------
        if state_source is None and profile.docker_url:
            for ls in log_sources:
                if hasattr(ls, "container_state"):
                    state_source = ls  # type: ignore[assignment]
                    break
        crep = writer.source("containers", "docker")
        if state_source is None:
            writer.gap("containers.json", "no Docker engine in the profile, so no container states",
                       source=crep)
            crep.completeness = "missing"
        else:
            try:
                for c in [*service_containers, *db_containers]:
                    writer.add_container(state_source.container_state(c), source=crep)
                say(f"containers: {len(service_containers) + len(db_containers)} state(s)")
            except SourceUnavailable as exc:
                writer.gap("containers.json", str(exc), source=crep)
                crep.completeness = "missing"

        if n_rows == 0 and n_service_lines == 0:
            down = [db for db, r in reports.items() if r.completeness == "missing"]
            extra = f" (could not read: {', '.join(down)})" if down else ""
            if down or log_gaps:
                # nothing found, but sources were missing: that is incomplete evidence, not a bad id;
                # the bundle records what could not be read
                say(f"done: nothing found{extra}; the bundle records the missing sources")
                return writer.finish(
                    scope={"requested_id": any_id, "ids": state.scope_json(), "mode": "scoped",
                           F.BATCH_ID: None, "other_batches": [], "found": {"rows": 0, "service_lines": 0}},
                    window=(t_since, t_until), collected_at=utcnow(),
                    origin={"kind": "live", "profile": profile.describe()})
            raise ScopeError(f"No row or log line mentions '{printable(any_id, 80)}' in profile '{profile.name}'{extra}. "
                             "Check the id, the profile, and the time window.", id=str(any_id))
        say(f"done: {n_rows} row(s), {n_service_lines} service log line(s), "
            f"{sum(len(v) for v in state.walk.ids.values())} id(s)")
        return writer.finish(
            scope={"requested_id": any_id, "ids": state.scope_json(), "mode": "scoped",
                   F.BATCH_ID: state.walk.batch, "other_batches": sorted(state.walk.other_batches),
                   "found": {"rows": n_rows, "service_lines": n_service_lines}},
            window=(t_since, t_until), collected_at=utcnow(),
            origin={"kind": "live", "profile": profile.describe()})


# Filters no index serves (unindexed correlation_id columns) are asked once discovery through the
# indexed ones has settled, with every id known by then, instead of scanning their tables every round.
_DEFER_UNINDEXED = True


def _discover(sources: dict[str, PostgresSource], reports: dict[str, SourceReport],
              state: _ScopeState, say: _Progress, max_rounds: int, *, start: int) -> int:
    """Run database rounds until no new id appears or ``max_rounds``; return the rounds run.

    A round first asks the filters an index serves; only when those find no new id are the others
    asked (the net), and the rounds go on if that finds any. tests/test_collect_fastpaths.py checks
    that this collects the rows of asking every filter every round.
    """
    if not sources:
        return 0
    n = start
    for i in range(max_rounds):
        n = start + i
        if _db_round(sources, reports, state, say, str(n), net=not _DEFER_UNINDEXED):
            continue
        if not _DEFER_UNINDEXED or not _db_round(sources, reports, state, say, f"{n} (unindexed)", net=True):
            return i + 1
    if _DEFER_UNINDEXED:  # cut by the cap: the unindexed filters are still asked for the ids found
        _db_round(sources, reports, state, say, f"{n} (unindexed)", net=True)
    say(f"scope discovery stopped after {max_rounds} rounds with ids still appearing")
    for rep in reports.values():
        if rep.completeness != "missing":
            rep.warn(f"scope discovery stopped after {max_rounds} rounds; the scope may be incomplete")
    return max_rounds
