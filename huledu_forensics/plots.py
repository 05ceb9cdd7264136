"""The investigation's views: plotly figures and small tables, each drawn from one ``Investigation``.

Every view works on partial evidence: when the frame it needs is empty or absent it returns a figure
(or table) that says what is missing, never an exception. The figures are plain
:class:`plotly.graph_objects.Figure` objects, so they can be checked in tests and shown anywhere.

Call :func:`setup_notebook` once at the top of a notebook: JupyterLab then gets plotly's own mimetype
and an nbconvert HTML export gets plotly.js embedded inline once (no CDN, no MathJax download), so the
report opens offline with every figure drawn.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import NotebookRenderer

from . import _fields as F
from . import model
from ._fastimport import without_iri_checker
from ._time import parse_utc
from .model import columns as C

if TYPE_CHECKING:  # annotations only: the plots read an investigation, they never build one
    from .investigation import Investigation

__all__ = [
    "OFFLINE_RENDERER",
    "awaited_checks",
    "essay_slots",
    "evidence_log_lines",
    "evidence_rows",
    "incident_window",
    "setup_notebook",
    "shown_refs",
    "state_graph",
    "swimlane",
]

OFFLINE_RENDERER = "huledu_offline"
"""Name of the plotly renderer :func:`setup_notebook` registers (inline plotly.js, no MathJax CDN)."""

_ERROR_LEVELS = {"error", "critical", "fatal", "exception"}
_WARNING_LEVELS = {"warning", "warn"}
_SOURCE_SYMBOLS = {"table": "square", "outbox": "diamond", "log": "circle", "container": "triangle-up"}
_MAX_HOVER_LABEL = 160
_NO_ROW = "no ELS row (slot never created)"
_UNREAD_ROW = "ELS row unknown (essay_states not collected)"


class _OfflineNotebookRenderer(NotebookRenderer):  # type: ignore[misc]  # plotly ships no types
    """plotly's notebook renderer without the per-figure MathJax CDN script.

    Each figure is a div and a ``Plotly.newPlot`` call; plotly.js itself is not embedded in the notebook
    (JupyterLab draws the plotly mimetype; the HTML export loads ``plotly.min.js`` written once next to
    ``report.html``), so neither the notebook nor the page carries a second copy.
    """

    def activate(self) -> None:
        """Embed nothing: the HTML export loads plotly.js once per report directory (see
        :func:`huledu_forensics.report.export_html`), so the notebook holds no copy of it."""

    def to_mimebundle(self, fig_dict: dict[str, Any]) -> dict[str, str]:
        html = pio.to_html(
            fig_dict, config=self.config, include_plotlyjs=False, include_mathjax=False,
            full_html=False, default_width="100%", default_height=525, validate=False,
        )
        return {"text/html": html}


def setup_notebook() -> str:
    """Select the renderers for a report notebook and return the renderer string set.

    The default becomes ``plotly_mimetype+huledu_offline``: JupyterLab draws the mimetype, and the
    HTML export draws the inline HTML (plotly.js embedded once, no network).
    """
    with without_iri_checker():  # plotly's renderers import nbformat -> jsonschema (seconds otherwise)
        renderers = pio.renderers
    if OFFLINE_RENDERER not in renderers:
        pio.renderers[OFFLINE_RENDERER] = _OfflineNotebookRenderer()
    spec = f"plotly_mimetype+{OFFLINE_RENDERER}"
    pio.renderers.default = spec
    return spec


# -- small helpers ------------------------------------------------------------------------------
def _frame(obj: Any, attr: str) -> pd.DataFrame:
    value = getattr(obj, attr, None) if obj is not None else None
    return value if isinstance(value, pd.DataFrame) else pd.DataFrame()


def _text(value: Any) -> str:
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def _short(value: Any, n: int = _MAX_HOVER_LABEL) -> str:
    s = _text(value).replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


def _ts(value: Any) -> datetime | None:
    try:
        return parse_utc(value)
    except Exception:  # noqa: BLE001 - a view never fails on one odd value
        return None


def _duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "?"
    if math.isnan(s):
        return "?"
    s = max(s, 0.0)
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{s // 60:.0f}m{s % 60:02.0f}s"
    if s < 86400:
        return f"{s // 3600:.0f}h{(s % 3600) // 60:02.0f}m"
    return f"{s // 86400:.0f}d{(s % 86400) // 3600:02.0f}h"


def _empty_figure(title: str, missing: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, height=260,
                      template="plotly_white")
    fig.add_annotation(text=missing, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font={"size": 14}, name="missing")
    return fig


def _level_class(level: Any) -> str:
    lv = _text(level).lower()
    if lv in _ERROR_LEVELS:
        return "error"
    if lv in _WARNING_LEVELS:
        return "warning"
    return "normal"


def _collected_at(inv: Investigation) -> datetime | None:
    bundle = getattr(inv, "bundle", None)
    try:
        return bundle.collected_at if bundle is not None else None
    except Exception:  # noqa: BLE001
        return None


def _stuck_since(inv: Investigation) -> tuple[datetime | None, str]:
    progress = getattr(inv, "progress", None)
    steps = _frame(progress, "steps")
    if not steps.empty and "state" in steps.columns:
        hit = steps[steps["state"].astype(object).isin(["stuck"])]
        if hit.empty and getattr(progress, "stuck", False):
            hit = steps[steps["state"].astype(object).isin(["current"])]
        if not hit.empty:
            row = hit.iloc[0]
            return _ts(row.get("entered_at")), _text(row.get("label") or row.get("step"))
    return None, ""


def _vline(fig: go.Figure, when: datetime, text: str, colour: str, name: str, y: float) -> None:
    fig.add_shape(type="line", x0=when, x1=when, yref="paper", y0=0, y1=1, name=name,
                  line={"color": colour, "dash": "dash", "width": 1.5})
    fig.add_annotation(x=when, yref="paper", y=y, text=text, showarrow=False, xanchor="left",
                       font={"color": colour, "size": 11}, name=name)


# -- swimlane -----------------------------------------------------------------------------------
_SOURCE_COLOURS = {"table": "#3949ab", "outbox": "#00897b", "log": "#90a4ae", "container": "#8d6e63"}
_SEVERITY_STYLE = {"warning": ("#ef6c00", "triangle-down", "warnings"), "error": ("#d50000", "x", "errors")}
_FOLDED_LANE = "(folded: lanes quiet in the window)"


def incident_window(inv: Investigation) -> tuple[datetime, datetime] | None:
    """Return the window the swimlane opens on: from the scope's first event to its last event (or the
    stuck point, whichever is later), padded by 5 % (at least half a second) on each side.

    Container starts and exits are left out: they are context (often minutes earlier), not the incident.
    ``None`` when the timeline has no usable timestamps.
    """
    tl = _frame(inv, "timeline")
    if tl.empty or "ts" not in tl.columns:
        return None
    ts = pd.to_datetime(tl["ts"], utc=True, errors="coerce")
    if "source" in tl.columns:
        events = ts[[_text(s) != "container" for s in tl["source"]]].dropna()
        if events.empty:
            events = ts.dropna()
    else:
        events = ts.dropna()
    if events.empty:
        return None
    start, end = events.min(), events.max()
    stuck_at, _ = _stuck_since(inv)
    if stuck_at is not None:
        stuck = pd.Timestamp(stuck_at)
        start, end = min(start, stuck), max(end, stuck)
    pad = max((end - start) * 0.05, pd.Timedelta(milliseconds=500))
    return (start - pad).to_pydatetime(), (end + pad).to_pydatetime()


def _event_links(tl: pd.DataFrame) -> tuple[list[Any], list[Any], list[str]]:
    """Producer -> consumer hops: for each event (topic, plus correlation id when known), a line through
    the first marker of each lane it touched, in time order (written, relayed, consumed, handled)."""
    xs: list[Any] = []
    ys: list[Any] = []
    hover: list[str] = []
    topics = tl[[bool(_text(t)) for t in tl["topic"]]]
    if topics.empty:
        return xs, ys, hover
    keys = [(_text(t), _text(c)) for t, c in zip(topics["topic"], topics[F.CORRELATION_ID])]
    topics = topics.assign(v_key=keys)  # type: ignore[arg-type]  # stubs: a list of tuples is a column
    for key, part in topics.sort_values("ts").groupby("v_key", sort=False):
        topic, corr = cast(tuple[str, str], key)
        hops = part.drop_duplicates("lane")
        if len(hops) < 2:
            continue
        for r in hops.itertuples(index=False):
            xs.append(r.ts)
            ys.append(r.lane)
            hover.append(f"{_short(topic, 80)}{f' · correlation {corr[:8]}…' if corr else ''}<br>"
                         f"{_text(r.kind)} in {_text(r.v_lane_original)}")
        xs.append(None)
        ys.append(None)
        hover.append("")
    return xs, ys, hover


def swimlane(inv: Investigation, *, focus: bool = True) -> go.Figure:
    """Draw the cross-service timeline: one lane per container or database, one marker per event.

    Opens on the incident window (:func:`incident_window`); the buttons above the plot switch to the
    whole context (container starts, the collection time) and back. Ordinary events are muted and
    coloured by source (table, outbox, log, container); warnings are orange triangles and errors red
    ``x``. Lanes with no event in the window are folded into one lane at the bottom. Thin lines join the
    hops of each event from producer to consumer (outbox written, relayed, consumed, handled). Hover
    text names the label, kind, topic and the evidence ref. Dashed lines mark where the batch got stuck
    and when the evidence was collected.

    Args:
        inv: an ``Investigation`` (uses ``.timeline``, ``.progress.steps``, ``.bundle.collected_at``).
        focus: open on the incident window (``False``: the whole timeline, no folding).

    Returns:
        The figure; with no timeline rows, a figure whose annotation says so.
    """
    title = "Cross-service timeline"
    tl = _frame(inv, "timeline")
    if tl.empty or "ts" not in tl.columns:
        return _empty_figure(title, "No timeline rows: the bundle holds no rows, outbox entries or log "
                                    "lines for this scope.")
    tl = tl.copy()
    tl["ts"] = pd.to_datetime(tl["ts"], utc=True, errors="coerce")
    tl = tl[tl["ts"].notna()]
    if tl.empty:
        return _empty_figure(title, "Timeline rows have no usable timestamps.")
    for col in ("lane", "source", "kind", "level", "label", "topic", "ref", "service", F.CORRELATION_ID):
        if col not in tl.columns:
            tl[col] = None
    tl["lane"] = [(_text(v) or "(unknown)") for v in tl["lane"]]
    tl["v_lane_original"] = tl["lane"]
    tl["v_class"] = [_level_class(v) for v in tl["level"]]
    window = incident_window(inv) if focus else None
    folded: list[str] = []
    if window is not None:
        lo, hi = pd.Timestamp(window[0]), pd.Timestamp(window[1])
        inside = set(tl[(tl["ts"] >= lo) & (tl["ts"] <= hi)]["lane"])
        folded = sorted(set(tl["lane"]) - inside)
        if folded and len(folded) < len(set(tl["lane"])):
            tl.loc[tl["lane"].isin(folded), "lane"] = _FOLDED_LANE
        else:
            folded = []
    tl["v_hover"] = [
        "<br>".join(p for p in (
            f"<b>{_short(r.label)}</b>",
            f"{_text(r.kind)} · {_text(r.source)} · {_text(r.service)}",
            f"lane: {_text(r.v_lane_original)}" if r.lane == _FOLDED_LANE else "",
            f"topic: {_text(r.topic)}" if _text(r.topic) else "",
            f"level: {_text(r.level)}" if _text(r.level) else "",
            f"{pd.Timestamp(r.ts).isoformat()}",  # type: ignore[arg-type]  # stubs: itertuples fields are any scalar
            f"source: {_text(r.ref)}" if _text(r.ref) else "source: (no ref)",
        ) if p)
        for r in tl.itertuples(index=False)
    ]
    # lanes ordered by first appearance, top to bottom; the folded lane last
    lanes = [lane for lane in tl.sort_values("ts").drop_duplicates("lane")["lane"] if lane != _FOLDED_LANE]
    if folded:
        lanes.append(_FOLDED_LANE)

    fig = go.Figure()
    link_x, link_y, link_hover = _event_links(tl)
    if link_x:
        fig.add_trace(go.Scatter(
            x=link_x, y=link_y, mode="lines", name="event hops (producer → consumer)",
            line={"color": "rgba(0,137,123,0.45)", "width": 1.5}, hovertext=link_hover, hoverinfo="text"))
    normal = tl[tl["v_class"] == "normal"]
    for source in sorted({_text(s) or "other" for s in normal["source"]}):
        part = normal[[(_text(s) or "other") == source for s in normal["source"]]]
        fig.add_trace(go.Scatter(
            x=part["ts"], y=part["lane"], mode="markers", name=source,
            marker={"symbol": _SOURCE_SYMBOLS.get(source, "circle"), "size": 8, "opacity": 0.8,
                    "color": _SOURCE_COLOURS.get(source, "#90a4ae")},
            hovertext=list(part["v_hover"]), hoverinfo="text"))
    for cls in ("warning", "error"):
        colour, symbol, name = _SEVERITY_STYLE[cls]
        part = tl[tl["v_class"] == cls]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part["ts"], y=part["lane"], mode="markers", name=name,
            marker={"symbol": symbol, "size": 12, "color": colour, "line": {"width": 1, "color": colour}},
            hovertext=list(part["v_hover"]), hoverinfo="text"))

    stuck_at, stuck_label = _stuck_since(inv)
    if stuck_at is not None:
        _vline(fig, stuck_at, f"stuck: {stuck_label}", "#c62828", "stuck point", 1.04)
    collected = _collected_at(inv)
    if collected is not None:
        _vline(fig, collected, "collected", "#555555", "collected at", 1.0)
    if window is not None:
        title += (f" — incident window {window[0]:%H:%M:%S}–{window[1]:%H:%M:%S} UTC "
                  f"({_duration((window[1] - window[0]).total_seconds())})")
    if folded:
        title += f"; {len(folded)} lane(s) with no event in it folded"
    height = max(320, 170 + 36 * len(lanes))
    fig.update_layout(
        title={"text": title, "font": {"size": 15}}, template="plotly_white", height=height,
        xaxis_title="time (UTC)", yaxis_title="lane (container or database)",
        # the legend sits a fixed 80 px under the plot, below the axis title, whatever the lane count
        legend={"orientation": "h", "y": -80 / (height - 80 - 130), "yanchor": "top", "x": 0},
        hovermode="closest", margin={"l": 260, "r": 40, "t": 80, "b": 130},
    )
    if window is not None:
        fig.update_xaxes(range=[window[0], window[1]], autorange=False)
        full = [tl["ts"].min().to_pydatetime(), max(tl["ts"].max().to_pydatetime(), collected or tl["ts"].max())]
        fig.update_layout(updatemenus=[{
            "type": "buttons", "direction": "right", "x": 1.0, "xanchor": "right", "y": 1.12, "yanchor": "bottom",
            "showactive": True, "active": 0, "name": "window",
            "buttons": [
                {"label": "incident window", "method": "relayout",
                 "args": [{"xaxis.range": [window[0].isoformat(), window[1].isoformat()]}]},
                {"label": "all context", "method": "relayout",
                 "args": [{"xaxis.range": [full[0].isoformat(), full[1].isoformat()]}]},
            ]}])
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(lanes)))
    return fig


# -- state graph --------------------------------------------------------------------------------
_NODE_STYLE = {  # fill, border, font colour, border dash
    "done": ("#e8f5e9", "#2e7d32", "#1b5e20", "solid"),
    "current": ("#e3f2fd", "#1565c0", "#0d47a1", "solid"),
    "stuck": ("#ffebee", "#c62828", "#b71c1c", "solid"),
    "pending": ("#fafafa", "#9e9e9e", "#757575", "dot"),
}


def _wrap(text: str, width: int, seps: str = "_.") -> str:
    """Break ``text`` with ``<br>`` at one of ``seps`` so that no line is much longer than ``width``."""
    out: list[str] = []
    line = ""
    token = ""
    for ch in text:
        token += ch
        if ch in seps:
            if line and len(line) + len(token) > width:
                out.append(line)
                line = ""
            line += token
            token = ""
    if line and len(line) + len(token) > width:
        out.append(line)
        line = ""
    line += token
    if line:
        out.append(line)
    return "<br>".join(out)


def _short_topic(topic: str) -> str:
    t = topic[len(model.topics.TOPIC_PREFIX):] if topic.startswith(model.topics.TOPIC_PREFIX) else topic
    for suffix in (".v1", ".v2"):
        if t.endswith(suffix):
            t = t[: -len(suffix)]
    return t


def _documented_only(flow: str, steps: pd.DataFrame) -> list[str]:
    flows = getattr(model, "FLOWS", {}) or {}
    documented = getattr(flows.get(flow), "documented", ()) if flow in flows else ()
    written = {_text(s) for s in steps["batch_status"]}
    return [d for d in documented if d not in written]


def state_graph(inv: Investigation) -> go.Figure:
    """Draw the batch's implemented state machine as a graph, with the path this batch took.

    One node per step of the flow as implemented (left to right), each edge labelled with the event that
    triggers it (``producer → consumer``). Done steps and the edges taken are green with the dwell
    measured; the current step is blue; the stuck step is red, with the time waited against a healthy
    batch's typical dwell (the model's expected dwell); the awaited edge is a dashed red arrow with its
    produced / published / consumed checks (``?`` where the evidence cannot tell); steps not reached
    are dotted grey. Statuses the documentation names but the implementation never writes are listed
    under the graph.

    Args:
        inv: an ``Investigation`` (uses ``.progress``).

    Returns:
        The figure; without steps, a figure whose annotation says so.
    """
    progress = getattr(inv, "progress", None)
    flow = _text(getattr(progress, "flow", None)) or "?"
    status = _text(getattr(progress, "current_state", None)) or "?"
    title = f"State machine ({flow} flow, as implemented) — batch status: {status}"
    steps = _frame(progress, "steps")
    if steps.empty:
        return _empty_figure(title, "No state-machine steps: the batch row was not found in the "
                                    "evidence, so its flow and progress are unknown.")
    steps = steps.reset_index(drop=True).copy()
    for col in ("step", "label", "state", "dwell_s", "expected_dwell_s", "entered_at", "trigger_topic",
                "producer", "consumer", "batch_status"):
        if col not in steps.columns:
            steps[col] = None
    steps["v_state"] = [(_text(s) if _text(s) in _NODE_STYLE else "pending") for s in steps["state"]]
    if getattr(progress, "stuck", False) and "stuck" not in set(steps["v_state"]):
        steps.loc[steps["v_state"] == "current", "v_state"] = "stuck"
    awaited = getattr(progress, "awaited", None)
    collected = _collected_at(inv)
    dwell: list[float | None] = []
    for r in steps.itertuples():
        d = pd.to_numeric(pd.Series([r.dwell_s]), errors="coerce").iloc[0]
        if (d is None or pd.isna(d)) and r.v_state in ("stuck", "current"):
            entered = _ts(r.entered_at)
            waited = getattr(awaited, "waited_s", None) if awaited is not None else None
            if entered is not None and collected is not None:
                d = (collected - entered).total_seconds()
            elif waited is not None:
                d = float(waited)
        dwell.append(None if d is None or pd.isna(d) else float(d))
    steps["v_dwell"] = dwell

    n = len(steps)
    half_w, half_h = 0.34, 0.55
    fig = go.Figure()
    hover: list[str] = []
    for i, r in enumerate(steps.itertuples()):
        fill, border, font, dash = _NODE_STYLE[str(r.v_state)]
        fig.add_shape(type="rect", x0=i - half_w, x1=i + half_w, y0=-half_h, y1=half_h, name=f"node {r.step}",
                      line={"color": border, "width": 3 if r.v_state == "stuck" else 2, "dash": dash},
                      fillcolor=fill, layer="below")
        name = _text(r.batch_status) or _text(r.step)
        expected = _text(r.expected_dwell_s) and _duration(r.expected_dwell_s)
        typical = f"healthy ≤ {expected}" if expected else "healthy: waits for the client"
        if r.v_state == "pending":
            timing = "not reached"
        elif r.v_dwell is None:
            timing = "dwell unknown"
        else:
            timing = f"{'waiting ' if r.v_state in ('stuck', 'current') else ''}{_duration(r.v_dwell)}"
        mark = {"stuck": "✗ STUCK · ", "current": "● now · ", "done": "✓ "}.get(str(r.v_state), "")
        fig.add_annotation(
            x=i, y=0.08, text=f"<b>{_wrap(name, 22)}</b>", showarrow=False, font={"size": 12, "color": font},
            name=f"node {r.step}")
        fig.add_annotation(
            x=i, y=-half_h + 0.04, yanchor="bottom", showarrow=False, name=f"dwell {r.step}",
            text=f"{mark}{timing}<br><span style='color:#616161'>{typical}</span>",
            font={"size": 11, "color": font})
        hover.append("<br>".join((
            f"<b>{_text(r.label) or _text(r.step)}</b> ({_text(r.step)})",
            f"state: {'not reached' if r.v_state == 'pending' else r.v_state!s}; batch status: "
            f"{_text(r.batch_status) or '(none written)'}",
            f"entered: {_text(r.entered_at) or '—'}",
            f"dwell: {_duration(r.v_dwell) if r.v_dwell is not None else '—'} ({typical})",
        )))
    fig.add_trace(go.Scatter(x=list(range(n)), y=[0] * n, mode="markers", name="steps",
                             marker={"size": 60, "opacity": 0}, hovertext=hover, hoverinfo="text",
                             showlegend=False))
    # edges: the trigger of step i+1 leads out of step i
    for i in range(n - 1):
        nxt = steps.iloc[i + 1]
        here = steps.iloc[i]
        topic = _text(nxt["trigger_topic"])
        taken = nxt["v_state"] != "pending"
        awaited_edge = here["v_state"] in ("stuck", "current") and not taken
        # red only past the step's expected dwell: a batch still within it is in flight, not failing
        colour = "#2e7d32" if taken else ("#c62828" if here["v_state"] == "stuck" else "#1565c0") \
            if awaited_edge else "#bdbdbd"
        label = f"{_wrap(_short_topic(topic), 26) if topic else '(no event)'}<br>" \
                f"<i>{_text(nxt['producer']) or '?'} → {_text(nxt['consumer']) or '?'}</i>"
        if awaited_edge and awaited is not None:
            label += (f"<br><b>produced {_check(getattr(awaited, 'produced', None))} · "
                      f"published {_check(getattr(awaited, 'published', None))} · "
                      f"consumed {_check(getattr(awaited, 'consumed', None))}"
                      + (f" · {outcome}" if (outcome := _text(getattr(awaited, "outcome", None)))
                         in ("dropped", "failed") else "") + "</b>")
        edge = f"edge {here['step']}->{nxt['step']}" + (" missing" if awaited_edge else " taken" if taken else "")
        if awaited_edge:  # the missing edge: dashed, so it reads as "never happened"
            fig.add_shape(type="line", x0=i + half_w, x1=i + 1 - half_w - 0.03, y0=0, y1=0, name="missing edge",
                          line={"color": colour, "width": 3, "dash": "dash"})
        fig.add_annotation(
            x=i + 1 - half_w, y=0, ax=(i + 1 - half_w - 0.06) if awaited_edge else i + half_w, ay=0,
            xref="x", yref="y", axref="x", ayref="y", showarrow=True, arrowhead=3, arrowsize=1.2,
            arrowwidth=3 if taken or awaited_edge else 1.5, arrowcolor=colour, text="", name=edge)
        fig.add_annotation(x=i + 0.5, y=half_h + 0.08, yanchor="bottom", text=label, showarrow=False,
                           font={"size": 11, "color": colour if awaited_edge else "#424242"},
                           name=f"trigger {nxt['step']}")
    documented = _documented_only(flow, steps)
    if documented:
        fig.add_annotation(
            x=0, xref="paper", y=-0.02, yref="paper", yanchor="top", xanchor="left", showarrow=False,
            text="Documented statuses the implementation never writes (not drawn): " + ", ".join(documented),
            font={"size": 11, "color": "#757575"}, name="documented only")
    fig.update_layout(
        title={"text": title, "font": {"size": 15}, "y": 0.98, "yanchor": "top"}, template="plotly_white",
        height=270, margin={"l": 10, "r": 10, "t": 34, "b": 30}, showlegend=False, hovermode="closest",
        xaxis={"visible": False, "range": [-0.45, n - 0.55], "fixedrange": True},
        yaxis={"visible": False, "range": [-half_h - 0.05, half_h + 0.95], "fixedrange": True},
    )
    return fig


# -- state progress -----------------------------------------------------------------------------
def _check(flag: Any) -> str:
    """✓ for True, ✗ for False, ? when the evidence cannot tell (None or any other value)."""
    if flag is True:
        return "✓"
    if flag is False:
        return "✗"
    return "?"


def _expected_count(inv: Investigation) -> tuple[int | None, str | None]:
    """The batch's expected essay count and the evidence that holds it (``progress.content``: the ELS
    tracker, else BOS's batches row, else the registration event), or ``(None, None)``."""
    content = getattr(getattr(inv, "progress", None), "content", None)
    if not isinstance(content, dict) or content.get("expected") is None:
        return None, None
    try:
        n = int(content["expected"])
    except (TypeError, ValueError):
        return None, None
    source = content.get("expected_from")
    return n, str(source) if source else None


