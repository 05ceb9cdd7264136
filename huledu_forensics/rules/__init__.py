"""Findings rules, one module per family. Import order below is the registry's order.

Each rule is a small function registered with ``@rule(id, severity=..., needs=...)``; its docstring's
first line is the title shown in reports, followed by **Fires when**, **Evidence** and **Usually
means**. A rule whose ``needs`` are missing from the bundle is reported as ``not_evaluated`` with the
reason, never as a silent pass.
"""

from __future__ import annotations

from . import consumers, enums, flow, outbox, tracker  # noqa: F401  (registration)
from ._engine import SEVERITIES, Context, EvidenceRef, Finding, Rule, registry

__all__ = ["SEVERITIES", "Context", "EvidenceRef", "Finding", "Rule", "all_rules", "run_rules"]


def all_rules() -> list[Rule]:
    """Every registered rule, in registry order."""
    return list(registry().values())


def run_rules(ctx: Context) -> tuple[list[Finding], list[dict[str, str]]]:
    """Run every rule. Returns the findings and the rules not evaluated (``{"rule", "reason"}``)."""
    findings: list[Finding] = []
    not_evaluated: list[dict[str, str]] = []
    for r in all_rules():
        missing = [n for n in r.needs if not ctx.ev.has(n)]
        if missing:
            not_evaluated.append({"rule": r.id, "reason": "missing from the bundle: " + ", ".join(
                "/".join(m) if isinstance(m, tuple) else str(m) for m in missing)})
            continue
        findings.extend(r.func(ctx))
    return findings, not_evaluated
