"""The report runner: papermill execution, parameters, failures, exit codes, and an offline HTML report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from huledu_forensics import report
from huledu_forensics.bundle import Bundle, write_world_bundle
from huledu_forensics.errors import BundleNotFound, ConfigError, ReportError, ScopeError
from huledu_forensics.world import load_world_dir
from tests.support.corpus import require_corpus
from tests.support.env import unavailable

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
SEED_BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


@pytest.fixture(scope="module")
def seed_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed-variant-a corpus world as a bundle."""
    path = tmp_path_factory.mktemp("bundles") / "seed"
    write_world_bundle(load_world_dir(require_corpus("seed-variant-a")), path)
    return path


def open_offline(html: Path) -> dict[str, object]:
    """Open ``html`` from file:// in Chromium with every non-file request blocked and recorded.

    Returns the drawn ``.main-svg`` count of each ``.plotly-graph-div``, the blocked requests and the
    console errors.
    """
    if not CHROMIUM.exists():
        unavailable("/usr/bin/chromium is absent (apt-get install -y chromium)")
    from playwright import sync_api  # a test dependency (pyproject's test extra)
    requests: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()

            def route(r: object) -> None:
                url = r.request.url  # type: ignore[attr-defined]
                if url.startswith("file://"):
                    r.continue_()  # type: ignore[attr-defined]
                else:
                    requests.append(url)
                    r.abort()  # type: ignore[attr-defined]

            page.route("**/*", route)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html.resolve().as_uri(), wait_until="load")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.plotly-graph-div')]"
                ".every(d => d.querySelector('.main-svg'))", timeout=20000)
            drawn = page.eval_on_selector_all(
                ".plotly-graph-div", "els => els.map(e => e.querySelectorAll('.main-svg').length)")
        finally:
            browser.close()
    return {"drawn": drawn, "requests": requests, "errors": errors}


# -- contract -------------------------------------------------------------------------------------
def test_report_files_contract_is_defined_once() -> None:
    assert report.REPORT_FILES == {"verdict": "verdict.json", "notebook": "report.ipynb",
                                   "html": "report.html"}
    assert report.BUNDLE_DIR == "bundle"
    assert report.notebook_parameters("batch_investigation") == [*report.NOTEBOOK_PARAMETERS, *report.OPTIONAL_NOTEBOOK_PARAMETERS]


@pytest.mark.parametrize("verdict, code", [
    ({"healthy": True, "findings": [], "completeness": {"complete": True}}, 0),
    ({"healthy": True, "findings": [{"severity": "info"}]}, 0),
    ({"healthy": True, "findings": [{"severity": "warning"}]}, 1),
    ({"healthy": False, "status": "stuck", "findings": []}, 1),
    ({"healthy": False, "completeness": {"sources": [{"name": "x", "completeness": "partial"}]}}, 2),
    ({"healthy": True, "completeness": {"complete": False}}, 2),
    ({"healthy": True, "completeness": {"logs:els": "missing"}}, 2),
])
def test_exit_code_for_verdict(verdict: dict, code: int) -> None:
    assert report.exit_code_for_verdict(verdict) == code


