"""The rule registry: unique ids, documented rules, a test per rule, docs/rules.md up to date."""

from __future__ import annotations

from pathlib import Path

from huledu_forensics.rules import SEVERITIES, all_rules, rules_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_ids_unique_and_dotted() -> None:
    ids = [r.id for r in all_rules()]
    assert len(ids) == len(set(ids))
    assert all("." in i and i == i.lower() for i in ids)
    assert all(r.severity in SEVERITIES for r in all_rules())


def test_every_rule_documents_when_evidence_and_meaning() -> None:
    for r in all_rules():
        for section in ("**Fires when**", "**Evidence**", "**Usually means**"):
            assert section in r.doc, f"{r.id} lacks {section}"


def test_every_rule_has_a_test() -> None:
    text = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py")
                     if p.name != "test_registry.py")
    missing = [r.id for r in all_rules() if f'"{r.id}"' not in text]
    assert not missing, f"rules without a test naming them: {missing}"


def test_docs_rules_md_is_current() -> None:
    assert (ROOT / "docs" / "rules.md").read_text() == rules_markdown(), (
        "docs/rules.md is stale: run `python -m huledu_forensics.rules > docs/rules.md`")
