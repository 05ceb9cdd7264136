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

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypedDict, cast

import pandas as pd
import plotly.graph_objects as go

from . import model
from ._frames import is_missing
from ._time import parse_utc
from .bundle import Bundle
from .errors import ConfigError, ScopeError
from .evidence import payload, records
from .investigation import all_handler_runs, service_logs
from .model import columns as C
from .scope import normalise_id

__all__ = ["OUTCOMES", "TRACE_COLUMNS", "correlation_trace", "trace_figure"]

TRACE_COLUMNS = ("topic", "event", "producer", "consumer", "written_at", "relayed_at", "consumed_at",
                 "handled_at", "outcome", "detail", "refs")
"""The columns of :func:`correlation_trace`, in order."""

OUTCOMES = ("ok", "dropped", "failed", "not published", "not consumed", "unknown")
"""``ok``: the handler handled it (or published to a topic nobody consumes); ``dropped``: the handler
refused it (wrong state, duplicate, unknown type; ``detail`` starts with the cause); ``failed``: the
handler raised or returned False; ``not published``: the outbox row has no ``published_at``; ``not consumed``:
published but no handler line of the consumer; ``unknown``: the consumer's logs are not in the bundle."""

_RELAY_PUBLISHING = model.logformats.M_RELAY_PUBLISHING
_SKEW_S = 1.0


@dataclass
class _Consumption:
    """One handling run (:mod:`huledu_forensics.outcomes`) as the trace shows it."""

    topic: str
    container: str
    start: pd.Timestamp
    end: pd.Timestamp
    outcome: str
    detail: str = ""
    refs: list[str] = field(default_factory=list)


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
    if t not in model.TOPICS:
        for name, topic in model.TOPICS.items():
            if topic.short_event_type and topic.short_event_type == t:
                return name
    return t


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


def _consumptions(b: Bundle, cid: str) -> list[_Consumption]:
    """The handling runs (the kit's one detector, :func:`outcomes.handler_runs`) of events carrying
    ``cid``."""
    runs = all_handler_runs(b)
    out: list[_Consumption] = []
    for r in records(runs):
        if cid not in r["correlation_ids"]:  # type: ignore[operator]
            continue
        outcome = {"handled": "ok"}.get(str(r["outcome"]), str(r["outcome"]))
        detail = str(r["detail"] or "")
        if r["outcome"] == "dropped" and r["cause"]:
            detail = f"{r['cause']}: {detail}"
        out.append(_Consumption(str(r["topic"]), str(r["container"]), pd.Timestamp(cast(datetime, r["started_at"])),
                                pd.Timestamp(cast(datetime, r["ended_at"])), outcome, detail,
                                [str(x) for x in cast(list[object], r["refs"])]))
    return out


def _consumer_has_logs(b_containers: set[str], consumer: str) -> bool:
    svc = model.SERVICES.get(consumer)
    return bool(svc and set(svc.containers) & b_containers)


def correlation_trace(bundle: str | Path | Bundle, correlation_id: str, *,
                      since: datetime | str | None = None, until: datetime | str | None = None) -> pd.DataFrame:
    """Follow ``correlation_id`` across services as a waterfall of events.

    One row per (event, consumer) the correlation id travelled on, earliest first, with the columns
    of :data:`TRACE_COLUMNS`: ``topic`` and ``event`` (HuleEdu's event class), ``producer`` and
    ``consumer`` (service keys of the model), the four times (aware UTC, ``NaT`` when not seen),
    ``outcome`` (one of :data:`OUTCOMES`), ``detail`` (the first error line, if any) and ``refs``
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
    consumptions = _consumptions(b, cid)
    containers = {c for c, _s, _p in b.log_files()}
    if not events and not consumptions:
        raise ScopeError(f"No outbox row or consumer log line in bundle {b.path} carries correlation id "
                         f"'{correlation_id}'. Pass a correlation id the batch used (see the scope of "
                         "an investigation of its batch id).")

    rows: list[dict[str, object]] = []
    used: set[int] = set()
    events.sort(key=lambda e: (_ts(e["row"].get(C.CREATED_AT)) or pd.Timestamp.max.tz_localize("UTC")))
    for ev in events:
        row = ev["row"]
        topic = str(ev["topic"])
        t = model.TOPICS.get(topic)
        producer = t.producer if t else str(ev["service"])
        oid = normalise_id(row.get(C.ID)) or ""
        db, table = ev["key"]
        base_refs = [f"tables/{db}/{table}.parquet#id={oid}"]
        written = _ts(row.get(C.CREATED_AT))
        relayed = _ts(row.get(C.PUBLISHED_AT))
        relay = relays.get(oid)
        if relay is not None:
            base_refs.append(f"{relay.get('source_file')}#L{relay.get('line_no')}")
        consumers = list(t.consumers) if t else []
        with_logs = [c for c in consumers if _consumer_has_logs(containers, c)]
        if not consumers or not with_logs:
            outcome = "not published" if relayed is None else ("ok" if not consumers else "unknown")
            detail = _str(row.get(C.LAST_ERROR)) or ("" if consumers else "no consumer in the model")
            if consumers and relayed is not None:
                detail = "no logs of " + ", ".join(consumers) + " in the bundle"
            rows.append({"topic": topic, "event": _event_name(topic), "producer": producer,
                         "consumer": ", ".join(consumers), "written_at": written, "relayed_at": relayed,
                         "consumed_at": None, "handled_at": None, "outcome": outcome, "detail": detail,
                         "refs": "; ".join(base_refs)})
            continue
        for consumer in with_logs:
            svc = model.SERVICES[consumer]
            sent = relayed or written
            match = None
            for i, c in enumerate(consumptions):
                if i in used or c.topic != topic or c.container not in svc.containers:
                    continue
                if sent is not None and (c.start - sent).total_seconds() < -_SKEW_S:
                    continue
                match = i
                break
            if match is not None:
                used.add(match)
                c = consumptions[match]
                outcome = c.outcome
                rows.append({"topic": topic, "event": _event_name(topic), "producer": producer,
                             "consumer": consumer, "written_at": written, "relayed_at": relayed,
                             "consumed_at": c.start, "handled_at": c.end, "outcome": outcome,
                             "detail": c.detail, "refs": "; ".join(base_refs + c.refs)})
            else:
                outcome = "not published" if relayed is None else "not consumed"
                detail = _str(row.get(C.LAST_ERROR)) or ""
                rows.append({"topic": topic, "event": _event_name(topic), "producer": producer,
                             "consumer": consumer, "written_at": written, "relayed_at": relayed,
                             "consumed_at": None, "handled_at": None, "outcome": outcome, "detail": detail,
                             "refs": "; ".join(base_refs)})
    # events consumed with this correlation id that no outbox row in the bundle explains
    for i, c in enumerate(consumptions):
        if i in used:
            continue
        t = model.TOPICS.get(c.topic)
        rows.append({"topic": c.topic, "event": _event_name(c.topic), "producer": t.producer if t else "?",
                     "consumer": model.services.service_for_container(c.container) or c.container,
                     "written_at": None, "relayed_at": None, "consumed_at": c.start, "handled_at": c.end,
                     "outcome": c.outcome, "detail": c.detail,
                     "refs": "; ".join(c.refs)})
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
    ✗ marks an event that was never published or never consumed, a grey ○ one whose consumer's logs
    are not in the bundle. Hover a bar for its evidence refs.
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
        kind = r["outcome"] if r["outcome"] in ("failed", "dropped") else "ok"
        seg(lab, r["consumed_at"], r["handled_at"], kind, {"failed": "handler failed",
                                                            "dropped": "handler dropped it"}.get(
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
