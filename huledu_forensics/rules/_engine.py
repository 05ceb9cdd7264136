"""The rule registry: small functions with stable ids that read evidence and return findings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from ..evidence import Evidence
from ..progress import Progress

__all__ = [
    "SEVERITIES",
    "Context",
    "EvidenceRef",
    "Finding",
    "Rule",
    "explains_graph",
    "registry",
    "rule",
]

SEVERITIES = ("critical", "error", "warning", "info")


@dataclass(frozen=True)
class EvidenceRef:
    """Where a finding's evidence sits in the bundle: ``part`` (file), ``key`` (row key or line)."""

    part: str
    key: str = ""
    ts: datetime | None = None
    note: str = ""

    @classmethod
    def parse(cls, ref: str, ts: object = None, note: str = "") -> EvidenceRef:
        """Build from ``part#key``."""
        part, _, key = ref.partition("#")
        t = ts if isinstance(ts, datetime) else None
        return cls(part, key, t, note)

    def __str__(self) -> str:
        return f"{self.part}#{self.key}" if self.key else self.part


@dataclass
class Finding:
    """One finding: a stable rule id, a severity, HuleEdu-terms explanation and evidence references.

    ``facts`` holds the numbers and ids the summary was generated from, for machines.
    """

    id: str
    severity: str
    title: str
    summary: str
    evidence: list[EvidenceRef] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)
    explanation: str = ""

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        d = asdict(self)
        d["evidence"] = [{"part": e.part, "key": e.key, "ts": e.ts.isoformat() if e.ts else None,
                          "note": e.note} for e in self.evidence]
        return d


@dataclass
class Context:
    """What a rule gets: the scoped evidence and the computed progress.

    A rule that could look only at part of what it checks (one database's log missing, say) says so
    with :meth:`not_evaluated`: the verdict lists it with the rules that could not run at all, so an
    absent finding is never read as "checked and clean".
    """

    ev: Evidence
    progress: Progress
    unevaluated: list[dict[str, str]] = field(default_factory=list)

    def not_evaluated(self, rule_id: str, reason: str) -> None:
        """Record that ``rule_id`` could not check part of its evidence, and why."""
        self.unevaluated.append({"rule": rule_id, "reason": reason})


@dataclass(frozen=True)
class Rule:
    """A registered rule. ``needs`` are bundle parts (see ``Evidence.present``) it cannot do without;
    ``explains`` the rule ids whose findings this rule's finding can cause (the explains-graph the
    verdict walks to pick the root cause and order the chain); ``()`` for a symptom that explains
    nothing, ``None`` when the rule never declared its place in the graph (a test fails)."""

    id: str
    severity: str
    title: str
    needs: tuple[object, ...]
    func: Callable[[Context], list[Finding]]
    doc: str
    explains: tuple[str, ...] | None = None


_REGISTRY: dict[str, Rule] = {}


def rule(rule_id: str, *, severity: str, needs: tuple[object, ...] = (),
         explains: tuple[str, ...] | None = None) -> Callable[
        [Callable[[Context], list[Finding]]], Callable[[Context], list[Finding]]]:
    """Register a rule. The docstring's first line is its title; duplicate ids raise at import."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")

    def deco(func: Callable[[Context], list[Finding]]) -> Callable[[Context], list[Finding]]:
        if rule_id in _REGISTRY:
            raise ValueError(f"duplicate rule id {rule_id!r}")
        doc = (func.__doc__ or "").strip()
        _REGISTRY[rule_id] = Rule(rule_id, severity, doc.splitlines()[0] if doc else rule_id, needs, func, doc,
                             None if explains is None else tuple(explains))
        return func

    return deco


def explains_graph() -> dict[str, tuple[str, ...]]:
    """Rule id -> the rule ids its findings can explain (cause -> effects)."""
    return {r.id: r.explains or () for r in _REGISTRY.values()}


def registry() -> dict[str, Rule]:
    """Every registered rule by id."""
    return dict(_REGISTRY)
