"""The investigation notebook opens and runs in a real JupyterLab, driven by a real headless Chromium.

A JupyterLab server (``python -m jupyterlab``, localhost only, random token, no news / update check /
PyPI extension manager) serves a temp copy of ``notebooks/batch_investigation.ipynb``. Chromium opens
it in the Lab UI, runs every cell through the menu *Run → Run All Cells*, waits for every code cell to
get an execution count and the kernel to go idle, then checks what a person looking at the notebook
would see: no error output, the plotly figures drawn by Lab's own plotly renderer (the
``application/vnd.plotly.v1+json`` mimetype, rendered by the ``jupyterlab-plotly`` extension into
``.jp-RenderedPlotly`` with ``svg.main-svg``) with traces and points in them, and the verdict naming the
seed incident's root cause. Every request Chromium makes is recorded; none may leave localhost.

On failure a screenshot of the Lab window, the (token-masked) server log and the kernel list land in the
test's tmp dir (the assertion message names it). The server itself lives in ``tests/support/lab.py``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.lab import LabServer, LabStartError, running_lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "batch_investigation.ipynb"
NOTEBOOK_NAME = NOTEBOOK.name
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
ROOT_CAUSE = "enum.label_missing"
RUN_TIMEOUT_MS = 240_000
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
PLOTLY_MIME = "application/vnd.plotly.v1+json"
from tests.support.env import unavailable as _unavailable  # noqa: E402 - kept next to its only use


@pytest.fixture(scope="module")
def sync_api() -> Any:
    """playwright's sync API, once Debian's Chromium and playwright are both there."""
    if not CHROMIUM.exists():
        _unavailable("/usr/bin/chromium is absent (apt-get install -y chromium)")
    try:
        from playwright import sync_api as api
    except ImportError:
        _unavailable("playwright is not installed in the venv (pip install playwright; never run "
                     "`playwright install`, the test uses /usr/bin/chromium)")
    return api


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A JupyterLab server whose root dir holds a fresh copy of the investigation notebook."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        _unavailable("jupyterlab is not installed in the venv (pip install jupyterlab)")
    root = tmp_path_factory.mktemp("lab-root")
    shutil.copy2(NOTEBOOK, root / NOTEBOOK_NAME)
    home = tmp_path_factory.mktemp("lab-home")
    try:
        with running_lab(root, home=home) as server:
            yield server
    except LabStartError as exc:
        pytest.fail(f"JupyterLab did not start: {exc}", pytrace=False)


# JavaScript run in the page -----------------------------------------------------------------------
_RUN_FINISHED = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
        .map(e => e.textContent.trim());
    if (prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:$/.test(t))) return 'all cells ran';
    // "Run All" stops at the first error: then the kernel goes idle with cells left unrun.
    const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
    const failed = [...document.querySelectorAll(
        '.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
        .some(o => /Traceback|Error/.test(o.textContent));
    if (failed && ind?.dataset.status === 'idle' && !prompts.includes('[*]:')) return 'stopped at an error';
    return false;
}"""

_KERNEL_IDLE = """() => {
    const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
    return ind !== null && ind.dataset.status === 'idle';
}"""

_CELLS = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].map(cell => ({
    prompt: cell.querySelector('.jp-InputArea-prompt')?.textContent.trim() ?? '',
    source: cell.querySelector('.jp-InputArea-editor')?.textContent ?? '',
    outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => ({
        mime: o.getAttribute('data-mime-type'),
        cls: o.className,
        text: o.textContent,
    })),
}))"""

_FIGURES = """() => [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output.jp-RenderedPlotly')]
    .map(f => ({
        svgs: f.querySelectorAll('svg.main-svg').length,
        traces: f.querySelectorAll('g.trace').length,
        points: f.querySelectorAll('g.trace path.point, g.trace .point').length,
        bars: f.querySelectorAll('g.trace .bars path, g.trace.bars path').length,
        width: f.getBoundingClientRect().width,
        height: f.getBoundingClientRect().height,
    }))"""


def _run_all_in_lab(page: Any, lab: LabServer) -> None:
    """Open the notebook in Lab, wait for its kernel, then *Run → Run All Cells* and wait for the end."""
    page.goto(lab.lab_url(NOTEBOOK_NAME), wait_until="domcontentloaded")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=90_000)
    # Running before the kernel is attached pops a "Select Kernel" dialog instead of running.
    lab.wait_for_idle_kernel(timeout=90.0)
    page.wait_for_function(_KERNEL_IDLE, timeout=60_000)
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
    page.wait_for_function(_RUN_FINISHED, timeout=RUN_TIMEOUT_MS, polling=500)
    page.wait_for_function(_KERNEL_IDLE, timeout=60_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-RenderedPlotly')].every(f => f.querySelector('svg.main-svg'))",
        timeout=30_000)


def _save_in_lab(page: Any, lab: LabServer) -> dict[str, Any]:
    """*File → Save Notebook* in Lab, then read the saved notebook back from the server's root dir."""
    path = lab.root_dir / NOTEBOOK_NAME
    page.click(".lm-MenuBar-itemLabel:text-is('File')")
    page.click("li.lm-Menu-item[data-command='docmanager:save']")
    deadline = time.monotonic() + 30
    while True:
        try:
            nb = json.loads(path.read_text())
        except ValueError:  # caught mid-write
            nb = {"cells": []}
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        if code and all(c.get("execution_count") for c in code):
            return nb
        if time.monotonic() > deadline:
            raise AssertionError(f"Lab did not save the executed notebook to {path} within 30s")
        time.sleep(0.25)


def test_batch_investigation_runs_in_jupyterlab(lab: LabServer, sync_api: Any, tmp_path: Path) -> None:
    requests: list[str] = []
    page_errors: list[str] = []
    debug = f"(screenshot and server log in {tmp_path})"
    started = time.monotonic()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda r: requests.append(r.url))
            page.on("websocket", lambda ws: requests.append(ws.url))
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            try:
                _run_all_in_lab(page, lab)
                ran_s = time.monotonic() - started
                _assert_lab_run(page.evaluate(_CELLS), page.evaluate(_FIGURES), requests, page_errors, debug)
                saved = _save_in_lab(page, lab)
            except Exception:
                _save_debug(page, lab, tmp_path)
                raise
            page.locator(".jp-RenderedPlotly").first.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "jupyterlab.png"))
        finally:
            browser.close()
    _assert_saved_notebook(saved)
    print(f"JupyterLab ran the notebook in {ran_s:.1f}s (browser launch to idle kernel with drawn figures)")


