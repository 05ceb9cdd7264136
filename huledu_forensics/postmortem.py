"""The postmortem document: one Markdown file an engineer can read without opening anything else.

:func:`write_postmortem` investigates an id in a bundle and writes ``postmortem.md`` plus PNG figures
(state progress, cross-service swimlane, essays and slots) into a directory. The document follows the
shape of a hand-written incident report: title, executive summary, identifiers, key-event timeline,
the evidence chain (each finding with where its evidence sits in the bundle and the exact SQL or
``docker logs`` command that reproduces it on a live stack), root cause, impact, next steps, what
evidence was missing, and the figures.

Figures are exported with kaleido 1.x through an existing Chromium (``/usr/bin/chromium`` or the one
named by ``BROWSER_PATH``); kaleido is never allowed to download a browser. When no browser is
available the document is still written and says the figures were not rendered.

No essay text is read or written, and anything that looks like a credential is masked.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pandas as pd

from . import _fields as F
from . import model
from ._frames import is_missing
from ._version import __version__
from .bundle import Bundle
from .errors import ConfigError
from .evidence import payload, records
from .investigation import Investigation, investigate
from .model import columns as C
from .model import names as N
from .rules import Finding
from .safety import markdown_safe, printable

__all__ = ["FIGURES", "NEXT_STEPS", "POSTMORTEM_FILE", "SECTIONS", "default_id", "find_browser",
           "postmortem_markdown", "section", "section_markdown", "write_postmortem"]

log = logging.getLogger(__name__)

POSTMORTEM_FILE = "postmortem.md"
"""The Markdown file :func:`write_postmortem` writes."""

FIGURES = {"state_graph": "State machine: the implemented flow and the path this batch took",
           "swimlane": "Timeline swimlane across containers and databases",
           "essay_slots": "Essays and slots"}
"""The PNG figures (``figures/<name>.png``) and their captions."""

_BROWSERS = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

NEXT_STEPS: dict[str, str] = model.remediation.REMEDIATION
"""A short recommendation per rule id (its failure class, declared in the model), used in the Next steps
section."""

_SECRET_RES = (
    (re.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(?P<post>@)", re.I), r"\g<pre>***\g<post>"),
    (re.compile(r"(?P<pre>\b(?:password|passwd|pwd|secret|token|api[_-]?key)\s*[=:]\s*)[^\s,;'\"]+", re.I),
     r"\g<pre>***"),
)
_MAX_TIMELINE = 45
_MAX_REFS = 8


def _scrub(text: str) -> str:
    for pat, repl in _SECRET_RES:
        text = pat.sub(repl, text)
    return text


def _cell(v: object, n: int = 140) -> str:
    s = "" if v is None or (not isinstance(v, str) and is_missing(v)) else str(v)
    s = " ".join(s.split())
    if len(s) > n:
        s = s[: n - 1] + "…"
    return s.replace("|", "\\|")


def _t(v: object) -> str:
    if is_missing(v):
        return ""
    ts = pd.Timestamp(v)  # type: ignore[arg-type]
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _sql_lit(v: object) -> str:
    return "'" + printable(str(v), 200).replace("'", "''") + "'"  # one line: no fence breaks out


def default_id(bundle: str | Path | Bundle) -> str:
    """The id a bundle was collected for: the manifest scope's target batch or requested id.

    Raises:
        ConfigError: the manifest names no target; pass ``--id``.
    """
    b = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
    scope = b.manifest.get("scope") or {}
    target = scope.get("target") or {}
    for v in (target.get(F.BATCH_ID) if isinstance(target, dict) else None, scope.get("requested_id")):
        if v:
            return str(v)
    raise ConfigError(f"Bundle {b.path} names no target id in its manifest; pass --id with a batch, "
                      "correlation or essay id.")


# ---- identifiers -----------------------------------------------------------------------------------
def _correlations(inv: Investigation) -> tuple[list[str], list[str]]:
    """(registration correlation ids, pipeline-request correlation ids) of the batch."""
    ev = inv.evidence
    reg: list[str] = []
    tr = ev.tracker()
    if tr and tr.get(C.CORRELATION_ID):
        reg.append(str(tr[C.CORRELATION_ID]).lower())
    for key in (N.FILE_UPLOADS,):
        df = ev.batch_rows(key)
        if not df.empty and C.CORRELATION_ID in df.columns:
            reg += [str(c).lower() for c in df[C.CORRELATION_ID].dropna().unique()]
    reg_outbox = ev.outbox_for_batch(N.T_REGISTERED)
    for r in records(reg_outbox) if not reg_outbox.empty else []:
        c = payload(r.get(C.EVENT_DATA)).get(C.CORRELATION_ID)
        if c:
            reg.append(str(c).lower())
    reg = list(dict.fromkeys(reg))
    allc = sorted(inv.scope.ids.get("correlation", set()))
    batch = inv.scope.batch_id
    pipe = [c for c in allc if c not in reg and c != batch]
    return reg, pipe


def _identifiers(inv: Investigation) -> list[str]:
    ids = inv.scope.ids
    reg, pipe = _correlations(inv)
    lo = inv.timeline["ts"].min() if not inv.timeline.empty else None
    scoped = inv.logs["ts"] if not inv.logs.empty else pd.Series(dtype="datetime64[ns, UTC]")
    first = scoped.min() if len(scoped) else lo
    v = inv.verdict.data
    rows = [
        ("Batch id", f"`{inv.scope.batch_id}`" if inv.scope.batch_id else "not found"),
        ("Requested id", f"`{inv.scope.requested_id}` ({inv.scope.requested_kind})"),
        ("Flow", str(v.get("flow") or "?")),
        ("Registration correlation id", ", ".join(f"`{c}`" for c in reg) or "not found"),
        ("Pipeline-request correlation id(s)", ", ".join(f"`{c}`" for c in pipe) or "none (no pipeline request seen)"),
        ("Essay ids", ", ".join(f"`{e}`" for e in sorted(ids.get("essay", set()))) or "none"),
        ("Text storage ids", ", ".join(f"`{e}`" for e in sorted(ids.get("text_storage", set()))) or "none"),
        ("File upload ids", ", ".join(f"`{e}`" for e in sorted(ids.get("file_upload", set()))) or "none"),
        ("Window", f"{_t(first) or '?'} → {_t(inv.bundle.collected_at)} (collection)"
         + (f"; analysis limited to {_t(inv.window[0]) or '…'} → {_t(inv.window[1]) or '…'}"
            if any(inv.window) else "")),
        ("Bundle", f"`{inv.bundle.path}`"),
    ]
    out = ["| | |", "|---|---|"] + [f"| {k} | {val} |" for k, val in rows]
    return out


# ---- timeline --------------------------------------------------------------------------------------
def _cited(inv: Investigation) -> set[str]:
    return {str(e) for f in inv.findings for e in f.evidence}


def _key_events(inv: Investigation) -> pd.DataFrame:
    t = inv.timeline
    if t.empty:
        return t
    cited = _cited(inv)
    ref = t["ref"].astype(object).fillna("").astype(str) if "ref" in t.columns else pd.Series("", index=t.index)
    kind = t["kind"].astype(str)
    level = t["level"].astype(str)
    keyed = t[F.BATCH_ID].notna() | t[F.CORRELATION_ID].notna()
    structural = kind.isin(["row", "outbox_created", "outbox_published"]) & (
        t[F.BATCH_ID].notna() | t["topic"].notna())
    bad = level.isin(["error", "critical"])
    head_msgs = tuple(m for h in model.handlers.HANDLERS for m in h.start)
    label = t["label"].astype(object).fillna("").astype(str)
    handler_heads = (kind == "log") & keyed & (label.str.startswith(head_msgs + (N.M_PIPELINE_REQUEST,))
                                               | label.str.contains(N.M_STATUS_UPDATED, regex=False))
    keep = structural | bad | ref.isin(cited) | handler_heads
    k = t[keep].copy()
    # collapse repeats of the same label in the same lane (relay/outbox chatter)
    k = k[~(k["label"].eq(k["label"].shift()) & k["lane"].eq(k["lane"].shift()))]
    if len(k) > _MAX_TIMELINE:
        important = k[k["level"].astype(str).isin(["error", "critical"]) | k["ref"].isin(cited)]
        rest = k.drop(important.index).head(max(0, _MAX_TIMELINE - len(important)))
        k = pd.concat([important, rest]).sort_values("ts", kind="stable")
    return k


def _timeline(inv: Investigation) -> list[str]:
    k = _key_events(inv)
    if k.empty:
        return ["No timestamped evidence for this id in the bundle."]
    out = ["| Time (UTC) | Where | What | Level | Evidence |", "|---|---|---|---|---|"]
    for r in records(k):
        out.append(f"| {_t(r['ts'])} | {_cell(r['lane'], 40)} | {_cell(r['label'])} | {_cell(r['level'], 10)} "
                   f"| `{_cell(r.get('ref'), 90)}` |")
    aw = inv.progress.awaited
    if aw is not None:
        out.append(f"| {_t(inv.bundle.collected_at)} | collection | still waiting for `{aw.topic}` "
                   f"({inv.progress.waited_s or 0:.0f} s in step `{inv.progress.current_step}`) | | |")
    return out


# ---- evidence chain --------------------------------------------------------------------------------
def _chain_findings(inv: Investigation) -> list[Finding]:
    out: list[Finding] = []
    for entry in cast(list[object], inv.verdict.data.get("chain") or []):
        if not isinstance(entry, dict):
            continue
        match = [f for f in inv.findings if f.id == entry.get("finding") and f.summary == entry.get("summary")]
        match = match or [f for f in inv.findings if f.id == entry.get("finding")]
        if match and match[0] not in out:
            out.append(match[0])
    return out


def _log_row(inv: Investigation, part: str, key: str) -> dict[str, Any] | None:
    if not key.startswith("L"):
        return None
    try:
        line = int(key[1:])
    except ValueError:
        return None
    for frame in (inv.logs, inv.evidence.db_logs):
        if frame is None or frame.empty:
            continue
        hit = frame[(frame["source_file"] == part) & (frame["line_no"] == line)]
        if not hit.empty:
            return records(hit.head(1))[0]
    return None


def _batch_column(key: tuple[str, str]) -> str | None:
    spec = model.TABLES.get(key)
    if spec is None:
        return None
    cols = [c for c, kind in spec.id_columns.items() if kind == "batch"]
    return cols[0] if cols else None


def _table_sql(inv: Investigation, key: tuple[str, str], ref_key: str = "") -> str:
    db, table = key
    batch = inv.scope.batch_id
    col = _batch_column(key)
    if key[1] == model.OUTBOX_TABLE:
        topic = ref_key.partition("=")[2] if ref_key.startswith("topic=") else None
        where = [f"(aggregate_id = {_sql_lit(batch)} OR event_data->'data'->>'batch_id' = {_sql_lit(batch)})"] \
            if batch else []
        if ref_key.startswith("id="):
            where = [f"id = {_sql_lit(ref_key[3:])}"]
        if topic:
            where.append(f"topic = {_sql_lit(topic)}")
        cond = " AND ".join(where) or "TRUE"
        return (f"-- database {db}\nSELECT id, topic, aggregate_id, event_data->>'correlation_id' AS correlation_id, "
                f"created_at, published_at, retry_count, last_error\n  FROM {table}\n WHERE {cond}\n "
                "ORDER BY created_at;")
    if col and batch:
        return f"-- database {db}\nSELECT * FROM {table} WHERE {col} = {_sql_lit(batch)};"
    if key == N.SLOT_ASSIGNMENTS and inv.scope.ids.get("text_storage"):
        ids = ", ".join(_sql_lit(i) for i in sorted(inv.scope.ids["text_storage"]))
        essays = ", ".join(_sql_lit(i) for i in sorted(inv.scope.ids.get("essay", set()))) or "NULL"
        return (f"-- database {db}\nSELECT * FROM {table}\n WHERE internal_essay_id IN ({essays})"
                f" OR text_storage_id IN ({ids});")
    k, _, v = ref_key.partition("=")
    if k and v:
        return f"-- database {db}\nSELECT * FROM {table} WHERE {k} = {_sql_lit(v)};"
    return f"-- database {db}\nSELECT * FROM {table};"


def _enum_sql(db: str, enum: str) -> str:
    return (f"-- database {db}\nSELECT e.enumlabel\n  FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid\n"
            f" WHERE t.typname = {_sql_lit(enum)}\n ORDER BY e.enumsortorder;")


def _docker_logs(inv: Investigation, container: str, row: dict[str, Any] | None) -> str:
    scope_ids = inv.scope.all_ids
    needle = None
    if row is not None:
        for col in F.ID_FIELDS:
            v = row.get(col)
            if isinstance(v, str) and v.lower() in scope_ids:
                needle = v.lower()
                break
    container = shlex.quote(printable(container, 120))  # names come from the bundle: quote them
    if needle:
        return f"docker logs {container} 2>&1 | grep {shlex.quote(printable(needle, 120))}"
    msg = str((row or {}).get("message") or "").strip()
    ts = (row or {}).get("ts")
    if msg and ts is not None and not pd.isna(ts):
        t = pd.Timestamp(ts)
        lo = (t - pd.Timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        hi = (t + pd.Timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        pat = re.sub(r"[^\w .:-]", ".", msg[:60])
        return f"docker logs --timestamps --since {lo} --until {hi} {container} 2>&1 | grep '{pat}'"
    who = printable(inv.scope.batch_id or inv.scope.requested_id or "", 120)
    return f"docker logs {container} 2>&1 | grep {shlex.quote(who)}"


def _reproduce(inv: Investigation, f: Finding) -> tuple[list[str], list[str]]:
    """(SQL statements, shell commands) that show ``f``'s evidence on a live stack."""
    sql: list[str] = []
    sh: list[str] = []
    facts = f.facts or {}
    if f.id == "enum.label_missing" and facts.get("database") and facts.get("enum"):
        sql.append(_enum_sql(str(facts["database"]), str(facts["enum"])))
    if f.id == "db.enum_value_rejected" and facts.get("database"):
        db = model.DATABASES.get(str(facts["database"]))
        if db is not None and db.container:
            sh.append(f"docker logs {db.container} 2>&1 | grep -A2 '{N.M_PG_INVALID_ENUM}'")
    tables: list[tuple[tuple[str, str], str]] = []
    for e in f.evidence:
        part = e.part
        if part.startswith("tables/"):
            bits = part.split("/")
            if len(bits) >= 3:
                key = (bits[1], bits[2].rsplit(".", 1)[0])
                if key not in [k for k, _ in tables]:
                    tables.append((key, e.key))
        elif part.startswith("logs/"):
            container = part.split("/")[1]
            cmd = _docker_logs(inv, container, _log_row(inv, part, e.key))
            if cmd not in sh:
                sh.append(cmd)
    if f.id in ("tracker.registered_without_essays", "tracker.missing"):
        for key in (N.TRACKERS, N.ESSAY_STATES, N.PENDING_CONTENT):
            if key not in [k for k, _ in tables]:
                tables.append((key, ""))
    if f.id == "pending.orphaned_content":
        for key in (N.PENDING_CONTENT, N.ESSAY_STATES):
            if key not in [k for k, _ in tables]:
                tables.append((key, ""))
    for key, rk in tables:
        s = _table_sql(inv, key, rk)
        if s not in sql:
            sql.append(s)
    return sql, sh