def _has_table(inv: Investigation, database: str, table: str) -> bool:
    """Whether the investigation's bundle holds ``database.table`` (assumed so without a bundle)."""
    has_table = getattr(getattr(inv, "bundle", None), "has_table", None)
    return has_table is None or bool(has_table(database, table))


def essay_slots(inv: Investigation) -> go.Figure:
    """Draw each essay's status (ELS ``current_status``, the truth), pending content and the count.

    One marker per essay, placed on its status; content that arrived but is parked as pending (no slot
    taken) is a separate ``pending content`` trace; the title and a dashed line give how many essays
    the batch expects against how many ELS holds.

    Args:
        inv: an ``Investigation`` (uses ``.progress.essays``, ``.progress.pending``, the batch row).

    Returns:
        The figure; with no essays and no pending content, a figure whose annotation says so.
    """
    progress = getattr(inv, "progress", None)
    essays = _frame(progress, "essays")
    pending = _frame(progress, "pending")
    expected, expected_from = _expected_count(inv)
    n_essays = int(essays[C.CURRENT_STATUS].notna().sum()) if C.CURRENT_STATUS in essays.columns else 0
    # a table the bundle lacks is a count nobody read: '?', never 0 (and the missing table is named)
    unread = [f"{db}/{t}" for db, t in (model.names.ESSAY_STATES, model.names.PENDING_CONTENT)
              if not _has_table(inv, db, t)]
    states_unread = f"{model.names.ESSAY_STATES[0]}/{model.names.ESSAY_STATES[1]}" in unread
    held = "?" if states_unread else str(n_essays)
    no_row = _UNREAD_ROW if states_unread else _NO_ROW  # an unread table says nothing of slots
    parked = "?" if f"{model.names.PENDING_CONTENT[0]}/{model.names.PENDING_CONTENT[1]}" in unread \
        else str(len(pending))
    title = (f"Essays and slots — ELS holds {held} essay row(s), "
             f"expected {expected if expected is not None else '?'}, pending content {parked}"
             + "<br><sup>" + "; ".join(x for x in (
                 f"expected count from {expected_from}" if expected_from else
                 "expected count unknown: no tracker, batch row or registration event in the bundle holds it",
                 f"not in the bundle: {', '.join(unread)}" if unread else "") if x) + "</sup>")
    if essays.empty and pending.empty:
        msg = "No essay rows and no pending content for this batch in the evidence"
        if expected is not None:
            msg += f" (the batch expects {expected} essay(s))"
        return _empty_figure(title, msg + ".")
    fig = go.Figure()
    categories: list[str] = []
    if not essays.empty:
        essays = essays.reset_index(drop=True).copy()
        for col in (C.ESSAY_ID, C.CURRENT_STATUS, C.TEXT_STORAGE_ID, C.CREATED_AT, C.UPDATED_AT):
            if col not in essays.columns:
                essays[col] = None
        essays["v_status"] = [(_text(s) or no_row) for s in essays[C.CURRENT_STATUS]]
        essays["v_x"] = [f"{_text(e)[:8]}…" if len(_text(e)) > 9 else _text(e) for e in essays[C.ESSAY_ID]]
        essays["v_hover"] = [
            "<br>".join((f"<b>essay {_text(r.essay_id)}</b>", f"status: {r.v_status}",
                         f"text_storage_id: {_text(r.text_storage_id) or '(none)'}",
                         f"updated: {_text(r.updated_at)}",
                         "source: ELS essay rows (current_status)" if r.v_status != no_row
                         else "source: expected essay id, ELS essay_states not in the bundle" if states_unread
                         else "source: expected essay id with no ELS row"))
            for r in essays.itertuples()
        ]
        for status in sorted(essays["v_status"].unique()):
            part = essays[essays["v_status"] == status]
            categories.append(status)
            fig.add_trace(go.Scatter(
                x=part["v_x"], y=part["v_status"], mode="markers", name=f"essay: {status}",
                marker={"size": 14, "symbol": "square"}, hovertext=list(part["v_hover"]),
                hoverinfo="text"))
    if not pending.empty:
        pending = pending.reset_index(drop=True).copy()
        for col in (C.TEXT_STORAGE_ID, C.CREATED_AT, C.FILE_UPLOAD_ID):
            if col not in pending.columns:
                pending[col] = None
        label = "pending content (no slot)"
        categories.append(label)
        xs = [f"{_text(t)[:8]}…" if len(_text(t)) > 9 else (_text(t) or f"#{i}")
              for i, t in enumerate(pending[C.TEXT_STORAGE_ID])]
        fig.add_trace(go.Scatter(
            x=xs, y=[label] * len(pending), mode="markers", name="pending content",
            marker={"size": 14, "symbol": "diamond-open", "color": "#ef6c00", "line": {"width": 2}},
            hovertext=[
                "<br>".join((f"<b>pending content {_text(r.text_storage_id)}</b>",
                             f"file_upload_id: {_text(r.file_upload_id)}", f"created: {_text(r.created_at)}",
                             "source: pending content table"))
                for r in pending.itertuples()
            ], hoverinfo="text"))
    if expected is not None:
        fig.add_annotation(text=f"expected {expected} · in ELS {held} · pending {parked}",
                           xref="paper", yref="paper", x=1.0, y=1.08, showarrow=False,
                           xanchor="right", name="expected count")
    fig.update_layout(title=title, template="plotly_white", xaxis_title="essay (id prefix)",
                      yaxis_title="status (ELS current_status)",
                      height=max(300, 160 + 50 * len(categories)),
                      margin={"l": 220, "t": 90, "b": 70})
    return fig