def _assert_lab_run(cells: list[dict[str, Any]], figures: list[dict[str, Any]], requests: list[str],
                    page_errors: list[str], debug: str) -> None:
    """The checks a reader of the notebook in Lab relies on."""
    # No error output anywhere: no traceback on stderr, no rendered error text.
    outputs = [o for c in cells for o in c["outputs"]]
    stderr = [o["text"] for o in outputs if o["mime"] == "application/vnd.jupyter.stderr"]
    failed = [t[-800:] for t in stderr if "Traceback" in t or "Error" in t]
    assert not failed, f"error output in Lab: {failed} {debug}"
    rendered_text = [o["text"] for o in outputs if "jp-RenderedText" in o["cls"]]
    failed = [t[-800:] for t in rendered_text if "Error" in t]
    assert not failed, f"error text in Lab: {failed} {debug}"

    # Every code cell ran (the notebook has 12).
    assert len(cells) >= 10, f"only {len(cells)} code cells in the Lab DOM {debug}"
    prompts = [c["prompt"] for c in cells]
    assert all(p not in ("[ ]:", "[*]:") for p in prompts), f"not every cell ran: {prompts} {debug}"
    counts = [int(c["prompt"].strip("[]:")) for c in cells]
    assert counts == sorted(counts) and len(set(counts)) == len(counts), f"cells ran out of order: {counts}"

    # The verdict card names the root cause.
    verdict = [c for c in cells if "verdict_card" in c["source"]]
    assert len(verdict) == 1, f"no single verdict cell among {[c['source'][:60] for c in cells]}"
    summary = "".join(o["text"] for o in verdict[0]["outputs"] if o["mime"] == "text/html")
    assert ROOT_CAUSE in summary, f"verdict card does not name {ROOT_CAUSE}: {summary[:400]!r}"

    # Lab's plotly renderer drew at least the three figures, each with data in it.
    assert len(figures) >= 3, f"Lab drew {len(figures)} plotly figures, expected >= 3 {debug}"
    for n, fig in enumerate(figures):
        assert fig["svgs"] > 0, f"plotly figure {n} has no svg.main-svg: {fig}"
        assert fig["traces"] > 0, f"plotly figure {n} has no trace drawn: {fig}"
        assert fig["width"] > 100 and fig["height"] > 100, f"plotly figure {n} is collapsed: {fig}"
    assert any(f["points"] > 0 for f in figures), f"no plotted point in any figure: {figures}"
    assert sum(f["points"] + f["bars"] for f in figures) >= 10, f"figures carry almost no data: {figures}"

    # Nothing in the page threw, and nothing went beyond localhost.
    assert page_errors == [], f"uncaught errors in the Lab page: {page_errors[:5]}"
    outside = sorted({u for u in requests if (urlsplit(u).hostname or "") not in LOCAL_HOSTS
                      and not u.startswith(("data:", "blob:"))})
    assert outside == [], f"Chromium requested non-localhost URLs: {outside[:10]}"
    assert requests, "no request was recorded at all (the recorder is broken)"


def _assert_saved_notebook(nb: dict[str, Any]) -> None:
    """The notebook as Lab saved it: no error output, and figures stored as the plotly mimetype."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for c in code for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors == [], f"the saved notebook holds error outputs: {errors}"
    plotly = [o for c in code for o in c.get("outputs", []) if PLOTLY_MIME in o.get("data", {})]
    assert len(plotly) >= 3, f"{len(plotly)} outputs carry {PLOTLY_MIME}, expected >= 3"
    assert all(o["data"][PLOTLY_MIME].get("data") for o in plotly), "a plotly output has no traces"


def _save_debug(page: Any, lab: LabServer, tmp_path: Path) -> None:
    """Screenshot the page and keep the server log (token masked) next to it."""
    try:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
    except Exception:  # noqa: BLE001 - the screenshot is a debugging aid only
        pass
    (tmp_path / "server.log").write_text(lab.log_text())
    try:
        (tmp_path / "kernels.json").write_text(json.dumps(lab.api("kernels"), indent=1))
    except Exception:  # noqa: BLE001 - best effort
        pass
