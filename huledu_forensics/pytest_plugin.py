"""A pytest plugin for HuleEdu's functional tests: when a test fails, attach a forensics report to it.

Enable it with ``-p huledu_forensics.pytest_plugin`` (or the ``pytest11`` entry point). A test
registers the ids it creates with the ``forensics`` fixture::

    def test_guest_batch_reaches_ready(forensics, client):
        batch_id, correlation_id = client.register_guest_batch(...)
        forensics.register(batch_id=batch_id, correlation_id=correlation_id)
        ...

When such a test fails (in its setup or call phase), the plugin investigates the registered batch and
writes the report into ``<artifacts>/<sanitised node id>/`` (``verdict.json``, ``report.ipynb``,
``report.html``, and ``bundle/`` when the evidence was collected live). Evidence comes from a live
stack (``--forensics-profile NAME`` [``--forensics-config FILE``]: :func:`huledu_forensics.collect.snapshot`,
log window from the fixture's setup time) or from an existing bundle (``--forensics-bundle PATH``).
The verdict (status, current state, awaited event, root cause) and the artifact paths are shown in a
``huledu-forensics`` section of the terminal summary and added to the JUnit XML as properties of the
test case (:data:`PROPERTY_NAMES`).

The report runs in a child process under a hard overall limit (``--forensics-timeout``, default 300 s)
and never changes the test's outcome: any problem becomes a warning line in the summary (and a
``forensics_warning`` property). Passing tests produce nothing. Database passwords are never written:
profiles mask them, and every file of the artifacts directory is checked for the profile's passwords
(a file holding one is deleted, with a warning).

Options: ``--forensics-artifacts DIR`` (default ``forensics-artifacts``, relative to the invocation
directory), ``--forensics-profile``, ``--forensics-config``, ``--forensics-bundle``,
``--forensics-timeout SECONDS``, ``--forensics-redact-ids`` (user/org ids and file names in the report's
evidence become stable hashes, see :mod:`huledu_forensics.redact`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pluggy
import pytest

from . import _fields as F
from ._time import utcnow

__all__ = [
    "DEFAULT_ARTIFACTS",
    "DEFAULT_TIMEOUT_S",
    "PROPERTY_NAMES",
    "ForensicsRecorder",
    "forensics",
    "run_job",
    "sanitise_nodeid",
    "verdict_properties",
]

DEFAULT_ARTIFACTS = "forensics-artifacts"
DEFAULT_TIMEOUT_S = 300.0
WINDOW_SLACK = timedelta(minutes=2)
"""Logs are collected from this long before the fixture was set up (clocks of containers drift)."""
SECTION = "huledu-forensics"
PROPERTY_NAMES = (
    "forensics_verdict_status",
    "forensics_root_cause",
    "forensics_current_state",
    "forensics_awaited_event",
    "forensics_artifacts",
    "forensics_verdict",
)
"""The JUnit properties of a failed test with a report (plus ``forensics_note`` /
``forensics_warning`` when there is no report)."""
_PRIMARY_ORDER = (F.BATCH_ID, F.CORRELATION_ID, "pipeline_correlation_id")


# -- the fixture -----------------------------------------------------------------------------------
@dataclass
class ForensicsRecorder:
    """What a test told the plugin: the ids it created and when it started.

    Attributes:
        nodeid: the test's node id.
        started_at: when the fixture was set up (aware UTC): the start of the log window.
        ids: registered ids by name, in registration order.
    """

    nodeid: str
    started_at: datetime
    ids: dict[str, list[str]] = field(default_factory=dict)
    handled: bool = False

    def register(self, batch_id: Any = None, correlation_id: Any = None,
                 pipeline_correlation_id: Any = None, **more: Any) -> None:
        """Record ids the test created; call it as often as needed. ``None`` values are ignored.

        Args:
            batch_id: the batch the test created (investigated first).
            correlation_id: the registration correlation id (investigated when no batch id is known).
            pipeline_correlation_id: the pipeline request's correlation id.
            **more: any other ids (``essay_id=...``, ``file_upload_id=[...]``); a value may be a list.

        Raises:
            TypeError: a value is not a string, UUID or list of them.
        """
        for name, value in {F.BATCH_ID: batch_id, F.CORRELATION_ID: correlation_id,
                            "pipeline_correlation_id": pipeline_correlation_id, **more}.items():
            values = value if isinstance(value, (list, tuple, set)) else [value]
            for v in values:
                if v is None:
                    continue
                if isinstance(v, (bool, dict)) or not isinstance(v, (str, uuid.UUID, int)):
                    raise TypeError(f"forensics.register({name}=...) takes a string or UUID id, not "
                                    f"{type(v).__name__}.")
                text = str(v).strip()
                if text and text not in self.ids.setdefault(name, []):
                    self.ids[name].append(text)

    @property
    def primary_id(self) -> str | None:
        """The id to investigate: the first batch id, else a correlation id, else any id."""
        for name in (*_PRIMARY_ORDER, *self.ids):
            if self.ids.get(name):
                return self.ids[name][0]
        return None


_RECORDER = pytest.StashKey[ForensicsRecorder]()
_STATE = pytest.StashKey["_PluginState"]()


@pytest.fixture
def forensics(request: pytest.FixtureRequest) -> ForensicsRecorder:
    """Register the ids a test creates; if the test fails, a forensics report is made for them."""
    rec = ForensicsRecorder(request.node.nodeid, utcnow())
    request.node.stash[_RECORDER] = rec
    return rec


# -- options and state -----------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--forensics-*`` options."""
    g = parser.getgroup("huledu-forensics", "forensics reports for failed HuleEdu functional tests")
    g.addoption("--forensics-artifacts", metavar="DIR", default=DEFAULT_ARTIFACTS,
                help=f"where reports of failed tests go (default: {DEFAULT_ARTIFACTS})")
    g.addoption("--forensics-profile", metavar="NAME", default=None,
                help="collect evidence live through this connection profile")
    g.addoption("--forensics-config", metavar="FILE", default=None,
                help="the profiles file (default: $HULEEDU_FORENSICS_CONFIG or ~/.config/...)")
    g.addoption("--forensics-bundle", metavar="PATH", default=None,
                help="replay this evidence bundle instead of collecting live")
    g.addoption("--forensics-timeout", metavar="SECONDS", type=float, default=DEFAULT_TIMEOUT_S,
                help=f"hard limit per failed test for collection and report (default: {DEFAULT_TIMEOUT_S:g})")
    g.addoption("--forensics-redact-ids", action="store_true", default=False,
                help="replace user/org ids and file names in the report's evidence by stable hashes")