# -- tables -------------------------------------------------------------------------------------
def awaited_checks(inv: Investigation) -> pd.DataFrame:
    """Tabulate the transition the batch waits for: each trigger check with its time and result.

    Returns a frame ``[check, ok, at, detail]`` with rows ``produced`` (outbox row written),
    ``published`` (relay sent it), ``consumed`` (the consumer logged it) and ``waited``; ``ok`` is
    ``None`` (and the detail says *unknown*) when the evidence cannot tell. Empty frame
    with a ``detail`` row when nothing is awaited.
    """
    progress = getattr(inv, "progress", None)
    awaited = getattr(progress, "awaited", None)
    cols = ["check", "ok", "at", "detail"]
    if awaited is None:
        state = "the batch is not waiting for an event" if not getattr(progress, "stuck", False) else \
            "the batch is stuck but no awaited event could be named"
        return pd.DataFrame([{"check": "awaited", "ok": None, "at": None, "detail": state}], columns=cols)
    topic = _text(getattr(awaited, "topic", None))
    producer = _text(getattr(awaited, "producer", None))
    consumer = _text(getattr(awaited, "consumer", None))
    def ok(name: str) -> bool | None:  # None: the evidence cannot tell (never shown as "no")
        flag = getattr(awaited, name, None)
        return flag if isinstance(flag, bool) else None

    def detail(name: str, yes: str, no: str, question: str) -> str:
        # the detail states the result, so a row read without its ✓/✗ still says the right thing
        flag = ok(name)
        return yes if flag is True else no if flag is False else \
            f"unknown whether {question}: {_outbox_unknown(inv, producer)}"

    never_produced = ok("produced") is False
    rows = [
        {"check": "produced", "ok": ok("produced"), "at": _ts(getattr(awaited, "produced_at", None)),
         "detail": detail("produced", f"{producer} wrote {topic} to its outbox",
                          f"{producer} wrote no {topic} outbox row for this batch",
                          f"{producer} wrote {topic} to its outbox")},
        {"check": "published", "ok": ok("published"), "at": _ts(getattr(awaited, F.PUBLISHED_AT, None)),
         "detail": detail("published", f"{producer}'s relay published {topic} to Kafka",
                          f"not published: {producer} never produced it" if never_produced else
                          f"{producer}'s relay has not published {topic} (the outbox row's "
                          f"{F.PUBLISHED_AT} is empty)",
                          f"{producer}'s relay published {topic} to Kafka")},
        {"check": "consumed", "ok": ok("consumed"), "at": _ts(getattr(awaited, "consumed_at", None)),
         "detail": _consumed_detail(awaited, consumer, topic)},
        {"check": "waited", "ok": None, "at": None,
         "detail": f"the batch has waited {_duration(getattr(awaited, 'waited_s', None))} for the transition "
                   f"to {_text(getattr(awaited, 'step', None))}"
                   + (f" (healthy batches: within {_duration(getattr(awaited, 'expected_dwell_s', None))})"
                      if getattr(awaited, "expected_dwell_s", None) else "")},
    ]
    return pd.DataFrame(rows, columns=cols)


