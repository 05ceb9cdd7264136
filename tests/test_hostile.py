"""Hostile logs and untrusted bundles (issue 10): a generated corpus (tests/support/hostile.py) of every
kind of damaged, oversized, nested, mistimed, escape-laden and script-laden line, and bundles damaged
every way a hand-made or tampered bundle can be.

For each: no crash; every input line kept byte for byte in the bundle; a verdict with completeness or
a one-line bad-input error (exit 4); nothing outside a bundle read; no script executing in any HTML the
kit writes (checked in Chromium: dialogs and a flag every payload sets); no escape sequence reaching a
terminal or Markdown; a canary password in no output file and no child environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC
from pathlib import Path
from typing import ClassVar

import pytest

from huledu_forensics import logs
from huledu_forensics.bundle import Bundle, BundleWriter, write_world_bundle
from huledu_forensics.errors import BundleInvalid
from huledu_forensics.safety import check_id, markdown_safe, printable
from huledu_forensics.sources.files import FilesSource
from tests.support.env import unavailable
from tests.support.hostile import (
    BAD_UTF8,
    CANARY,
    ESCAPES,
    KINDS,
    MARKUP_PAYLOADS,
    damaged_bundles,
    hostile_lines,
    hostile_world,
)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
HUGE = 10 * 1024 * 1024
# what must never reach a terminal or Markdown: C0 (but TAB/LF), DEL, C1, bidi overrides
CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
CANARY_ENV = "HULEEDU_DB_PASSWORD"


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "huledu_forensics.cli", *args], capture_output=True,
                          env=full, timeout=timeout, cwd=str(ROOT))


def _files_with(directory: Path, needle: bytes) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The seed world with every hostile kind appended to a service log, written as a bundle."""
    world, container, stream, added = hostile_world(huge_size=HUGE)
    path = tmp_path_factory.mktemp("hostile") / "bundle"
    write_world_bundle(world, path)
    return {"bundle": path, "container": container, "stream": stream, "added": added,
            "batch": str(world.target["batch_id"]),
            "correlation": str(world.target.get("registration_correlation_id") or "")}


# -- the generator really generates every kind ---------------------------------------------------
def test_every_kind_is_generated_with_its_damage() -> None:
    from datetime import datetime

    lines = hostile_lines("278f7fd9-37fe-406a-a735-f15128cb6b1f", "9437fe03-1195-4241-b532-91d36df0b1c2",
                          datetime(2025, 11, 20, 18, 0, tzinfo=UTC), huge_size=HUGE)
    assert set(lines) == set(KINDS) and all(lines.values())
    flat = [b for v in lines.values() for b in v]
    assert not any(b"\n" in b for b in flat)  # one physical line each

    def undecodable(b: bytes) -> bool:
        try:
            b.decode("utf-8")
            return False
        except UnicodeDecodeError:
            return True

    assert all(any(bad in b for bad in BAD_UTF8) and undecodable(b) for b in lines["invalid_utf8"])
    assert max(len(b) for b in lines["huge_line"]) >= HUGE
    assert all(b"\x00" in b for b in lines["nul"])
    assert all(b.endswith(b"\r") for b in lines["crlf"])
    assert all(b"\r" in b.rstrip(b"\r") for b in lines["lone_cr"])
    assert any(b.count(b"[") >= 100_000 for b in lines["deep_json"])
    assert any(b.startswith(b"9999-") for b in lines["extreme_years"])
    assert any(b.startswith(b"0001-") for b in lines["extreme_years"])
    stamps = [b.split(b" ", 1)[0] for b in lines["out_of_order"]]
    assert stamps != sorted(stamps)
    for esc in ESCAPES:
        assert any(esc.encode() in b or json.dumps(esc)[1:-1].encode() in b for b in lines["escapes"])
    assert len(lines["markup"]) == 2 * len(MARKUP_PAYLOADS)


# -- storage and parsing -----------------------------------------------------------------------------
def test_the_bundle_keeps_every_hostile_line_byte_for_byte(hostile: dict[str, object]) -> None:
    b = Bundle.open(hostile["bundle"])  # type: ignore[arg-type]
    data = (b.path / "logs" / str(hostile["container"]) / f"{hostile['stream']}.log").read_bytes()
    stored = data.split(b"\n")
    assert stored[-1] == b""  # every line ends with LF
    added = hostile["added"]
    assert stored[-1 - len(added):-1] == added  # type: ignore[arg-type]