def _where(inv: Investigation, f: Finding) -> list[str]:
    out = []
    for e in f.evidence[:_MAX_REFS]:
        row = _log_row(inv, e.part, e.key) if e.part.startswith("logs/") else None
        line = f"- `{e}`"
        if e.ts is not None:
            line += f" at {_t(e.ts)}"
        if row is not None:
            line += f": {_cell(row.get('level'), 10)} “{_cell(row.get('message'), 160)}”"
            if isinstance(row.get("error"), str) and row.get("error") and row["error"] != row.get("message"):
                line += f" (error: {_cell(row['error'], 160)})"
        out.append(line)
    if len(f.evidence) > _MAX_REFS:
        out.append(f"- … and {len(f.evidence) - _MAX_REFS} more refs")
    return out or ["- (no direct evidence ref: the finding rests on the absence of rows or lines)"]


def _healthy(inv: Investigation) -> bool:
    v = inv.verdict.data
    return v.get("status") == "healthy" or v.get("healthy") is True


def _unexplained(inv: Investigation) -> list[str]:
    """The findings of warning severity or worse that no root cause explains, as ``id`` (severity)."""
    return [f"`{f.id}` ({f.severity})" for f in inv.findings if f.severity in ("warning", "error", "critical")]


def _chain(inv: Investigation) -> list[str]:
    chain = _chain_findings(inv)
    if not chain and not _healthy(inv) and _unexplained(inv):
        return ["The root cause is unknown, so there is no causal chain. These findings stand on their own; "
                "none explains why the batch stopped: " + ", ".join(_unexplained(inv)) + "."]
    if not chain:
        return ["No finding of warning severity or worse: nothing to chain."]
    out: list[str] = []
    for i, f in enumerate(chain, start=1):
        out += [f"### {i}. {f.title} (`{f.id}`, {f.severity})", "", _cell(f.summary, 2000), "",
                "**Where (bundle refs):**", ""]
        out += _where(inv, f)
        sql, sh = _reproduce(inv, f)
        if sql or sh:
            out += ["", "**Reproduce on a live stack:**", ""]
            if sql:
                out += ["```sql", "\n\n".join(sql), "```"]
            if sh:
                out += ["```sh", "\n".join(sh), "```"]
        out.append("")
    return out