def _outbox_unknown(inv: Investigation, producer: str) -> str:
    """Why produced / published cannot be told, naming the producer's outbox table when the bundle
    lacks it (the source a reader would go and collect)."""
    service = model.SERVICES.get(producer)
    bundle = getattr(inv, "bundle", None)
    db = service.database if service is not None else None
    if db and bundle is not None and not _has_table(inv, db, model.OUTBOX_TABLE):
        return f"the producer's outbox table {db}/{model.OUTBOX_TABLE} is not in the bundle"
    return "the evidence needed to tell is not in the bundle"


def _consumed_detail(awaited: Any, consumer: str, topic: str) -> str:
    """The consumed check in words: what the handler did with the event, or why it is no / unknown."""
    outcome = _text(getattr(awaited, "outcome", None))
    reason = _text(getattr(awaited, "consumed_reason", None))
    if outcome:
        cause = _text(getattr(awaited, "outcome_cause", None))
        return f"{consumer} consumed {topic} and {outcome} it" + (f" ({cause})" if cause else "")
    if getattr(awaited, "consumed", None) is None:
        return f"unknown whether {consumer} consumed {topic}: " + (
            reason or "the evidence needed to tell is not in the bundle")
    if awaited.consumed:
        return f"{consumer} consumed {topic}"
    return f"{consumer} did not consume {topic}" + (f": {reason}" if reason else "")


