"""The report runner: execute the investigation notebook headless and export an offline HTML report.

The output directory contract lives here and only here (:data:`REPORT_FILES`)::

    <out>/
      verdict.json     the machine-readable verdict (written by the notebook)
      report.ipynb     the executed notebook, with every output
      report.html      a self-contained HTML export: plotly.js inline once, no network needed
      bundle/          optional: the evidence bundle the report was made from (demo, live report)

:func:`run_report` executes a notebook with papermill (parameters: bundle path, id, since, until,
verdict path; never credentials) and exports it with nbconvert using the ``lab`` template minus its
CDN scripts (require.js, MathJax, mermaid). When a cell fails, the partly executed notebook and its
HTML are still written, then :class:`~huledu_forensics.errors.ReportError` names the notebook and cell.

Exit codes (used by ``huledu-forensics report``) are derived from the verdict by
:func:`exit_code_for_verdict`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from . import _fields as F
from ._time import parse_option_time, parse_utc
from .bundle import Bundle, write_world_bundle
from .errors import (
    BundleInvalid,
    BundleNotFound,
    ConfigError,
    ForensicsError,
    ReportError,
    ScopeError,
    SourceUnavailable,
)
from .safety import printable

__all__ = [
    "BUNDLE_DIR",
    "DEMO_BATCH_ID",
    "DEMO_SCENARIO",
    "EXIT_BAD_INPUT",
    "EXIT_FINDINGS",
    "EXIT_HEALTHY",
    "EXIT_INCOMPLETE",
    "EXIT_KIT_FAILED",
    "NOTEBOOK_PARAMETERS",
    "OPTIONAL_NOTEBOOK_PARAMETERS",
    "PLOTLY_JS",
    "REPORT_FILES",
    "ReportResult",
    "as_utc",
    "demo_bundle",
    "execute_notebook",
    "exit_code_for_verdict",
    "export_html",
    "notebook_parameters",
    "require_id_in_bundle",
    "resolve_bundle",
    "resolve_notebook",
    "run_demo",
    "run_report",
    "verdict_summary",
]

log = logging.getLogger(__name__)

REPORT_FILES: dict[str, str] = {
    "verdict": "verdict.json",
    "notebook": "report.ipynb",
    "html": "report.html",
}
"""The files every report directory holds, by role."""

BUNDLE_DIR = "bundle"
"""Optional sub-directory of a report directory holding the evidence bundle it was made from."""

NOTEBOOK_PARAMETERS = ("bundle", "id", "since", "until", "verdict_path")
"""The parameters :func:`run_report` passes to a report notebook."""

OPTIONAL_NOTEBOOK_PARAMETERS = ("bundle_given",)
"""Parameters :func:`run_report` passes only to a notebook that declares them: ``bundle_given``, the
bundle as the user named it (``bundle`` is the report's own copy)."""

DEMO_SCENARIO = "seed_variant_a"
"""The simulator scenario of the demo: the guest batch stuck in content validation."""

DEMO_BATCH_ID = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
"""The batch id investigated by the demo."""

EXIT_HEALTHY = 0
EXIT_FINDINGS = 1
EXIT_INCOMPLETE = 2
EXIT_KIT_FAILED = 3
EXIT_BAD_INPUT = 4

# errors raised inside the notebook that mean the caller's input was wrong
_BAD_INPUT_ERRORS: dict[str, type[ForensicsError]] = {
    "ScopeError": ScopeError, "BundleNotFound": BundleNotFound, "BundleInvalid": BundleInvalid,
    "ConfigError": ConfigError, "SourceUnavailable": SourceUnavailable,
}

_OFFLINE_TEMPLATE = "huledu_offline.html.j2"
# The lab template minus everything it would fetch from a CDN. plotly.js comes inline from the
# notebook's first figure output (see plots.setup_notebook).
_OFFLINE_TEMPLATE_SRC = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
"""


@dataclass
class ReportResult:
    """What :func:`run_report` produced.

    Attributes:
        out_dir: the report directory.
        verdict_path / notebook_path / html_path: the files of :data:`REPORT_FILES`.
        verdict: the parsed ``verdict.json``.
        bundle_path: the bundle the report was made from.
    """

    out_dir: Path
    verdict_path: Path
    notebook_path: Path
    html_path: Path
    verdict: dict[str, Any] = field(default_factory=dict)
    bundle_path: Path | None = None

    @property
    def exit_code(self) -> int:
        """0 healthy, 1 findings, 2 evidence incomplete (see :func:`exit_code_for_verdict`)."""
        return exit_code_for_verdict(self.verdict)

    @property
    def summary(self) -> str:
        """A short multi-line summary of the verdict."""
        return verdict_summary(self.verdict)


# -- verdict helpers ----------------------------------------------------------------------------
def _incomplete(completeness: Any) -> bool:
    if completeness is None:
        return False
    if isinstance(completeness, str):
        return completeness in ("partial", "missing")
    if isinstance(completeness, dict):
        if isinstance(completeness.get("complete"), bool):
            return not completeness["complete"]
        return any(_incomplete(v) for k, v in completeness.items() if k != "warnings")
    if isinstance(completeness, (list, tuple)):
        return any(_incomplete(v) for v in completeness)
    return False


def exit_code_for_verdict(verdict: dict[str, Any]) -> int:
    """Map a verdict to the exit code of ``huledu-forensics report``.

    ``2`` when any evidence source is partial or missing (the verdict may be wrong; this wins), else
    ``1`` when the batch is not healthy or any finding is a warning or worse, else ``0``.
    """
    if _incomplete(verdict.get("completeness")):
        return EXIT_INCOMPLETE
    if verdict.get("healthy") is False:
        return EXIT_FINDINGS
    for f in verdict.get("findings") or []:
        if isinstance(f, dict) and f.get("severity") in ("critical", "error", "warning"):
            return EXIT_FINDINGS
    healthy = verdict.get("healthy") is True or verdict.get("status") == "healthy"
    return EXIT_HEALTHY if healthy else EXIT_FINDINGS


def verdict_summary(verdict: dict[str, Any]) -> str:
    """Render a few lines that say what the verdict concluded (no essay text, no secrets).

    Uses :meth:`huledu_forensics.verdict.Verdict.summary_text` (the same text the notebook prints) and
    falls back to a minimal rendering when that is unavailable.
    """
    if not verdict:
        return "No verdict was written."
    try:
        from .verdict import Verdict

        return Verdict(dict(verdict)).summary_text()
    except Exception:  # noqa: BLE001 - fall back to the minimal rendering below
        pass
    lines = [f"batch {verdict.get(F.BATCH_ID) or '?'} ({verdict.get('flow') or '?'} flow): "
             f"{'healthy' if verdict.get('healthy') else verdict.get('status') or 'not healthy'}"]
    state = verdict.get("current_state")
    step = verdict.get("current_step")
    if state or step:
        lines.append(f"state: {state or '?'}; step: {step or '?'}")
    awaited = verdict.get("awaited_event")
    if awaited:
        if isinstance(awaited, dict):
            marks: dict[object, str] = {True: "✓", False: "✗"}  # anything else: the evidence cannot tell, never ✗
            checks = " ".join(f"{k} {marks.get(awaited.get(k), '?')}"
                              for k in ("produced", "published", "consumed") if k in awaited)
            lines.append(f"awaiting: {awaited.get('topic') or awaited.get('step') or '?'} {checks}".rstrip())
        else:
            lines.append(f"awaiting: {awaited}")
    root = verdict.get("root_cause")
    if isinstance(root, dict) and (root.get("summary") or root.get("finding")):
        lines.append(f"root cause: {root.get('summary') or root.get('finding')}")
    if _incomplete(verdict.get("completeness")):
        lines.append("evidence incomplete: some source was partial or missing; the verdict may be wrong")
    return "\n".join(lines)


# -- notebooks ----------------------------------------------------------------------------------
def resolve_notebook(notebook: str | Path) -> Path:
    """Return the path of a packaged notebook by name (``batch_investigation``) or of a file.

    Raises:
        ReportError: no such packaged notebook or file.
    """
    p = Path(notebook)
    if p.suffix == ".ipynb" or p.exists():
        if not p.is_file():
            raise ReportError(f"Notebook '{p}' does not exist. Pass a packaged notebook name "
                              "(e.g. batch_investigation) or an existing .ipynb path.", notebook=str(p))
        return p
    res = resources.files("huledu_forensics") / "notebooks" / f"{notebook}.ipynb"
    path = Path(str(res))
    if not path.is_file():
        raise ReportError(f"No packaged notebook named '{notebook}'. Use batch_investigation or pass "
                          "a .ipynb path.", notebook=str(notebook))
    return path


def notebook_parameters(notebook: str | Path) -> list[str]:
    """Return the names the notebook's cell tagged ``parameters`` declares, in order.

    Read by papermill's own inspector (:func:`papermill.inspect_notebook`), the same reading papermill
    uses when it injects the values.

    Raises:
        ReportError: the notebook cannot be read or declares no parameters.
    """
    path = resolve_notebook(notebook)
    try:
        declared = list(_papermill().inspect_notebook(str(path)))
    except Exception as exc:  # noqa: BLE001 - any unreadable notebook is a report error
        raise ReportError(f"Cannot read notebook '{path}' ({exc}). Pass a valid .ipynb file.",
                          notebook=str(path)) from exc
    if not declared:
        raise ReportError(f"Notebook '{path}' declares no parameters; tag the cell that defines "
                          f"{', '.join(NOTEBOOK_PARAMETERS)} with 'parameters'.", notebook=str(path))
    return declared


def _papermill() -> Any:
    """papermill, imported without jsonschema's slow ``iri`` checker (see :mod:`._fastimport`)."""
    from ._fastimport import without_iri_checker

    with without_iri_checker():  # papermill imports nbformat -> jsonschema: seconds otherwise
        import papermill

    return papermill


PLOTLY_JS = "plotly.min.js"
"""plotly.js, written once next to ``report.html`` (4.8 MB): the HTML and the notebook carry no copy of it."""

_HIDDEN_TAGS = {"parameters", "injected-parameters", "remove-cell", "hide-in-report"}
_PAGE_HEAD = """<script src="{plotly}" charset="utf-8"></script>
<style>
body.jp-Notebook{{max-width:1400px;margin:0 auto;padding:4px 18px}}
.jp-Cell{{padding:0 4px!important}}
.jp-RenderedMarkdown h1{{font-size:1.55em;margin:.3em 0 .2em 0!important}}
.jp-RenderedMarkdown h2{{font-size:1.3em;margin:1.1em 0 .15em 0!important}}
.jp-RenderedMarkdown p{{font-size:13px;color:#57606a;margin:.1em 0 .3em 0!important;max-width:1320px}}
.jp-RenderedHTMLCommon td,.jp-RenderedHTMLCommon th{{white-space:normal!important;overflow-wrap:break-word;
 max-width:none!important;text-align:left!important;vertical-align:top;text-overflow:clip!important}}
.jp-RenderedHTMLCommon table{{table-layout:auto!important;max-width:100%}}
</style>
"""
_PAGE_TAIL = """<script>
if (!window.Plotly) {{
  var d = document.createElement('div');
  d.setAttribute('role', 'alert');
  d.style.cssText = 'background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px;margin:8px;font-family:sans-serif';
  d.textContent = 'Figures are not drawn: {plotly} is not next to this report.html. Keep the report ' +
    'directory together (report.html and {plotly}), or re-export it with huledu-forensics.';
  document.body.insertBefore(d, document.body.firstChild);
}}
</script>
"""


def _for_reading(nb: Any, show_code: bool) -> Any:
    """The notebook as a reader sees it: no parameter cells (the report shows them once as a table),
    no kernel stderr (progress and warnings are not findings), and no code unless ``show_code``."""
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if not show_code and tags & _HIDDEN_TAGS:
            continue
        if cell.get("cell_type") == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            if not show_code and not cell.outputs:
                continue
        cells.append(cell)
    nb.cells = cells
    return nb


def export_html(notebook_path: str | Path, html_path: str | Path, *, show_code: bool = False,
                plotly_js_dir: str | Path | None = None) -> Path:
    """Export an executed notebook to an HTML page that needs no network.

    Uses nbconvert's ``lab`` template without its require.js, MathJax, mermaid and widget scripts.
    Code cells, the parameters cells and kernel stderr are left out unless ``show_code``. plotly.js is
    written once next to the page (:data:`PLOTLY_JS`) and loaded by it, so neither the page nor the
    notebook carries a copy; a page opened without it says so at the top. ``plotly_js_dir`` puts that
    one copy in another directory (e.g. the root of many report directories, as the pytest plugin does)
    and the page loads it by relative path.
    """
    import nbformat

    nb = _for_reading(nbformat.read(str(notebook_path), as_version=4), show_code)
    with _EXPORTING:
        body, _ = _html_exporter(show_code).from_notebook_node(
            nb, resources={"metadata": {"name": "HuleEdu forensics report"}})
    out = Path(html_path)
    js = _plotly_js_path(out, plotly_js_dir)
    src = Path(os.path.relpath(js.resolve(), out.resolve().parent)).as_posix()
    body = body.replace("</head>", _PAGE_HEAD.format(plotly=src) + "</head>", 1)
    body = body.replace("</body>", _PAGE_TAIL.format(plotly=src) + "</body>", 1)
    _write_plotly_js(js)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, out)
    return out