# -- runner ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_run_report_executes_with_parameters_and_writes_all_files(seed_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = report.run_report(seed_bundle, f" {SEED_BATCH} ", out,
                            notebook=FIXTURES / "two_figures_healthy_verdict.ipynb",
                            since="2025-09-20T10:00:00+02:00")
    assert {p.name for p in out.iterdir()} == set(report.REPORT_FILES.values()) | {report.BUNDLE_DIR,
                                                                                   report.PLOTLY_JS}
    assert res.bundle_path == out / report.BUNDLE_DIR  # the report directory is self-contained
    assert (out / report.BUNDLE_DIR / "manifest.json").is_file()
    assert res.verdict["batch_id"] == SEED_BATCH and res.exit_code == 0
    assert json.loads((out / "verdict.json").read_text()) == res.verdict
    nb = nbformat.read(out / "report.ipynb", as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert f'id = "{SEED_BATCH}"' in injected.source
    assert 'since = "2025-09-20T08:00:00+00:00"' in injected.source and "until = None" in injected.source
    assert str((out / report.BUNDLE_DIR).resolve()) in injected.source
    assert "password" not in injected.source.lower()
    html = (out / "report.html").read_text()
    assert html.count('class="plotly-graph-div"') == 2
    assert not re.findall(r'<script[^>]+src="https?://', html), "the HTML loads a script from the network"
    assert "cdnjs.cloudflare.com/ajax/libs/require.js" not in html
    # plotly.js once per report directory: loaded by the page, copied into neither page nor notebook
    assert f'<script src="{report.PLOTLY_JS}"' in html
    assert (out / report.PLOTLY_JS).read_text(encoding="utf-8").count("plotly.js v") >= 1
    assert "plotly.js v" not in html and "plotly.js v" not in (out / "report.ipynb").read_text()
    # code and parameter cells are hidden in the HTML; the notebook keeps them
    assert "hl-ipython3" not in html and 'id = "' not in html


@pytest.mark.slow
def test_show_code_keeps_the_code_cells_in_the_html(seed_bundle: Path, tmp_path: Path) -> None:
    report.run_report(seed_bundle, SEED_BATCH, tmp_path, notebook=FIXTURES / "two_figures_healthy_verdict.ipynb",
                      show_code=True)
    assert "hl-ipython3" in (tmp_path / "report.html").read_text()


def test_unknown_or_malformed_id_is_refused_before_the_notebook_runs(seed_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ScopeError, match="No row or log line in the bundle"):
        report.run_report(seed_bundle, "00000000-0000-0000-0000-000000000000", tmp_path / "a")
    with pytest.raises(ConfigError, match="is not an id"):
        report.run_report(seed_bundle, "278f7fd9 OR 1=1; --", tmp_path / "b")
    assert not (tmp_path / "a" / "report.ipynb").exists() and not (tmp_path / "b" / "report.ipynb").exists()
    # every kind of id the seed incident holds passes: batch, correlation, essay, text storage
    bundle = Bundle.open(seed_bundle)
    for rid in (SEED_BATCH, "7242c19e-039b-43d3-b37f-b144133706c9", "62431c17-f141-444a-b709-6c08e7c6eff2",
                "CF3EA970FFC94727B79CDB6051F76E6A"):
        report.require_id_in_bundle(bundle, rid)


@pytest.mark.slow
def test_failing_cell_still_writes_notebook_and_html_then_names_cell(seed_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "verdict.json").write_text('{"healthy": true}')  # stale verdict from an earlier run
    with pytest.raises(ReportError) as err:
        report.run_report(seed_bundle, SEED_BATCH, out, notebook=FIXTURES / "fails_in_cell_3.ipynb")
    msg = str(err.value)
    assert "fails_in_cell_3.ipynb" in msg and "RuntimeError: boom in the fixture" in msg
    assert err.value.cell_index == 3 and "cell 3" in msg  # index in the source notebook
    assert "\n" not in msg
    source = nbformat.read(FIXTURES / "fails_in_cell_3.ipynb", as_version=4)
    assert "boom" in source.cells[err.value.cell_index].source
    nb = nbformat.read(out / "report.ipynb", as_version=4)
    failed = [c for c in nb.cells if c.cell_type == "code" and any(o.get("ename") for o in c.outputs)]
    assert [c.outputs[0]["ename"] for c in failed] == ["RuntimeError"]
    assert "boom in the fixture" in (out / "report.html").read_text()
    assert not (out / "verdict.json").exists()


@pytest.mark.slow
def test_a_cell_cut_off_by_the_timeout_leaves_the_cells_that_ran_in_the_notebook(seed_bundle: Path,
                                                                                 tmp_path: Path) -> None:
    # the running notebook is written at most once a second (not before and after every cell), so
    # what ran must still be there when a later cell never returns
    v4 = nbformat.v4
    params = v4.new_code_cell("\n".join(f"{n} = None" for n in report.NOTEBOOK_PARAMETERS),
                              metadata={"tags": ["parameters"]})
    nb = v4.new_notebook(cells=[params, v4.new_code_cell("print('first cell ran')"),
                                v4.new_code_cell("import time\ntime.sleep(60)")])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(nb, tmp_path / "sleeps.ipynb")
    with pytest.raises(ReportError, match=r"Running notebook 'sleeps\.ipynb' failed"):
        report.run_report(seed_bundle, SEED_BATCH, tmp_path / "out", notebook=tmp_path / "sleeps.ipynb",
                          timeout_s=3)
    ran = nbformat.read(tmp_path / "out" / "report.ipynb", as_version=4)
    assert [o.get("text") for c in ran.cells if c.cell_type == "code" for o in c.outputs] == ["first cell ran\n"]
    assert "first cell ran" in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.slow
def test_forensics_error_in_notebook_is_raised_as_itself(seed_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ScopeError, match="No evidence mentions id 'nope'"):
        report.run_report(seed_bundle, "nope", tmp_path, notebook=FIXTURES / "raises_scope_error.ipynb",
                          check=False)
    assert (tmp_path / "report.html").exists()


@pytest.mark.slow
def test_a_bad_input_found_by_the_notebook_names_the_bundle_given_and_shows_no_traceback(
        seed_bundle: Path, tmp_path: Path) -> None:
    """The correlation trace asked about a batch id (mentioned in the bundle, so it passes the check
    before the run, but no correlation id): the message names the bundle the user passed, not the
    report's own copy in OUT/bundle, and the HTML shows that one line, not a traceback through the kit."""
    out = tmp_path / "out"
    with pytest.raises(ScopeError) as e:
        report.run_report(seed_bundle, SEED_BATCH, out, notebook="correlation_trace")
    assert str(seed_bundle) in str(e.value) and str(out / report.BUNDLE_DIR) not in str(e.value)
    assert str((out / report.BUNDLE_DIR).resolve()) not in str(e.value)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f"ScopeError: No outbox row or consumer log line in bundle {seed_bundle}" in html
    assert "Traceback" not in html and "trace.py" not in html
    assert str((out / report.BUNDLE_DIR).resolve()) not in html.split("ScopeError", 1)[1].split("</pre>", 1)[0]


def test_unknown_parameters_are_refused_before_execution(seed_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="since, until, verdict_path"):
        report.run_report(seed_bundle, SEED_BATCH, tmp_path,
                          notebook=FIXTURES / "declares_only_bundle_and_id.ipynb")
    assert not (tmp_path / "report.ipynb").exists()


@pytest.mark.slow
def test_notebook_that_writes_no_verdict_is_an_error(seed_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"wrote no verdict\.json"):
        report.run_report(seed_bundle, SEED_BATCH, tmp_path, notebook=FIXTURES / "no_verdict_written.ipynb")


def test_bad_inputs_fail_fast_with_one_line(seed_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleNotFound, match="No bundle at"):
        report.run_report(tmp_path / "missing", SEED_BATCH, tmp_path / "out")
    with pytest.raises(ConfigError, match="not a timestamp"):
        report.run_report(seed_bundle, SEED_BATCH, tmp_path / "out", since="yesterday-ish")
    with pytest.raises(ConfigError, match="No id"):
        report.run_report(seed_bundle, "  ", tmp_path / "out")
    with pytest.raises(ReportError, match="No packaged notebook named 'nope'"):
        report.run_report(seed_bundle, SEED_BATCH, tmp_path / "out", notebook="nope")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# -- offline HTML in a real browser ---------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.slow
def test_html_report_draws_every_figure_offline(seed_bundle: Path, tmp_path: Path) -> None:
    res = report.run_report(seed_bundle, SEED_BATCH, tmp_path,
                            notebook=FIXTURES / "two_figures_healthy_verdict.ipynb")
    seen = open_offline(res.html_path)
    assert len(seen["drawn"]) == 2 and all(n > 0 for n in seen["drawn"])
    assert seen["requests"] == []
    assert seen["errors"] == []


@pytest.mark.browser
@pytest.mark.slow
def test_batch_investigation_report_on_seed_incident(seed_bundle: Path, tmp_path: Path) -> None:
    res = report.run_report(seed_bundle, SEED_BATCH, tmp_path)
    assert res.verdict["batch_id"] == SEED_BATCH
    assert res.verdict["healthy"] is False and res.exit_code in (1, 2)
    assert res.bundle_path == tmp_path / report.BUNDLE_DIR  # a copy: the report directory stands alone
    assert Bundle.open(res.bundle_path).manifest["files"] == Bundle.open(seed_bundle).manifest["files"]
    # the run parameters name the bundle the user passed, and the copy the report read
    params = res.html_path.read_text(encoding="utf-8").split("Run parameters", 1)[1].replace("<wbr>", "")
    assert f"<code>{seed_bundle.resolve()}</code>" in params
    assert f"{(tmp_path / report.BUNDLE_DIR).resolve()} (this report" in params
    seen = open_offline(res.html_path)
    assert len(seen["drawn"]) >= 3 and all(n > 0 for n in seen["drawn"])
    assert seen["requests"] == [] and seen["errors"] == []


def test_resolve_bundle_builds_the_demo_bundle_once_and_reuses_it(seed_bundle: Path) -> None:
    assert report.resolve_bundle(seed_bundle) == str(seed_bundle)
    first = report.resolve_bundle(None)
    bundle = Bundle.open(first)
    assert bundle.manifest["origin"]["scenario"] == report.DEMO_SCENARIO
    assert report.resolve_bundle(None) == first
    assert report.as_utc("2025-11-20T19:00:00+01:00").isoformat() == "2025-11-20T18:00:00+00:00"
    assert report.as_utc(None) is None


def test_the_fallback_summary_shows_an_unknown_check_as_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the verdict's own summary cannot be rendered, the minimal one still never turns an
    unknown check (None) into ✗."""
    from huledu_forensics import verdict as verdict_mod

    def broken(self: object) -> str:
        raise RuntimeError("no summary")

    monkeypatch.setattr(verdict_mod.Verdict, "summary_text", broken)
    text = report.verdict_summary({"batch_id": "b-1", "status": "stuck", "awaited_event": {
        "topic": "t.ready", "produced": True, "published": None, "consumed": False}})
    assert "produced ✓ published ? consumed ✗" in text