def _evidence_refs(findings: Iterable[Any]) -> list[tuple[str, str, str, int]]:
    """(finding id, container, stream, line number) for every log evidence ref, in finding order."""
    out: list[tuple[str, str, str, int]] = []
    for f in findings or []:
        for ev in getattr(f, "evidence", None) or []:
            part = _text(getattr(ev, "part", None) if not isinstance(ev, str) else ev)
            key = _text(getattr(ev, "key", None) if not isinstance(ev, str) else "")
            if "#" in part and not key:
                part, key = part.split("#", 1)
            bits = part.split("/")
            if len(bits) < 3 or bits[0] != "logs":
                continue
            stream = bits[2][: -len(".log")] if bits[2].endswith(".log") else bits[2]
            digits = "".join(ch for ch in key if ch.isdigit())
            if digits:
                out.append((_text(getattr(f, "id", "")), bits[1], stream, int(digits)))
    return out


def _bundle_line(inv: Investigation, container: str, stream: str, line_no: int) -> dict[str, Any] | None:
    """Parse line ``line_no`` of a bundle log file (for cited lines outside the scoped logs)."""
    bundle = getattr(inv, "bundle", None)
    if bundle is None or not hasattr(bundle, "iter_log_lines"):
        return None
    try:
        from .logs import parse_lines

        for n, raw in enumerate(bundle.iter_log_lines(container, stream), start=1):
            if n == line_no:
                row = parse_lines([raw], container=container, stream=stream, start_line=line_no).iloc[0]
                return {"ts": row.get("ts") if pd.notna(row.get("ts")) else row.get("docker_ts"),
                        "level": row.get("level"), "message": row.get("message")}
    except Exception:  # noqa: BLE001 - a missing or odd file leaves the line out
        return None
    return None