# ---- root cause, impact, next steps, missing evidence ----------------------------------------------
def _facts(facts: dict[str, Any]) -> list[str]:
    out = []
    for k, v in facts.items():
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v[:15]) + (" …" if len(v) > 15 else "")
        out.append(f"- **{k}**: `{_cell(v, 200)}`")
    return out


def _summary(inv: Investigation) -> list[str]:
    v = inv.verdict.data
    aw = inv.progress.awaited
    status = str(v.get("status"))
    head = (f"Batch `{inv.scope.batch_id}` ({v.get('flow')} flow) is **{status}** in "
            f"`{v.get('current_state')}` (step `{v.get('current_step')}`)")
    if aw is not None:
        checks = ", ".join(f"{k} {'yes' if getattr(aw, k) else ('no' if getattr(aw, k) is False else 'unknown')}"
                           for k in ("produced", "published", "consumed"))
        head += (f" and has waited {inv.progress.waited_s or 0:.0f} s"
                 + (f" (expected at most {aw.expected_dwell_s:.0f} s)" if aw.expected_dwell_s else "")
                 + f" for `{aw.topic}` from {aw.producer} to {aw.consumer} ({checks})")
    out = [head + "."]
    rc = v.get("root_cause")
    if isinstance(rc, dict):
        out += ["", f"**Root cause** (`{rc.get('finding')}`): {_cell(rc.get('summary'), 3000)}"]
        chain = [c.get("finding") for c in cast(list[object], v.get("chain") or []) if isinstance(c, dict)]
        if len(chain) > 1:
            out += ["", "**Chain:** " + " → ".join(f"`{c}`" for c in chain)]
    elif status == "healthy":
        out += ["", "No fault was found: every step the batch reached completed within its expected dwell."]
    else:
        out += ["", "**Root cause: unknown.** No finding explains the state on its own; see the evidence chain "
                "and missing evidence."]
    notes = {}
    if inv.completeness is not None and not inv.completeness.empty:
        notes = {str(r["source"]): str(r.get("warnings") or "") for r in records(inv.completeness)}
    incomplete = [k + (f" — {_cell(notes[k], 200)}" if notes.get(k) else "")
                  for k, s in cast(dict[str, object], v.get("completeness") or {}).items() if s != "complete"]
    if incomplete:
        out += ["", f"**Evidence incomplete** ({', '.join(incomplete)}): the conclusion may be wrong."]
    return out


