"""One call from a bundle and an id to the scope, timeline, state progress, findings and verdict."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from . import _fields as F
from . import model
from ._time import parse_utc
from .bundle import Bundle
from .differential import differential
from .evidence import Evidence
from .model import names as N
from .outcomes import (
    LogExtent,
    consumer_container,
    handler_runs,
    log_gap,
    log_gap_text,
    recognised_containers,
    runs_for_scope,
)
from .progress import Progress, compute_progress
from .rules import Context, Finding, run_rules
from .scope import Scope, ScopeIndex, build_index, discover
from .timeline import build_timeline
from .verdict import Verdict, build_verdict

__all__ = ["Investigation", "all_handler_runs", "database_logs", "investigate", "log_extent",
           "service_logs"]

log = logging.getLogger(__name__)
_DB_CONTAINERS = {d.container for d in model.DATABASES.values()}
_ADJACENT_S = 2.0


@dataclass
class Investigation:
    """Everything the kit concluded about one id in one bundle. See :func:`investigate`."""

    bundle: Bundle
    scope: Scope
    evidence: Evidence
    logs: pd.DataFrame
    timeline: pd.DataFrame
    progress: Progress
    findings: list[Finding]
    not_evaluated: list[dict[str, str]]
    verdict: Verdict
    completeness: pd.DataFrame
    window: tuple[datetime | None, datetime | None] = (None, None)
    tables: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)

    def findings_frame(self) -> pd.DataFrame:
        """Findings as a frame: id, severity, title, summary, evidence (refs, newline-separated)."""
        rows = [{"id": f.id, "severity": f.severity, "title": f.title, "summary": f.summary,
                 "evidence": "\n".join(str(e) for e in f.evidence)} for f in self.findings]
        df = pd.DataFrame(rows, columns=["id", "severity", "title", "summary", "evidence"])
        order = {"critical": 0, "error": 1, "warning": 2, "info": 3}
        return df.sort_values("severity", key=lambda s: s.map(order), kind="stable").reset_index(
            drop=True)

    def handlings(self) -> pd.DataFrame:
        """Every handling of this batch's events by their consumers (one row per handling run, with
        outcome handled/dropped/failed and its cause; :mod:`huledu_forensics.outcomes`)."""
        cols = ["started_at", "service", "topic", "event", "outcome", "cause", "detail", "first_ref"]
        runs = self.evidence.runs
        return runs[cols].reset_index(drop=True) if not runs.empty else pd.DataFrame(columns=cols)

    def evidence_lines(self) -> pd.DataFrame:
        """The log lines findings point at: ts, container, level, message, ref."""
        refs = {str(e) for f in self.findings for e in f.evidence if e.part.startswith("logs/")}
        lg = pd.concat([self.logs, self.evidence.db_logs], ignore_index=True)
        if lg.empty:
            return pd.DataFrame(columns=["ts", "container", "level", "message", "ref"])
        lg = lg.assign(ref=lg["source_file"].astype(str) + "#L" + lg["line_no"].astype(str))
        lg = lg[lg["ref"].isin(refs)]
        return lg[["ts", "container", "level", "message", "ref"]].sort_values("ts").reset_index(
            drop=True)


def _log_files(bundle: Bundle) -> list[tuple[str, str, Path]]:
    return bundle.log_files()


def _parse(bundle: Bundle, container: str, stream: str, path: Path,
           prefilter: object | None) -> pd.DataFrame:
    rel = path.relative_to(bundle.path).as_posix()
    kept = bundle.parsed_log(container, stream)
    if kept is not None and prefilter is None:
        return kept  # parsed once at collection
    from . import logs as logmod  # see _empty_logs

    parts = list(logmod.iter_parse_file(path, container=container, stream=stream, source_file=rel,
                                        prefilter=prefilter))  # type: ignore[arg-type]
    return pd.concat(parts, ignore_index=True) if parts else _empty_logs()


def _empty_logs() -> pd.DataFrame:
    """An empty normalised log frame. The log parser is imported only when needed: a bundle keeps its
    logs parsed (Parquet), so investigating one neither parses nor loads the parser, a large module."""
    from . import logs as logmod

    return logmod.empty_frame()


def _read_logs(bundle: Bundle, files: list[tuple[str, str, Path]]) -> pd.DataFrame:
    """The normalised lines of ``files``: their kept parsed rows read at once when every file has
    them (:meth:`Bundle.parsed_logs`), else each file's kept rows or its parse, concatenated."""
    out = bundle.parsed_logs((c, s) for c, s, _p in files)
    if out is None:
        frames = [f for f in (_parse(bundle, c, s, p, None) for c, s, p in files) if not f.empty]
        out = pd.concat(frames, ignore_index=True) if frames else None
    return out if out is not None and not out.empty else _empty_logs()