_EXPORTING = threading.Lock()  # one exporter per show_code, shared: one export at a time


@functools.cache
def _html_exporter(show_code: bool) -> Any:
    """nbconvert's ``lab`` exporter with the offline template (built once: its templates compile once)."""
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab", exclude_input=not show_code, exclude_input_prompt=not show_code,
        exclude_output_prompt=True,
        extra_loaders=[jinja2.DictLoader({_OFFLINE_TEMPLATE: _OFFLINE_TEMPLATE_SRC})],
    )
    exporter.template_file = _OFFLINE_TEMPLATE
    return exporter


def _plotly_js_path(html_path: Path, plotly_js_dir: str | Path | None) -> Path:
    return (Path(plotly_js_dir) / PLOTLY_JS) if plotly_js_dir is not None else html_path.with_name(PLOTLY_JS)


def _write_plotly_js(js: Path) -> None:
    """Write plotly.js to ``js`` unless the same copy is already there."""
    from plotly.offline import get_plotlyjs

    code = get_plotlyjs()
    if not js.is_file() or js.stat().st_size != len(code.encode("utf-8")):
        js.parent.mkdir(parents=True, exist_ok=True)
        tmp_js = js.with_name(f".{js.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp_js.write_text(code, encoding="utf-8")
        os.replace(tmp_js, js)


def _warm_export(html_path: Path, show_code: bool, plotly_js_dir: str | Path | None) -> threading.Thread:
    """Start, in a background thread, the part of the HTML export that does not need the executed
    notebook: importing nbconvert, compiling its templates (by exporting a two-cell notebook) and writing
    plotly.js beside the page. It runs while the kernel executes the notebook, when this process only
    waits for the kernel's messages; the export afterwards only renders. Join it before exporting.
    """

    def warm() -> None:
        try:
            import nbformat

            v4 = nbformat.v4
            nb = v4.new_notebook(cells=[v4.new_markdown_cell("# warm-up"), v4.new_code_cell(
                "x", outputs=[v4.new_output("display_data", data={"text/html": "<b>x</b>"})])])
            with _EXPORTING:
                _html_exporter(show_code).from_notebook_node(nb)
            _write_plotly_js(_plotly_js_path(html_path, plotly_js_dir))
        except Exception as exc:  # noqa: BLE001 - the export itself will do it, and report any error
            log.debug("export warm-up failed: %s", exc)

    thread = threading.Thread(target=warm, name="huledu-export-warm-up", daemon=True)
    thread.start()
    return thread


def require_id_in_bundle(bundle: Bundle, any_id: str) -> None:
    """Refuse an id before any notebook runs (a kernel start costs seconds): a malformed id, or one that
    no table row and no log line of ``bundle`` mentions.

    Rows are searched through the model's id columns and JSON id paths; log files are scanned as text
    (cheap, no parsing). The notebook's own scope discovery remains the judge of anything that passes.

    Raises:
        ConfigError: ``any_id`` is empty or does not look like an id.
        ScopeError: nothing in the bundle mentions ``any_id``.
    """
    from .safety import check_id
    from .scope import ids_from_rows, normalise_id

    raw = check_id(any_id)
    rid = normalise_id(raw) or ""
    for key in bundle.tables():
        frame = bundle.table(*key)
        if frame is None or frame.empty:
            continue
        try:
            found = ids_from_rows(key[0], key[1], frame)
        except Exception:  # noqa: BLE001 - an odd table is left to the notebook
            return
        if any(rid in ids for ids in found.values()):
            return
    needles = {raw.encode(), rid.encode()}
    for _container, _stream, path in bundle.log_files():
        if _file_mentions(path, needles):
            return
    raise ScopeError(f"No row or log line in the bundle '{bundle.path}' mentions '{raw}'. Check the id (a batch, "
                     "correlation, essay, text storage or file upload id) and that the bundle covers its "
                     "time window.", id=raw)


def _file_mentions(path: Path, needles: set[bytes]) -> bool:
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    overlap = max(len(n) for n in needles)
    tail = b""
    try:
        with opener(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                block = tail + chunk
                if any(n in block for n in needles):
                    return True
                tail = block[-overlap:]
    except OSError:
        return True  # unreadable here: let the notebook decide and report it
    return False


def _iso(value: datetime | str | None, name: str) -> str | None:
    t = parse_option_time(value, name)
    return t.isoformat() if t else None


def run_report(bundle: str | Path | Bundle, any_id: str, out_dir: str | Path, *,
               notebook: str | Path = "batch_investigation", since: datetime | str | None = None,
               until: datetime | str | None = None, timeout_s: float = 600,
               progress: bool = False, show_code: bool = False, check: bool = True,
               plotly_js_dir: str | Path | None = None) -> ReportResult:
    """Execute the investigation notebook for ``any_id`` on ``bundle`` and write the report into ``out_dir``.

    Args:
        bundle: a bundle directory or an opened :class:`~huledu_forensics.bundle.Bundle`.
        any_id: the batch, correlation or essay id to investigate.
        out_dir: the report directory (created; earlier report files in it are replaced).
        notebook: a packaged notebook name or an ``.ipynb`` path.
        since / until: optional window, aware datetimes or ISO strings (passed as ISO strings).
        timeout_s: the longest any one cell may run.
        progress: show papermill's per-cell progress bar on stderr.
        show_code: keep the code cells in ``report.html`` (hidden by default).
        check: refuse a malformed id, or one the bundle never mentions, before running the notebook
            (:func:`require_id_in_bundle`); ``False`` for notebooks that take no id of their own.
        plotly_js_dir: where the one copy of plotly.js goes (default: ``out_dir``); see :func:`export_html`.

    Returns:
        The paths written and the parsed verdict.

    Raises:
        BundleNotFound / BundleInvalid: the bundle cannot be opened (nothing is executed).
        ConfigError: a bad ``since``/``until`` or empty id.
        ScopeError: the notebook found nothing for ``any_id`` (the notebook and HTML are still written).
        ReportError: the notebook has unknown parameters, a cell failed (the partly executed notebook
            and its HTML are still written), or no verdict was written.
    """
    _papermill()
    from papermill.exceptions import PapermillExecutionError

    no_id = not any_id or not str(any_id).strip()
    # a whole-stack notebook (one that also takes a `scan`, e.g. stuck_batches) runs without an id
    if no_id and "scan" not in notebook_parameters(notebook):
        raise ConfigError("No id given. Pass a batch, correlation or essay id with --id.")
    if not isinstance(timeout_s, (int, float)) or not 0 < timeout_s < float("inf"):  # nan fails too
        raise ConfigError(f"The timeout must be a positive number of seconds, not {timeout_s!r}.")
    opened = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
    if check and not no_id:
        require_id_in_bundle(opened, str(any_id))
    nb_path = resolve_notebook(notebook)
    out = Path(out_dir)
    check_report_dir(out)
    params = {
        "bundle": str(Path(opened.path).resolve()),
        "id": None if no_id else str(any_id).strip(),
        "since": _iso(since, "since"),
        "until": _iso(until, "until"),
    }
    out.mkdir(parents=True, exist_ok=True)
    result = ReportResult(out_dir=out, verdict_path=out / REPORT_FILES["verdict"],
                          notebook_path=out / REPORT_FILES["notebook"], html_path=out / REPORT_FILES["html"],
                          bundle_path=Path(opened.path))
    params["verdict_path"] = str(result.verdict_path.resolve())
    declared = notebook_parameters(nb_path)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ReportError(f"Notebook '{nb_path.name}' does not declare parameter(s) {', '.join(unknown)} "
                          f"in its parameters cell (it declares {', '.join(declared) or 'none'}); add "
                          "them there.", notebook=str(nb_path))
    for name in REPORT_FILES.values():
        (out / name).unlink(missing_ok=True)
    given = str(opened.path)  # the bundle as the user named it: what messages to them say
    opened = _bundle_into(opened, out / BUNDLE_DIR)  # the report directory is self-contained
    params["bundle"] = str(Path(opened.path).resolve())
    result.bundle_path = Path(opened.path)
    copies = {str(params["bundle"]), str(opened.path)} - {given}
    if OPTIONAL_NOTEBOOK_PARAMETERS[0] in declared:  # a notebook that shows its parameters names it as given
        params[OPTIONAL_NOTEBOOK_PARAMETERS[0]] = str(Path(given).resolve())

    # the notebook about to run, so a run killed before its first cell finishes still leaves one behind
    # (papermill overwrites it as soon as a cell has run)
    shutil.copyfile(nb_path, result.notebook_path)
    failure: PapermillExecutionError | None = None
    warm = _warm_export(result.html_path, show_code, plotly_js_dir)
    try:
        execute_notebook(nb_path, result, params, timeout_s=timeout_s, progress=progress)
    except PapermillExecutionError as exc:
        failure = exc
    except Exception as exc:  # noqa: BLE001 - kernel death, timeout, unreadable notebook
        warm.join()
        _try_export(result, show_code, plotly_js_dir)
        raise ReportError(f"Running notebook '{nb_path.name}' failed: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}. The partial notebook is "
                          f"at {result.notebook_path}.", notebook=str(nb_path)) from exc
    warm.join()
    if failure is not None and failure.ename in _BAD_INPUT_ERRORS:
        _plain_error(result.notebook_path, copies, given)
    _try_export(result, show_code, plotly_js_dir)
    if failure is not None:
        evalue = _as_given((failure.evalue or "").strip(), copies, given).splitlines()
        first = evalue[0] if evalue else ""
        bad_input = _BAD_INPUT_ERRORS.get(failure.ename)
        if bad_input is not None:
            raise bad_input(first or f"{failure.ename} in notebook '{nb_path.name}'.")
        index = _source_cell_index(result.notebook_path, failure.cell_index)
        raise ReportError(f"Notebook '{nb_path.name}' failed in cell {index} (0-based, "
                          f"execution count {failure.exec_count}): {failure.ename}: {first}. See "
                          f"{result.html_path} or {result.notebook_path}.", notebook=str(nb_path),
                          cell_index=index)
    if not result.verdict_path.is_file():
        raise ReportError(f"Notebook '{nb_path.name}' ran but wrote no {REPORT_FILES['verdict']}; its "
                          "last cell must write the verdict to verdict_path.", notebook=str(nb_path))
    try:
        result.verdict = json.loads(result.verdict_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ReportError(f"{result.verdict_path} is not valid JSON ({exc}).", notebook=str(nb_path)) from exc
    return result


def _as_given(text: str, copies: set[str], given: str) -> str:
    """``text`` with the report's own copy of the bundle (``OUT/bundle``) named as the user gave it."""
    for c in sorted(copies, key=len, reverse=True):
        text = text.replace(c, given)
    return text


def _plain_error(executed: Path, copies: set[str], given: str) -> None:
    """In the executed notebook, show a bad-input error (an unknown id, an invalid bundle) as its one-line
    message, naming the bundle as the user gave it, instead of a traceback through the kit's code:
    the report reader needs what to fix, not where in the kit it was noticed."""
    import nbformat

    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:  # noqa: BLE001 - an unreadable partial notebook is exported as it is
        return
    changed = False
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if out.get("output_type") == "error" and out.get("ename") in _BAD_INPUT_ERRORS:
                out["evalue"] = _as_given(str(out.get("evalue") or ""), copies, given)
                out["traceback"] = [f"{out['ename']}: {out['evalue']}"]
                changed = True
    if changed:
        nbformat.write(nb, str(executed))


def _source_cell_index(executed: Path, index: int) -> int:
    """The index in the source notebook of cell ``index`` of the executed one: papermill inserted its
    ``injected-parameters`` cell, which shifts every later cell by one."""
    import nbformat
    from papermill.utils import find_first_tagged_cell_index

    try:
        injected = find_first_tagged_cell_index(nbformat.read(str(executed), as_version=4), "injected-parameters")
    except Exception:  # noqa: BLE001 - an unreadable partial notebook: count as papermill does
        return int(index)
    return int(index) - 1 if 0 <= injected < index else int(index)


def execute_notebook(nb_path: Path, result: ReportResult, params: dict[str, Any], *, timeout_s: float,
                     progress: bool) -> None:
    """Run ``nb_path`` with ``params`` into ``result.notebook_path`` (in ``result.out_dir``), the one way
    every report notebook runs: the kernel gets no secret, its stderr goes to :data:`KERNEL_LOG`, the
    partly executed notebook is written as it goes (:func:`_engine_name`).

    Raises:
        papermill.exceptions.PapermillExecutionError: a cell failed (the notebook is written first).
    """
    pm = _papermill()
    with _kernel_stderr(result.out_dir / KERNEL_LOG, enabled=not progress):
        pm.execute_notebook(
            str(nb_path), str(result.notebook_path), parameters=params, kernel_name="python3",
            execution_timeout=max(1, int(timeout_s)), progress_bar=progress, log_output=False,
            cwd=str(result.out_dir), request_save_on_cell_execute=True, engine_name=_engine_name(),
            kernel_manager_class=_kernel_manager_class(),  # the kernel never sees a secret
            # the last cell wrote the verdict; the kernel holds nothing to flush, so it is stopped
            # rather than asked to shut down and waited for (a few tenths of a second)
            shutdown_kernel="immediate",
        )


KERNEL_LOG = "kernel.log"
"""Where the notebook kernel's own stderr goes; kept only when the notebook run failed."""


@contextlib.contextmanager
def _kernel_stderr(path: Path, *, enabled: bool) -> Iterator[None]:
    """Send file descriptor 2 to ``path`` while the kernel runs, so the kernel process (which inherits
    it) does not print its warnings and shutdown tracebacks on the user's terminal. The file is kept
    only when the run failed, as a diagnostic; a successful report directory holds exactly
    :data:`REPORT_FILES`."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    failed = True
    with open(path, "wb") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if not failed or path.stat().st_size == 0:
                path.unlink(missing_ok=True)


REPORT_DIR_ENTRIES = frozenset({*REPORT_FILES.values(), BUNDLE_DIR, f"{BUNDLE_DIR}-raw", "kernel.log", PLOTLY_JS})
"""Every name the kit writes into a report directory; any other entry means it is not one."""


def check_report_dir(out: Path) -> None:
    """Refuse an ``--out`` that is a file, or a non-empty directory that is not a report directory.

    The report replaces only its own files there (:data:`REPORT_DIR_ENTRIES`; its temporary files
    start with a dot and one of those names), so a user's directory is never emptied or overwritten.

    Raises:
        ConfigError: ``out`` is a file, or holds entries the kit did not write.
    """
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ConfigError(f"--out '{out}' is not a directory. Pass a new or empty directory.")
    if not out.exists():
        return
    foreign = sorted(e.name for e in out.iterdir()
                     if e.name not in REPORT_DIR_ENTRIES
                     and not any(e.name.startswith(f".{n}") for n in REPORT_DIR_ENTRIES))
    if foreign:
        shown = ", ".join(printable(n, 60) for n in foreign[:3]) + (" …" if len(foreign) > 3 else "")
        raise ConfigError(f"--out '{out}' is not empty and is not a report directory (it holds {shown}); "
                          "the kit will not write into it. Pass a new or empty directory.")


SAVE_EVERY_S = 1.0
"""While a report notebook runs, the partly executed notebook is written at most this often (and always
when the run ends, however it ends), so a run cut off by ``--timeout`` leaves its progress behind."""


@functools.cache
def _engine_name() -> str:
    """Register (once) and name the papermill engine the reports run with.

    papermill's own engine writes the whole notebook (validated against its schema) before and after
    every cell, markdown included: about 60 writes per report, a tenth of its run time. This one writes
    it at most every :data:`SAVE_EVERY_S` seconds when a cell completes, and always at the end
    (papermill's ``notebook_complete`` runs in a ``finally``; a failed cell is written by papermill
    before it raises). The progress bar is papermill's, unchanged.
    """
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    name = "huledu_throttled"

    class ThrottledManager(NotebookExecutionManager):  # type: ignore[misc]  # papermill ships no types
        def save(self, **kwargs: Any) -> None:
            if self.end_time is None and (self.now() - self.last_save_time).total_seconds() < SAVE_EVERY_S:
                return
            super().save(**kwargs)

    class ThrottledEngine(NBClientEngine):  # type: ignore[misc]
        @classmethod
        def execute_notebook(cls, nb: Any, kernel_name: str, output_path: str | None = None,
                             progress_bar: bool = True, log_output: bool = False, **kwargs: Any) -> Any:
            kwargs.pop("autosave_cell_every", None)
            nb_man = ThrottledManager(nb, output_path=output_path, progress_bar=progress_bar,
                                      log_output=log_output, autosave_cell_every=0)
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    papermill_engines.register(name, ThrottledEngine)
    return name


def _kernel_manager_class() -> type:
    """A kernel manager whose kernel starts with the environment minus every secret."""
    from jupyter_client.manager import AsyncKernelManager

    from .safety import child_env

    class ScrubbedKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            kw["env"] = child_env(kw.get("env") or os.environ)
            return await super()._async_pre_start_kernel(**kw)

    return ScrubbedKernelManager


def _bundle_into(bundle: Bundle, dest: Path) -> Bundle:
    """Make the report directory self-contained: copy the bundle to ``dest`` (unless it is there).

    Only the files the manifest lists are copied, each checked against its hash while it is copied and
    never through a symlink (:meth:`Bundle.copy_to`). An existing ``dest`` holding the same evidence is
    kept; one holding anything else is never replaced.

    Raises:
        BundleInvalid: ``dest`` holds something else, or the source bundle is damaged or unsafe.
    """
    if dest.exists() and dest.resolve() == Path(bundle.path).resolve():
        return bundle
    if dest.exists() or dest.is_symlink():
        try:
            there = Bundle.open(dest, verify=False)
            if there.manifest.get("files") == bundle.manifest.get("files"):
                return Bundle.open(dest)
        except ForensicsError:
            pass
        raise BundleInvalid(f"'{dest}' already holds other files (another bundle?); the kit does not "
                            "replace it. Pass another --out, or move it away.", path=str(dest))
    return bundle.copy_to(dest)


def _try_export(result: ReportResult, show_code: bool = False, plotly_js_dir: str | Path | None = None) -> None:
    if not result.notebook_path.is_file():
        return
    try:
        export_html(result.notebook_path, result.html_path, show_code=show_code, plotly_js_dir=plotly_js_dir)
    except Exception as exc:  # noqa: BLE001 - the HTML is a convenience once the notebook exists
        log.warning("HTML export of %s failed: %s", result.notebook_path, exc)


# -- demo ---------------------------------------------------------------------------------------
def demo_bundle(dest: str | Path | None = None, *, scenario: str = DEMO_SCENARIO, seed: int = 0,
                overwrite: bool = False) -> Path:
    """Build a simulator world and write it as a bundle; return the bundle directory.

    Args:
        dest: where to write it; ``None`` means a new temporary directory.
        scenario: the simulator scenario (default: the seed incident).
        seed: the simulator seed.
        overwrite: replace an existing bundle at ``dest``.

    Raises:
        ReportError: the simulator is not available or does not know ``scenario``.
    """
    from .simulate import build_world

    path = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="huledu-demo-")) / "bundle"
    try:
        world = build_world(scenario, seed=seed)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"Unknown simulator scenario '{scenario}' ({exc}). Run "
                          "`huledu-forensics scenarios` to list them.") from exc
    write_world_bundle(world, path, overwrite=overwrite,
                       origin={"kind": "simulator", "scenario": scenario, "seed": seed})
    return path


def resolve_bundle(bundle: str | Path | None) -> str:
    """Return ``bundle`` as a path string; ``None`` means the demo bundle (built once, then reused)."""
    if bundle is not None:
        return str(bundle)
    cached = Path(tempfile.gettempdir()) / f"huledu-forensics-demo-{DEMO_SCENARIO}-0-{_simulator_digest()}"
    try:
        Bundle.open(cached)
        return str(cached)
    except ForensicsError:
        pass
    try:
        demo_bundle(cached, overwrite=cached.exists())
    except BundleInvalid:  # another process wrote it first
        Bundle.open(cached)
    return str(cached)


def _simulator_digest() -> str:
    """A short digest of the kit version and the simulator's source: the demo cache key."""
    import hashlib

    from ._version import __version__

    h = hashlib.sha256(__version__.encode())
    root = Path(__file__).parent / "simulate"
    for f in sorted(root.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(f.relative_to(root).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def as_utc(value: datetime | str | None) -> datetime | None:
    """Parse a notebook's ``since``/``until`` parameter (ISO string or ``None``) to aware UTC."""
    return parse_utc(_iso(value, "since/until"))


def run_demo(out_dir: str | Path, *, timeout_s: float = 600, progress: bool = False,
             show_code: bool = False) -> ReportResult:
    """Build the demo bundle into ``out_dir/bundle`` and run the report for the demo batch into ``out_dir``.

    An earlier demo bundle there is replaced; any other directory in its place is refused.
    """
    out = Path(out_dir)
    check_report_dir(out)
    dest = out / BUNDLE_DIR
    overwrite = False
    if dest.exists():
        try:
            overwrite = Bundle.open(dest, verify=False).manifest.get("origin", {}).get("kind") == "simulator"
        except ForensicsError:
            overwrite = False
        if not overwrite:
            raise BundleInvalid(f"'{dest}' already exists and is not a demo bundle. Pass another --out.",
                                path=str(dest))
    demo_bundle(dest, overwrite=overwrite)
    return run_report(dest, DEMO_BATCH_ID, out, timeout_s=timeout_s, progress=progress, show_code=show_code)
