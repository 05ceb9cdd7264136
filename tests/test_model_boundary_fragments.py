"""HuleEdu's log message texts live in model/ (and the simulator): no other module spells one.

The kit recognises HuleEdu's handlers, relays and consumer loops by fragments of their log messages.
When HuleEdu rewords a message, only ``model/`` should change; a copy of the text elsewhere would
silently stop matching. The fragments are whatever ``model/`` declares: every ``M_*`` constant (a
text or a tuple of texts), every handler's and consumer loop's markers and every known bare message.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from huledu_forensics import model

PKG = Path(model.__file__).resolve().parents[1]
ALLOWED = {"model", "simulate"}


def _texts(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, tuple):
        for v in value:
            yield from _texts(v)


def _declared_fragments() -> set[str]:
    out: set[str] = set()
    for mod in (model.names, model.logformats, model.handlers):
        for name, value in vars(mod).items():
            if name.startswith("M_"):
                out.update(_texts(value))
    for h in model.handlers.HANDLERS:
        out.update(h.start)
        out.update(text for text, _cause in (*h.dropped, *h.failed))
    for loop in model.handlers.CONSUMER_LOOPS.values():
        out.update(_texts((loop.generic_start, loop.handled, loop.failed, loop.offset_not_committed,
                           loop.duplicate, loop.unknown_type)))
        out.update(text for text, _cause in loop.swallowed)
    out.update(f.prefix for f in model.logformats.PLAIN_MESSAGE_FACTS)
    return {f for f in out if f}


FRAGMENTS = _declared_fragments()


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of docstring nodes: a bare string statement documents, it does not match messages."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            out.add(id(node.value))
    return out


def _offending(path: Path, fragments: set[str] = FRAGMENTS) -> list[tuple[int, str, str]]:
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            unescaped = node.value.replace("\\", "")  # a regex spells "a b(" as "a\\ b\\("
            out += [(node.lineno, node.value, f) for f in sorted(fragments)
                    if f in node.value or f in unescaped]
    return out


def test_the_model_declares_message_fragments() -> None:
    # the check below is only as good as this set: the handler start lines and relay messages are in it
    assert model.names.M_OFFSET_NOT_COMMITTED in FRAGMENTS
    assert model.logformats.M_RELAY_PUBLISHING in FRAGMENTS
    assert "Processing client pipeline request" in FRAGMENTS
    assert len(FRAGMENTS) > 40


def test_no_huleedu_message_fragment_outside_the_model() -> None:
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] in ALLOWED:
            continue
        offenders += [f"{rel}:{line}: {value!r} holds {frag!r}" for line, value, frag in _offending(path)]
    assert not offenders, "read these from huledu_forensics.model instead:\n" + "\n".join(offenders)


def test_the_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('"""A docstring may quote Event processing failed."""\n'
                   'RELAY = "Publishing event from outbox to Kafka"\n'
                   'PATTERN = rf"(?P<x>x)|Message processing failed - offset not committed: (\\w+)"\n'
                   'ESCAPED = r"\\(type: extracted_plaintext\\), storage_id:\\s*"\n')
    assert sorted((line, frag) for line, _v, frag in _offending(bad)) == [
        (2, "Publishing event from outbox to Kafka"),
        (3, "Message processing failed - offset not committed"),
        (4, model.logformats.M_PLAINTEXT_STORAGE_ID),
    ]