def _root(inv: Investigation) -> list[str]:
    chain = _chain_findings(inv)
    rc = inv.verdict.data.get("root_cause")
    if (not isinstance(rc, dict) or not chain) and not _healthy(inv):
        return ["**Unknown.** Nothing in the evidence explains why the batch stopped, and the kit does not "
                "guess. *Missing evidence* below names the sources that were partial or missing and the "
                "rules that could not run."]
    if not isinstance(rc, dict) or not chain:
        return ["No root cause: no finding of error severity or worse."]
    f = chain[0]
    out = [f"**{f.title}** (`{f.id}`, {f.severity}).", "", _cell(f.summary, 3000), "", "Facts:", ""]
    out += _facts(f.facts)
    if len(chain) > 1:
        out += ["", "The other findings follow from it, in causal order: "
                + " → ".join(f"`{c.id}`" for c in chain[1:]) + "."]
    return out


def _impact(inv: Investigation) -> list[str]:
    p = inv.progress
    v = inv.verdict.data
    essays = p.essays
    n_rows = int(essays["has_row"].sum()) if not essays.empty and "has_row" in essays.columns else 0
    out = [f"- This batch: **{v.get('status')}** in `{p.current_state}`"
           + (f" for {p.waited_s:.0f} s" if p.waited_s else "") + "; its user gets no results until it moves on.",
           f"- Essays: {len(essays)} expected, {n_rows} with an ELS `essay_states` row; "
           f"{len(p.pending)} piece(s) of content parked in pending storage."]
    rc = v.get("root_cause")
    facts = rc.get("facts") if isinstance(rc, dict) else None
    if isinstance(facts, dict) and facts.get("rejections"):
        out.append(f"- PostgreSQL rejected the value {facts['rejections']} time(s) in the window, "
                   f"{facts.get('linked_rejections', 0)} of them next to this batch's errors: other batches "
                   "written in the same window are hit by the same fault (list them with the stuck_batches "
                   "notebook).")
    others = sorted(inv.scope.other_batches)
    if others:
        out.append(f"- {len(others)} other batch(es) share ids with this one: "
                   + ", ".join(f"`{b}`" for b in others[:5]))
    return out


