"""What an engineer on call sees: the HTML reports opened in Chromium at 1400 px wide.

For the batch investigation, postmortem and stuck_batches reports: the verdict card fits in the first
viewport, no code is shown, the swimlane opens on the incident window, no table cell cuts its text, and
the page logs no console error and makes no network request. Screenshots are kept next to each report
(``screen-1400.png``) for a human to look at when a test fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from huledu_forensics import investigate, plots, report
from huledu_forensics.bundle import write_world_bundle
from huledu_forensics.world import load_world_dir
from tests.support.corpus import require_corpus
from tests.support.env import unavailable

SEED_BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1400, 900

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_CUT_CELLS = """() => [...document.querySelectorAll('td, th')].filter(el => {
    if (!el.offsetParent) return false;  // inside a closed <details>: not rendered, not cut
    const s = getComputedStyle(el);
    const clipped = s.overflowX !== 'visible' || s.textOverflow === 'ellipsis' || s.whiteSpace === 'nowrap';
    return clipped && el.scrollWidth > el.clientWidth + 1;
}).map(el => el.innerText.slice(0, 80)).concat(
    [...document.querySelectorAll('.hf-scroll')]  // a table wider than the page hides its right side
        .filter(el => el.offsetParent && el.scrollWidth > el.clientWidth + 1)
        .map(el => 'table wider than the page: ' + el.innerText.slice(0, 60)))"""

_SWIMLANE_RANGE = """() => {
    const gd = [...document.querySelectorAll('.plotly-graph-div')]
        .find(d => d.layout && String(d.layout.title && d.layout.title.text).startsWith('Cross-service timeline'));
    return gd ? gd.layout.xaxis.range : null;
}"""


@pytest.fixture(scope="module")
def seed_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("views") / "seed"
    write_world_bundle(load_world_dir(require_corpus("seed-variant-a")), path)
    return path


@pytest.fixture(scope="module")
def sync_api() -> Any:
    if not CHROMIUM.exists():
        unavailable("/usr/bin/chromium is absent (apt-get install -y chromium)")
    from playwright import sync_api as api  # a test dependency (pyproject's test extra)
    return api


def _open(sync_api: Any, html: Path) -> dict[str, Any]:
    requests: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})

            def route(r: Any) -> None:
                if r.request.url.startswith("file://"):
                    r.continue_()
                else:
                    requests.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html.resolve().as_uri(), wait_until="load")
            page.wait_for_function("() => [...document.querySelectorAll('.plotly-graph-div')]"
                                   ".every(d => d.querySelector('.main-svg'))", timeout=20000)
            page.screenshot(path=str(html.with_name(f"screen-{WIDTH}.png")))
            card = page.eval_on_selector("#hf-verdict", "e => { const r = e.getBoundingClientRect(); "
                                         "return [r.top, r.bottom, e.innerText]; }")
            seen = {
                "card": card,
                "code": page.evaluate("() => document.querySelectorAll('.hl-ipython3, .jp-InputPrompt').length"),
                "cut": page.evaluate(_CUT_CELLS),
                "swimlane": page.evaluate(_SWIMLANE_RANGE),
                "cells": page.evaluate("() => [...document.querySelectorAll('td')].map(e => e.innerText)"),
                "figures": page.evaluate("() => [...document.querySelectorAll('.plotly-graph-div')]"
                                         ".map(d => String(d.layout.title && d.layout.title.text))"),
            }
        finally:
            browser.close()
    seen.update(requests=requests, errors=errors)
    return seen


def _assert_readable(seen: dict[str, Any]) -> None:
    top, bottom, _text = seen["card"]
    assert top >= 0 and bottom <= HEIGHT, f"the verdict card is not in the first viewport: {top}..{bottom}"
    assert seen["code"] == 0, "code cells are shown in the report"
    assert seen["cut"] == [], f"table cells cut their text: {seen['cut'][:5]}"
    assert seen["errors"] == [] and seen["requests"] == []


def _assert_incident_window(seen: dict[str, Any], bundle: Path) -> None:
    lo, hi = plots.incident_window(investigate(bundle, SEED_BATCH))
    got = [pd.Timestamp(x) for x in seen["swimlane"]]  # plotly keeps what the figure set; naive means UTC
    got = [t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC") for t in got]
    assert abs(got[0] - pd.Timestamp(lo)) < pd.Timedelta(milliseconds=1)
    assert abs(got[1] - pd.Timestamp(hi)) < pd.Timedelta(milliseconds=1)
    assert (got[1] - got[0]) < pd.Timedelta(minutes=1)  # the incident, not the container starts


def test_batch_investigation_report_reads_in_ten_seconds(seed_bundle: Path, sync_api: Any, tmp_path: Path) -> None:
    res = report.run_report(seed_bundle, SEED_BATCH, tmp_path)
    seen = _open(sync_api, res.html_path)
    _assert_readable(seen)
    card = seen["card"][2]
    assert "STUCK" in card.upper() and SEED_BATCH in card and "enum.label_missing" in card
    assert "produced ✗ no" in card and "Do now" in card
    assert seen["figures"][0].startswith("State machine")  # the graph comes right after the card
    _assert_incident_window(seen, seed_bundle)
    # the text the old tables cut at ~40 characters is there in full, in a cell
    assert any("lacks 'uploaded'" in c for c in seen["cells"])
    assert any("root cause" in c for c in seen["cells"])  # the root cause is marked in the findings
    assert res.html_path.stat().st_size <= 3_000_000


def test_postmortem_report_reads_in_ten_seconds(seed_bundle: Path, sync_api: Any, tmp_path: Path) -> None:
    res = report.run_report(seed_bundle, SEED_BATCH, tmp_path, notebook="postmortem")
    seen = _open(sync_api, res.html_path)
    _assert_readable(seen)
    assert "enum.label_missing" in seen["card"][2]
    _assert_incident_window(seen, seed_bundle)


def test_stuck_batches_report_reads_in_ten_seconds(seed_bundle: Path, sync_api: Any, tmp_path: Path) -> None:
    res = report.run_report(seed_bundle, SEED_BATCH, tmp_path, notebook="stuck_batches")
    seen = _open(sync_api, res.html_path)
    _assert_readable(seen)
    assert "stuck" in seen["card"][2].lower() and "enum.label_missing" in seen["card"][2]
