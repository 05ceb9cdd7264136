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
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import NotebookRenderer

from . import model
from ._time import parse_utc

__all__ = [
    "OFFLINE_RENDERER",
    "awaited_checks",
    "essay_slots",
    "evidence_log_lines",
    "setup_notebook",
    "state_progress",
    "swimlane",
]

OFFLINE_RENDERER = "huledu_offline"
"""Name of the plotly renderer :func:`setup_notebook` registers (inline plotly.js, no MathJax CDN)."""

_ERROR_LEVELS = {"error", "critical", "fatal", "exception"}
_WARNING_LEVELS = {"warning", "warn"}
_SOURCE_SYMBOLS = {"table": "square", "outbox": "diamond", "log": "circle", "container": "triangle-up"}
_STATE_COLOURS = {"done": "#2e7d32", "current": "#1565c0", "stuck": "#c62828", "pending": "#9e9e9e"}
_MAX_HOVER_LABEL = 160
_NO_ROW = "no ELS row (slot never created)"


class _OfflineNotebookRenderer(NotebookRenderer):
    """plotly's notebook renderer without the per-figure MathJax CDN script.

    ``activate`` (inherited) embeds the full plotly.js bundle once; each figure is then a div and a
    ``Plotly.newPlot`` call that needs nothing from the network.
    """

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
    if OFFLINE_RENDERER not in pio.renderers:
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


def _collected_at(inv: Any) -> datetime | None:
    bundle = getattr(inv, "bundle", None)
    try:
        return bundle.collected_at if bundle is not None else None
    except Exception:  # noqa: BLE001
        return None