@dataclass
class _Entry:
    nodeid: str
    props: dict[str, str]


@dataclass
class _PluginState:
    artifacts: Path
    profile: str | None
    config_path: str | None
    bundle: str | None
    timeout_s: float
    redact: bool
    secrets: list[str] = field(default_factory=list)
    entries: dict[str, _Entry] = field(default_factory=dict)


def pytest_configure(config: pytest.Config) -> None:
    """Check the options and keep the plugin's state on the config."""
    opt = config.option
    profile, bundle = opt.forensics_profile, opt.forensics_bundle
    if profile and bundle:
        raise pytest.UsageError("Pass either --forensics-profile (collect live) or --forensics-bundle "
                                "(replay a bundle), not both.")
    if opt.forensics_timeout <= 0:
        raise pytest.UsageError(f"--forensics-timeout must be a positive number of seconds, not "
                                f"{opt.forensics_timeout:g}.")
    base = Path(config.invocation_params.dir)
    state = _PluginState(
        artifacts=(base / opt.forensics_artifacts).resolve(), profile=profile,
        config_path=str((base / opt.forensics_config).resolve()) if opt.forensics_config else None,
        bundle=str((base / bundle).resolve()) if bundle else None,
        timeout_s=float(opt.forensics_timeout), redact=bool(opt.forensics_redact_ids))
    if profile:
        try:
            from .profiles import load_profile
            from .redact import profile_secrets

            state.secrets = profile_secrets(load_profile(profile, state.config_path))
        except Exception:  # noqa: BLE001 - reported when a test fails; never stops the session
            pass
    config.stash[_STATE] = state
    config.pluginmanager.register(_Summary(state), "huledu-forensics-summary")


