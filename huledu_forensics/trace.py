"""Follow one correlation id across services: a trace view rebuilt from outbox rows and container logs.

HuleEdu keeps no traces worth the name once the Jaeger container is gone, but every event it sends
leaves a footprint: the producer's outbox row (``created_at``, ``published_at``, and the envelope's
``correlation_id`` in ``event_data``), the relay's ``Publishing event from outbox to Kafka`` line
(its ``event_id`` is the outbox row id), and the consumer's handler lines, which carry the correlation
id and the event type. :func:`correlation_trace` joins these into one row per (event, consumer):

    written (outbox row) → relayed (published) → consumed (handler picked it up) → handled (ok/failed)

The relay re-wraps each envelope with a fresh ``event_id`` (SYSTEM.md §2.3), so consumer lines are
matched to outbox rows on correlation id + topic + time order, never on ``event_id``. Events that do
not go through an outbox (the API gateway's pipeline request) appear with no ``written_at``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, cast

import pandas as pd
import plotly.graph_objects as go

from . import model
from ._frames import is_missing
from ._time import parse_utc
from .bundle import Bundle
from .errors import ConfigError, ScopeError
from .evidence import payload, records
from .investigation import all_handler_runs, log_extent, service_logs
from .model import columns as C
from .model.topics import topic_by_event
from .outcomes import consumption, recognised_containers
from .scope import normalise_id

if TYPE_CHECKING:
    from .cards import Html

__all__ = ["OUTCOMES", "TRACE_COLUMNS", "correlation_trace", "trace_figure", "trace_table"]

TRACE_COLUMNS = ("topic", "event", "producer", "consumer", "written_at", "relayed_at", "consumed_at",
                 "handled_at", "outcome", "consumed", "detail", "refs")
"""The columns of :func:`correlation_trace`, in order."""

OUTCOMES = ("ok", "dropped", "failed", "not published", "not consumed", "unknown")
"""``ok``: the handler handled it (or published to a topic nobody consumes); ``dropped``: the handler
refused it (wrong state, duplicate, unknown type; ``detail`` starts with the cause); ``failed``: the
handler raised or returned False; ``not published``: the outbox row has no ``published_at``; ``not consumed``:
published, and the consumer's logs cover the time and hold no handling of it; ``unknown``: the kit
cannot tell whether the consumer handled it (``detail`` says why: its logs are not in the bundle, its
container never ran, or the kit recognises no handling at all in its logs).

Whether an event was consumed is decided by the kit's one detector, :func:`outcomes.consumption`, the
same that decides it for the verdict's awaited event; the ``consumed`` column holds its answer
(``yes``/``no``/``unknown``; empty for a topic no service consumes)."""

_RELAY_PUBLISHING = model.logformats.M_RELAY_PUBLISHING


def _str(v: object) -> str | None:
    return None if is_missing(v) else str(v)


def _ts(v: object) -> pd.Timestamp | None:
    t = parse_utc(v)
    return None if t is None else pd.Timestamp(t)


def _outboxes() -> list[tuple[str, tuple[str, str]]]:
    return [(db.service, (db.name, model.OUTBOX_TABLE)) for db in model.DATABASES.values()
            if model.OUTBOX_TABLE in db.tables]


def _topic_of(row: dict[str, object]) -> str:
    t = _str(row.get(C.TOPIC)) or _str(row.get(C.EVENT_TYPE)) or "?"
    known = topic_by_event(t)
    return known.name if known else t


def _event_name(topic: str) -> str:
    t = model.TOPICS.get(topic)
    return t.event if t else topic


class _OutboxEvent(TypedDict):
    service: str
    key: tuple[str, str]
    row: dict[str, object]
    topic: str


def _outbox_events(b: Bundle, cid: str) -> list[_OutboxEvent]:
    out: list[_OutboxEvent] = []
    for svc, key in _outboxes():
        df = b.table(*key)
        if df is None or df.empty:
            continue
        for row in records(df):
            env = payload(row.get(C.EVENT_DATA))
            if normalise_id(env.get(C.CORRELATION_ID)) != cid:
                continue
            out.append({"service": svc, "key": key, "row": row, "topic": _topic_of(row)})
    return out


def _relay_lines(lg: pd.DataFrame, ids: set[str]) -> dict[str, dict[str, object]]:
    """The first relay ``Publishing event from outbox to Kafka`` line per outbox row id."""
    if lg.empty or not ids:
        return {}
    m = lg[lg["message"].astype(object).fillna("").astype(str).str.startswith(_RELAY_PUBLISHING)]
    out: dict[str, dict[str, object]] = {}
    for r in records(m.sort_values("ts")):
        for col in ("outbox_id", "event_id"):
            rid = normalise_id(r.get(col))
            if rid in ids and rid not in out:
                out[rid] = r
    return out


def _runs_carrying(b: Bundle, cid: str) -> pd.DataFrame:
    """The bundle's handling runs (:func:`outcomes.handler_runs`) of events carrying ``cid``."""
    runs = all_handler_runs(b)
    if runs.empty:
        return runs
    return runs[[cid in ids for ids in runs["correlation_ids"]]].reset_index(drop=True)