def test_every_line_gives_one_parsed_row_and_nothing_raises(hostile: dict[str, object]) -> None:
    b = Bundle.open(hostile["bundle"])  # type: ignore[arg-type]
    path = b.path / "logs" / str(hostile["container"]) / f"{hostile['stream']}.log"
    n_lines = path.read_bytes().count(b"\n")
    df = logs.parse_file(path, container=str(hostile["container"]))
    assert len(df) == n_lines
    assert df["ts"].dtype.tz is not None  # every timestamp aware UTC; out-of-range years are NaT
    deep = df[df["raw"].str.contains("deep ", regex=False)]
    assert len(deep) == 2 * KINDS["deep_json"][1] and not deep["parsed"].any()


def test_the_files_source_keeps_lines_whole_through_a_bundle(tmp_path: Path) -> None:
    from datetime import datetime

    lines = [b for v in hostile_lines("278f7fd9-37fe-406a-a735-f15128cb6b1f", "9437fe03-1195-4241-b532-"
                                      "91d36df0b1c2", datetime(2025, 11, 20, 18, 0, tzinfo=UTC),
                                      huge_size=1 << 20).values() for b in v]
    logdir = tmp_path / "logs"
    logdir.mkdir()
    (logdir / "huleedu_batch_orchestrator_service.log").write_bytes(b"\n".join(lines) + b"\n")
    src = FilesSource(logdir)
    with BundleWriter(tmp_path / "b") as w:
        rep = w.source("files", "files")
        w.add_log_lines("c", "combined", (ln.text for ln in src.iter_lines(
            "huleedu_batch_orchestrator_service")), source=rep)
        w.finish(scope={}, window=(None, None))
    stored = (tmp_path / "b" / "logs" / "c" / "combined.log").read_bytes().split(b"\n")[:-1]
    assert len(stored) == len(lines)  # a lone CR split nothing
    stamp = re.compile(rb"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z ")
    for got in stored:  # each stored line is an input line, or an unstamped one with a stamp added
        assert got in lines or (stamp.match(got) and got[31:] in lines), got[:120]
    assert not any(s.startswith(b"1-01-01") for s in stored)  # year 1 is written 0001


