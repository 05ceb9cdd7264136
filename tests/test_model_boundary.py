"""HuleEdu knowledge lives in model/ (and the simulator): no other module spells a HuleEdu topic,
table or container name as a string literal."""

from __future__ import annotations

import ast
from pathlib import Path

from huledu_forensics import model

PKG = Path(model.__file__).resolve().parents[1]
ALLOWED = {"model", "simulate"}
NAMES = set(model.TOPICS) | {t for _, t in model.TABLES} | set(model.CONTAINERS) | {
    d for d in model.DATABASES}


def _literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES:
            out.append((node.lineno, node.value))
    return out


def test_no_hard_coded_huleedu_names_outside_the_model() -> None:
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] in ALLOWED:
            continue
        offenders += [f"{rel}:{line}: {value!r}" for line, value in _literals(path)]
    assert not offenders, "read these from huledu_forensics.model instead:\n" + "\n".join(offenders)


def test_the_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('TOPIC = "huleedu.batch.essays.registered.v1"\n')
    assert _literals(bad) == [(1, "huleedu.batch.essays.registered.v1")]
