"""The batch_investigation notebook: packaged copy, thinness, narrative, and a real headless run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from huledu_forensics import report

ROOT = Path(__file__).resolve().parents[1]
CANONICAL = ROOT / "huledu_forensics" / "notebooks" / "batch_investigation.ipynb"
COPY = ROOT / "notebooks" / "batch_investigation.ipynb"


@pytest.fixture(scope="module")
def nb() -> nbformat.NotebookNode:
    return nbformat.read(CANONICAL, as_version=4)


def test_notebooks_dir_is_the_packaged_notebooks_not_a_copy() -> None:
    # notebooks/ is a symlink to the package's notebooks: one file each, nothing to keep in sync
    assert (ROOT / "notebooks").is_symlink()
    assert COPY.resolve() == CANONICAL.resolve()
    assert report.resolve_notebook("batch_investigation").resolve() == CANONICAL.resolve()


def test_notebook_is_valid_and_committed_with_outputs_cleared(nb: nbformat.NotebookNode) -> None:
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_parameters_cell_declares_the_runner_parameters_with_offline_defaults(nb: nbformat.NotebookNode) -> None:
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assert report.notebook_parameters(CANONICAL) == [*report.NOTEBOOK_PARAMETERS, *report.OPTIONAL_NOTEBOOK_PARAMETERS]
    ns: dict[str, object] = {}
    exec(params[0].source, ns)  # noqa: S102 - plain assignments, checked above
    assert ns["bundle"] is None and ns["id"] == report.DEMO_BATCH_ID and ns["verdict_path"] is None


def test_notebook_is_thin(nb: nbformat.NotebookNode) -> None:
    code = [c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    imports = [c for c in code if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.parse(c.source).body)]
    assert len(imports) == 1 and imports[0] is code[0]
    for node in ast.walk(ast.parse(imports[0].source)):
        if isinstance(node, ast.ImportFrom):
            assert node.module == "huledu_forensics"
        assert not isinstance(node, ast.Import)
    for cell in code[1:]:
        assert len(cell.source.strip().splitlines()) <= 5, cell.source
        for node in ast.walk(ast.parse(cell.source)):
            assert not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Lambda, ast.For, ast.While,
                                         ast.Import, ast.ImportFrom, ast.ListComp, ast.DictComp)), cell.source
        assert "select " not in cell.source.lower() and "re." not in cell.source
        last = ast.parse(cell.source).body[-1]
        assert isinstance(last, ast.Expr), f"cell does not end in one displayed object: {cell.source}"


def test_every_section_is_introduced_by_markdown(nb: nbformat.NotebookNode) -> None:
    assert nb.cells[0].cell_type == "markdown" and "Question" in nb.cells[0].source
    for prev, cell in zip(nb.cells, nb.cells[1:]):
        if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
            assert prev.cell_type == "markdown", f"no markdown before: {cell.source}"
    headings = " ".join(c.source for c in nb.cells if c.cell_type == "markdown").lower()
    for section in ("scope", "verdict", "completeness", "state progress", "awaited", "timeline",
                    "findings", "essays", "log lines", "verdict.json"):
        assert section in headings, section
    assert headings.count("normal") >= 8  # each section says what normal looks like


@pytest.mark.slow
def test_nbval_lax_runs_the_notebooks_dir() -> None:
    """What `make test` needs: the committed notebook runs with its defaults (the demo bundle)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider", str(ROOT / "notebooks")],
        capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "passed" in proc.stdout
