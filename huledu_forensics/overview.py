"""Every batch in a bundle and where each stands: the "which batches are stuck?" view.

:func:`batch_overview` lists the batches BOS knows (``batches`` rows) plus batch ids known only to
ELS or the File Service (trackers, essay rows, pending content, uploads: a batch BOS never
registered, or one whose BOS row was not collected), runs :func:`~huledu_forensics.investigate` on
each and returns one row per batch, stuck ones first.

:func:`scan_overview` is the fleet-sized form the stuck-batches report uses: the scan
(:mod:`huledu_forensics.scan`) finds the stuck batches and groups them by signature, and only one
batch per group (plus the batch asked about) is investigated; the others are marked as sharing its
signature, not as investigated.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
import plotly.graph_objects as go

from . import _fields as F
from . import model
from ._frames import is_missing
from .bundle import Bundle
from .errors import ForensicsError
from .evidence import records
from .investigation import investigate
from .model import columns as C
from .model import names as N
from .scope import normalise_id

__all__ = [
    "OVERVIEW_COLUMNS",
    "REPRESENTATIVES_DIR",
    "ScanOverview",
    "batch_ids",
    "batch_overview",
    "bundles_beside",
    "overview_figure",
    "overview_verdict",
    "root_cause_counts",
    "scan_overview",
    "signature_groups",
    "write_overview_verdict",
]

OVERVIEW_COLUMNS = (F.BATCH_ID, "flow", "status", "current_state", "current_step", "awaited_event",
                    "waited_s", "root_cause", "root_cause_summary", "findings", "registered_at",
                    "known_to", "error")
"""The columns of :func:`batch_overview`, in order."""

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_STATUS_ORDER = {"stuck": 0, "failed": 0, "degraded": 1, "unknown": 2, "healthy": 3}
_COLOURS = {"stuck": "#e53935", "failed": "#b71c1c", "degraded": "#fb8c00", "unknown": "#9e9e9e",
            "healthy": "#43a047"}
_PROGRESS_MIN = 5  # show the counter line from this many batches on


@dataclass(frozen=True)
class ScanOverview:
    """What :func:`scan_overview` returns: the stuck batches' rows and the scan's facts that are not rows.

    The counts live here, not in the frame (a frame's ``attrs`` are lost by a row selection or a concat,
    and a lost count would silently change the verdict's counts); pass the whole object to
    :func:`overview_verdict`, :func:`signature_groups`, :func:`write_overview_verdict`,
    :func:`huledu_forensics.scan.scan_verdict` and :func:`huledu_forensics.cards.overview_card`.

    Attributes:
        frame: one row per stuck batch (:data:`OVERVIEW_COLUMNS` plus ``root_cause_of``).
        scanned: how many batches the scan examined.
        not_stuck: how many it assessed and did not list.
        not_assessed: batches in a state the model does not describe, by state (neither stuck nor healthy).
        groups: how many signature groups the stuck batches form.
        complete: whether the scan read every source.
        warnings: what the scan could not read.
        verdicts: the verdict of every investigated batch, by id.
        representatives: the investigated batch of each signature group, by signature.
        enum_drift: the scan's drifted enums (:attr:`huledu_forensics.scan.ScanResult.enum_drift`).
        enums_not_read: the databases whose enums the scan did not read.
    """

    frame: pd.DataFrame
    scanned: int
    not_stuck: int
    groups: int
    complete: bool = True
    not_assessed: Mapping[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    verdicts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    representatives: Mapping[str, str] = field(default_factory=dict)
    enum_drift: tuple[Mapping[str, Any], ...] = ()
    enums_not_read: tuple[str, ...] = ()

    @property
    def not_assessed_count(self) -> int:
        """How many batches the scan did not assess."""
        return sum(self.not_assessed.values())


def frame_of(overview: pd.DataFrame | ScanOverview) -> pd.DataFrame:
    """The rows of an overview: the frame itself, or a :class:`ScanOverview`'s ``frame``."""
    return overview.frame if isinstance(overview, ScanOverview) else overview


def batch_ids(bundle: str | Path | Bundle) -> dict[str, set[str]]:
    """Every batch id in the bundle's tables, with the databases that know it.

    Returns:
        ``{batch_id: {database, …}}``; BOS ``batches`` rows first, then ids only other tables hold.
    """
    b = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
    out: dict[str, set[str]] = {}
    keys = sorted(b.tables(), key=lambda k: (k != N.BATCHES, k))
    for key in keys:
        spec = model.TABLES.get(key)
        if spec is None:
            continue
        cols = [c for c, kind in spec.id_columns.items() if kind == "batch"]
        df = b.table(*key)
        if df is None or df.empty:
            continue
        for col in cols:
            if col not in df.columns:
                continue
            for v in df[col].dropna().unique():
                bid = normalise_id(v)
                if bid and _UUID.match(bid):
                    out.setdefault(bid, set()).add(key[0])
    return out


def _registered_at(b: Bundle, bid: str) -> pd.Timestamp | None:
    df = b.table(*N.BATCHES)
    if df is None or df.empty or C.CREATED_AT not in df.columns:
        return None
    hit = df[df[C.ID].astype(str).str.lower() == bid]
    return None if hit.empty else hit[C.CREATED_AT].iloc[0]


def batch_overview(bundle: str | Path | Bundle, *, since: datetime | str | None = None,
                   until: datetime | str | None = None, progress: bool | None = None,
                   stream: TextIO | None = None) -> pd.DataFrame:
    """Investigate every batch in ``bundle``; one row per batch, stuck ones first, longest wait first.

    Columns (:data:`OVERVIEW_COLUMNS`): ``batch_id``, ``flow`` (GUEST/REGULAR), ``status``
    (``stuck``/``degraded``/``healthy``, or ``unknown`` when the investigation failed), the
    ``current_state``, ``current_step`` and ``awaited_event``, ``waited_s`` (seconds in the current
    step up to collection), the ``root_cause`` finding id and its one-paragraph summary, the number of
    findings of warning severity or worse, ``registered_at`` (BOS ``created_at``), ``known_to`` (the
    databases holding the id) and ``error`` (why an investigation failed, else empty).

    Args:
        bundle: a bundle directory or an opened bundle.
        since / until: optional analysis window passed to each investigation.
        progress: print a counter line (``batch i/n``) on stderr; ``None`` = only for 5+ batches.
        stream: where to print it (default ``sys.stderr``).

    Raises:
        BundleNotFound, BundleInvalid: the bundle cannot be read.
    """
    b = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
    ids = batch_ids(b)
    show = progress if progress is not None else len(ids) >= _PROGRESS_MIN
    out = stream or sys.stderr
    rows = []
    for i, (bid, dbs) in enumerate(ids.items(), start=1):
        if show:
            out.write(f"\rinvestigating batch {i}/{len(ids)} …")
            out.flush()
        row, _v = _investigated_row(b, bid, since=since, until=until)
        rows.append({**row, "known_to": ", ".join(sorted(dbs))})
    if show:
        out.write(f"\rinvestigated {len(ids)} batches.          \n")
        out.flush()
    return _ordered(rows, list(OVERVIEW_COLUMNS))


def _investigated_row(b: Bundle | None, bid: str, *, since: datetime | str | None,
                      until: datetime | str | None) -> tuple[dict[str, object], dict[str, Any] | None]:
    """One :func:`batch_overview` row for ``bid`` (and its verdict, ``None`` when it could not be
    investigated: status ``unknown``, the reason in ``error``)."""
    assert b is not None
    row: dict[str, object] = {F.BATCH_ID: bid, "registered_at": _registered_at(b, bid), "error": ""}
    try:
        v: dict[str, Any] = investigate(b, bid, since=since, until=until).verdict.to_json()
    except ForensicsError as exc:
        row.update(status="unknown", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return row, None
    rc = v.get("root_cause") if isinstance(v.get("root_cause"), dict) else None
    findings = [f for f in (v.get("findings") or []) if isinstance(f, dict)
                and f.get("severity") in ("critical", "error", "warning")]
    row.update(flow=v.get("flow"), status=v.get("status"), current_state=v.get("current_state"),
               current_step=v.get("current_step"), awaited_event=v.get("awaited_event"),
               waited_s=v.get("waited_s"), root_cause=rc.get("finding") if rc else None,
               root_cause_summary=rc.get("summary") if rc else None, findings=len(findings))
    return row, v


REPRESENTATIVES_DIR = "bundles"
"""Beside a live scan's ``scan.json``: one bundle per investigated batch (``bundles/<batch_id>``),
collected by ``huledu-forensics report --notebook stuck_batches --profile P`` (see :func:`bundles_beside`)."""


def bundles_beside(scan_json: str | Path) -> dict[str, Path] | None:
    """The bundles collected beside a live scan for its investigated batches, by batch id (``None``: none)."""
    d = Path(scan_json).parent / REPRESENTATIVES_DIR
    found = {p.name: p for p in sorted(d.iterdir()) if p.is_dir()} if d.is_dir() else {}
    return found or None


def scan_overview(scan: Any, bundle: str | Path | Bundle | Mapping[str, str | Path | Bundle] | None = None, *,
                  id: str | None = None, since: datetime | str | None = None,
                  until: datetime | str | None = None) -> ScanOverview:
    """The scan's stuck batches, one row each, with one batch per signature group investigated.

    A scan (:func:`huledu_forensics.scan.scan_bundle` or ``scan_profile``) classifies every batch and
    groups the stuck ones by signature (state + awaited event + error class). Investigating every batch
    of a fleet costs a full investigation each; batches with one signature share one cause, so only the
    group's example batch is investigated (or ``id`` when it is in the group, so that it is never
    investigated twice), plus ``id`` itself when the scan did not list it.

    ``bundle`` is one bundle holding every batch (a bundle scan), or, for a live scan, a mapping from
    batch id to the bundle collected for it (:func:`bundles_beside`): then each group's investigated
    batch is one that has a bundle, and a group without one is not investigated. ``None``: nothing is
    investigated and the scan's error class stands in for the root cause.

    Returns:
        A :class:`ScanOverview`: its ``frame`` has :data:`OVERVIEW_COLUMNS` plus ``root_cause_of``, the
        investigated batch whose root cause the row shows (itself for an investigated batch; the group's
        investigated batch for the others; empty without a bundle, where the error class stands in). A
        group's summary is written once: on its investigated batch (or, without one, its first listed
        batch); the group's other rows say ``same as <short id>``. The object also carries how many
        batches the scan examined, did not list and did not assess, and the verdict of every
        investigated batch (:func:`write_overview_verdict` reuses them).
    """
    from .scan import overview_frame

    rows = {str(r[F.BATCH_ID]): {**r, "root_cause_of": ""} for r in records(overview_frame(scan))}
    verdicts: dict[str, dict[str, Any]] = {}
    representatives: dict[str, str] = {}
    evidence = _evidence(bundle)
    want = normalise_id(id) if id else None
    key = scan.batches[["state", "awaited_event", "error_class"]].fillna("-").astype(str)
    for g in records(scan.groups):
        sig = (str(g["state"]), str(g["awaited_event"]), str(g["error_class"]))
        ids = [str(x) for x in scan.batches.loc[(key == sig).all(axis=1), F.BATCH_ID]]
        can = [i for i in ids if evidence(i) is not None]
        if not can:  # nobody investigated: the group's first batch carries the scan's summary, once
            for other in ids[1:]:
                rows[other].update(root_cause_summary=f"scan, not investigated: same as {_short(ids[0])}")
            continue
        rep = want if want in can else can[0]
        representatives[str(g["signature"])] = rep
        found, v = _investigated_row(evidence(rep), rep, since=since, until=until)
        if v is not None:
            verdicts[rep] = v
        rows[rep].update(found, root_cause_of=rep)
        if len(ids) > 1:
            rows[rep]["root_cause_summary"] = (
                f"investigated for its signature group of {len(ids)} ({' | '.join(sig)}): "
                f"{found.get('root_cause_summary') or found.get('error') or 'no root cause found'}")
        for other in ids:
            if other != rep:
                rows[other].update(root_cause=found.get("root_cause") or rows[other]["root_cause"],
                                   root_cause_of=rep,
                                   root_cause_summary=f"not investigated itself: same as {_short(rep)}")
    alone = evidence(want) if want and want not in verdicts else None
    if want and alone is not None:
        _row, v = _investigated_row(alone, want, since=since, until=until)
        if v is not None:
            verdicts[want] = v
    df = _ordered(list(rows.values()), [*OVERVIEW_COLUMNS, "root_cause_of"])
    return ScanOverview(frame=df, scanned=int(scan.total), not_stuck=int(scan.not_stuck), groups=len(scan.groups),
                        complete=bool(scan.complete), not_assessed=dict(scan.not_assessed),
                        warnings=tuple(str(w) for w in scan.warnings), verdicts=verdicts,
                        representatives=representatives,
                        enum_drift=tuple(getattr(scan, "enum_drift", ()) or ()),
                        enums_not_read=tuple(getattr(scan, "enums_not_read", ()) or ()))


def _short(batch_id: str) -> str:
    """A batch id as the stuck-batches table names another row: its first 8 characters."""
    return f"{batch_id[:8]}…"


def _evidence(bundle: str | Path | Bundle | Mapping[str, str | Path | Bundle] | None) -> Callable[[str], Bundle | None]:
    """``batch id -> the bundle to investigate it from`` (``None`` when there is none), opened once each."""
    if bundle is None:
        return lambda bid: None
    if not isinstance(bundle, Mapping):
        one = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
        return lambda bid: one
    where = {normalise_id(k): v for k, v in bundle.items()}
    opened: dict[str, Bundle] = {}

    def get(bid: str) -> Bundle | None:
        if bid not in opened and bid in where:
            b = where[bid]
            opened[bid] = b if isinstance(b, Bundle) else Bundle.open(b)
        return opened.get(bid)

    return get


def _ordered(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Overview rows as a typed frame: stuck first, then longest wait first."""
    df = pd.DataFrame(rows, columns=columns)
    df["waited_s"] = pd.to_numeric(df["waited_s"], errors="coerce")
    df["findings"] = pd.to_numeric(df["findings"], errors="coerce").astype("Int64")
    df["registered_at"] = pd.to_datetime(df["registered_at"], utc=True)
    rank = df["status"].map(lambda s: _STATUS_ORDER.get(str(s), 2))
    df = df.assign(_rank=rank, _wait=-df["waited_s"].fillna(-1.0)).sort_values(
        ["_rank", "_wait", F.BATCH_ID], kind="stable")
    return df.drop(columns=["_rank", "_wait"]).reset_index(drop=True)


def signature_groups(scan: Any, overview: ScanOverview) -> pd.DataFrame:
    """The scan's signature groups with the batch investigated for each (``investigated_batch``) and
    the root cause found on it (both empty when nothing was investigated)."""
    groups: pd.DataFrame = scan.groups
    reps = overview.representatives
    if groups.empty or not reps:
        return groups.drop(columns=["signature"], errors="ignore")
    rep = [reps.get(str(sig), "") for sig in groups["signature"]]
    causes = overview.frame.set_index(F.BATCH_ID)["root_cause"]
    return groups.drop(columns=["signature"]).assign(
        investigated_batch=rep, root_cause=pd.Series([causes.get(r) if r else None for r in rep],
                                                     index=groups.index, dtype=object))


def _json_value(x: object) -> object:
    """A frame cell as JSON: missing values as None, timestamps as ISO 8601 text."""
    if is_missing(x):
        return None
    return x.isoformat() if isinstance(x, pd.Timestamp) else x


def overview_verdict(overview: pd.DataFrame | ScanOverview, *, bundle: str | None = None) -> dict[str, object]:
    """A ``verdict.json`` for a whole bundle: healthy only when every batch is healthy.

    Carries ``status`` (the worst batch status), ``healthy``, ``counts`` per status and
    ``batch_summaries``, one short entry per batch (id, status, state, awaited event, waited seconds,
    root cause id), so
    ``huledu-forensics report`` can derive its exit code from it like from a batch verdict. From a
    :class:`ScanOverview` (which lists only the stuck batches) the counts also hold the batches the scan
    found ``not stuck`` (``not flagged (scan partial)`` when a source was not read) and those it did
    ``not assessed``; with either of the latter and nothing stuck, the status is ``unknown``, not healthy.
    """
    df = frame_of(overview)
    statuses = [str(s) for s in df["status"]] if not df.empty else []
    worst = min(statuses, key=lambda s: _STATUS_ORDER.get(s, 2)) if statuses else "healthy"
    batches = []
    for r in records(df):
        batches.append({k: _json_value(r[k])
                        for k in (F.BATCH_ID, "flow", "status", "current_state", "awaited_event",
                                  "waited_s", "root_cause", "registered_at")})
    counts: dict[str, int] = {s: statuses.count(s) for s in dict.fromkeys([*_STATUS_ORDER, *statuses])
                              if s in statuses}
    healthy = all(s == "healthy" for s in statuses)
    if isinstance(overview, ScanOverview):  # a scan lists only its stuck batches; the rest are counts
        if overview.not_stuck:
            counts["not stuck" if overview.complete else "not flagged (scan partial)"] = overview.not_stuck
        if overview.not_assessed_count:
            counts["not assessed"] = overview.not_assessed_count
        if not overview.complete or overview.not_assessed_count:
            healthy = False
            worst = "unknown" if worst == "healthy" else worst
    return {"tool": "huledu-forensics", "kind": "overview", "bundle": bundle,
            "healthy": healthy, "status": worst,
            "counts": counts, "batch_summaries": batches}


def root_cause_counts(overview: pd.DataFrame | ScanOverview) -> pd.DataFrame:
    """How many batches each root cause holds: root_cause, status, batch_count, longest_wait_s, example.

    One fault usually hits every batch written while it lasts; this shows whether the stuck batches
    share one cause. Healthy batches count under root cause ``-``.
    """
    cols = ["root_cause", "status", "batch_count", "longest_wait_s", "example_batch"]
    overview = frame_of(overview) if overview is not None else overview
    if overview is None or overview.empty:
        return pd.DataFrame(columns=cols)
    d = overview.assign(root_cause=overview["root_cause"].fillna("-"))
    g = d.groupby(["root_cause", "status"], dropna=False, sort=False).agg(
        batch_count=(F.BATCH_ID, "size"), longest_wait_s=("waited_s", "max"), example_batch=(F.BATCH_ID, "first"))
    g = g.reset_index()
    rank = g["status"].map(lambda s: _STATUS_ORDER.get(str(s), 2))
    return g.assign(_r=rank).sort_values(["_r", "batch_count"], ascending=[True, False], kind="stable")[
        cols].reset_index(drop=True)


def write_overview_verdict(path: str | Path | None, overview: pd.DataFrame | ScanOverview, bundle: str | Path | Bundle,
                           any_id: str | None = None, *, since: datetime | str | None = None,
                           until: datetime | str | None = None) -> str | None:
    """Write ``verdict.json`` for the stuck-batches report; returns the path, or ``None`` when not asked.

    With ``any_id`` the file is that batch's own verdict (so the report's exit code is about it) plus an
    ``overview`` entry (:func:`overview_verdict`); without, it is the bundle-wide :func:`overview_verdict`.
    """
    if not path:
        return None
    b = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
    summary = overview_verdict(overview, bundle=str(b.path))
    if any_id:
        verdicts = overview.verdicts if isinstance(overview, ScanOverview) else {}
        known = verdicts.get(normalise_id(any_id) or "")  # investigated once only
        data = dict(known or investigate(b, any_id, since=since, until=until).verdict.to_json())
        data["overview"] = summary
    else:
        data = summary
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    return str(p)


def overview_figure(df: pd.DataFrame | ScanOverview) -> go.Figure:
    """One bar per batch: how long it has waited in its current step, coloured by status.

    Hover a bar for the state, the awaited event and the root cause. Healthy batches that finished
    have no wait and show as a short green bar.
    """
    fig = go.Figure()
    df = frame_of(df) if df is not None else df
    if df is None or df.empty:
        fig.update_layout(title="Batches: none in this bundle")
        return fig
    d = df.iloc[::-1]  # stuck first at the top
    labels = [f"{str(b)[:8]}… {f or ''}".strip() for b, f in zip(d[F.BATCH_ID], d["flow"])]
    for status in _STATUS_ORDER:
        part = d[d["status"] == status]
        if part.empty:
            continue
        lab = [lbl for lbl, s in zip(labels, d["status"]) if s == status]
        hover = [f"{r[F.BATCH_ID]}<br>{status}: {r['current_state'] or '?'} (step {r['current_step'] or '?'})"
                 f"<br>awaiting: {r['awaited_event'] or '-'}<br>root cause: {r['root_cause'] or '-'}"
                 for r in records(part)]
        fig.add_trace(go.Bar(y=lab, x=part["waited_s"].fillna(0.0).clip(lower=0.5), orientation="h",
                             marker_color=_COLOURS[status], name=status, hovertext=hover,
                             hoverinfo="text", text=[r or "" for r in part["root_cause"]],
                             textposition="auto"))
    fig.update_yaxes(categoryorder="array", categoryarray=labels)
    fig.update_xaxes(title="seconds in the current step, up to collection")
    fig.update_layout(title="Batches in the bundle: where each stands (stuck first)", barmode="overlay",
                      height=max(240, 60 + 32 * len(d)), margin={"l": 20, "r": 20, "t": 50, "b": 40})
    return fig
