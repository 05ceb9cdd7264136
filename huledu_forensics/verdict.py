"""The verdict: healthy or stuck, where, waiting for what, the root cause and the causal chain."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from . import _fields as F
from ._version import __version__
from .model import DATABASES
from .progress import Progress
from .rules import Finding
from .scope import Scope

__all__ = ["LINK_STRENGTH", "Verdict", "build_verdict", "causal_order", "explained_by"]

# How strongly a finding is tied to this batch (``facts["link"]``, default "batch": the rule read the
# batch's own rows, lines or handling runs). Only linked findings may be the root cause; a finding
# linked only through the awaited transition (enum drift no write of this batch hit) ranks below
# direct evidence.
LINK_STRENGTH = {"batch": 3, "path": 2, "awaited": 1, "none": 0}
_SEV_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}


def _graph() -> dict[str, tuple[str, ...]]:
    from .rules._engine import explains_graph
    return explains_graph()


def explained_by() -> dict[str, set[str]]:
    """Rule id -> the rule ids that can explain it, transitively (from the rules' ``explains``)."""
    g = _graph()
    out: dict[str, set[str]] = {k: set() for k in g}
    for cause in g:
        stack, seen = list(g[cause]), set()
        while stack:
            e = stack.pop()
            if e in seen:
                continue
            seen.add(e)
            out.setdefault(e, set()).add(cause)
            stack.extend(g.get(e, ()))
    return out


def causal_order() -> list[str]:
    """Every rule id, causes before the effects they explain (registry order breaks ties)."""
    g = _graph()
    ids = list(g)
    indeg = {i: 0 for i in ids}
    for c in ids:
        for e in g[c]:
            indeg[e] = indeg.get(e, 0) + 1
    out: list[str] = []
    ready = [i for i in ids if indeg[i] == 0]
    while ready:
        n = ready.pop(0)
        out.append(n)
        for e in g.get(n, ()):
            indeg[e] -= 1
            if indeg[e] == 0:
                ready.append(e)
        ready.sort(key=ids.index)
    return out + [i for i in ids if i not in out]  # a cycle would be a modelling error


def _link(f: Finding) -> int:
    return LINK_STRENGTH.get(str(f.facts.get("link", "batch")), 0)


@dataclass
class Verdict:
    """The machine-readable conclusion of an investigation (``verdict.json``)."""

    data: dict[str, object]
    findings: list[Finding] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The verdict as a JSON-ready dict."""
        return self.data

    def write(self, path: str | Path) -> Path:
        """Write ``verdict.json`` atomically. Returns the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        os.replace(tmp, p)
        return p

    @property
    def healthy(self) -> bool:
        """Whether the batch is healthy (no finding of warning severity or above but caveats, not stuck)."""
        return bool(self.data.get("healthy"))

    def summary_text(self) -> str:
        """A short human summary, a few lines."""
        d = self.data
        lines = [f"batch {d.get(F.BATCH_ID)} ({d.get('flow')}): {str(d.get('status')).upper()}"]
        lines.append(f"  state: {d.get('current_state')} (step {d.get('current_step')})")
        if d.get("awaited_event"):
            aw = cast(dict[str, Any], d.get("awaited") or {})
            checks = " ".join(f"{k}={'yes' if aw.get(k) else ('no' if aw.get(k) is False else '?')}"
                              for k in ("produced", "published", "consumed"))
            if aw.get("outcome") not in (None, "handled"):
                checks += f" ({aw.get('outcome')}: {aw.get('outcome_cause')})"
            lines.append(f"  waiting for: {d.get('awaited_event')} [{checks}]"
                         + (f", {aw.get('waited_s'):.0f} s" if aw.get("waited_s") is not None else ""))
        rc = d.get("root_cause")
        if isinstance(rc, dict):
            lines.append(f"  root cause: [{rc.get('finding')}] {rc.get('summary')}")
        elif d.get("status") == "stuck":  # stuck, and nothing found explains it: say so, not silence
            lines.append("  root cause: unknown (no evidence in the bundle explains the wait)")
        chain = d.get("chain") or []
        if isinstance(chain, list) and len(chain) > 1:
            lines.append("  chain: " + " -> ".join(str(c.get("finding")) for c in chain))
        # a caveat is printed when no root cause was found (a healthy batch, or one whose wait nothing
        # explains); beside a root cause it stays in verdict.json and the findings
        if not isinstance(rc, dict):
            for c in cast(list[dict[str, Any]], d.get("caveats") or []):
                lines.append(f"  caveat: [{c.get('finding')}] {c.get('summary')}")
        incomplete = [k for k, v in cast(dict[str, Any], d.get("completeness") or {}).items() if v != "complete"]
        if incomplete:
            lines.append("  evidence incomplete: " + ", ".join(incomplete))
        return "\n".join(lines)


# The rule that answers each stage of the awaited event's life: when progress leaves the stage
# unknown (its evidence is not in the bundle), that rule could not decide.
_STAGE_RULES = {"produced": "event.not_produced", "published": "event.not_published",
                "consumed": "event.not_consumed"}
# Facts that name the one thing a finding is about: a cause explains an effect only when they agree
# on it (a poisoned outbox row explains only its own row's non-publication, not a sibling's). A
# fact may hold one value or a list.
IDENTITY_FACTS = ("outbox_id",)


def _undecided(progress: Progress, not_evaluated: list[dict[str, str]]) -> set[str]:
    """The rules that could not decide: not evaluated (a source missing), or the awaited event's
    stage they answer left unknown by the evidence."""
    out = {str(n.get("rule")) for n in not_evaluated}
    aw = progress.awaited
    if aw is not None and aw.topic is not None:
        out |= {r for stage, r in _STAGE_RULES.items() if getattr(aw, stage) is None}
    return out


def _same_subject(cause: Finding, effect: Finding) -> bool:
    def ids(f: Finding, k: str) -> set[str]:
        v = f.facts.get(k)
        return {str(x) for x in v} if isinstance(v, (list, tuple, set)) else {str(v)} if v else set()
    return all(not ids(cause, k) or not ids(effect, k) or ids(cause, k) & ids(effect, k)
               for k in IDENTITY_FACTS)


def _reached(cause: Finding, findings: list[Finding]) -> set[int]:
    """The findings (by ``id()``) that ``cause`` explains: along the rules' ``explains``, through rules
    that did not fire (steps not observed), and through a finding that did only when it is about the
    same subject; a path stops at a finding about something else."""
    g = _graph()
    by_rule: dict[str, list[Finding]] = {}
    for f in findings:
        by_rule.setdefault(f.id, []).append(f)
    out: set[int] = set()
    seen: set[tuple[str, int]] = set()
    stack: list[tuple[str, Finding]] = [(cause.id, cause)]
    while stack:
        rid, via = stack.pop()
        for e in g.get(rid, ()):
            found = by_rule.get(e)
            for nxt in ([f for f in found if _same_subject(via, f)] if found else [via]):
                if (e, id(nxt)) not in seen:
                    seen.add((e, id(nxt)))
                    stack.append((e, nxt))
                    if found:
                        out.add(id(nxt))
    return out


def _pick_root(findings: list[Finding], progress: Progress,
               not_evaluated: list[dict[str, str]] | None = None) -> Finding | None:
    """Among the serious, linked findings that no other serious, linked finding explains, the one with
    the strongest link to the batch; then the one that explains more of what was found, then the one
    about the awaited event, then severity, then the earliest evidence.

    A finding that a rule which could not decide might explain is an effect whose cause is unknown,
    never the root cause: with the awaited event's publication unknown, a rejected pipeline request
    says nothing about why."""
    undecided = _undecided(progress, not_evaluated or [])
    by = explained_by()
    serious = [f for f in findings if _SEV_RANK[f.severity] <= 1 and _link(f) > 0
               and not (by.get(f.id, set()) & undecided)]
    if not serious:
        return None
    relevant = [f for f in findings if _SEV_RANK[f.severity] <= 2]
    reached = {id(f): _reached(f, relevant) for f in serious}

    def covered(f: Finding) -> bool:
        # only a cause the batch actually met can explain what was observed: a write that is still
        # ahead of the batch ("awaited") explains nothing yet
        return any(o is not f and id(f) in reached[id(o)] and _link(o) >= LINK_STRENGTH["path"]
                   for o in serious)

    cands = [f for f in serious if not covered(f)] or serious
    aw_topic = progress.awaited.topic if progress.awaited else None

    def first_seen(f: Finding) -> float:
        ts = [e.ts.timestamp() for e in f.evidence if e.ts is not None]
        return min(ts) if ts else float("inf")

    def key(f: Finding) -> tuple[int, int, int, int, float]:
        reach = len({o.id for o in relevant if id(o) in reached[id(f)]})
        on_awaited = int(bool(aw_topic) and f.facts.get("topic") == aw_topic)
        # a cause shows before its effects: among equals, the earliest evidence wins
        return (-_link(f), -reach, -on_awaited, _SEV_RANK[f.severity], first_seen(f))

    return min(cands, key=key)


def _responsible(root: Finding | None, progress: Progress) -> str | None:
    """The service that failed to act: the root cause's own service fact, else the owner of the
    stage the root cause names (producer of an event not produced/published, its consumer)."""
    if root is None:
        return None
    svc = root.facts.get("service") or root.facts.get("writer")
    if isinstance(svc, str) and svc:
        return svc
    owner = DATABASES.get(str(root.facts.get("database") or ""))
    if owner is not None:  # a fault in a service's own database (a rejected value): that service
        return owner.service
    aw = progress.awaited
    if aw is not None and root.id in ("event.not_produced", "event.not_published"):
        return aw.producer
    if aw is not None:
        return aw.consumer
    return None


def build_verdict(*, scope: Scope, progress: Progress, findings: list[Finding],
                  not_evaluated: list[dict[str, str]], completeness: dict[str, str],
                  gaps: list[dict[str, str]], bundle: str, collected_at: str,
                  completeness_notes: dict[str, str] | None = None) -> Verdict:
    """Pick the root cause, order the causal chain and assemble ``verdict.json``
    (``completeness_notes``: per source that is not complete, why, in one line)."""
    root = _pick_root(findings, progress, not_evaluated)
    # a caveat (``facts["caveat"]``: a risk ahead that no evidence ties to a step of this batch, such as
    # an enum label no known step writes) neither makes a batch unhealthy nor joins its chain: the
    # verdict carries it in ``caveats`` so a healthy answer says it
    caveats = [f for f in findings if f.facts.get("caveat") and _SEV_RANK[f.severity] <= 2]
    relevant = [f for f in findings if _SEV_RANK[f.severity] <= 2 and not f.facts.get("caveat")]
    # a status the flow has no step for cannot be placed: neither healthy nor stuck on a step
    state_known = progress.current_state is not None and progress.state_on_flow
    stuck = progress.stuck or root is not None
    healthy = state_known and not relevant and not progress.stuck
    order = causal_order()
    explained = _reached(root, relevant) if root else set()
    chain_findings: list[Finding] = [root] if root else []
    unexplained: list[Finding] = []
    for f in sorted(relevant, key=lambda f: (order.index(f.id) if f.id in order else 99,
                                             _SEV_RANK[f.severity])):
        if f is root or f.id in {c.id for c in chain_findings + unexplained}:
            continue
        if id(f) in explained:
            chain_findings.append(f)
        else:
            unexplained.append(f)
    aw = progress.awaited
    status = ("healthy" if healthy else "stuck" if stuck and state_known else
              "unknown" if not state_known else "degraded")
    data: dict[str, object] = {
        "tool": "huledu-forensics",
        "tool_version": __version__,
        F.BATCH_ID: scope.batch_id,
        "requested_id": scope.requested_id,
        "flow": progress.flow if progress.flow_known else "unknown",
        "healthy": healthy,
        "status": status,
        "current_state": progress.current_state,
        "current_step": progress.current_step,
        "waited_s": progress.waited_s,
        "awaited_transition": ({"step": aw.step, "label": aw.label} if aw else None),
        "awaited_event": aw.topic if aw else None,
        "awaited": aw.to_json() if aw else None,
        "responsible_service": _responsible(root, progress),
        "root_cause": ({"finding": root.id, "severity": root.severity, "summary": root.summary,
                        "facts": root.facts} if root else None),
        "chain": [{"finding": f.id, "severity": f.severity, "summary": f.summary, "facts": f.facts}
                  for f in chain_findings],
        "unexplained": [{"finding": f.id, "severity": f.severity, "summary": f.summary}
                        for f in unexplained],
        "caveats": [{"finding": f.id, "severity": f.severity, "summary": f.summary} for f in caveats],
        "content": progress.content,
        "findings": [f.to_json() for f in findings],
        "not_evaluated": not_evaluated,
        "completeness": completeness,
        "completeness_notes": completeness_notes or {},
        "gaps": gaps,
        "scope": scope.to_json(),
        "bundle": bundle,
        "collected_at": collected_at,
    }
    return Verdict(json.loads(json.dumps(data, default=str)), findings)