@pytest.mark.browser
@pytest.mark.slow
def test_no_escape_sequence_or_script_reaches_the_postmortem_markdown(hostile: dict[str, object],
                                                                     tmp_path: Path) -> None:
    r = _cli("postmortem", "--bundle", str(hostile["bundle"]), "--id", str(hostile["batch"]),
             "--out", str(tmp_path / "pm"), "--no-figures")
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    md = (tmp_path / "pm" / "postmortem.md").read_text(encoding="utf-8")
    assert "Error routing event" in md  # the hostile lines did reach the document
    assert not CONTROL_RE.search(md)
    assert "\\x1b" in md or "\\x07" in md  # shown escaped, not dropped silently
    outside_fences = re.sub(r"```.*?```", "", md, flags=re.S)
    assert "<script" not in outside_fences.lower() and "<svg" not in outside_fences.lower()
    assert not re.search(r"\]\((?:javascript|data|https?):", outside_fences, re.I)
    assert not CONTROL_RE.search(r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace"))
    # rendered the way nbconvert renders Markdown, nothing executes
    from nbconvert.filters import markdown2html

    html = tmp_path / "pm.html"
    html.write_text(f"<html><body>{markdown2html(md)}</body></html>", encoding="utf-8")
    seen = open_and_count(html)
    assert seen == {"dialogs": 0, "pwned": 0, "requests": []}


# -- browsers ----------------------------------------------------------------------------------------
def open_and_count(html: Path) -> dict[str, object]:
    """Open ``html`` in Chromium: count dialogs (alert/confirm/prompt), read the payloads' flag, and
    record every request that is not the page itself (all are blocked)."""
    if not CHROMIUM.exists():
        unavailable("/usr/bin/chromium is absent (apt-get install -y chromium)")
    from playwright import sync_api  # a test dependency (pyproject's test extra)
    dialogs: list[str] = []
    requests: list[str] = []
    page_url = html.resolve().as_uri()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()

            def route(r: object) -> None:
                url = r.request.url  # type: ignore[attr-defined]
                if url == page_url or url.startswith("data:"):
                    r.continue_()  # type: ignore[attr-defined]
                else:
                    requests.append(url)
                    r.abort()  # type: ignore[attr-defined]

            def on_dialog(d: object) -> None:
                dialogs.append(d.message)  # type: ignore[attr-defined]
                d.dismiss()  # type: ignore[attr-defined]

            page.route("**/*", route)
            page.on("dialog", on_dialog)
            page.goto(page_url, wait_until="load")
            page.wait_for_timeout(1500)  # onload/onerror/ontoggle handlers fire after load
            # hover everything once: mouseover payloads would fire now
            page.evaluate("() => document.querySelectorAll('*').forEach(e => e.dispatchEvent("
                          "new MouseEvent('mouseover', {bubbles: true})))")
            pwned = page.evaluate("() => window.__hf_pwned || 0")
        finally:
            browser.close()
    return {"dialogs": len(dialogs), "pwned": pwned, "requests": requests}


NOTEBOOKS = ["batch_investigation", "correlation_trace", "stuck_batches", "postmortem"]


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_reports_on_hostile_logs_run_no_script(hostile: dict[str, object], tmp_path: Path,
                                               notebook: str) -> None:
    ident = str(hostile["correlation"] if notebook == "correlation_trace" else hostile["batch"])
    out = tmp_path / "out"
    r = _cli("report", "--bundle", str(hostile["bundle"]), "--id", ident, "--out", str(out),
             "--notebook", notebook, "--timeout", "600", env={CANARY_ENV: CANARY})
    err = r.stderr.decode(errors="replace")
    assert r.returncode in (0, 1, 2), err[-3000:]
    verdict = json.loads((out / "verdict.json").read_text())
    assert "completeness" in verdict
    text = r.stdout.decode(errors="replace") + err
    assert not CONTROL_RE.search(text), repr(text[:2000])
    seen = open_and_count(out / "report.html")
    assert seen["dialogs"] == 0 and seen["pwned"] == 0, seen
    assert not [u for u in seen["requests"] if "plotly" not in u], seen  # type: ignore[union-attr]
    assert _files_with(out, CANARY.encode()) == []


# -- untrusted bundles -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from huledu_forensics.simulate import build_world

    root = tmp_path_factory.mktemp("damaged")
    secret = root / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(f"outside-the-bundle {CANARY}\n")
    good = root / "good"
    write_world_bundle(build_world("seed_variant_a", seed=0), good)
    return {"good": good, "secret": secret, "bundles": damaged_bundles(good, root / "bad", secret)}


UNSAFE = ["symlinked_log", "dotdot_path", "dotdot_log_path", "absolute_path", "manifest_not_object",
          "files_not_mapping", "deep_manifest"]


class _Opened:
    """Records every file the process opens (a Python audit hook; hooks cannot be removed, so it
    records only while active)."""

    active = False
    paths: ClassVar[list[str]] = []

    @classmethod
    def hook(cls, event: str, args: tuple) -> None:
        if cls.active and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            cls.paths.append(os.fsdecode(args[0]))

    def __enter__(self) -> list[str]:
        type(self).paths = []
        type(self).active = True
        return type(self).paths

    def __exit__(self, *exc: object) -> None:
        type(self).active = False


sys.addaudithook(_Opened.hook)


@pytest.mark.parametrize("kind", UNSAFE)
def test_an_unsafe_bundle_is_refused_without_reading_outside_it(damaged: dict[str, object],
                                                                kind: str) -> None:
    path = damaged["bundles"][kind]  # type: ignore[index]
    secret = os.path.realpath(damaged["secret"])  # type: ignore[arg-type]
    with _Opened() as opened, pytest.raises(BundleInvalid) as exc:
        Bundle.open(path)
    assert len(str(exc.value).splitlines()) == 1 and len(str(exc.value)) < 400
    assert not [p for p in opened if os.path.realpath(p) == secret]


@pytest.mark.parametrize("kind", ["symlinked_log_unlisted", "symlinked_dir"])
def test_a_copy_into_a_report_takes_only_listed_regular_files(damaged: dict[str, object], kind: str,
                                                              tmp_path: Path) -> None:
    path = damaged["bundles"][kind]  # type: ignore[index]
    secret = os.path.realpath(damaged["secret"])  # type: ignore[arg-type]
    with _Opened() as opened:
        copy = Bundle.open(path).copy_to(tmp_path / "copy")
    assert not [p for p in opened if os.path.realpath(p) == secret]
    assert _files_with(tmp_path, CANARY.encode()) == []
    assert not [p for p in (tmp_path / "copy").rglob("*") if p.is_symlink()]
    assert sorted(p.relative_to(copy.path).as_posix() for p in copy.path.rglob("*") if p.is_file()) == \
        sorted([*Bundle.open(damaged["good"]).manifest["files"], "manifest.json"])  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["symlinked_log", "dotdot_path", "deep_manifest", "truncated_parquet",
                                  "truncated_parquet_rehashed"])