def _co_critical(inv: Investigation, chain: list[Finding]) -> list[Finding]:
    """Critical findings outside the chain that co-occur with it (e.g. the other drifted enum labels:
    fixing only the chain's label would let the next one stop the batch again)."""
    return [f for f in inv.findings if f.severity == "critical" and all(f is not c for c in chain)]


def _next_step_text(f: Finding) -> str:
    text = NEXT_STEPS.get(f.id)
    if text is None:
        return f"{_cell(f.title, 200)}: see its evidence in the chain above and fix what it names."
    if f.id == "enum.label_missing":
        text = text.replace("<enum>", str(f.facts.get("enum", "<enum>"))).replace(
            "<label>", str(f.facts.get("missing_value", "<label>")))
        text = text.rstrip(".") + f" (database `{f.facts.get('database')}`)."
    return text


def _next_steps(inv: Investigation) -> list[str]:
    """One step per finding of the chain (cause first) and per co-occurring critical finding; a step
    whose text repeats an earlier one (same rule, same facts) is not repeated. Co-occurring findings of
    the root cause's own rule (e.g. the other drifted enum labels) come right after it: one fix."""
    chain = _chain_findings(inv)
    if not chain and not _healthy(inv):
        return ["1. **The cause is unknown** — collect what *Missing evidence* names (or, when nothing is "
                "missing, the logs of the services on the awaited event's path) and run the report again.",
                "2. Meanwhile read the findings the verdict lists, in the evidence chain section: they show "
                "where the batch stands, not why it stopped. Do not act on a guess."]
    if not chain:
        return ["- Nothing to fix. Keep the bundle if the batch was reported as stuck: the report may be "
                "about a different id or a later moment."]
    also = _co_critical(inv, chain)
    same = [f for f in also if f.id == chain[0].id]
    ordered = [(chain[0], "root")] + [(f, "same") for f in same] + [(f, "chain") for f in chain[1:]] + \
        [(f, "also") for f in also if f not in same]
    out: list[str] = []
    seen: set[tuple[str, str]] = set()
    for f, role in ordered:
        text = _next_step_text(f)
        if (f.id, text) in seen:
            continue
        seen.add((f.id, text))
        if role == "same" and f.id == "enum.label_missing":
            enum, label = f.facts.get("enum", "<enum>"), f.facts.get("missing_value", "<label>")
            db = f.facts.get("database")
            where = "the same migration" if db == chain[0].facts.get("database") else \
                "a migration of the service that owns that database"
            text = (f"`{enum}` lacks `{label}` too (database `{db}`): add it in {where} "
                    f"(`ALTER TYPE {enum} ADD VALUE IF NOT EXISTS '{label}'`).")
        mark = {"root": "**Root cause** — ", "same": "**Same fault, also critical** — ",
                "also": "**Also critical (co-occurring, outside the chain)** — "}.get(role, "")
        out.append(f"{len(out) + 1}. {mark}`{f.id}`: {text}")
    return out