_UNCITED = "none (a warning or error of the scope)"


def evidence_log_lines(inv: Investigation, *, limit: int = 60) -> pd.DataFrame:
    """Return the log lines behind the findings: ``[finding, ts, container, level, message, ref]``.

    Lines are those the findings' evidence cites (``logs/<container>/<stream>.log#L<n>``), looked up
    in the scoped logs or, failing that, read from the bundle. When no finding cites a log line, the
    scope's error and warning lines are shown instead, their ``finding`` saying that none cites them
    (a reader must not take them for a finding's evidence). Messages are cut to 300 characters; raw
    lines are never shown.
    """
    cols = ["finding", "ts", "container", "level", "message", "ref"]
    logs = _frame(inv, "logs")
    for col in ("ts", "container", "level", "message", "line_no", "stream"):
        if col not in logs.columns:
            logs = logs.assign(**{col: pd.Series([None] * len(logs), dtype=object)})
    refs = _evidence_refs(getattr(inv, "findings", None) or [])
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str, int]] = set()
    line_nos = pd.to_numeric(logs["line_no"], errors="coerce")
    containers = logs["container"].astype(object)
    for fid, container, stream, line_no in refs:
        if (container, stream, line_no) in seen or len(rows) >= limit:
            continue
        seen.add((container, stream, line_no))
        ref = f"logs/{container}/{stream}.log#L{line_no}"
        hit = logs[(containers == container) & (line_nos == line_no)]
        if not hit.empty:
            r = hit.iloc[0]
            found: dict[str, Any] | None = {"ts": r["ts"], "level": r["level"], "message": r["message"]}
        else:
            found = _bundle_line(inv, container, stream, line_no)
        if found is not None:
            rows.append({"finding": fid, "ts": found["ts"], "container": container,
                         "level": found["level"], "message": _short(found["message"], 300), "ref": ref})
    if not rows and not logs.empty:
        bad = logs[[_level_class(v) != "normal" for v in logs["level"]]]
        for t in bad.head(limit).itertuples(index=False):
            rows.append({"finding": _UNCITED, "ts": t.ts, "container": t.container, "level": t.level,
                         "message": _short(t.message, 300),
                         "ref": f"logs/{t.container}/{_text(t.stream) or 'combined'}.log#L{_text(t.line_no)}"})
    out = pd.DataFrame(rows, columns=cols)
    if out.empty:
        return out
    out["ts"] = pd.to_datetime(out["ts"], utc=True, errors="coerce")
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