def test_report_on_an_unsafe_bundle_is_one_line_exit_4(damaged: dict[str, object], kind: str,
                                                       tmp_path: Path) -> None:
    r = _cli("report", "--bundle", str(damaged["bundles"][kind]), "--id",  # type: ignore[index]
             "278f7fd9-37fe-406a-a735-f15128cb6b1f", "--out", str(tmp_path / "out"))
    err = r.stderr.decode(errors="replace").strip()
    assert r.returncode == 4 and len(err.splitlines()) == 1 and err.startswith("error: "), err[-2000:]
    assert _files_with(tmp_path, CANARY.encode()) == []


# -- bad input on the command line -------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["a", "-", "--", "%", "*", "abc", "' OR 1=1 --", "x" * 100_000,
                                 "\x1b]0;pwned\x07aaaaaaaaaa", "../../etc/passwd"])
def test_ids_without_the_shape_of_an_id_are_bad_input_echoed_short(damaged: dict[str, object],
                                                                   tmp_path: Path, bad: str) -> None:
    r = _cli("report", "--bundle", str(damaged["good"]), "--id", bad, "--out", str(tmp_path / "o"))
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 4 and len(err.strip().splitlines()) == 1, err[-500:]
    assert len(err) < 600 and not CONTROL_RE.search(err)
    assert not (tmp_path / "o").exists()


def test_check_id_accepts_real_ids_and_uuid_reprs() -> None:
    assert check_id(" 278F7FD9-37fe-406a-a735-f15128cb6b1f ") == "278F7FD9-37fe-406a-a735-f15128cb6b1f"
    assert check_id("UUID('278f7fd9-37fe-406a-a735-f15128cb6b1f')") == "278f7fd9-37fe-406a-a735-f15128cb6b1f"
    assert check_id("b2f1d444e90243fc8a79c2285242c352") == "b2f1d444e90243fc8a79c2285242c352"


@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_a_timeout_that_would_disable_the_limit_is_bad_input(damaged: dict[str, object],
                                                             tmp_path: Path, value: str) -> None:
    r = _cli("report", "--bundle", str(damaged["good"]), "--id", "278f7fd9-37fe-406a-a735-f15128cb6b1f",
             "--out", str(tmp_path / "o"), "--timeout", value)
    assert r.returncode == 4 and b"timeout" in r.stderr.lower(), r.stderr