def _missing(inv: Investigation) -> list[str]:
    out = []
    comp = inv.completeness
    if comp is not None and not comp.empty:
        for r in records(comp[comp["completeness"] != "complete"]):
            out.append(f"- `{r['source']}`: {r['completeness']}" + (f" — {_cell(r['warnings'], 200)}"
                                                                    if r.get("warnings") else ""))
    for g in inv.bundle.gaps or []:
        out.append(f"- gap: {_cell(', '.join(f'{k}={v}' for k, v in g.items()), 200)}")
    for ne in inv.not_evaluated or []:
        out.append(f"- rule `{ne.get('rule') or ne.get('id')}` not evaluated: {_cell(ne.get('reason') or ne, 200)}")
    return out or ["Nothing: every source the kit expects was collected complete, and every rule ran."]


_CHAIN_INTRO = ("Each finding of the verdict's causal chain, cause first: what it says, where its evidence "
                "sits in the bundle, and how to see the same evidence on a live stack.")

SECTIONS: dict[str, tuple[str, Any]] = {
    "summary": ("Executive summary", _summary),
    "identifiers": ("Identifiers", _identifiers),
    "timeline": ("Timeline (key events, UTC)", _timeline),
    "chain": ("Evidence chain", lambda inv: [_CHAIN_INTRO, ""] + _chain(inv)),
    "root_cause": ("Root cause", _root),
    "impact": ("Impact", _impact),
    "next_steps": ("Next steps", _next_steps),
    "missing": ("Missing evidence", _missing),
}
"""The sections of the postmortem, in order: name → (heading, renderer)."""


