"""The pytest plugin: a failed functional test gets a forensics report, in the summary and the JUnit XML.

These tests run an inner pytest session with ``pytester`` (enabled in the root ``tests/conftest.py``
with ``pytest_plugins = ["pytester"]``; until then run ``pytest -p pytester tests/test_pytest_plugin.py``).
Each report is a real papermill run, so the inner sessions are few and share one seed bundle.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from huledu_forensics.bundle import write_world_bundle
from huledu_forensics.pytest_plugin import run_job, sanitise_nodeid, verdict_properties
from huledu_forensics.redact import find_secrets, find_text, is_redacted
from huledu_forensics.simulate import build_world
from huledu_forensics.world import save_world_dir

pytest_plugins = ["pytester"]

BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
REG_CORRELATION = "9437fe03-1195-4241-b532-91d36df0b1c2"
PIPELINE_CORRELATION = "7242c19e-039b-43d3-b37f-b144133706c9"
UNKNOWN = "00000000-dead-beef-0000-000000000000"
# this module imports the plugin too, so the inner session cannot assertion-rewrite it: say nothing
PLUGIN = ("-p", "huledu_forensics.pytest_plugin", "-W", "ignore::pytest.PytestAssertRewriteWarning")
SECRET = "Pw-plugin-never-on-disk-5521"

FUNCTIONAL_TESTS = f'''
BATCH = "{BATCH}"

def test_guest_batch_reaches_ready(forensics):
    forensics.register(batch_id=BATCH, correlation_id="{REG_CORRELATION}")
    forensics.register(pipeline_correlation_id="{PIPELINE_CORRELATION}", essay_id=["e1", "e2"])
    assert False, "batch never became ready_for_pipeline_execution"

def test_passing_batch(forensics):
    forensics.register(batch_id=BATCH)

def test_fails_before_registering(forensics):
    raise RuntimeError("could not reach the API gateway")

def test_unknown_batch(forensics):
    forensics.register(batch_id="{UNKNOWN}")
    assert False
'''


@pytest.fixture(scope="module")
def seed_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "seed-bundle"
    write_world_bundle(build_world("seed_variant_a"), path)
    return path


def _properties(xml: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        out[case.get("name", "")] = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
    return out


def test_failed_test_gets_the_seed_verdict_in_artifacts_summary_and_junit(
        pytester: pytest.Pytester, seed_bundle: Path) -> None:
    pytester.makepyfile(test_functional=FUNCTIONAL_TESTS)
    result = pytester.runpytest(*PLUGIN, f"--forensics-bundle={seed_bundle}", "--junitxml=junit.xml",
                                "--forensics-artifacts=artifacts", "--forensics-timeout=240")
    # the original failures are reported as they are; the report never turns into a session error
    result.assert_outcomes(passed=1, failed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*AssertionError: batch never became ready_for_pipeline_execution*",
                                 "*RuntimeError: could not reach the API gateway*"])

    artifacts = pytester.path / "artifacts"
    stuck = artifacts / "test_functional.py__test_guest_batch_reaches_ready"
    verdict = json.loads((stuck / "verdict.json").read_text())
    assert verdict["batch_id"] == BATCH
    assert verdict["current_state"] == "awaiting_content_validation"
    assert verdict["awaited_event"] == "huleedu.batch.content.provisioning.completed.v1"
    assert verdict["root_cause"]["finding"] == "enum.label_missing"
    assert (stuck / "report.html").stat().st_size > 10_000 and (stuck / "report.ipynb").is_file()
    # a passing test, a test without ids and an id the evidence never mentions produce no artifacts
    # (the unknown batch is refused before any notebook runs, so it leaves no directory behind)
    assert sorted(p.name for p in artifacts.iterdir()) == [
        "plotly.min.js", "test_functional.py__test_guest_batch_reaches_ready"]
    # plotly.js once for all the reports, not once per failing test
    assert not (stuck / "plotly.min.js").exists() and '<script src="../plotly.min.js"' in (
        stuck / "report.html").read_text()

    result.stdout.fnmatch_lines([
        "*= huledu-forensics =*",
        "test_functional.py::test_guest_batch_reaches_ready: stuck; state awaiting_content_validation; "
        "awaiting huleedu.batch.content.provisioning.completed.v1; root cause enum.label_missing",
        f"    report: {stuck / 'report.html'}",
        f"    verdict: {stuck / 'verdict.json'}",
    ])
    result.stdout.fnmatch_lines([
        "test_functional.py::test_fails_before_registering: note: no ids registered with the forensics "
        "fixture; nothing to investigate*"])
    result.stdout.fnmatch_lines([
        f"test_functional.py::test_unknown_batch: WARNING: forensics report for {UNKNOWN} failed: "
        "ScopeError: *"])
    warning = [ln for ln in result.outlines if "WARNING: forensics report" in ln]
    assert len(warning) == 1 and "Traceback" not in result.stdout.str().split("huledu-forensics")[-1]

    props = _properties(pytester.path / "junit.xml")
    assert props["test_guest_batch_reaches_ready"] == {
        "forensics_verdict_status": "stuck",
        "forensics_root_cause": "enum.label_missing",
        "forensics_current_state": "awaiting_content_validation",
        "forensics_awaited_event": "huleedu.batch.content.provisioning.completed.v1",
        "forensics_artifacts": str(stuck),
        "forensics_verdict": str(stuck / "verdict.json"),
    }
    assert props["test_passing_batch"] == {}
    assert set(props["test_fails_before_registering"]) == {"forensics_note"}
    assert "ScopeError" in props["test_unknown_batch"]["forensics_warning"]


def test_hard_timeout_stops_the_report_and_the_session_goes_on(
        pytester: pytest.Pytester, seed_bundle: Path) -> None:
    pytester.makepyfile(test_slow=f'''
def test_stuck(forensics):
    forensics.register(batch_id="{BATCH}")
    assert False
''')
    result = pytester.runpytest(*PLUGIN, f"--forensics-bundle={seed_bundle}", "--forensics-timeout=1",
                                "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_stuck: WARNING: forensics report for * failed: stopped after "
                                 "the 1 s limit (--forensics-timeout)*"])
    assert "forensics_warning" in _properties(pytester.path / "junit.xml")["test_stuck"]


def test_no_evidence_source_is_a_note_and_bad_options_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=f'''
import pytest

@pytest.fixture
def registered_batch(forensics):
    forensics.register(batch_id="{BATCH}")
    raise RuntimeError("the registration call failed")

def test_setup_fails(registered_batch):
    pass

def test_stuck(forensics):
    forensics.register(batch_id="{BATCH}")
    assert False

def test_bad_id(forensics):
    forensics.register(batch_id={{"not": "an id"}})
''')
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(failed=2, errors=1)
    result.stdout.fnmatch_lines([f"*test_setup_fails: note: no evidence source for {BATCH}*"])
    result.stdout.fnmatch_lines(["*TypeError: forensics.register(batch_id=...) takes a string or UUID id, "
                                 "not dict.*"])
    result.stdout.fnmatch_lines([f"*test_stuck: note: no evidence source for {BATCH}: pass "
                                 "--forensics-profile NAME to collect live or --forensics-bundle PATH*"])
    assert not (pytester.path / "forensics-artifacts").exists()
    bad = pytester.runpytest(*PLUGIN, "--forensics-profile=dev", "--forensics-bundle=x")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*Pass either --forensics-profile (collect live) or --forensics-bundle*"])


@pytest.fixture
def live_seed(pg_admin_dsn: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    from tests.support.pg_world import DatabaseFactory, load_world_into_postgres

    world = build_world("seed_variant_a")
    save_world_dir(world, tmp_path / "world")
    factory = DatabaseFactory(pg_admin_dsn)
    try:
        yield load_world_into_postgres(world, factory), tmp_path / "world" / "logs"
    finally:
        factory.drop_all()


def test_live_collection_writes_no_password_to_artifacts_or_junit(
        pytester: pytest.Pytester, live_seed: tuple[dict[str, str], Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    dsns, logs_dir = live_seed
    monkeypatch.setenv("HF_PLUGIN_TEST_PW", SECRET)
    lines = ["[profiles.hftest]", "docker = false", f'logs_dir = "{logs_dir}"',
             'password_env = "HF_PLUGIN_TEST_PW"']
    for db, dsn in dsns.items():
        lines += [f"[profiles.hftest.databases.{db}]", f'dsn = "{dsn}"', 'password_env = "HF_PLUGIN_TEST_PW"']
    (pytester.path / "profiles.toml").write_text("\n".join(lines) + "\n")
    pytester.makepyfile(test_live=f'''
def test_stuck(forensics):
    forensics.register(batch_id="{BATCH}", correlation_id="{REG_CORRELATION}")
    assert False
''')
    result = pytester.runpytest(*PLUGIN, "--forensics-profile=hftest", "--forensics-config=profiles.toml",
                                "--junitxml=junit.xml", "--forensics-timeout=240")
    result.assert_outcomes(failed=1)
    out = pytester.path / "forensics-artifacts" / "test_live.py__test_stuck"
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["batch_id"] == BATCH
    assert verdict["root_cause"]["finding"] == "enum.label_missing"  # pg_enum, read live
    manifest = json.loads((out / "bundle" / "manifest.json").read_text())  # collected live, kept
    assert {d["password_env"] for d in manifest["origin"]["profile"]["databases"].values()} == {
        "HF_PLUGIN_TEST_PW"}  # the password was in play, and only its variable's name was written
    props = _properties(pytester.path / "junit.xml")["test_stuck"]
    assert props["forensics_verdict"] == str(out / "verdict.json") and "forensics_warning" not in props
    assert find_secrets(pytester.path, [SECRET]) == []
    assert SECRET not in result.stdout.str() + result.stderr.str()


def test_run_job_with_redaction_reports_on_a_redacted_copy(seed_bundle: Path, tmp_path: Path) -> None:
    answer = run_job({"id": BATCH, "out": str(tmp_path / "out"), "bundle": str(seed_bundle),
                      "redact": True, "timeout_s": 240})
    assert answer["ok"] is True and answer["warnings"] == []
    assert answer["verdict"]["root_cause"]["finding"] == "enum.label_missing"
    assert is_redacted(tmp_path / "out" / "bundle")
    world = build_world("seed_variant_a")
    uploads = next(df for img in world.databases.values() for df in img.tables.values()
                   if {"user_id", "filename", "batch_id"} <= set(df.columns))
    mine = uploads[uploads["batch_id"] == BATCH]
    needles = sorted(set(mine["user_id"]) | set(mine["filename"]))
    assert len(needles) >= 2 and find_text(seed_bundle, needles)
    assert find_text(tmp_path / "out", needles) == []


def test_node_ids_become_safe_directory_names() -> None:
    assert sanitise_nodeid("tests/func/test_e2e.py::TestGuest::test_x[a b/1]") == \
        "tests_func_test_e2e.py__TestGuest__test_x_a_b_1"
    long = sanitise_nodeid("t.py::test_" + "x" * 300)
    assert len(long) <= 120 and long != sanitise_nodeid("t.py::test_" + "x" * 299)


def test_verdict_properties_of_a_healthy_verdict() -> None:
    assert verdict_properties({"healthy": True, "current_state": "completed_successfully"}) == {
        "forensics_verdict_status": "healthy", "forensics_root_cause": "none",
        "forensics_current_state": "completed_successfully", "forensics_awaited_event": "none"}