# -- the hook that investigates ---------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                               ) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    """After a failed setup or call of a test that used ``forensics``, run the report for it."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when not in ("setup", "call") or not report.failed:
        return
    rec = item.stash.get(_RECORDER, None)
    state = item.config.stash.get(_STATE, None)
    if rec is None or state is None or rec.handled:
        return
    rec.handled = True
    try:
        props = _investigate(state, rec)
    except Exception as exc:  # noqa: BLE001 - the plugin must never mask the test's failure
        props = {"forensics_warning": f"forensics report failed: {type(exc).__name__}: {_first(exc)}"}
    for name, value in props.items():
        value = _scrub(state, value)
        item.user_properties.append((name, value))
        report.user_properties.append((name, value))


def _investigate(state: _PluginState, rec: ForensicsRecorder) -> dict[str, str]:
    primary = rec.primary_id
    if primary is None:
        return {"forensics_note": "no ids registered with the forensics fixture; nothing to investigate "
                                  "(call forensics.register(batch_id=...) in the test)"}
    if not state.profile and not state.bundle:
        return {"forensics_note": f"no evidence source for {primary}: pass --forensics-profile NAME to "
                                  "collect live or --forensics-bundle PATH to replay a bundle"}
    out = state.artifacts / sanitise_nodeid(rec.nodeid)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    job = {"id": primary, "out": str(out), "profile": state.profile, "config": state.config_path,
           "bundle": state.bundle, "redact": state.redact,
           "since": (rec.started_at - WINDOW_SLACK).isoformat() if state.profile else None,
           "timeout_s": state.timeout_s, "ids": rec.ids}
    result = _run_child(job, state.timeout_s)
    props: dict[str, str] = {}
    if result.get("ok"):
        props.update(verdict_properties(result.get("verdict") or {}))
        props["forensics_artifacts"] = str(out)
        props["forensics_verdict"] = str(out / "verdict.json")
    else:
        props["forensics_warning"] = f"forensics report for {primary} failed: {result.get('error')}"
        if any(out.iterdir()):
            props["forensics_artifacts"] = str(out)
        else:
            out.rmdir()
    for w in result.get("warnings") or []:
        props["forensics_warning"] = (props.get("forensics_warning", "") + "; " + w).lstrip("; ")
    return props