def section_markdown(inv: Investigation, name: str) -> str:
    """One section of the postmortem as Markdown (``## heading`` and body); see :data:`SECTIONS`.

    Raises:
        ConfigError: ``name`` is not a section.
    """
    if name not in SECTIONS:
        raise ConfigError(f"No postmortem section '{name}'. Use one of: {', '.join(SECTIONS)}.")
    heading, render = SECTIONS[name]
    # markdown_safe: row values and log text are untrusted; no HTML, link or control character passes
    return _scrub(markdown_safe("\n".join([f"## {heading}", ""] + list(render(inv))).rstrip()) + "\n")


def section(inv: Investigation, name: str) -> Any:
    """One section of the postmortem for display in a notebook (an ``IPython.display.Markdown``)."""
    from IPython.display import Markdown

    return Markdown(section_markdown(inv, name))


def postmortem_markdown(inv: Investigation, figures: dict[str, str] | None = None,
                        figure_error: str | None = None) -> str:
    """Render the postmortem of an investigation as Markdown (``figures``: name → relative path)."""
    v = inv.verdict.data
    title = markdown_safe(f"# Postmortem: {v.get('flow')} batch `{inv.scope.batch_id}` {v.get('status')} in "
                          f"`{v.get('current_state')}`")
    lines = [title, "",
             f"_Generated by huledu-forensics {__version__} from the evidence bundle `{markdown_safe(str(inv.bundle.path))}` "
             f"(collected {_t(inv.bundle.collected_at)}). Refs like `logs/<container>/<stream>.log#L<n>` and "
             "`tables/<db>/<table>.parquet#<key>` point into that bundle. Times are UTC._", ""]
    for name in SECTIONS:
        lines += [section_markdown(inv, name)]
    lines += ["## Figures", ""]
    if figures:
        for name, rel in figures.items():
            lines += [f"### {FIGURES.get(name, name)}", "", f"![{FIGURES.get(name, name)}]({rel})", ""]
    else:
        lines += [markdown_safe(f"Figures were not rendered: {figure_error or 'disabled'}. Run the "
                                "batch_investigation notebook on the bundle for the interactive views."), ""]
    return _scrub("\n".join(lines).rstrip() + "\n")