_ROW_TEXT_COLUMNS = ("text", "content", "essay_text", "content_data")  # never shown: could hold essay text


def evidence_rows(inv: Investigation, *, limit: int = 40) -> pd.DataFrame:
    """Return the database rows and enum label sets the findings cite: ``[finding, ref, row]``.

    ``ref`` is the evidence ref as the findings give it (``tables/<db>/<table>.parquet#<col>=<value>``
    or ``enums.json#<db>.<enum>``); ``row`` is the row's plain columns as ``column=value`` pairs. JSON
    columns and any column that could hold essay text are left out; a ref that matches no row says
    so (such a finding rests on the row's absence).
    """
    cols = ["finding", "ref", "row"]
    bundle = getattr(inv, "bundle", None)
    seen: dict[str, dict[str, Any]] = {}
    for f in getattr(inv, "findings", None) or []:
        for ev in getattr(f, "evidence", None) or []:
            part = _text(getattr(ev, "part", None) if not isinstance(ev, str) else ev)
            key = _text(getattr(ev, "key", None) if not isinstance(ev, str) else "")
            if "#" in part and not key:
                part, key = part.split("#", 1)
            if not (part.startswith("tables/") or part == "enums.json") or not key:
                continue
            ref = f"{part}#{key}"
            if ref in seen:
                if _text(getattr(f, "id", "")) not in seen[ref]["finding"]:
                    seen[ref]["finding"] += f", {_text(getattr(f, 'id', ''))}"
                continue
            if len(seen) >= limit:
                break
            seen[ref] = {"finding": _text(getattr(f, "id", "")), "ref": ref, "row": _row_text(bundle, part, key)}
    return pd.DataFrame(list(seen.values()), columns=cols)


