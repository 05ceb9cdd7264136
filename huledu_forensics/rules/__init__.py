"""Findings rules, one module per family. Import order below is the registry's order.

Each rule is a small function registered with ``@rule(id, severity=..., needs=...)``; its docstring's
first line is the title shown in reports, followed by **Fires when**, **Evidence** and **Usually
means**. A rule whose ``needs`` are missing from the bundle is reported as ``not_evaluated`` with the
reason, never as a silent pass.
"""

from __future__ import annotations

from . import consumers, containers, content, enums, flow, outbox, tracker  # noqa: F401  (registration)
from ._engine import SEVERITIES, Context, EvidenceRef, Finding, Rule, registry

__all__ = ["SEVERITIES", "Context", "EvidenceRef", "Finding", "Rule", "all_rules", "rules_markdown",
           "run_rules"]


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
    not_evaluated.extend(ctx.unevaluated)
    return findings, not_evaluated


def rules_markdown() -> str:
    """The rule reference (``docs/rules.md``), generated from the rules' docstrings."""
    import inspect

    out = ["# Rules", "",
           "Generated from the rule docstrings by `python -m huledu_forensics.rules > docs/rules.md`; "
           "a test fails when this file is stale.", ""]
    for r in all_rules():
        body = inspect.cleandoc(r.doc).splitlines()[1:]
        out += [f"## `{r.id}` ({r.severity})", "", f"**{r.title}**", ""]
        for line in body:
            if line.startswith("**") and out and out[-1] != "":
                out.append("")
            out.append(line)
        needs = ", ".join("/".join(n) if isinstance(n, tuple) else str(n) for n in r.needs) or "none"
        out += ["", f"Needs: {needs}.", ""]
        explains = ", ".join(f"`{e}`" for e in r.explains or ()) or "nothing (a symptom)"
        out += [f"Can explain: {explains}.", ""]
    return "\n".join(out).rstrip() + "\n"