# ---- figures ---------------------------------------------------------------------------------------
def find_browser() -> str | None:
    """The Chromium kaleido should drive: ``BROWSER_PATH`` if set, else a system Chromium/Chrome."""
    env = os.environ.get("BROWSER_PATH")
    if env and Path(env).is_file():
        return env
    for name in _BROWSERS:
        p = name if os.path.isabs(name) else shutil.which(name)
        if p and Path(p).is_file() and os.access(p, os.X_OK):
            return p
    return None


@contextlib.contextmanager
def _browser_env(path: str) -> Iterator[None]:
    from .safety import child_env

    old = os.environ.get("BROWSER_PATH")
    os.environ["BROWSER_PATH"] = path
    # the browser inherits this process's environment: hold every secret back while it runs
    hidden = {k: v for k, v in os.environ.items() if k not in child_env()}
    for k in hidden:
        del os.environ[k]
    try:
        yield
    finally:
        os.environ.update(hidden)
        if old is None:
            os.environ.pop("BROWSER_PATH", None)
        else:
            os.environ["BROWSER_PATH"] = old


def _write_figures(inv: Investigation, fig_dir: Path) -> dict[str, Path]:
    from . import plots

    try:
        import kaleido  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("kaleido is not installed (pip install 'kaleido>=1,<2')") from exc
    import plotly.io as pio

    browser = find_browser()
    if browser is None:
        raise RuntimeError("no Chromium found (apt-get install -y chromium, or set BROWSER_PATH)")
    figs = {"state_graph": plots.state_graph(inv), "swimlane": plots.swimlane(inv),
            "essay_slots": plots.essay_slots(inv)}
    figs["swimlane"].update_layout(updatemenus=[])  # a PNG has no buttons; it shows the incident window
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: fig_dir / f"{name}.png" for name in figs}
    sizes = {"state_graph": (1400, 420), "swimlane": (1400, 760), "essay_slots": (1000, 520)}
    with _browser_env(browser):
        pio.write_images(list(figs.values()), [str(p) for p in paths.values()], format="png",
                         width=[sizes[n][0] for n in figs], height=[sizes[n][1] for n in figs])
    return paths


def write_postmortem(bundle: str | Path | Bundle, any_id: str | None, out_dir: str | Path, *,
                     since: datetime | str | None = None, until: datetime | str | None = None,
                     figures: bool = True) -> Path:
    """Investigate ``any_id`` in ``bundle`` and write ``postmortem.md`` (and ``figures/*.png``) to ``out_dir``.

    Args:
        bundle: a bundle directory or an opened bundle.
        any_id: a batch, correlation or essay id; ``None`` = the bundle's target (:func:`default_id`).
        out_dir: the directory to write into (created).
        since / until: optional analysis window (aware datetimes or ISO text).
        figures: render the PNG figures (needs kaleido and a Chromium; on failure the document says so).

    Returns:
        The path of ``postmortem.md``.

    Raises:
        BundleNotFound, BundleInvalid: the bundle cannot be read.
        ConfigError: no id given and the bundle names no target.
        ScopeError: nothing in the bundle mentions ``any_id``.
    """
    b = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
    target = any_id if any_id else default_id(b)
    inv = investigate(b, target, since=since, until=until)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rel: dict[str, str] = {}
    err: str | None = None
    if figures:
        try:
            paths = _write_figures(inv, out / "figures")
            rel = {n: p.relative_to(out).as_posix() for n, p in paths.items()}
        except Exception as exc:  # noqa: BLE001 - the document is worth having without its figures
            err = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("postmortem figures not rendered: %s", err)
    text = postmortem_markdown(inv, rel, err)
    path = out / POSTMORTEM_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