def service_logs(bundle: Bundle) -> pd.DataFrame:
    """Every service-container line of the bundle, normalised, parsed once per opened bundle."""
    if bundle.cache.service_logs is None:
        bundle.cache.service_logs = _read_logs(
            bundle, [f for f in _log_files(bundle) if f[0] not in _DB_CONTAINERS])
    return bundle.cache.service_logs


def database_logs(bundle: Bundle) -> pd.DataFrame:
    """Every database-container line of the bundle, normalised, parsed once per opened bundle."""
    if bundle.cache.db_logs is None:
        bundle.cache.db_logs = _read_logs(
            bundle, [f for f in _log_files(bundle) if f[0] in _DB_CONTAINERS])
    return bundle.cache.db_logs


def all_handler_runs(bundle: Bundle) -> pd.DataFrame:
    """Every handling run of the bundle's consumers (:func:`outcomes.handler_runs`), once per bundle."""
    if bundle.cache.handler_runs is None:
        bundle.cache.handler_runs = handler_runs(service_logs(bundle), bundle.containers)
    return bundle.cache.handler_runs


def log_extent(bundle: Bundle) -> dict[str, LogExtent]:
    """Per container whose logs the bundle holds: its number of service-log lines and the first and
    last line's time (the :class:`~huledu_forensics.outcomes.LogExtent` :func:`outcomes.consumption`
    weighs), once per bundle."""
    cached = bundle.cache.log_extent
    if cached is None:
        lg = service_logs(bundle)
        cached = {}
        if not lg.empty:
            for c, grp in lg.groupby("container"):
                cached[str(c)] = LogExtent(int(len(grp)), parse_utc(grp["ts"].min()), parse_utc(grp["ts"].max()))
        for c, _s, _p in bundle.log_files():
            cached.setdefault(c, LogExtent(0, None, None))
        bundle.cache.log_extent = cached
    return cached


def _in_window(df: pd.DataFrame, since: datetime | None, until: datetime | None,
               col: str = "ts") -> pd.DataFrame:
    if df.empty:
        return df
    mask = pd.Series(True, index=df.index)
    if since is not None:
        mask &= df[col] >= pd.Timestamp(since)
    if until is not None:
        mask &= df[col] <= pd.Timestamp(until)
    return df[mask]


def _scope_logs(all_logs: pd.DataFrame, scope: Scope) -> pd.DataFrame:
    """Lines that mention a scope id, plus unkeyed error lines right after a scoped line."""
    if all_logs.empty:
        return all_logs
    ids = scope.all_ids
    typed = [c for c in (F.BATCH_ID, F.CORRELATION_ID, F.ESSAY_ID, F.TEXT_STORAGE_ID, F.FILE_UPLOAD_ID,
                         "event_id", "outbox_id") if c in all_logs.columns]
    lg = all_logs.reset_index(drop=True)
    keyed = pd.Series(False, index=lg.index)
    inscope = pd.Series(False, index=lg.index)
    for c in typed:
        col = lg[c].astype(object)
        keyed |= col.notna()
        inscope |= col.map(lambda v: isinstance(v, str) and v.lower() in ids)
    # a continuation line goes with its head line
    if "parent_line" in lg.columns:
        heads = set(zip(lg.loc[inscope, "source_file"], lg.loc[inscope, "line_no"]))
        cont = lg["parent_line"].notna()
        inscope |= cont & pd.Series([(sf, pl) in heads for sf, pl in
                                     zip(lg["source_file"], lg["parent_line"])], index=lg.index)
    # unkeyed warning/error lines (e.g. "offset not committed") follow their keyed predecessor in
    # the same file (file order is time order for one container stream)
    linked = pd.Series(False, index=lg.index)
    cand = lg.index[~keyed & lg["level"].isin(["error", "critical", "warning"])]
    if len(cand):
        for sf, grp in lg.loc[keyed].groupby("source_file"):
            grp = grp.sort_values("line_no")
            lines = grp["line_no"].to_numpy()
            c_rows = [i for i in cand if lg.at[i, "source_file"] == sf]
            if not c_rows:
                continue
            pos = np.searchsorted(lines, lg.loc[c_rows, "line_no"].to_numpy()) - 1
            for i, p in zip(c_rows, pos):
                if p < 0:
                    continue
                prev = grp.index[p]
                gap = (cast(pd.Timestamp, lg.at[i, "ts"]) - cast(pd.Timestamp, lg.at[prev, "ts"])).total_seconds()
                if inscope[prev] and 0 <= gap <= _ADJACENT_S:
                    linked[i] = True
    return lg[inscope | linked].sort_values("ts", kind="stable").reset_index(drop=True)