def _handled(run: dict[str, object]) -> dict[str, object]:
    """The trace columns a handling run fills: its times, outcome, detail and refs."""
    detail = str(run["detail"] or "")
    if run["outcome"] in ("dropped", "interrupted") and run["cause"]:
        detail = f"{run['cause']}: {detail}"
    # an interrupted handling (its container restarted) shows no end: its outcome is unknown
    return {"consumed_at": run["started_at"], "handled_at": run["ended_at"],
            "outcome": {"handled": "ok", "interrupted": "unknown"}.get(str(run["outcome"]),
                                                                       str(run["outcome"])),
            "consumed": "yes",
            "detail": detail, "refs": [str(x) for x in cast(list[object], run["refs"])]}


def correlation_trace(bundle: str | Path | Bundle, correlation_id: str, *,
                      since: datetime | str | None = None, until: datetime | str | None = None) -> pd.DataFrame:
    """Follow ``correlation_id`` across services as a waterfall of events.

    One row per (event, consumer) the correlation id travelled on, earliest first, with the columns
    of :data:`TRACE_COLUMNS`: ``topic`` and ``event`` (HuleEdu's event class), ``producer`` and
    ``consumer`` (service keys of the model), the four times (aware UTC, ``NaT`` when not seen),
    ``outcome`` (one of :data:`OUTCOMES`), ``consumed`` (the detector's yes/no/unknown), ``detail``
    (the handler's first error line, the outbox row's last error, or why consumption is no/unknown) and ``refs``
    (bundle evidence refs, ``; ``-separated: the outbox row, the relay line, the handler lines).

    Args:
        bundle: a bundle directory or an opened :class:`~huledu_forensics.bundle.Bundle`.
        correlation_id: a registration or pipeline-request correlation id.
        since / until: keep only events first seen inside this window (aware UTC or ISO text).

    Raises:
        ConfigError: the correlation id is empty.
        BundleNotFound, BundleInvalid: the bundle cannot be read.
        ScopeError: no outbox row and no consumer line in the bundle carries the correlation id.
    """
    cid = normalise_id(correlation_id)
    if not cid:
        raise ConfigError("No correlation id given. Pass a correlation id (e.g. a batch's registration "
                          "correlation id from its BOS log lines).")
    b = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
    lg = service_logs(b)
    events = _outbox_events(b, cid)
    relays = _relay_lines(lg, {normalise_id(e["row"].get(C.ID)) or "" for e in events})
    runs = _runs_carrying(b, cid)
    if not events and runs.empty:
        raise ScopeError(f"No outbox row or consumer log line in bundle {b.path} carries correlation id "
                         f"'{correlation_id}'. Pass a correlation id the batch used (see the scope of "
                         "an investigation of its batch id).")
    extent, recognised = log_extent(b), recognised_containers(all_handler_runs(b))

    rows: list[dict[str, object]] = []
    used: set[str] = set()  # first_ref of the runs already paired with an event
    events.sort(key=lambda e: (_ts(e["row"].get(C.CREATED_AT)) or pd.Timestamp.max.tz_localize("UTC")))
    for ev in events:
        row = ev["row"]
        topic = str(ev["topic"])
        t = model.TOPICS.get(topic)
        oid = normalise_id(row.get(C.ID)) or ""
        db, table = ev["key"]
        refs = [f"tables/{db}/{table}.parquet#id={oid}"]
        relay = relays.get(oid)
        if relay is not None:
            refs.append(f"{relay.get('source_file')}#L{relay.get('line_no')}")
        relayed = _ts(row.get(C.PUBLISHED_AT))
        base = {"topic": topic, "event": _event_name(topic), "producer": t.producer if t else str(ev["service"]),
                "written_at": _ts(row.get(C.CREATED_AT)), "relayed_at": relayed, "consumed_at": None,
                "handled_at": None}
        last_error = _str(row.get(C.LAST_ERROR)) or ""
        if not (t and t.consumers):
            rows.append({**base, "consumer": "", "outcome": "not published" if relayed is None else "ok",
                         "consumed": "", "detail": last_error or "no consumer in the model",
                         "refs": "; ".join(refs)})
            continue
        for consumer in t.consumers:
            # the kit's one detector decides; the trace only pairs the event with one of its runs
            c = consumption(runs, topic, consumer, published_at=relayed, containers=b.containers,
                            log_extent=extent, recognised=recognised)
            if c.state == "yes":
                run = next((r for r in c.runs if r["first_ref"] not in used), None)
                handled = _handled(run or cast(dict[str, object], c.run))  # "yes" always has its run
                if run is None:  # more events of this topic than handlings: the logs cannot tell them apart
                    handled["detail"] = f"{handled['detail']} (a handling also paired with an earlier {topic} event)"
                else:
                    used.add(str(run["first_ref"]))
                rows.append({**base, "consumer": consumer, **handled,
                             "refs": "; ".join(refs + cast(list[str], handled["refs"]))})
                continue
            outcome = "not published" if relayed is None else ("not consumed" if c.state == "no" else "unknown")
            rows.append({**base, "consumer": consumer, "outcome": outcome, "consumed": c.state,
                         "detail": last_error or c.reason, "refs": "; ".join(refs)})
    # events consumed with this correlation id that no outbox row in the bundle explains
    for run in records(runs):
        if run["first_ref"] in used:
            continue
        t = model.TOPICS.get(str(run["topic"]))
        handled = _handled(run)
        rows.append({"topic": run["topic"], "event": _event_name(str(run["topic"])),
                     "producer": t.producer if t else "?", "consumer": run["service"], "written_at": None,
                     "relayed_at": None, **handled, "refs": "; ".join(cast(list[str], handled["refs"]))})
    df = pd.DataFrame(rows, columns=list(TRACE_COLUMNS))
    for col in ("written_at", "relayed_at", "consumed_at", "handled_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    first = df[["written_at", "relayed_at", "consumed_at"]].min(axis=1)
    df = df.assign(_first=first).sort_values(["_first", "topic", "consumer"], kind="stable")
    lo = parse_utc(since) if since else None
    hi = parse_utc(until) if until else None
    if lo is not None:
        df = df[df["_first"] >= pd.Timestamp(lo)]
    if hi is not None:
        df = df[df["_first"] <= pd.Timestamp(hi)]
    return df.drop(columns="_first").reset_index(drop=True)


_COLOURS = {"outbox": "#9e9e9e", "kafka": "#64b5f6", "ok": "#43a047", "failed": "#e53935",
            "dropped": "#fb8c00"}


def trace_figure(trace: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """A waterfall (Gantt) of a :func:`correlation_trace`: one row per event and consumer.

    Grey: the event waited in the producer's outbox (written → relayed); blue: on Kafka (relayed →
    consumed); green/orange/red: the consumer's handler ran (consumed → handled), orange when it dropped
    the event, red when it failed. A red
    ✗ marks an event that was never published or never consumed, a grey ○ one whose consumption the
    kit cannot tell (the row's ``detail`` says why). Hover a bar for its evidence refs.
    """
    fig = go.Figure()
    if trace is None or trace.empty:
        fig.update_layout(title=title or "Correlation trace: no events",
                          annotations=[{"text": "no event carries this correlation id", "showarrow": False,
                                        "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}])
        return fig
    from .safety import plotly_text as _pt  # evidence text is shown as itself, never as markup

    labels = [_pt(f"{r['event']} → {r['consumer'] or '(no consumer)'}", 160) for r in records(trace)]
    # make labels unique, keep order
    seen: dict[str, int] = {}
    uniq = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        uniq.append(lab if seen[lab] == 1 else f"{lab} #{seen[lab]}")
    shown: set[str] = set()

    def seg(y: str, a: object, b: object, kind: str, name: str, hover: str) -> None:
        ta, tb = _ts(a), _ts(b)
        if ta is None or tb is None:
            return
        if tb <= ta:
            tb = ta + pd.Timedelta(milliseconds=2)
        fig.add_trace(go.Scatter(x=[ta, tb], y=[y, y], mode="lines+markers",
                                 line={"color": _COLOURS[kind], "width": 12},
                                 marker={"size": 6, "color": _COLOURS[kind]}, name=name,
                                 legendgroup=name, showlegend=name not in shown,
                                 hovertext=hover, hoverinfo="text"))
        shown.add(name)

    for lab, r in zip(uniq, records(trace)):
        hover = (f"{_pt(r['topic'], 200)}<br>{_pt(r['producer'], 80)} → {_pt(r['consumer'], 80)}: "
                 f"{_pt(r['outcome'], 40)}"
                 + (f"<br>{_pt(str(r['detail'])[:120])}" if r.get("detail") else "")
                 + "<br>" + "<br>".join(_pt(x, 200) for x in str(r["refs"]).split("; ")[:4]))
        seg(lab, r["written_at"], r["relayed_at"], "outbox", "in outbox", hover)
        seg(lab, r["relayed_at"] if _ts(r["relayed_at"]) is not None else r["written_at"],
            r["consumed_at"], "kafka", "on Kafka", hover)
        kind = r["outcome"] if r["outcome"] in ("failed", "dropped") else (
            "kafka" if r["outcome"] == "unknown" else "ok")
        seg(lab, r["consumed_at"], r["handled_at"], kind, {"failed": "handler failed",
                                                            "dropped": "handler dropped it",
                                                            "kafka": "handling, no end shown"}.get(
            kind, "handled"), hover)
        if r["outcome"] in ("not published", "not consumed", "unknown"):
            at = next((t for t in (r["relayed_at"], r["written_at"], r["consumed_at"]) if _ts(t) is not None),
                      None)
            if at is not None:
                name = r["outcome"]
                unknown = name == "unknown"
                fig.add_trace(go.Scatter(x=[_ts(at)], y=[lab], mode="markers+text",
                                         marker={"symbol": "circle-open" if unknown else "x", "size": 12 if
                                                 unknown else 14, "color": "#9e9e9e" if unknown else "#e53935"},
                                         text=[f" {name}"], textposition="middle right", name=name,
                                         legendgroup=name, showlegend=name not in shown,
                                         hovertext=hover, hoverinfo="text"))
                shown.add(name)
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(uniq)), title=None)
    times = pd.concat([pd.to_datetime(trace[c], utc=True) for c in
                       ("written_at", "relayed_at", "consumed_at", "handled_at")]).dropna()
    if not times.empty:  # room on the right for the outcome labels
        span = max(times.max() - times.min(), pd.Timedelta(milliseconds=50))
        fig.update_xaxes(range=[times.min() - span * 0.03, times.max() + span * 0.15])
    fig.update_xaxes(type="date", title="time (UTC)")
    fig.update_layout(title=title or "Correlation trace: outbox → Kafka → handler, per event and consumer",
                      height=max(260, 60 + 34 * len(uniq)), margin={"l": 20, "r": 20, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.25})
    return fig


_TIME_COLUMNS = ("written_at", "relayed_at", "consumed_at", "handled_at")


def trace_table(trace: pd.DataFrame, *, only_broken: bool = False) -> Html:
    """The trace as a table a page can hold: one row per event and consumer with its topic, the hop
    (``producer → consumer``), its four times as ``HH:MM:SS.mmm`` under one line that gives their UTC
    date (full ISO times when they span several dates), the outcome, and one evidence ref a line. The
    event's class name, one unbreakable word as wide as a time, is left to the waterfall.

    Args:
        trace: :func:`correlation_trace`'s frame.
        only_broken: only the rows whose ``outcome`` is not ``ok`` (where the trace broke).
    """
    from .cards import Html, table

    rows = trace[trace["outcome"] != "ok"] if only_broken and "outcome" in trace.columns else trace
    if rows.empty:
        return table(rows, empty="Every hop is ok." if only_broken else "No event carries this id.")
    shown = rows.reset_index(drop=True).copy()
    if {"producer", "consumer"} <= set(shown.columns):
        hop = [" → ".join(str(x) for x in (p, c) if isinstance(x, str) and x)
               for p, c in zip(shown["producer"], shown["consumer"])]
        shown = shown.drop(columns=["event", "producer", "consumer"], errors="ignore")
        shown.insert(1 if "topic" in shown.columns else 0, "hop", hop)
    times = [c for c in _TIME_COLUMNS if c in shown.columns]
    stamps = pd.concat([pd.to_datetime(shown[c], utc=True) for c in times]).dropna() if times else pd.Series()
    dates = sorted({t.date().isoformat() for t in stamps})
    note = ""
    if len(dates) == 1:
        for c in times:
            shown[c] = [t.strftime("%H:%M:%S.%f")[:-3] if pd.notna(t) else ""
                        for t in pd.to_datetime(shown[c], utc=True)]
        note = f"<div class='hf-muted'>Times are UTC on {dates[0]}, to the millisecond.</div>"
    if "refs" in shown.columns:
        shown["refs"] = [str(r).split("; ") if isinstance(r, str) and r else [] for r in shown["refs"]]
    out = table(shown)
    return Html(note + out.body, out.text)