def _stuck_since(inv: Any) -> tuple[datetime | None, str]:
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
def swimlane(inv: Any) -> go.Figure:
    """Draw the cross-service timeline: one lane per container or database, one marker per event.

    Normal rows get one trace per source (table, outbox, log, container); error rows are red ``x``
    markers in the ``errors`` trace and warnings orange in ``warnings``. Hover text names the label,
    kind, topic and the evidence ref. Dashed lines mark where the batch got stuck and when the
    evidence was collected.

    Args:
        inv: an ``Investigation`` (uses ``.timeline``, ``.progress.steps``, ``.bundle.collected_at``).

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
    for col in ("lane", "source", "kind", "level", "label", "topic", "ref", "service"):
        if col not in tl.columns:
            tl[col] = None
    tl["lane"] = [(_text(v) or "(unknown)") for v in tl["lane"]]
    tl["v_class"] = [_level_class(v) for v in tl["level"]]
    tl["v_hover"] = [
        "<br>".join(p for p in (
            f"<b>{_short(r.label)}</b>",
            f"{_text(r.kind)} · {_text(r.source)} · {_text(r.service)}",
            f"topic: {_text(r.topic)}" if _text(r.topic) else "",
            f"level: {_text(r.level)}" if _text(r.level) else "",
            f"{pd.Timestamp(r.ts).isoformat()}",
            f"source: {_text(r.ref)}" if _text(r.ref) else "source: (no ref)",
        ) if p)
        for r in tl.itertuples(index=False)
    ]
    # lanes ordered by first appearance, top to bottom
    lanes = list(tl.sort_values("ts").drop_duplicates("lane")["lane"])

    fig = go.Figure()
    normal = tl[tl["v_class"] == "normal"]
    for source in sorted({_text(s) or "other" for s in normal["source"]}):
        part = normal[[(_text(s) or "other") == source for s in normal["source"]]]
        fig.add_trace(go.Scatter(
            x=part["ts"], y=part["lane"], mode="markers", name=source,
            marker={"symbol": _SOURCE_SYMBOLS.get(source, "circle"), "size": 8, "opacity": 0.75},
            hovertext=list(part["v_hover"]), hoverinfo="text"))
    for cls, colour, symbol in (("warning", "#ef6c00", "triangle-down"), ("error", "#d50000", "x")):
        part = tl[tl["v_class"] == cls]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part["ts"], y=part["lane"], mode="markers", name=f"{cls}s",
            marker={"symbol": symbol, "size": 12, "color": colour, "line": {"width": 1}},
            hovertext=list(part["v_hover"]), hoverinfo="text"))

    stuck_at, stuck_label = _stuck_since(inv)
    if stuck_at is not None:
        _vline(fig, stuck_at, f"stuck: {stuck_label}", "#c62828", "stuck point", 1.04)
    collected = _collected_at(inv)
    if collected is not None:
        _vline(fig, collected, "collected", "#555555", "collected at", 1.0)
    fig.update_layout(
        title=title, template="plotly_white", height=max(300, 140 + 42 * len(lanes)),
        xaxis_title="time (UTC)", yaxis_title="lane (container or database)",
        legend={"orientation": "h", "y": -0.15, "yanchor": "top"}, hovermode="closest",
        margin={"l": 260, "r": 40, "t": 80, "b": 110},
    )
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(lanes)))
    return fig


# -- state progress -----------------------------------------------------------------------------
def _check(flag: Any) -> str:
    return "✓" if bool(flag) else "✗"


def _awaited_text(awaited: Any) -> str:
    if awaited is None:
        return ""
    return (f"awaiting {_text(getattr(awaited, 'topic', None)) or '?'}: "
            f"produced {_check(getattr(awaited, 'produced', False))} · "
            f"published {_check(getattr(awaited, 'published', False))} · "
            f"consumed {_check(getattr(awaited, 'consumed', False))} · "
            f"waited {_duration(getattr(awaited, 'waited_s', None))}")


def state_progress(inv: Any) -> go.Figure:
    """Draw the expected path of the batch's flow against what was reached.

    One horizontal row per step (top = first): a grey bar for the expected dwell and a coloured bar
    for the observed dwell, by state (``done``, ``current``, ``stuck``, ``pending``). The stuck step
    carries a red ``x`` and the awaited event's produced/published/consumed checks and waited time.

    Args:
        inv: an ``Investigation`` (uses ``.progress``).

    Returns:
        The figure; without steps, a figure whose annotation says so.
    """
    progress = getattr(inv, "progress", None)
    flow = _text(getattr(progress, "flow", None)) or "?"
    title = f"State progress ({flow} flow) — batch status: {_text(getattr(progress, 'current_state', None)) or '?'}"
    steps = _frame(progress, "steps")
    if steps.empty:
        return _empty_figure(title, "No state-machine steps: the batch row was not found in the "
                                    "evidence, so its flow and progress are unknown.")
    steps = steps.reset_index(drop=True).copy()
    for col in ("step", "label", "state", "dwell_s", "expected_dwell_s", "entered_at", "trigger_topic",
                "producer", "consumer", "batch_status"):
        if col not in steps.columns:
            steps[col] = None
    steps["v_y"] = [f"{i + 1}. {_text(r.label) or _text(r.step)}" for i, r in enumerate(steps.itertuples())]
    steps["v_state"] = [(_text(s) or "pending") for s in steps["state"]]
    awaited = getattr(progress, "awaited", None)
    steps["dwell_s"] = pd.to_numeric(steps["dwell_s"], errors="coerce").astype(float)
    # a step still in progress has no recorded dwell yet: measure it to the collection time
    collected = _collected_at(inv)
    for i, r in steps.iterrows():
        if r["v_state"] in ("stuck", "current") and math.isnan(r["dwell_s"]):
            entered = _ts(r["entered_at"])
            waited = getattr(awaited, "waited_s", None) if awaited is not None else None
            if entered is not None and collected is not None:
                steps.loc[i, "dwell_s"] = (collected - entered).total_seconds()
            elif waited is not None:
                steps.loc[i, "dwell_s"] = float(waited)
    floor = 0.5

    def _pos(v: Any) -> float:
        try:
            f = float(v)
        except (TypeError, ValueError):
            return floor
        return floor if math.isnan(f) or f < floor else f

    steps["v_hover"] = [
        "<br>".join((
            f"<b>{_text(r.label) or _text(r.step)}</b> ({_text(r.step)})",
            f"state: {r.v_state}; batch status: {_text(r.batch_status)}",
            f"trigger: {_text(r.trigger_topic)} ({_text(r.producer)} → {_text(r.consumer)})",
            f"entered: {_text(r.entered_at)}",
            f"dwell: {_duration(r.dwell_s)} (expected ≤ {_duration(r.expected_dwell_s)})",
        ))
        for r in steps.itertuples()
    ]
    fig = go.Figure()
    fig.add_trace(go.Bar(
        y=steps["v_y"], x=[_pos(v) for v in steps["expected_dwell_s"]], orientation="h",
        name="expected dwell", marker={"color": "rgba(0,0,0,0.12)"}, hovertext=list(steps["v_hover"]),
        hoverinfo="text", width=0.8))
    for state in ("done", "current", "stuck", "pending"):
        part = steps[steps["v_state"] == state]
        if part.empty:
            continue
        xs = [floor if state == "pending" else _pos(v) for v in part["dwell_s"]]
        fig.add_trace(go.Bar(
            y=part["v_y"], x=xs, orientation="h", name=state,
            marker={"color": _STATE_COLOURS[state]}, hovertext=list(part["v_hover"]), hoverinfo="text",
            text=["not reached" if state == "pending" else _duration(v) for v in part["dwell_s"]],
            textposition="outside", width=0.45))
    stuck = steps[steps["v_state"].isin(["stuck"])]
    if stuck.empty and getattr(progress, "stuck", False):
        stuck = steps[steps["v_state"].isin(["current"])]
    if not stuck.empty:
        y = stuck["v_y"].iloc[0]
        fig.add_trace(go.Scatter(
            y=[y], x=[_pos(stuck["dwell_s"].iloc[0])], mode="markers", name="stuck here",
            marker={"symbol": "x", "size": 16, "color": "#d50000"},
            hovertext=[_awaited_text(awaited) or "stuck"], hoverinfo="text"))
    if awaited is not None:
        fig.add_annotation(
            x=0, xref="paper", y=1.0, yref="paper", yanchor="bottom", text=_awaited_text(awaited),
            showarrow=False, xanchor="left", font={"color": "#c62828", "size": 12}, name="awaited event")
    fig.update_layout(
        title=title, template="plotly_white", barmode="overlay",
        height=max(360, 170 + 46 * len(steps)), xaxis_title="dwell in step (seconds, log scale)",
        yaxis_title="step (expected path, top to bottom)",
        margin={"l": 300, "r": 40, "t": 100, "b": 70},
    )
    fig.update_xaxes(type="log")
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(list(steps["v_y"]))))
    return fig


# -- essays and slots ---------------------------------------------------------------------------
def _expected_count(inv: Any) -> int | None:
    progress = getattr(inv, "progress", None)
    for attr in ("expected_count", "expected_essay_count", "expected_essays"):
        v = getattr(progress, attr, None)
        if v is not None and not isinstance(v, (pd.DataFrame, list, set, dict)):
            try:
                return int(v)
            except (TypeError, ValueError):
                pass
    bundle = getattr(inv, "bundle", None)
    batch_id = getattr(getattr(inv, "scope", None), "batch_id", None)
    if bundle is None or not batch_id:
        return None
    for (db, name), tbl in model.TABLES.items():
        batch_cols = [c for c, kind in tbl.id_columns.items() if kind == "batch"]
        if not batch_cols:
            continue
        try:
            frame = bundle.table(db, name)
        except Exception:  # noqa: BLE001
            continue
        if frame is None or frame.empty:
            continue
        count_cols = [c for c in ("expected_count", "expected_essay_count") if c in frame.columns]
        if not count_cols:
            continue
        rows = frame[frame[batch_cols[0]].astype(str) == str(batch_id)]
        if not rows.empty and pd.notna(rows[count_cols[0]].iloc[0]):
            return int(rows[count_cols[0]].iloc[0])
    return None


def essay_slots(inv: Any) -> go.Figure:
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
    expected = _expected_count(inv)
    n_essays = int(essays["current_status"].notna().sum()) if "current_status" in essays.columns else 0
    title = (f"Essays and slots — ELS holds {n_essays} essay row(s), "
             f"expected {expected if expected is not None else '?'}, pending content {len(pending)}")
    if essays.empty and pending.empty:
        msg = "No essay rows and no pending content for this batch in the evidence"
        if expected is not None:
            msg += f" (the batch expects {expected} essay(s))"
        return _empty_figure(title, msg + ".")
    fig = go.Figure()
    categories: list[str] = []
    if not essays.empty:
        essays = essays.reset_index(drop=True).copy()
        for col in ("essay_id", "current_status", "text_storage_id", "created_at", "updated_at"):
            if col not in essays.columns:
                essays[col] = None
        essays["v_status"] = [(_text(s) or _NO_ROW) for s in essays["current_status"]]
        essays["v_x"] = [f"{_text(e)[:8]}…" if len(_text(e)) > 9 else _text(e) for e in essays["essay_id"]]
        essays["v_hover"] = [
            "<br>".join((f"<b>essay {_text(r.essay_id)}</b>", f"status: {r.v_status}",
                         f"text_storage_id: {_text(r.text_storage_id) or '(none)'}",
                         f"updated: {_text(r.updated_at)}",
                         "source: ELS essay rows (current_status)" if r.v_status != _NO_ROW
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
        for col in ("text_storage_id", "created_at", "file_upload_id"):
            if col not in pending.columns:
                pending[col] = None
        label = "pending content (no slot)"
        categories.append(label)
        xs = [f"{_text(t)[:8]}…" if len(_text(t)) > 9 else (_text(t) or f"#{i}")
              for i, t in enumerate(pending["text_storage_id"])]
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
        fig.add_annotation(text=f"expected {expected} · in ELS {n_essays} · pending {len(pending)}",
                           xref="paper", yref="paper", x=1.0, y=1.08, showarrow=False,
                           xanchor="right", name="expected count")
    fig.update_layout(title=title, template="plotly_white", xaxis_title="essay (id prefix)",
                      yaxis_title="status (ELS current_status)",
                      height=max(300, 160 + 50 * len(categories)),
                      margin={"l": 220, "t": 90, "b": 70})
    return fig


# -- tables -------------------------------------------------------------------------------------
def awaited_checks(inv: Any) -> pd.DataFrame:
    """Tabulate the transition the batch waits for: each trigger check with its time and result.

    Returns a frame ``[check, ok, at, detail]`` with rows ``produced`` (outbox row written),
    ``published`` (relay sent it), ``consumed`` (the consumer logged it) and ``waited``. Empty frame
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
    rows = [
        {"check": "produced", "ok": bool(getattr(awaited, "produced", False)),
         "at": _ts(getattr(awaited, "produced_at", None)),
         "detail": f"{producer} wrote {topic} to its outbox"},
        {"check": "published", "ok": bool(getattr(awaited, "published", False)),
         "at": _ts(getattr(awaited, "published_at", None)),
         "detail": f"{producer}'s relay published {topic} to Kafka"},
        {"check": "consumed", "ok": bool(getattr(awaited, "consumed", False)),
         "at": _ts(getattr(awaited, "consumed_at", None)),
         "detail": f"{consumer} consumed {topic}"},
        {"check": "waited", "ok": None, "at": None,
         "detail": f"step {_text(getattr(awaited, 'step', None))} has waited "
                   f"{_duration(getattr(awaited, 'waited_s', None))}"},
    ]
    return pd.DataFrame(rows, columns=cols)


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


def _bundle_line(inv: Any, container: str, stream: str, line_no: int) -> dict[str, Any] | None:
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


def evidence_log_lines(inv: Any, *, limit: int = 60) -> pd.DataFrame:
    """Return the log lines behind the findings: ``[finding, ts, container, level, message, ref]``.

    Lines are those the findings' evidence cites (``logs/<container>/<stream>.log#L<n>``), looked up
    in the scoped logs or, failing that, read from the bundle. When no finding cites a log line, the
    scope's error and warning lines are shown instead. Messages are cut to 300 characters; raw lines
    are never shown.
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
        for r in bad.head(limit).itertuples(index=False):
            rows.append({"finding": "", "ts": r.ts, "container": r.container, "level": r.level,
                         "message": _short(r.message, 300),
                         "ref": f"logs/{r.container}/{_text(r.stream) or 'combined'}.log#L{_text(r.line_no)}"})
    out = pd.DataFrame(rows, columns=cols)
    if out.empty:
        return out
    out["ts"] = pd.to_datetime(out["ts"], utc=True, errors="coerce")
    return out.sort_values("ts", kind="stable").reset_index(drop=True)