def _run_child(job: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Run :func:`run_job` in a child process; kill it and its descendants after ``timeout_s``."""
    with tempfile.TemporaryDirectory(prefix="huledu-forensics-job-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps({**job, "result": str(result_path)}))
        proc = subprocess.Popen([sys.executable, "-m", __name__, str(job_path)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        started = time.monotonic()
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_tree(proc.pid)
            proc.communicate()
            return {"ok": False, "error": f"stopped after the {timeout_s:g} s limit "
                                          "(--forensics-timeout); raise it, or replay a bundle"}
        if result_path.is_file():
            try:
                return dict(json.loads(result_path.read_text()))
            except ValueError:
                pass
        tail = [ln for ln in output.decode("utf-8", "replace").splitlines() if ln.strip()]
        return {"ok": False, "error": f"the report process exited with code {proc.returncode} after "
                                      f"{time.monotonic() - started:.0f} s: "
                                      f"{tail[-1][:300] if tail else 'no output'}"}


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _kill_tree(pid: int) -> None:
    """Kill the child we started and every process it started (the notebook kernel included)."""
    victims = [pid, *_descendants(pid)]
    for p in victims:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# -- the summary ------------------------------------------------------------------------------------
class _Summary:
    """Collects the forensics properties of reports (xdist workers' too) and prints the section."""

    def __init__(self, state: _PluginState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the ``forensics_*`` properties of a setup or call report."""
        props = {str(k): str(v) for k, v in report.user_properties if str(k).startswith("forensics_")}
        if props and report.when in ("setup", "call"):
            self.state.entries[report.nodeid] = _Entry(report.nodeid, props)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Show the verdict of every failed test that had a report, and every note and warning."""
        if not self.state.entries:
            return
        tr = terminalreporter
        tr.section(SECTION)
        for e in self.state.entries.values():
            p = e.props
            if "forensics_verdict_status" in p:
                tr.line(f"{e.nodeid}: {p['forensics_verdict_status']}; state "
                        f"{p.get('forensics_current_state') or '?'}; awaiting "
                        f"{p.get('forensics_awaited_event') or '-'}; root cause "
                        f"{p.get('forensics_root_cause') or '-'}")
                tr.line(f"    report: {Path(p['forensics_artifacts']) / 'report.html'}")
                tr.line(f"    verdict: {p['forensics_verdict']}")
            if "forensics_note" in p:
                tr.line(f"{e.nodeid}: note: {p['forensics_note']}")
            if "forensics_warning" in p:
                tr.line(f"{e.nodeid}: WARNING: {p['forensics_warning']}", yellow=True)


# -- helpers ----------------------------------------------------------------------------------------
def sanitise_nodeid(nodeid: str) -> str:
    """A directory name for a node id: ``tests/t.py::test_x[a-1]`` → ``tests_t.py__test_x_a-1``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid.replace("::", "__")).strip("._") or "test"
    if len(name) > 120:
        name = f"{name[:100]}_{hashlib.sha1(nodeid.encode()).hexdigest()[:10]}"
    return name


def verdict_properties(verdict: dict[str, Any]) -> dict[str, str]:
    """The JUnit properties of a verdict: status, root cause, current state, awaited event."""
    status = verdict.get("status") or ("healthy" if verdict.get("healthy") else "not healthy")
    root = verdict.get("root_cause")
    root_id = (root.get("finding") or root.get("id") or "") if isinstance(root, dict) else str(root or "")
    awaited = verdict.get("awaited_event")
    if isinstance(awaited, dict):
        awaited = awaited.get("topic") or awaited.get("step")
    return {
        "forensics_verdict_status": str(status),
        "forensics_root_cause": str(root_id or "none"),
        "forensics_current_state": str(verdict.get("current_state") or "unknown"),
        "forensics_awaited_event": str(awaited or "none"),
    }


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


def _scrub(state: _PluginState, value: Any) -> str:
    from .redact import scrub_secrets

    return scrub_secrets(str(value), state.secrets)


# -- the child process ------------------------------------------------------------------------------
def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Collect (or replay) and report for one failed test; used in the child process.

    Args:
        job: ``id``, ``out``, and ``profile`` + ``config`` + ``since`` or ``bundle``; ``redact``,
            ``timeout_s``.

    Returns:
        ``{"ok": True, "verdict": {...}, "warnings": [...]}`` or ``{"ok": False, "error": "one line"}``.
    """
    from .bundle import Bundle
    from .errors import ForensicsError
    from .redact import find_secrets, profile_secrets, redact_bundle, run_redacted_report
    from .report import BUNDLE_DIR, run_report

    out = Path(job["out"])
    secrets: list[str] = []
    warnings: list[str] = []
    try:
        if job.get("profile"):
            from .collect import snapshot
            from .profiles import load_profile

            profile = load_profile(job["profile"], job.get("config"))
            secrets = profile_secrets(profile)
            if job.get("redact"):
                with tempfile.TemporaryDirectory(prefix="huledu-forensics-raw-") as raw:
                    collected = snapshot(profile, job["id"], Path(raw) / "bundle", since=job.get("since"),
                                         progress=False)
                    bundle: Bundle = redact_bundle(collected, out / BUNDLE_DIR, overwrite=True)
            else:
                bundle = snapshot(profile, job["id"], out / BUNDLE_DIR, since=job.get("since"),
                                  progress=False, overwrite=True)
            result = run_report(bundle, job["id"], out, timeout_s=job["timeout_s"],
                                plotly_js_dir=out.parent)
        elif job.get("redact"):
            result = run_redacted_report(job["bundle"], job["id"], out, timeout_s=job["timeout_s"],
                                plotly_js_dir=out.parent)
        else:
            result = run_report(job["bundle"], job["id"], out, timeout_s=job["timeout_s"],
                                plotly_js_dir=out.parent)
        answer: dict[str, Any] = {"ok": True, "verdict": result.verdict}
    except ForensicsError as exc:
        answer = {"ok": False, "error": f"{type(exc).__name__}: {_first(exc)}"}
    except Exception as exc:  # noqa: BLE001 - reported as one line; the session goes on
        answer = {"ok": False, "error": f"{type(exc).__name__}: {_first(exc)}"}
    if secrets and out.exists():
        for leak in find_secrets(out, secrets):
            leak.unlink()
            warnings.append(f"deleted {leak.relative_to(out)}: it contained a database password")
    answer["warnings"] = warnings
    from .redact import scrub_secrets

    scrubbed: dict[str, Any] = json.loads(scrub_secrets(json.dumps(answer), secrets))
    return scrubbed


def _main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    answer = run_job(job)
    Path(job["result"]).write_text(json.dumps(answer, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