def _db_errors_near(db_logs: pd.DataFrame, scoped: pd.DataFrame, pad_s: float = 5.0) -> pd.DataFrame:
    """Database-container error lines (and their continuation lines) during the scoped activity."""
    if db_logs.empty or scoped.empty:
        return db_logs.iloc[0:0]
    lo = scoped["ts"].min() - pd.Timedelta(seconds=pad_s)
    hi = scoped["ts"].max() + pd.Timedelta(seconds=pad_s)
    mask = db_logs["level"].isin(["error", "critical", "warning"]) & (db_logs["ts"] >= lo) & (
        db_logs["ts"] <= hi)
    return cast(pd.DataFrame, db_logs[mask])


def _scope_tables(tables: dict[tuple[str, str], pd.DataFrame], scope: Scope, index: ScopeIndex
                  ) -> dict[tuple[str, str], pd.DataFrame]:
    """The rows the scope holds (:meth:`Scope.holds`, the rule discovery and live collection use). A
    row's ids are read from ``index`` (:func:`build_index` of these ``tables``), which found them
    already, so no row is parsed twice."""
    ids = scope.all_ids
    out = {}
    for (db, t), df in tables.items():
        if df is None or df.empty:
            out[(db, t)] = df if df is not None else pd.DataFrame()
            continue
        part = f"tables/{db}/{t}"
        keep = [scope.holds(index.item_ids.get((part, i), ()), ids) for i in range(len(df))]
        out[(db, t)] = df[keep].reset_index(drop=True)
    return out


def _completeness(bundle: Bundle, present: set[object], progress: Progress,
                  extent: dict[str, LogExtent]) -> tuple[pd.DataFrame, dict[str, str], dict[str, str]]:
    """Per source: complete, partial or missing (the frame the report shows, the verdict's summary and,
    per source that is not complete, why). A consumer's log is weighed against the event it is asked
    about (the awaited one): held in full, it still cannot show a consumption it ends before or
    begins after, so for this question it is partial."""
    rows = []
    for s in bundle.sources:
        rows.append({"source": s.name, "kind": s.kind, "completeness": s.completeness,
                     "warnings": "; ".join(s.warnings)})
    summary: dict[str, str] = {}
    notes: dict[str, str] = {}
    for db in model.DATABASES.values():
        have = [t for t in db.tables if (db.name, t) in present]
        state = "complete" if len(have) == len(db.tables) else ("partial" if have else "missing")
        summary[f"database:{db.name}"] = state
        if state != "complete":
            gone = "missing tables: " + ", ".join(t for t in db.tables if (db.name, t) not in present)
            rows.append({"source": f"database:{db.name}", "kind": "expected", "completeness": state,
                         "warnings": gone})
            notes[f"database:{db.name}"] = gone
        enums = "complete" if (f"enums:{db.name}" in present or not db.enum_types) else "missing"
        summary[f"enums:{db.name}"] = enums
        if enums == "missing":
            why = "no enum label sets of this database in the bundle: enum drift cannot be checked"
            rows.append({"source": f"enums:{db.name}", "kind": "expected", "completeness": "missing",
                         "warnings": why})
            notes[f"enums:{db.name}"] = why
        svc = model.SERVICES[db.service]
        for c in (*svc.containers[:1], db.container):
            st = "complete" if f"logs:{c}" in present else "missing"
            summary[f"logs:{c}"] = st
            if st == "missing":
                rows.append({"source": f"logs:{c}", "kind": "expected", "completeness": "missing",
                             "warnings": "no log lines for this container in the bundle"})
                notes[f"logs:{c}"] = "no log lines for this container in the bundle"
    aw = progress.awaited
    # the awaited event's consumer, when the kit could read a consumption from its log but did not
    asked = aw is not None and aw.topic is not None and aw.consumed is None and \
        aw.topic in model.handlers.handlers_for(aw.consumer or "")
    container = consumer_container(aw.consumer) if aw is not None and asked else None
    if aw is not None and aw.topic and container:
        key = f"logs:{container}"
        if key not in present:
            summary[key] = "missing"
            notes[key] = (f"no log lines of {container} in the bundle: whether {aw.consumer} consumed "
                          f"{aw.topic} is unknown")
            if not any(r["source"] == key for r in rows):
                rows.append({"source": key, "kind": "expected", "completeness": "missing", "warnings": notes[key]})
        else:
            gap = log_gap(extent[container], aw.published_at) if aw.published_at is not None and \
                container in extent else None
            if gap is not None and aw.published_at is not None:
                summary[key] = "partial"
                notes[key] = (log_gap_text(container, gap, aw.topic, aw.published_at)
                              + f": they cannot show whether {aw.consumer} consumed it")
                rows.append({"source": key, "kind": "extent", "completeness": "partial", "warnings": notes[key]})
    for s in bundle.sources:
        if s.completeness != "complete":
            summary[s.name] = s.completeness
            if s.warnings:
                notes[s.name] = "; ".join(s.warnings)
    return pd.DataFrame(rows, columns=["source", "kind", "completeness", "warnings"]), summary, notes


