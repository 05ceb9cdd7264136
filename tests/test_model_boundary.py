"""HuleEdu knowledge lives in model/ (and the simulator): no other module spells a HuleEdu topic, table,
container, database or column name, or a status label, as a string literal.

Columns are the columns of every table the model declares (the simulator's schema lists them); status
labels are the model's enum label sets, the pipeline-phase and file-processing statuses, and the named
statuses in ``model.names``. Code reads them from ``model.columns``, ``model.states`` and ``model.names``.

Where the kit's own frames and documents use a name that is also a HuleEdu column (the log, timeline,
overview, scan and ledger frames' ``batch_id``, verdict.json, the bundle manifest's ``created_at``), the
name is the kit's format and does not follow HuleEdu: it is declared once, in ``huledu_forensics/_fields.py``,
the one module outside model/ allowed to spell such names, and read from there. A frame that projects
one HuleEdu table (progress's essays and pending frames) keeps that table's names, from ``model.columns``.

One explicit allowlist, ``KIT_WORDS``: everyday words that HuleEdu uses as a column or a status and the
kit uses for its own frames and states (a finding's ``id``, a run's ``topic``, a verdict's ``status``, an
outcome ``failed``, a step ``pending``). The check cannot tell the two uses apart by spelling, so code that
reads such a HuleEdu column still uses the model's constant by convention; and a kit word used as a status
label is caught wherever it is compared with a HuleEdu status column (``x[C.PROCESSING_STATUS] == "failed"``).
"""

from __future__ import annotations

import ast
from pathlib import Path

from huledu_forensics import _fields, model
from huledu_forensics.model import columns
from huledu_forensics.simulate import ddl

PKG = Path(model.__file__).resolve().parents[1]
ALLOWED = {"model", "simulate"}
KIT_FIELDS = Path("_fields.py")  # the kit's own names that equal HuleEdu columns (see the module docstring)
NAMES = set(model.TOPICS) | {t for _, t in model.TABLES} | set(model.CONTAINERS) | set(model.DATABASES)
COLUMNS = {c for db, t in model.TABLES for c in ddl.column_names(db, t)}


def _named_statuses() -> set[str]:
    out: set[str] = set()
    for name in dir(model.names):
        value = getattr(model.names, name)
        if name.startswith("S_") or name.endswith(("_STATUS", "_STATUSES")):
            out |= {value} if isinstance(value, str) else {v for v in value if isinstance(v, str)}
    return out


LABEL_SETS = (*model.PYTHON_ENUMS.values(), *model.ALEMBIC_INITIAL_ENUMS.values(),
              model.states.PIPELINE_EXECUTION_STATUSES, model.states.FILE_PROCESSING_STATUSES)
LABELS = {label for labels in LABEL_SETS for label in labels} | _named_statuses()
KIT_WORDS = frozenset({
    "id", "name", "description", "status", "topic", "phase", "timeline",  # columns
    "failed", "pending", "completed", "in_progress",  # statuses
})
STATUS_COLUMN_CONSTANTS = {n for n in columns.__all__ if getattr(columns, n) in columns.STATUS_COLUMNS}


def _reads_status_column(node: ast.AST) -> bool:
    """Whether ``node`` reads a HuleEdu status column: ``x[<col>]``, ``x.get(<col>)`` or ``x.<col>``."""
    for sub in ast.walk(node):
        key: ast.AST | None = None
        if isinstance(sub, ast.Subscript):
            key = sub.slice
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "get" \
                and sub.args:
            key = sub.args[0]
        if isinstance(key, ast.Constant) and key.value in columns.STATUS_COLUMNS:
            return True
        if isinstance(key, ast.Attribute) and key.attr in STATUS_COLUMN_CONSTANTS:
            return True
    return False


def _compared_labels(node: ast.AST) -> list[ast.Constant]:
    """String constants that are status labels, compared with a HuleEdu status column in ``node``."""
    if isinstance(node, ast.Compare):
        sides = [node.left, *node.comparators]
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "isin":
        sides = [node.func.value, *node.args]
    else:
        return []
    if not any(_reads_status_column(s) for s in sides):
        return []
    return [c for s in sides for c in ast.walk(s)
            if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value in LABELS]


def _literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value not in KIT_WORDS \
                and node.value in NAMES | COLUMNS | LABELS:
            out.add((node.lineno, node.value))
        out |= {(c.lineno, c.value) for c in _compared_labels(node)}
    return sorted(out)


def test_no_hard_coded_huleedu_names_outside_the_model() -> None:
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] in ALLOWED or rel == KIT_FIELDS:
            continue
        offenders += [f"{rel}:{line}: {value!r}" for line, value in _literals(path)]
    assert not offenders, "read these from huledu_forensics.model instead:\n" + "\n".join(offenders)


def test_the_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('TOPIC = "huleedu.batch.essays.registered.v1"\n')
    assert _literals(bad) == [(1, "huleedu.batch.essays.registered.v1")]


def test_the_check_catches_a_column_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('retries = outbox["retry_count"]\n')
    assert _literals(bad) == [(1, "retry_count")]


def test_the_check_catches_a_status_label(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('ready = batch.state == "ready_for_pipeline_execution"\n')
    assert _literals(bad) == [(1, "ready_for_pipeline_execution")]


def test_the_check_catches_a_kit_word_compared_with_a_status_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('outcome = "failed"\n'  # the kit's own word: allowed
                   'bad = uploads[C.PROCESSING_STATUS] == "failed"\n'
                   'late = phases.get(C.STATUS) in ("pending", "done")\n'
                   'n = frame[frame[C.CURRENT_STATUS].isin(["completed"])]\n')
    assert _literals(bad) == [(2, "failed"), (3, "pending"), (4, "completed")]


def test_the_named_columns_and_labels_are_huleedus() -> None:
    """A named column or status HuleEdu does not have would be a constant no check covers; and
    ``_fields.py``, exempt from the check, holds only kit names that collide with a HuleEdu column."""
    named = {getattr(columns, n) for n in columns.__all__ if isinstance(getattr(columns, n), str)}
    assert named <= COLUMNS, named - COLUMNS
    kit = {getattr(_fields, n) for n in _fields.__all__ if isinstance(getattr(_fields, n), str)}
    assert kit <= COLUMNS, f"_fields.py is for kit names that equal HuleEdu columns only: {kit - COLUMNS}"
    assert _named_statuses() <= {label for labels in LABEL_SETS for label in labels}
