"""HTML views for the top of a report: the verdict card, the parameters table and tables that never cut text.

Each function returns an :class:`Html` object: a notebook (JupyterLab or the HTML export) shows its HTML,
a terminal its plain text. Everything rendered from evidence (log text, summaries, ids) is escaped with
:func:`html.escape`. The verdict is read defensively: fields that are absent are left out, and a trigger
check that is neither true nor false (``None``, ``"unknown"``) is shown as *unknown*, never as *no*.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from . import _fields as F

if TYPE_CHECKING:
    from .overview import ScanOverview

__all__ = ["Html", "completeness_table", "findings_table", "overview_card", "parameters_table", "table", "verdict_card"]

_STATUS_COLOURS = {
    "healthy": "#2e7d32", "completed": "#2e7d32", "stuck": "#c62828", "failed": "#c62828",
    "waiting": "#1565c0", "in_progress": "#1565c0", "unknown": "#616161", "incomplete": "#ef6c00",
}
_SEVERITY_COLOURS = {"critical": "#b71c1c", "error": "#d32f2f", "warning": "#ef6c00", "info": "#607d8b"}
_KNOWN_FIELDS = {
    "tool", "tool_version", F.BATCH_ID, "requested_id", "flow", "healthy", "status", "current_state",
    "current_step", "waited_s", "awaited_transition", "awaited_event", "awaited", "root_cause", "chain",
    "findings", "not_evaluated", "completeness", "completeness_notes", "gaps", "scope", "bundle", "collected_at",
    "responsible_service", "content", "differential", "unexplained", "caveats",
}
_CSS = """<style>
.hf-card{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;border:1px solid #d0d7de;
 border-left:8px solid var(--hf-c,#616161);border-radius:6px;padding:14px 18px;margin:6px 0 14px 0;
 background:#fff;color:#1f2328;max-width:1320px;line-height:1.45}
.hf-card h2{margin:0 0 6px 0;font-size:20px;border:0}
.hf-badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600;
 font-size:13px;letter-spacing:.04em;text-transform:uppercase;margin-right:8px;vertical-align:middle}
.hf-grid{display:grid;grid-template-columns:160px 1fr;gap:4px 14px;margin-top:8px;font-size:14px}
.hf-grid>div:nth-child(odd){color:#57606a;font-weight:600}
.hf-check{display:inline-block;padding:0 8px;border-radius:10px;margin-right:6px;font-size:13px;
 border:1px solid currentColor}
.hf-yes{color:#2e7d32}.hf-no{color:#c62828;font-weight:600}.hf-unknown{color:#6e7781}
.hf-warn{color:#c25e00;font-weight:600}.hf-pending{color:#1565c0}
.hf-scroll{overflow-x:auto;max-width:100%}
.hf-chain a{text-decoration:none;color:#0969da}
.hf-table a code{color:#0969da}.hf-chain code,.hf-card code{font-size:12.5px;
 background:#f6f8fa;padding:1px 4px;border-radius:4px;overflow-wrap:anywhere}
.hf-root{font-size:15px;margin:8px 0 2px 0}
.hf-table{border-collapse:collapse;font-size:13px;margin:6px 0 12px 0;max-width:1320px;
 table-layout:auto!important;width:100%}
.hf-table th{background:#f6f8fa;text-align:left!important;padding:4px 6px;border-bottom:2px solid #d0d7de;
 white-space:normal!important;vertical-align:bottom}
.hf-table td{padding:4px 6px;border-bottom:1px solid #eaeef2;vertical-align:top;white-space:normal!important;
 overflow-wrap:break-word;word-break:normal;max-width:none!important;text-align:left!important;
 text-overflow:clip!important;overflow:visible!important}
.hf-table th.hf-rowhead{background:transparent;border-bottom:1px solid #eaeef2;color:#57606a}
details.hf-more>summary{cursor:pointer;color:#0969da;font-size:13px;margin:4px 0}
.hf-table tr.hf-rootrow td{background:#fff5f5}
.hf-table tr:target td{background:#fff8c5}
.hf-sev{font-weight:600}
.hf-params{width:auto;font-size:12.5px}
.hf-muted{color:#6e7781;font-size:12.5px}
.hf-sources{margin:2px 0 0 0!important;padding-left:18px}.hf-sources li{margin:1px 0}
.jp-RenderedMarkdown .highlight pre{background:#f6f8fa;padding:8px 10px;border-radius:6px;font-size:12.5px;
 font-family:ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace;white-space:pre-wrap;overflow-wrap:anywhere}
</style>"""


class Html:
    """An HTML fragment that shows as HTML in a notebook and as ``text`` in a terminal."""

    def __init__(self, body: str, text: str = "") -> None:
        self.body = body
        self.text = text or re.sub(r"<[^>]+>", "", body)

    def _repr_html_(self) -> str:
        return _CSS + self.body

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def _e(value: Any) -> str:
    return html.escape(_plain(value), quote=True)


def _mask(text: str) -> str:
    """Mask what looks like a credential (``user:pass@`` in URLs, ``password=…``): log text and finding
    summaries can quote a DSN."""
    try:
        from .postmortem import _scrub
    except Exception:  # noqa: BLE001 - masking must not break a card; fall back to a local rule
        return re.sub(r"(://[^\s:/@]+:)[^\s@/]+@", r"\1***@", text)
    return _scrub(text)


def _plain(value: Any) -> str:
    return _mask(_raw(value))


def _raw(value: Any) -> str:
    if value is None:
        return ""
    try:
        if not isinstance(value, (list, dict, tuple, set)) and pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _handling_line(aw: Mapping[str, Any]) -> str:
    """What the consumer did with the awaited event (dropped / failed), or why consumption is unknown."""
    outcome = _plain(aw.get("outcome"))
    if outcome and outcome != "handled":
        cause = _plain(aw.get("outcome_cause"))
        detail = _plain(aw.get("outcome_detail"))
        return (f"{_plain(aw.get('consumer')) or 'the consumer'} {outcome} it"
                + (f" ({cause})" if cause else "") + (f": {detail}" if detail else ""))[:400]
    if _plain(aw.get("consumed_state")) in ("unknown", "no") and _plain(aw.get("consumed_reason")):
        return f"consumed {_plain(aw.get('consumed_state'))}: {_plain(aw.get('consumed_reason'))}"[:400]
    return ""


def _content_line(content: Any) -> str:
    """The content ledger in one line: items against the expected count and where each ended."""
    from .ledger import PLACES  # the ledger's places, in its order (not at import: cards stays light)

    if not isinstance(content, Mapping):
        return ""
    where = ", ".join(f"{content.get(k)} {k.replace('_', ' ')}" for k in PLACES
                      if isinstance(content.get(k), int) and content.get(k))
    exp = content.get("expected")
    items = content.get("items")
    if not items and content.get("unknown"):  # nothing found where the items would be: unknown, not zero
        return (f"{exp} expected" if exp is not None else "items") + \
            f": {where} (the source that would show them is missing: see Evidence)"
    head = f"{items or 0} item(s)" + (f" for {exp} expected" if exp is not None else "")
    return head + (f": {where}" if where else "")


def _within(waited: Any, expected: Any) -> bool:
    """Whether ``waited`` seconds are known and at most ``expected`` (both numbers)."""
    try:
        return float(waited) <= float(expected)
    except (TypeError, ValueError):
        return False


def _tri(value: Any) -> str:
    """``yes`` / ``no`` / ``unknown`` from a bool, a string or anything else."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, str) and value.strip().lower() in ("yes", "true", "ok", "✓"):
        return "yes"
    if isinstance(value, str) and value.strip().lower() in ("no", "false", "✗"):
        return "no"
    return "unknown"


def _duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return ""
    if s != s:  # NaN
        return ""
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s // 60:.0f} min {s % 60:02.0f} s"
    if s < 86400:
        return f"{s // 3600:.0f} h {(s % 3600) // 60:02.0f} min"
    return f"{s // 86400:.0f} d {(s % 86400) // 3600:02.0f} h"


def _first_sentence(text: str, limit: int = 260) -> tuple[str, str]:
    """Split ``text`` into its first sentence (or clause, when that is long) and the rest."""
    text = " ".join(text.split())
    m = re.search(r"(?<=[.!?])\s+(?=[A-Z(])", text)
    head, rest = (text[: m.start()], text[m.end():]) if m else (text, "")
    if len(head) > limit:
        # cut at the last colon before the limit that is not inside a quotation (a quoted log message
        # must not lose its end or have its colon turned into a full stop)
        cuts = [m.start() for m in re.finditer(": ", head[:limit]) if head[: m.start()].count('"') % 2 == 0]
        cut = cuts[-1] if cuts else -1
        if cut > 40:
            head, rest = head[: cut + 1], (head[cut + 2:] + " " + rest).strip()
    return head, rest


def _sentence(text: str, limit: int = 260) -> str:
    """The first sentence (or clause) of ``text``, ending in a full stop rather than a colon."""
    head = _first_sentence(text, limit)[0]
    return head[:-1] + "." if head.endswith(":") else head


def _verdict_dict(source: Any) -> dict[str, Any]:
    """A verdict dict from a dict, a ``Verdict`` (``.data``) or an ``Investigation`` (``.verdict``)."""
    if isinstance(source, Mapping):
        return dict(source)
    verdict = getattr(source, "verdict", None)
    if verdict is not None and not isinstance(source, Mapping) and hasattr(verdict, "data"):
        return dict(verdict.data)
    data = getattr(source, "data", None)
    if isinstance(data, Mapping):
        return dict(data)
    if isinstance(verdict, Mapping):
        return dict(verdict)
    return {}


def _status(v: dict[str, Any]) -> str:
    status = _plain(v.get("status")).strip().lower()
    if status:
        return status
    if v.get("healthy") is True:
        return "healthy"
    if v.get("healthy") is False:
        return "not healthy"
    return "unknown"


def _completeness(v: dict[str, Any]) -> tuple[int, list[tuple[str, str]]]:
    """How many sources the verdict counts, and each one that is not complete as ``(source: state,
    why)``: the verdict's ``completeness_notes`` say why (which tables are missing, where a log ends
    against the event it is asked about); a verdict without them gets the missing tables from
    ``not_evaluated``."""
    comp = v.get("completeness")
    raw_notes = v.get("completeness_notes")
    notes: Mapping[str, Any] = raw_notes if isinstance(raw_notes, Mapping) else {}
    bad: list[tuple[str, str]] = []
    total = 0
    if isinstance(comp, Mapping):
        for source, state in comp.items():
            if source == "warnings":
                continue
            total += 1
            s = state.get("completeness") if isinstance(state, Mapping) else state
            if _plain(s) not in ("complete", "True", ""):
                why = _plain(notes.get(source))
                if not why and _plain(s) == "partial" and _plain(source).startswith("database:"):
                    gone = _missing_tables(v, _plain(source).removeprefix("database:"))
                    why = f"missing: {', '.join(gone)}" if gone else ""
                bad.append((f"{source}: {_plain(s)}", why))
    elif isinstance(comp, str):
        total = 1
        if comp != "complete":
            bad.append((comp, ""))
    for gap in v.get("gaps") or []:
        if isinstance(gap, Mapping):
            bad.append((f"gap: {_plain(gap.get('part'))}", _plain(gap.get("reason"))))
        else:
            bad.append((f"gap: {_plain(gap)}", ""))
    return total, bad


def _missing_tables(v: dict[str, Any], database: str) -> list[str]:
    """The tables of ``database`` that rules could not read (from ``not_evaluated``): what makes a
    database source partial, so the card names them instead of leaving the reader to guess."""
    out: list[str] = []
    for n in v.get("not_evaluated") or []:
        reason = _plain(n.get("reason")) if isinstance(n, Mapping) else ""
        if reason.startswith("missing from the bundle: "):
            for part in reason.removeprefix("missing from the bundle: ").split(", "):
                db, _, tbl = part.partition("/")
                if db == database and tbl and tbl not in out:
                    out.append(tbl)
    return out


def _next_action(v: dict[str, Any], root_id: str) -> str:
    """What to do now: the postmortem's recommendation for the root cause, with its facts filled in."""
    if not root_id:
        return ""
    try:
        from .postmortem import NEXT_STEPS
    except Exception:  # noqa: BLE001 - the card never fails on an optional import
        return ""
    text = NEXT_STEPS.get(root_id, "")
    facts = (v.get("root_cause") or {}).get("facts") if isinstance(v.get("root_cause"), Mapping) else None
    if text and isinstance(facts, Mapping):
        text = text.replace("<enum>", _plain(facts.get("enum") or "<enum>")).replace(
            "<label>", _plain(facts.get("missing_value") or "<label>"))
        if facts.get("database"):
            text = text.rstrip(".") + f" (database {facts['database']})."
    return text


def _fid(index: int) -> str:
    return f"hf-finding-{index}"


def _finding_index(v: dict[str, Any], finding: str, summary: str) -> int | None:
    for i, f in enumerate(v.get("findings") or []):
        if isinstance(f, Mapping) and (f.get("id") or f.get("finding")) == finding and \
                (not summary or f.get("summary") == summary):
            return i
    for i, f in enumerate(v.get("findings") or []):
        if isinstance(f, Mapping) and (f.get("id") or f.get("finding")) == finding:
            return i
    return None


def verdict_card(source: Any) -> Html:
    """The answer first: status badge, batch, flow, state, what it waits for with its trigger checks,
    the root cause in one sentence, the causal chain, what to do now and how complete the evidence is.

    Args:
        source: a verdict dict (``verdict.json``), a ``Verdict`` or an ``Investigation``.
    """
    v = _verdict_dict(source)
    if not v:
        return Html("<div class='hf-card'><h2>No verdict</h2>The notebook produced no verdict.</div>",
                    "No verdict.")
    status = _status(v)
    total, bad = _completeness(v)
    colour = _STATUS_COLOURS.get(status, "#c62828" if v.get("healthy") is False else "#616161")
    batch = _plain(v.get(F.BATCH_ID)) or "unknown batch"
    flow = _plain(v.get("flow"))
    text_lines = [f"{status.upper()}: batch {batch}" + (f" ({flow})" if flow else "")]
    rows: list[tuple[str, str]] = []
    state = _plain(v.get("current_state"))
    step = _plain(v.get("current_step"))
    if state or step:
        waited = _duration(v.get("waited_s"))
        rows.append(("State", f"<code>{_e(state or 'unknown')}</code>"
                     + (f" · step <code>{_e(step)}</code>" if step else "")
                     + (f" · for <b>{_e(waited)}</b>" if waited else "")))
        text_lines.append(f"state: {state or 'unknown'} (step {step or '?'})" + (f", {waited}" if waited else ""))
    aw = v.get("awaited")
    if isinstance(aw, Mapping) and (aw.get("topic") or aw.get("step")):
        checks = []
        # consumed, then dropped or failed: not a green tick, the handling is where the batch stopped
        bad_outcome = _plain(aw.get("outcome")) if _plain(aw.get("outcome")) in (
            "dropped", "failed", "interrupted") else ""
        # within the step's expected dwell a 'no' is 'not yet': the batch is in flight, not failing
        in_flight = status not in ("stuck", "failed", "degraded") and _within(aw.get("waited_s"),
                                                                                aw.get("expected_dwell_s"))
        for k in ("produced", "published", "consumed"):
            if k in aw:
                t = _tri(aw.get(k))
                mark = {"yes": "✓", "no": "✗", "unknown": "?"}[t]
                if t == "no" and in_flight:
                    checks.append(f"<span class='hf-check hf-pending' title='{k}: not yet, within the expected "
                                  f"dwell'>{k} … not yet</span>")
                    continue
                if k == "consumed" and t == "yes" and bad_outcome:
                    checks.append(f"<span class='hf-check hf-warn' title='consumed, then {bad_outcome}'>"
                                  f"{k} {mark} {t} · {bad_outcome}</span>")
                    continue
                checks.append(f"<span class='hf-check hf-{t}' title='{k}: {t}'>{k} {mark} {t}</span>")
        expected = _duration(aw.get("expected_dwell_s"))
        who = " → ".join(x for x in (_plain(aw.get("producer")), _plain(aw.get("consumer"))) if x)
        handling = _handling_line(aw)
        rows.append(("Waiting for", f"<code>{_e(aw.get('topic') or aw.get('step'))}</code>"
                     + (f" ({_e(who)})" if who else "") + "<br>" + "".join(checks)
                     + (f" <span class='hf-muted'>healthy batches move on within {_e(expected)}</span>"
                        if expected else "")
                     + (f"<br><span class='hf-muted'>{_e(handling)}</span>" if handling else "")))
        text_lines.append(f"waiting for {aw.get('topic') or aw.get('step')}: "
                          + ", ".join(f"{k} {_tri(aw.get(k))}" for k in ("produced", "published", "consumed")
                                      if k in aw) + (f" ({bad_outcome})" if bad_outcome else ""))
        if handling:
            text_lines.append(f"  {handling}")
    elif v.get("awaited_event"):
        rows.append(("Waiting for", f"<code>{_e(v.get('awaited_event'))}</code>"))
    root = v.get("root_cause") if isinstance(v.get("root_cause"), Mapping) else None
    root_id = _plain(root.get("finding")) if root else ""
    root_html = ""
    if root:
        head, rest = _first_sentence(_plain(root.get("summary")) or root_id)
        head = _sentence(head)
        idx = _finding_index(v, root_id, _plain(root.get("summary")))
        link = f"<a href='#{_fid(idx)}'><code>{_e(root_id)}</code></a>" if idx is not None else \
            f"<code>{_e(root_id)}</code>"
        root_html = (f"<div class='hf-root'><b>Root cause</b> {link}"
                     f"{' · ' + _e(root.get('severity')) if root.get('severity') else ''}: {_e(head)}"
                     + (f" <details style='display:inline'><summary class='hf-muted' style='display:inline;"
                        f"cursor:pointer'>more</summary>{_e(rest)}</details>" if rest else "") + "</div>")
        text_lines.append(f"root cause: [{root_id}] {head}")
    elif v.get("healthy") is True or status == "healthy":
        root_html = "<div class='hf-root'>No fault found: every step reached finished within its expected dwell.</div>"
    else:
        root_html = ("<div class='hf-root'><b>Root cause: unknown</b> — no finding explains the state on its "
                     "own; see the findings and what evidence is missing.</div>")
    chain = [c for c in (v.get("chain") or []) if isinstance(c, Mapping)]
    if chain:
        parts = []
        for c in chain:
            cid = _plain(c.get("finding") or c.get("id"))
            idx = _finding_index(v, cid, _plain(c.get("summary")))
            sev = _plain(c.get("severity"))
            label = f"<code style='color:{_SEVERITY_COLOURS.get(sev, '#1f2328')}'>{_e(cid)}</code>"
            parts.append(f"<a href='#{_fid(idx)}' title='{_e(c.get('summary'))}'>{label}</a>" if idx is not None
                         else label)
        rows.append(("Chain (cause first)", "<span class='hf-chain'>" + " → ".join(parts) + "</span>"))
        text_lines.append("chain: " + " -> ".join(_plain(c.get("finding") or c.get("id")) for c in chain))
    in_chain = {(_plain(c.get("finding") or c.get("id")), _plain(c.get("summary"))) for c in chain}
    also = [(i, f) for i, f in enumerate(v.get("findings") or []) if isinstance(f, Mapping)
            and f.get("severity") == "critical"
            and (_plain(f.get("id") or f.get("finding")), _plain(f.get("summary"))) not in in_chain]
    if also:
        rows.append(("Also critical", "<br>".join(
            f"<a href='#{_fid(i)}'><code>{_e(f.get('id') or f.get('finding'))}</code></a> "
            f"{_e(_sentence(_plain(f.get('summary'))))}" for i, f in also[:6])
            + (f"<br><span class='hf-muted'>… {len(also) - 6} more</span>" if len(also) > 6 else "")
            + "<br><span class='hf-muted'>Outside the chain but critical: fix them together with the root "
              "cause.</span>"))
        text_lines.append(f"also critical: {len(also)} finding(s) outside the chain")
    action = _next_action(v, root_id)
    if action:
        first, more = _first_sentence(action, limit=400)

        def code(t: str) -> str:
            return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(t))
        rows.append(("Do now", code(first) + (
            f" <details style='display:inline'><summary class='hf-muted' style='display:inline;cursor:pointer'>"
            f"more</summary>{code(more)}</details>" if more else "")))
    if total or bad:
        if bad:
            comp = (f"<span class='hf-no'>incomplete</span> — {len(bad)} source(s) partial or missing:"
                    "<ul class='hf-sources'>"
                    + "".join(f"<li><code>{_e(b)}</code>" + (f" — {_e(why)}" if why else "") + "</li>"
                              for b, why in bad[:8])
                    + (f"<li>… {len(bad) - 8} more (see the completeness table)</li>" if len(bad) > 8 else "")
                    + "</ul><span class='hf-muted'>The verdict may be wrong where it rests on these.</span>")
        else:
            comp = f"<span class='hf-yes'>complete</span> — all {total} sources the verdict rests on were collected complete"
        rows.append(("Evidence", comp))
        text_lines.append("evidence: " + ("incomplete: " + "; ".join(b + (f" ({why})" if why else "")
                                                               for b, why in bad) if bad else "complete"))
    if _plain(v.get("responsible_service")):
        rows.append(("Responsible", f"<code>{_e(v.get('responsible_service'))}</code> "
                     "<span class='hf-muted'>the service that failed to act or raised the error</span>"))
    content = _content_line(v.get("content"))
    if content:
        src = v["content"].get("expected_from") if v["content"].get("expected") is not None else None
        rows.append(("Content", _e(content) + (f" <span class='hf-muted'>expected count from "
                                               f"<code>{_e(src)}</code></span>" if src else "")))
        text_lines.append(f"content: {content}")
    unexplained = [_plain(u.get("finding") if isinstance(u, Mapping) else u) for u in v.get("unexplained") or []]
    if [u for u in unexplained if u]:
        rows.append(("Not explained by the root cause", ", ".join(f"<code>{_e(u)}</code>" for u in unexplained if u)))
    caveats = [c for c in v.get("caveats") or [] if isinstance(c, Mapping) and _plain(c.get("summary"))]
    if caveats:  # warnings the verdict does not rest on (e.g. enum labels no known step writes)
        rows.append(("Caveats", "<br>".join(
            f"<span class='hf-sev' style='color:{_SEVERITY_COLOURS.get(_plain(c.get('severity')), '#ef6c00')}'>"
            f"⚠</span> {_e(_plain(c.get('summary')))} <span class='hf-muted'>(<code>{_e(_plain(c.get('finding')))}"
            "</code>)</span>" for c in caveats)))
        text_lines.extend(f"caveat: {_plain(c.get('summary'))}" for c in caveats)
    diff = v.get("differential")
    if isinstance(diff, Mapping) and _plain(diff.get("text")):
        ref = _plain(diff.get("reference_batch"))
        rows.append(("Against a healthy batch", _e(_plain(diff.get("text")))
                     + (f" <span class='hf-muted'>(reference <code>{_e(ref)}</code>)</span>" if ref else "")))
    extra = {k: val for k, val in v.items() if k not in _KNOWN_FIELDS and val not in (None, [], {}, "")}
    for k, val in extra.items():  # fields added by newer kits: shown as they are
        shown = _plain(val)
        rows.append((k.replace("_", " "), _e(shown if len(shown) <= 600 else shown[:599] + "…")))
    meta = " · ".join(x for x in (
        f"flow <b>{_e(flow)}</b>" if flow else "",
        f"requested id <code>{_e(v.get('requested_id'))}</code>"
        if v.get("requested_id") and v.get("requested_id") != v.get(F.BATCH_ID) else "",
        f"collected {_e(v.get('collected_at'))}" if v.get("collected_at") else "") if x)
    body = (f"<div class='hf-card' id='hf-verdict' style='--hf-c:{colour}'>"
            f"<h2><span class='hf-badge' style='background:{colour}'>{_e(status)}</span>"
            f"Batch <code>{_e(batch)}</code></h2>"
            f"<div class='hf-muted'>{meta}</div>{root_html}<div class='hf-grid'>"
            + "".join(f"<div>{_e(k)}</div><div>{val}</div>" for k, val in rows) + "</div></div>")
    return Html(body, "\n".join(text_lines))


def parameters_table(**params: Any) -> Html:
    """The run's parameters once, as a small two-column table (``None`` shown as *default*)."""
    rows = "".join(f"<tr><th class='hf-rowhead'>{_e(k)}</th><td><code>{_e(val) if val is not None else 'default'}"
                   "</code></td></tr>"
                   for k, val in params.items())
    return Html(f"<table class='hf-table hf-params'>{rows}</table>",
                "\n".join(f"{k} = {val!r}" for k, val in params.items()))


_LONG_TOKEN = re.compile(r"\S{24,}")


def _wrap_html(value: Any) -> str:
    """``value`` escaped, with long tokens (topics, ids, refs, paths) allowed to wrap after their dots,
    dashes, underscores and slashes (``<wbr>``: copying the text copies it unchanged) instead of
    widening the table past the page."""
    text = _plain(value)
    out: list[str] = []
    last = 0
    for m in _LONG_TOKEN.finditer(text):
        out.append(html.escape(text[last:m.start()], quote=True))
        out.append("<wbr>".join(html.escape(p, quote=True) for p in re.split(r"(?<=[._/=#-])", m.group(0))))
        last = m.end()
    out.append(html.escape(text[last:], quote=True))
    return "".join(out)


def _cell(value: Any) -> str:
    if isinstance(value, float) and value == value and not value.is_integer():
        return _e(f"{value:.1f}")
    if value is True:
        return "<span class='hf-yes'>✓ yes</span>"
    if value is False:
        return "<span class='hf-no'>✗ no</span>"
    if isinstance(value, (list, tuple, set)):
        return "<br>".join(_wrap_html(x) for x in value)
    return _wrap_html(value)


def table(frame: pd.DataFrame | None, *, empty: str = "Nothing to show.", anchors: str | None = None,
          highlight: Iterable[int] = (), collapse: str | None = None) -> Html:
    """A frame as an HTML table whose cells wrap instead of being cut (no ``…`` at 50 characters).

    Args:
        frame: the rows; ``None`` or empty shows ``empty``.
        anchors: a column whose value becomes each row's ``id`` (so refs can link to it).
        highlight: row positions to mark (e.g. the root cause).
        collapse: when given, the table is folded under this summary line (click to expand);
            ``{n}`` in it is replaced by the row count.
    """
    if frame is None or frame.empty:
        return Html(f"<p class='hf-muted'>{_e(empty)}</p>", empty)
    marked = set(highlight)
    blank = [c for c in frame.columns if c != anchors and all(_plain(x) == "" for x in frame[c])]
    if blank and len(blank) < len(frame.columns):  # a column empty in every row says nothing
        frame = frame.drop(columns=blank)
    head = "".join(f"<th>{re.sub('_', '_<wbr>', _e(c))}</th>" for c in frame.columns)
    body = []
    for i, row in enumerate(frame.itertuples(index=False)):
        rid = f" id='{_e(_anchor(getattr(row, anchors)))}'" if anchors and anchors in frame.columns else ""
        cls = " class='hf-rootrow'" if i in marked else ""
        body.append(f"<tr{rid}{cls}>" + "".join(f"<td>{_cell(x)}</td>" for x in row) + "</tr>")
    out = (f"<div class='hf-scroll'><table class='hf-table'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
           "</tbody></table></div>")
    if blank and len(blank) < len(frame.columns) + len(blank):
        out += f"<div class='hf-muted'>Empty in every row, so not shown: {_e(', '.join(map(str, blank)))}.</div>"
    if collapse:
        out = f"<details class='hf-more'><summary>{_e(collapse.format(n=len(frame)))}</summary>{out}</details>"
    return Html(out, frame.to_string(index=False, max_colwidth=None))


def _anchor(ref: Any) -> str:
    return "hf-ref-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", _plain(ref))


def findings_table(source: Any, *, cited_refs: Iterable[str] = ()) -> Html:
    """Every finding, worst first, with the root cause marked and its place in the chain, the full
    summary (wrapped, never cut) and its evidence refs; a ref whose line is shown in the report links
    to it.

    Args:
        source: a verdict dict, a ``Verdict`` or an ``Investigation``.
        cited_refs: refs present in the report's evidence table (they become links).
    """
    v = _verdict_dict(source)
    findings = [f for f in (v.get("findings") or []) if isinstance(f, Mapping)]
    if not findings:
        return Html("<p class='hf-muted'>No findings.</p>", "No findings.")
    linked = set(cited_refs)
    root = v.get("root_cause") if isinstance(v.get("root_cause"), Mapping) else {}
    chain = [c for c in (v.get("chain") or []) if isinstance(c, Mapping)]
    root_idx = _finding_index(v, _plain(root.get("finding")), _plain(root.get("summary"))) if root else None
    chain_pos: dict[int, int] = {}
    for n, c in enumerate(chain, start=1):
        idx = _finding_index(v, _plain(c.get("finding")), _plain(c.get("summary")))
        if idx is not None:
            chain_pos.setdefault(idx, n)
    order = {"critical": 0, "error": 1, "warning": 2, "info": 3}
    ranked = sorted(range(len(findings)), key=lambda i: (
        0 if i == root_idx else 1, chain_pos.get(i, 99), order.get(_plain(findings[i].get("severity")), 4)))
    rows = []
    text = []
    for i in ranked:
        f = findings[i]
        fid = _plain(f.get("id") or f.get("finding"))
        sev = _plain(f.get("severity"))
        role = ("<b style='color:#b71c1c'>★ root cause</b>" if i == root_idx else
                f"chain #{chain_pos[i]}" if i in chain_pos else "")
        refs = []
        for ev in f.get("evidence") or []:
            ref = _plain(ev.get("ref") or (f"{ev.get('part')}#{ev.get('key')}" if ev.get("key") else ev.get("part"))
                         if isinstance(ev, Mapping) else ev)
            if not ref:
                continue
            refs.append(f"<a href='#{_e(_anchor(ref))}'><code>{_wrap_html(ref)}</code></a>" if ref in linked
                        else f"<code>{_wrap_html(ref)}</code>")
        shown = refs[:6] + ([f"<span class='hf-muted'>… {len(refs) - 6} more</span>"] if len(refs) > 6 else [])
        cls = " class='hf-rootrow'" if i == root_idx else ""
        rows.append(
            f"<tr id='{_fid(i)}'{cls}><td>{role}</td>"
            f"<td class='hf-sev' style='color:{_SEVERITY_COLOURS.get(sev, '#1f2328')}'>{_e(sev)}</td>"
            f"<td><code>{_e(fid)}</code><br><span class='hf-muted'>{_e(f.get('title'))}</span></td>"
            f"<td>{_wrap_html(f.get('summary'))}</td><td>{'<br>'.join(shown)}</td></tr>")
        text.append(f"{'*' if i == root_idx else ' '} {sev:8} {fid}: {_plain(f.get('summary'))}")
    return Html("<table class='hf-table'><colgroup><col style='width:95px'><col style='width:70px'>"
                "<col style='width:230px'><col><col style='width:330px'></colgroup><thead><tr><th>role</th>"
                "<th>severity</th><th>finding</th><th>what it says</th><th>evidence</th></tr></thead><tbody>"
                + "".join(rows) + "</tbody></table>",
                "\n".join(text))


def completeness_table(frame: pd.DataFrame | None) -> Html:
    """Per-source completeness: folded when every source is complete, else open with the partial and
    missing sources first (they are what the reader must know)."""
    if frame is None or frame.empty:
        return Html("<p class='hf-no'>No completeness information: treat every conclusion as unverified.</p>",
                    "No completeness information.")
    col = "completeness" if "completeness" in frame.columns else None
    if col is None:
        return table(frame)
    bad = frame[frame[col].astype(str) != "complete"]
    if bad.empty:
        return table(frame, collapse=f"All {len(frame)} sources in the bundle complete: show them")
    ordered = pd.concat([bad, frame[frame[col].astype(str) == "complete"]])
    return table(ordered.reset_index(drop=True), highlight=range(len(bad)))


def _drift_row(scan: ScanOverview | None) -> tuple[str, str] | None:
    """The overview card's one "Enum drift" row (html, text) for a scan whose enums drifted, else ``None``."""
    from .scan import drift_summary

    if scan is None or not scan.enum_drift:
        return None
    items = [drift_summary(d) for d in scan.enum_drift]
    nr = f"; enums not read: {', '.join(scan.enums_not_read)}" if scan.enums_not_read else ""
    html = ("<br>".join(f"<code>{_e(x)}</code>" for x in items)
            + "<br><small>database enum labels against the model's declared ones; marks no batch stuck, but a "
              "batch reaching a step that writes a missing label fails there" + _e(nr) + "</small>")
    return html, " | ".join(items) + nr


def overview_card(overview: pd.DataFrame | ScanOverview | None) -> Html:
    """The answer first for a whole bundle: how many batches are stuck, the root causes that hold them,
    the longest wait, and the batch to open first.

    Args:
        overview: the frame of :func:`huledu_forensics.overview.batch_overview` (any of its columns may be
            absent; a status that is not known is counted as *unknown*), or the
            :class:`~huledu_forensics.overview.ScanOverview` of ``scan_overview``: then the card also says
            how many batches were scanned, which were investigated and how many were not assessed.
    """
    from .overview import ScanOverview  # not at import: it loads the investigation and plotly

    scan = overview if isinstance(overview, ScanOverview) else None
    scanned = scan.scanned if scan is not None else None
    unread = list(scan.warnings) if scan is not None else []
    not_assessed = scan.not_assessed_count if scan is not None else 0
    states = ", ".join(f"<code>{_e(s)}</code> {n}" for s, n in scan.not_assessed.items()) if scan is not None else ""
    states_text = ", ".join(f"{s} {n}" for s, n in scan.not_assessed.items()) if scan is not None else ""
    frame: pd.DataFrame | None = scan.frame if scan is not None else cast("pd.DataFrame | None", overview)
    overview = frame
    drift = _drift_row(scan)
    if overview is not None and overview.empty and (unread or not_assessed):  # proves no batch healthy
        why = ([("not every source could be read: " + "; ".join(f"<code>{_e(w)}</code>" for w in unread),
                 "unknown: " + "; ".join(unread))] if unread else [])
        why += ([(f"<b>{not_assessed}</b> batch(es) are in a state the model does not describe as a step "
                  f"({states}), so the scan did not assess them",
                  f"{not_assessed} not assessed ({states_text})")] if not_assessed else [])
        colour = _STATUS_COLOURS.get("unknown", "#757575")
        return Html(f"<div class='hf-card' id='hf-verdict' style='--hf-c:{colour}'><h2><span class='hf-badge' "
                    f"style='background:{colour}'>unknown</span>No stuck batch found in the sources read</h2>"
                    f"The scan examined <b>{scanned or 0}</b> batch(es), but "
                    + "; and ".join(h for h, _t in why) + ". Those batches are unknown, not healthy."
                    + (f"<div class='hf-grid'><div>Enum drift</div><div>{drift[0]}</div></div>" if drift else "")
                    + "</div>",
                    f"scanned {scanned or 0} batches, none stuck in the sources read; "
                    + "; ".join(t for _h, t in why) + (f"\nenum drift: {drift[1]}" if drift else ""))
    if overview is not None and overview.empty and isinstance(scanned, int) and scanned:
        colour = _STATUS_COLOURS.get("healthy", "#2e7d32")
        return Html(f"<div class='hf-card' id='hf-verdict' style='--hf-c:{colour}'><h2><span class='hf-badge' "
                    f"style='background:{colour}'>healthy</span>No batch stuck</h2>The scan examined "
                    f"<b>{scanned}</b> batch(es); none is past its step's expected dwell or failed."
                    + (f"<div class='hf-grid'><div>Enum drift</div><div>{drift[0]}</div></div>" if drift else "")
                    + "</div>",
                    f"scanned {scanned} batches, none stuck" + (f"\nenum drift: {drift[1]}" if drift else ""))
    if overview is None or overview.empty:
        return Html("<div class='hf-card'><h2>No batches</h2>The bundle holds no batch.</div>", "No batches.")
    statuses = [(_plain(s) or "unknown") for s in overview.get("status", pd.Series(["unknown"] * len(overview)))]
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    worst = next((s for s in ("stuck", "failed", "degraded", "unknown", "waiting", "healthy") if s in counts),
                 statuses[0])
    colour = _STATUS_COLOURS.get(worst, "#ef6c00")
    rows: list[tuple[str, str]] = [("Batches", " · ".join(f"<b>{n}</b> {_e(s)}" for s, n in sorted(
        counts.items(), key=lambda kv: -kv[1])))]
    text = [f"{len(overview)} batches: " + ", ".join(f"{n} {s}" for s, n in counts.items())]
    if "root_cause" in overview.columns:
        causes = overview["root_cause"].dropna().astype(str)
        causes = causes[causes != ""]
        if not causes.empty:
            top = causes.value_counts()
            rows.append(("Root causes", "<br>".join(f"<code>{_e(c)}</code> — {n} batch(es)" for c, n in top.items())))
            text.append("root causes: " + ", ".join(f"{c} ({n})" for c, n in top.items()))
    first = overview.iloc[0]
    if _plain(first.get(F.BATCH_ID)):
        waited = _duration(first.get("waited_s"))
        rows.append(("Open first", f"<code>{_e(first.get(F.BATCH_ID))}</code> — {_e(first.get('status'))}"
                     + (f" in <code>{_e(first.get('current_state'))}</code>" if _plain(first.get("current_state")) else "")
                     + (f" for <b>{_e(waited)}</b>" if waited else "")
                     + (f", waiting for <code>{_e(first.get('awaited_event'))}</code>"
                        if _plain(first.get("awaited_event")) else "")))
        text.append(f"open first: {first.get(F.BATCH_ID)}")
    if isinstance(scanned, int):  # from a scan: only its stuck batches are rows
        of_them = f", {counts['unknown']} of them unknown" if counts.get("unknown") else ""
        unassessed = (f", <b>{not_assessed}</b> not assessed (a state the model does not describe: {states}; "
                      "neither stuck nor healthy)" if not_assessed else "")
        rows.insert(0, ("Scanned", f"<b>{scanned}</b> batch(es), <b>{len(overview)}</b> stuck{of_them}{unassessed}"))
        text.insert(0, f"scanned {scanned} batches, {len(overview)} stuck{of_them}"
                    + (f", {not_assessed} not assessed ({states_text})" if not_assessed else ""))
    if "root_cause_of" in overview.columns:
        investigated = int((overview["root_cause_of"] == overview[F.BATCH_ID]).sum())
        shared = int(((overview["root_cause_of"] != overview[F.BATCH_ID]) & (overview["root_cause_of"] != "")).sum())
        groups = scan.groups if scan is not None else None
        per = ("one per signature group" if not isinstance(groups, int) or investigated >= groups
               else f"one for each of {investigated} of the {groups} signature groups")
        rows.append(("Investigated", f"<b>{investigated}</b> batch(es), {per}"
                     + (f"; the other {shared} share their group's signature and root cause and were not "
                        "investigated themselves" if shared else "")
                     if investigated else "none: no evidence bundle, the scan's error class stands in"))
        text.append(f"investigated {investigated} batch(es), {per}")
    if unread:
        rows.append(("Not read", "<span class='hf-no'>the scan is partial</span>: "
                     + "; ".join(f"<code>{_e(w)}</code>" for w in unread)
                     + ". Batches those sources would show are missing or <b>unknown</b> here."))
        text.append("scan partial: " + "; ".join(unread))
    if drift:
        rows.append(("Enum drift", drift[0]))
        text.append(f"enum drift: {drift[1]}")
    unknown = counts.get("unknown", 0)
    if unknown:
        rows.append(("Evidence", f"<span class='hf-no'>{unknown} batch(es) could not be "
                     f"{'classified or ' if isinstance(scanned, int) else ''}investigated</span> (see "
                     f"{'<code>root_cause</code> and ' if isinstance(scanned, int) else ''}<code>error</code> below): their status "
                     "is unknown, not healthy."))
    body = (f"<div class='hf-card' id='hf-verdict' style='--hf-c:{colour}'>"
            f"<h2><span class='hf-badge' style='background:{colour}'>{_e(worst)}</span>"
            f"{len(overview)} {'stuck ' if isinstance(scanned, int) else ''}batch(es) in the bundle</h2>"
            "<div class='hf-grid'>"
            + "".join(f"<div>{_e(k)}</div><div>{val}</div>" for k, val in rows) + "</div></div>")
    return Html(body, "\n".join(text))