def test_report_never_writes_into_or_empties_a_users_directory(damaged: dict[str, object],
                                                               tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my only copy")
    before = sorted(p.name for p in mine.iterdir())
    r = _cli("report", "--bundle", str(damaged["good"]), "--id", "278f7fd9-37fe-406a-a735-f15128cb6b1f",
             "--out", str(mine))
    assert r.returncode == 4 and b"not a report directory" in r.stderr, r.stderr
    assert sorted(p.name for p in mine.iterdir()) == before
    # OUT/bundle holding another bundle is never replaced
    out = tmp_path / "out"
    out.mkdir()
    from huledu_forensics.simulate import build_world

    other = write_world_bundle(build_world("healthy_guest", seed=0), tmp_path / "other").path
    import shutil

    shutil.copytree(damaged["good"], out / "bundle")  # type: ignore[arg-type]
    marker = (out / "bundle" / "manifest.json").read_bytes()
    r = _cli("report", "--bundle", str(other), "--id", "278f7fd9-37fe-406a-a735-f15128cb6b1f",
             "--out", str(out))
    assert r.returncode == 4 and (out / "bundle" / "manifest.json").read_bytes() == marker, r.stderr


# -- escaping helpers --------------------------------------------------------------------------------
@pytest.mark.parametrize("esc", ESCAPES)
def test_printable_leaves_no_control_character(esc: str) -> None:
    out = printable(f"a{esc}b\udcff", 100)
    assert not CONTROL_RE.search(out) and "\udcff" not in out and out.startswith("a")


def test_markdown_safe_neutralises_html_and_links_outside_fences_only() -> None:
    md = "| x | <script>alert(1)</script> [a](javascript:x) |\n```sql\nSELECT '<a>';\n```\n"
    out = markdown_safe(md)
    assert "<script" not in out and "](javascript" not in out
    assert "SELECT '<a>';" in out  # code stays literal inside a fence


# -- secrets: never in a child's environment ---------------------------------------------------------
def _env_dump_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('bundle = None\nid = ""\nsince = None\nuntil = None\n'
                                       'verdict_path = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import json, os, pathlib\n"
        "pathlib.Path(verdict_path).with_name('kernel-env.json').write_text(json.dumps(dict(os.environ)))\n"
        "pathlib.Path(verdict_path).write_text(json.dumps({'healthy': True, 'completeness': {}}))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.mark.slow
def test_the_notebook_kernel_gets_no_secret_in_its_environment(damaged: dict[str, object],
                                                               tmp_path: Path) -> None:
    nb = _env_dump_notebook(tmp_path / "envdump.ipynb")
    out = tmp_path / "out"
    env = {CANARY_ENV: CANARY, "HF_PROD_DB_PASSWORD": CANARY,
           "HULEDU_FORENSICS_BOS_DSN": f"postgresql+psycopg://u:{CANARY}@h:5432/db",
           "SOME_URL": f"http://u:{CANARY}@loki:3100"}
    r = _cli("report", "--bundle", str(damaged["good"]), "--id", "278f7fd9-37fe-406a-a735-f15128cb6b1f",
             "--out", str(out), "--notebook", str(nb), env=env)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    dumped = json.loads((out / "kernel-env.json").read_text())
    assert "PATH" in dumped  # the dump is real
    assert CANARY not in json.dumps(dumped)
    (out / "kernel-env.json").unlink()
    assert _files_with(out, CANARY.encode()) == []


@pytest.mark.browser
@pytest.mark.slow
def test_the_postmortem_browser_gets_no_secret_in_its_environment(damaged: dict[str, object],
                                                                  tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        unavailable("/usr/bin/chromium is absent (apt-get install -y chromium)")
    dump = tmp_path / "chromium-env.txt"
    wrapper = tmp_path / "chromium"
    wrapper.write_text(f"#!/bin/sh\nenv >> '{dump}'\nexec {CHROMIUM} \"$@\"\n")
    wrapper.chmod(0o755)
    out = tmp_path / "pm"
    r = _cli("postmortem", "--bundle", str(damaged["good"]), "--out", str(out),
             env={CANARY_ENV: CANARY, "BROWSER_PATH": str(wrapper)})
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    assert list((out / "figures").glob("*.png")), "the browser did not draw the figures"
    text = dump.read_text()
    assert "PATH=" in text and CANARY not in text
    assert _files_with(out, CANARY.encode()) == []


def test_child_env_drops_every_kind_of_secret_and_keeps_the_rest() -> None:
    from huledu_forensics.safety import child_env, register_secret_env

    register_secret_env("HF_PLAIN_NAMED_VAR")
    base = {"PATH": "/usr/bin", "HOME": "/root", "PWD": "/work", "LANG": "C.UTF-8",
            "HULEEDU_DB_PASSWORD": CANARY, "PGPASSWORD": CANARY, "HF_PLAIN_NAMED_VAR": CANARY,
            "HULEDU_FORENSICS_ELS_DSN": f"postgresql://u:{CANARY}@h/db", "GITHUB_TOKEN": CANARY,
            "AWS_SECRET_ACCESS_KEY": CANARY, "ANY_URL": f"http://u:{CANARY}@loki:3100"}
    env = child_env(base)
    assert env == {"PATH": "/usr/bin", "HOME": "/root", "PWD": "/work", "LANG": "C.UTF-8"}


def test_trace_figure_shows_hostile_text_as_text_not_markup() -> None:
    import pandas as pd

    from huledu_forensics.trace import trace_figure

    t0 = pd.Timestamp("2025-11-20T18:00:00Z")
    p = MARKUP_PAYLOADS[4].format(js="alert(1)", n=1)  # <a href="javascript:…">
    trace = pd.DataFrame([{
        "event": f"Ev{p}", "consumer": f"svc{ESCAPES[0]}", "topic": f"huleedu.{p}", "producer": "<b>x</b>",
        "outcome": "failed", "detail": f"<img src=x onerror=alert(1)> {ESCAPES[1]}", "refs": f"logs/{p}#L1",
        "written_at": t0, "relayed_at": t0 + pd.Timedelta(seconds=1),
        "consumed_at": t0 + pd.Timedelta(seconds=2), "handled_at": t0 + pd.Timedelta(seconds=3)}])
    fig = trace_figure(trace)
    texts = [str(tr.hovertext) for tr in fig.data] + [str(y) for tr in fig.data for y in tr.y]
    assert texts and all("<a " not in t and "<img" not in t and "<b>" not in t for t in texts)
    assert not any(CONTROL_RE.search(t) for t in texts)
    assert any("&lt;a href" in t for t in texts)  # shown, as text