def investigate(bundle: str | Path | Bundle, any_id: str, *, since: datetime | str | None = None,
                until: datetime | str | None = None) -> Investigation:
    """Investigate ``any_id`` in ``bundle``: scope, timeline, state progress, findings and verdict.

    Args:
        bundle: a bundle directory or an opened :class:`~huledu_forensics.bundle.Bundle`.
        any_id: a batch id, either correlation id, an essay, text storage or file upload id.
        since: only evidence at or after this time (aware UTC or ISO text); ``None`` = no bound.
        until: only evidence up to this time; ``None`` = the bundle's collection time.

    Raises:
        BundleNotFound, BundleInvalid: the bundle cannot be read.
        ScopeError: nothing in the bundle mentions ``any_id``.
    """
    b = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
    since_t = parse_utc(since) if since is not None else None
    until_t = parse_utc(until) if until is not None else None
    tables: dict[tuple[str, str], pd.DataFrame] = {}
    for key in b.tables():
        df = b.table(*key)
        if df is not None:
            tables[key] = df
    present: set[object] = set(tables)
    for db, enums in b.enums.items():
        if enums:
            present.update({"enums", f"enums:{db}"})
    for c, _s, _p in b.log_files():
        present.add(f"logs:{c}")
        present.add("db_logs" if c in _DB_CONTAINERS else "logs")
    if b.containers:
        present.add("containers")
    if any(k[1] == model.OUTBOX_TABLE for k in tables):
        present.add("outbox")

    # scope discovery over every table row and every service log line
    svc_logs = service_logs(b)
    index = b.cache.scope_index
    if index is None:
        index = b.cache.scope_index = build_index(tables, svc_logs)
    scope = discover(any_id, index=index)
    log.info("scope of %s: batch %s, %d ids", any_id, scope.batch_id, len(scope.all_ids))

    scoped_logs = _in_window(_scope_logs(svc_logs, scope), since_t, until_t)
    db_logs = _in_window(database_logs(b), since_t, until_t)
    scoped_tables = _scope_tables(tables, scope, index)
    collected = until_t or b.collected_at
    ev = Evidence(scope=scope, tables=scoped_tables, logs=scoped_logs,
                  db_logs=db_logs, enums=b.enums, containers=b.containers, collected_at=collected,
                  present=present,
                  runs=_in_window(runs_for_scope(all_handler_runs(b), scope), since_t, until_t,
                                  "started_at"),
                  recognised=recognised_containers(all_handler_runs(b)),
                  log_extent=log_extent(b))
    progress = compute_progress(ev)
    findings, not_evaluated = run_rules(Context(ev, progress))
    completeness_df, completeness, notes = _completeness(b, present, progress, ev.log_extent)
    verdict = build_verdict(scope=scope, progress=progress, findings=findings,
                            not_evaluated=not_evaluated, completeness=completeness,
                            completeness_notes=notes, gaps=b.gaps,
                            bundle=str(b.path), collected_at=collected.isoformat())
    root = verdict.data.get("root_cause")
    verdict.data["differential"] = differential(
        _in_window(all_handler_runs(b), since_t, until_t, "started_at"), tables.get(N.BATCHES),
        scope.batch_id, progress.flow, root.get("finding") if isinstance(root, dict) else None,
        ev.log_extent)
    timeline = build_timeline(scoped_tables, pd.concat(
        [scoped_logs, _db_errors_near(db_logs, scoped_logs)], ignore_index=True), b.containers)
    timeline = _in_window(timeline, since_t, until_t)
    return Investigation(bundle=b, scope=scope, evidence=ev, logs=scoped_logs, timeline=timeline,
                         progress=progress, findings=findings, not_evaluated=not_evaluated,
                         verdict=verdict, completeness=completeness_df, window=(since_t, until_t),
                         tables=scoped_tables)
