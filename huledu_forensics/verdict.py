"""The verdict: healthy or stuck, where, waiting for what, the root cause and the causal chain."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ._version import __version__
from .progress import Progress
from .rules import Finding
from .scope import Scope

__all__ = ["CAUSAL_ORDER", "ROOT_CAUSE_PRECEDENCE", "Verdict", "build_verdict"]

# Which finding explains the others: the first present (severity error or worse) is the root cause.
ROOT_CAUSE_PRECEDENCE = (
    "enum.label_missing",
    "outbox.poisoned",
    "validation.failures_block_completion",
    "db.enum_value_rejected",
    "tracker.missing",
    "tracker.registered_without_essays",
    "consumer.handler_failed",
    "outbox.unpublished",
    "event.not_consumed",
    "event.not_published",
    "event.not_produced",
    "pending.orphaned_content",
    "pipeline.request_rejected",
    "state.dwell_exceeded",
)

# How the consequences follow each other, cause first.
CAUSAL_ORDER = (
    "enum.label_missing",
    "db.enum_value_rejected",
    "consumer.handler_failed",
    "tracker.missing",
    "tracker.registered_without_essays",
    "pending.orphaned_content",
    "validation.failures_block_completion",
    "outbox.poisoned",
    "outbox.unpublished",
    "event.not_produced",
    "event.not_published",
    "event.not_consumed",
    "pipeline.request_rejected",
    "state.dwell_exceeded",
)
_SEV_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}


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
        """Whether the batch is healthy (no finding of warning severity or above, not stuck)."""
        return bool(self.data.get("healthy"))

    def summary_text(self) -> str:
        """A short human summary, a few lines."""
        d = self.data
        lines = [f"batch {d.get('batch_id')} ({d.get('flow')}): {str(d.get('status')).upper()}"]
        lines.append(f"  state: {d.get('current_state')} (step {d.get('current_step')})")
        if d.get("awaited_event"):
            aw = d.get("awaited") or {}
            checks = " ".join(f"{k}={'yes' if aw.get(k) else ('no' if aw.get(k) is False else '?')}"
                              for k in ("produced", "published", "consumed"))
            lines.append(f"  waiting for: {d.get('awaited_event')} [{checks}]"
                         + (f", {aw.get('waited_s'):.0f} s" if aw.get("waited_s") is not None else ""))
        rc = d.get("root_cause")
        if isinstance(rc, dict):
            lines.append(f"  root cause: [{rc.get('finding')}] {rc.get('summary')}")
        chain = d.get("chain") or []
        if isinstance(chain, list) and len(chain) > 1:
            lines.append("  chain: " + " -> ".join(str(c.get("finding")) for c in chain))
        incomplete = [k for k, v in (d.get("completeness") or {}).items() if v != "complete"]
        if incomplete:
            lines.append("  evidence incomplete: " + ", ".join(incomplete))
        return "\n".join(lines)


def _pick_root(findings: list[Finding]) -> Finding | None:
    serious = [f for f in findings if _SEV_RANK[f.severity] <= 1]
    if not serious:
        return None

    def key(f: Finding) -> tuple[int, int, int, int]:
        prec = ROOT_CAUSE_PRECEDENCE.index(f.id) if f.id in ROOT_CAUSE_PRECEDENCE else 99
        linked = -int(bool(f.facts.get("linked_rejections") or 0))
        step_order = int(f.facts.get("step_index", 0) or 0)
        return (prec, linked, step_order, _SEV_RANK[f.severity])

    return sorted(serious, key=key)[0]


def build_verdict(*, scope: Scope, progress: Progress, findings: list[Finding],
                  not_evaluated: list[dict[str, str]], completeness: dict[str, str],
                  gaps: list[dict[str, str]], bundle: str, collected_at: str) -> Verdict:
    """Pick the root cause, order the causal chain and assemble ``verdict.json``."""
    root = _pick_root(findings)
    relevant = [f for f in findings if _SEV_RANK[f.severity] <= 2]
    stuck = progress.stuck or root is not None
    healthy = not relevant and not progress.stuck
    chain_ids: set[str] = {root.id} if root else set()
    chain_pool = [f for f in relevant if f is root or f.id not in chain_ids]
    chain_findings = []
    for f in sorted(chain_pool, key=lambda f: _SEV_RANK[f.severity]):
        if f is root or f.id not in {c.id for c in chain_findings}:
            chain_findings.append(f)
    chain_findings = sorted(
        chain_findings, key=lambda f: (0 if f is root else 1,
                                 CAUSAL_ORDER.index(f.id) if f.id in CAUSAL_ORDER else 99,
                                 _SEV_RANK[f.severity]))
    aw = progress.awaited
    status = "healthy" if healthy else ("stuck" if stuck else "degraded")
    data: dict[str, object] = {
        "tool": "huledu-forensics",
        "tool_version": __version__,
        "batch_id": scope.batch_id,
        "requested_id": scope.requested_id,
        "flow": progress.flow,
        "healthy": healthy,
        "status": status,
        "current_state": progress.current_state,
        "current_step": progress.current_step,
        "waited_s": progress.waited_s,
        "awaited_transition": ({"step": aw.step, "label": aw.label} if aw else None),
        "awaited_event": aw.topic if aw else None,
        "awaited": aw.to_json() if aw else None,
        "root_cause": ({"finding": root.id, "severity": root.severity, "summary": root.summary,
                        "facts": root.facts} if root else None),
        "chain": [{"finding": f.id, "severity": f.severity, "summary": f.summary, "facts": f.facts}
                  for f in chain_findings],
        "findings": [f.to_json() for f in findings],
        "not_evaluated": not_evaluated,
        "completeness": completeness,
        "gaps": gaps,
        "scope": scope.to_json(),
        "bundle": bundle,
        "collected_at": collected_at,
    }
    return Verdict(json.loads(json.dumps(data, default=str)), findings)