def _row_text(bundle: Any, part: str, key: str) -> str:
    try:
        if part == "enums.json":
            db, _, enum = key.partition(".")
            labels = (getattr(bundle, "enums", None) or {}).get(db, {}).get(enum)
            return f"labels: {', '.join(labels)}" if labels else "(enum not in the bundle)"
        bits = part.split("/")
        if len(bits) != 3 or bundle is None:
            return ""
        db, table = bits[1], bits[2].removesuffix(".parquet")
        frame = bundle.table(db, table)
        col, _, value = key.partition("=")
        if frame is None or col not in frame.columns:
            return "(table not in the bundle)"
        hit = frame[frame[col].astype(str) == value]
        if hit.empty:
            return "(no such row: the finding rests on its absence)"
        spec = model.TABLES.get((db, table))
        skip = set(getattr(spec, "json_columns", ()) or ()) | set(_ROW_TEXT_COLUMNS)
        row = hit.iloc[0]
        return "; ".join(f"{c}={_short(row[c], 120)}" for c in hit.columns
                         if c not in skip and _text(row[c]) != "")
    except Exception:  # noqa: BLE001 - one unreadable ref never breaks the view
        return "(could not be read from the bundle)"


def shown_refs(inv: Investigation) -> list[str]:
    """Every evidence ref whose line or row the report shows (:func:`evidence_log_lines`,
    :func:`evidence_rows`): the findings table links these."""
    refs = list(evidence_log_lines(inv)["ref"]) + list(evidence_rows(inv)["ref"])
    return [r for r in refs if r]
