"""Print the rule reference: ``python -m huledu_forensics.rules > docs/rules.md``."""

from __future__ import annotations

from . import rules_markdown

print(rules_markdown(), end="")
