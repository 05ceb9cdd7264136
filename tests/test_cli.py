"""The command line: exit codes, one-line errors, effects checked through the library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import huledu_forensics
from huledu_forensics import report
from huledu_forensics.bundle import Bundle, write_world_bundle
from huledu_forensics.cli import cli
from huledu_forensics.world import load_world_dir
from tests.support.corpus import require_corpus

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
SEED_BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
SCRIPT = Path(sys.executable).parent / "huledu-forensics"


@pytest.fixture(scope="module")
def seed_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bundles") / "seed"
    write_world_bundle(load_world_dir(require_corpus("seed-variant-a")), path)
    return path


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return res.exit_code, res.output


# -- the real console script ----------------------------------------------------------------------
def test_console_script_report_on_missing_bundle_prints_one_line_and_exits_4(tmp_path: Path) -> None:
    proc = subprocess.run([str(SCRIPT), "report", "--bundle", str(tmp_path / "nope"), "--id", SEED_BATCH,
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    assert "No bundle at" in lines[0] and str(tmp_path / "nope") in lines[0]
    assert not (tmp_path / "out").exists()


def test_every_command_help_ends_with_an_example() -> None:
    for cmd in ([], ["demo"], ["report"], ["snapshot"], ["check"], ["scenarios"]):
        code, out = _run(*cmd, "--help")
        assert code == 0
        tail = out.strip().splitlines()[-2:]
        assert tail[0].strip() == "Example:" and tail[1].strip().startswith("huledu-forensics"), (cmd, out)
    _, out = _run("report", "--help")
    for code in ("0  healthy", "1  findings", "2  evidence incomplete", "3  the kit itself failed", "4  bad input"):
        assert code in out


# -- report ---------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("notebook, code, healthy", [
    ("two_figures_healthy_verdict", 0, True),
    ("stuck_verdict", 1, False),
    ("partial_evidence_verdict", 2, False),
])
def test_report_exit_code_follows_the_verdict(seed_bundle: Path, tmp_path: Path, notebook: str, code: int,
                                              healthy: bool) -> None:
    rc, out = _run("report", "--bundle", str(seed_bundle), "--id", SEED_BATCH, "--out", str(tmp_path),
                   "--notebook", str(FIXTURES / f"{notebook}.ipynb"))
    assert rc == code, out
    verdict = json.loads((tmp_path / report.REPORT_FILES["verdict"]).read_text())
    assert verdict["batch_id"] == SEED_BATCH and verdict["healthy"] is healthy
    for name in report.REPORT_FILES.values():
        assert str(tmp_path / name) in out


@pytest.mark.slow
def test_report_kit_failure_exits_3_and_keeps_the_partial_notebook(seed_bundle: Path, tmp_path: Path) -> None:
    rc, out = _run("report", "--bundle", str(seed_bundle), "--id", SEED_BATCH, "--out", str(tmp_path),
                   "--notebook", str(FIXTURES / "fails_in_cell_3.ipynb"))
    assert rc == 3
    assert len(out.strip().splitlines()) == 1 and "cell 3" in out and "Traceback" not in out
    assert (tmp_path / "report.ipynb").exists() and (tmp_path / "report.html").exists()


@pytest.mark.slow
def test_report_unknown_id_exits_4(seed_bundle: Path, tmp_path: Path) -> None:
    rc, out = _run("report", "--bundle", str(seed_bundle), "--id", "nope-0000-unknown", "--out", str(tmp_path),
                   "--notebook", str(FIXTURES / "raises_scope_error.ipynb"))
    # refused before the notebook runs (the bundle never mentions it), with one line naming the id
    assert rc == 4 and len(out.strip().splitlines()) == 1 and "'nope-0000-unknown'" in out
    assert not (tmp_path / "report.ipynb").exists()


@pytest.mark.parametrize("args, needle", [
    (["--since", "last tuesday"], "not a timestamp"),
    (["--profile", "dev"], "exactly one of --bundle"),
    (["--timeout", "soon"], "--timeout"),
])
def test_report_bad_options_exit_4_with_one_line(seed_bundle: Path, tmp_path: Path, args: list[str],
                                                 needle: str) -> None:
    rc, out = _run("report", "--bundle", str(seed_bundle), "--id", SEED_BATCH, "--out", str(tmp_path), *args)
    assert rc == 4
    assert len(out.strip().splitlines()) == 1 and needle in out
    assert not any(tmp_path.iterdir())


def test_report_invalid_bundle_exits_4(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    rc, out = _run("report", "--bundle", str(tmp_path / "b"), "--id", SEED_BATCH, "--out", str(tmp_path / "o"))
    assert rc == 4 and "no manifest.json" in out


@pytest.mark.slow
def test_report_on_seed_incident_with_the_real_notebook(seed_bundle: Path, tmp_path: Path) -> None:
    rc, out = _run("report", "--bundle", str(seed_bundle), "--id", SEED_BATCH, "--out", str(tmp_path))
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert rc == report.exit_code_for_verdict(verdict) == 1, out
    assert verdict["healthy"] is False and verdict["current_state"] == "awaiting_content_validation"
    assert "essay_status_enum" in out  # the root cause is named in the summary


@pytest.mark.slow
def test_report_with_an_id_the_evidence_does_not_know_exits_4(seed_bundle: Path, tmp_path: Path) -> None:
    rc, out = _run("report", "--bundle", str(seed_bundle), "--id", "00000000-0000-0000-0000-000000000000",
                   "--out", str(tmp_path))
    assert rc == 4 and len(out.strip().splitlines()) == 1 and "00000000-0000" in out
    assert not (tmp_path / "report.ipynb").exists()  # checked before any notebook ran


# -- demo -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_demo_builds_bundle_runs_report_and_prints_paths(tmp_path: Path) -> None:
    rc, out = _run("demo", "--out", str(tmp_path))
    assert rc == 0, out
    bundle = Bundle.open(tmp_path / report.BUNDLE_DIR)
    assert bundle.manifest["origin"]["scenario"] == report.DEMO_SCENARIO
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["batch_id"] == report.DEMO_BATCH_ID and verdict["healthy"] is False
    for name in report.REPORT_FILES.values():
        assert str(tmp_path / name) in out
    rc2, _ = _run("demo", "--out", str(tmp_path))  # a second demo replaces its own bundle
    assert rc2 == 0


def test_demo_refuses_to_replace_a_foreign_bundle_dir(tmp_path: Path) -> None:
    (tmp_path / report.BUNDLE_DIR).mkdir()
    (tmp_path / report.BUNDLE_DIR / "keep.txt").write_text("mine")
    rc, out = _run("demo", "--out", str(tmp_path))
    assert rc == 4 and "not a demo bundle" in out
    assert (tmp_path / report.BUNDLE_DIR / "keep.txt").read_text() == "mine"


# -- snapshot / check / scenarios -----------------------------------------------------------------
def test_snapshot_passes_profile_id_window_and_out_to_collect(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    calls: list[tuple] = []

    def fake_snapshot(profile, id, out, *, since=None, until=None, **kw):  # noqa: ANN001, ANN202
        calls.append((profile, id, out, since, until))
        return SimpleNamespace(path=Path(out), sources=[])  # a complete bundle

    fake = SimpleNamespace(snapshot=fake_snapshot)
    monkeypatch.setitem(sys.modules, "huledu_forensics.collect", fake)
    monkeypatch.setattr(huledu_forensics, "collect", fake, raising=False)
    rc, out = _run("snapshot", "--profile", "dev", "--id", SEED_BATCH, "--since", "2025-11-20T18:00:00Z",
                   "--out", str(tmp_path / "b"))
    assert rc == 0, out
    (profile, id_, dest, since, until), = calls
    assert getattr(profile, "name", None) == "dev" and id_ == SEED_BATCH and Path(dest) == tmp_path / "b"
    assert since.isoformat() == "2025-11-20T18:00:00+00:00" and until is None
    assert out.strip() == f"bundle: {tmp_path / 'b'}"


def test_unknown_profile_is_bad_input(tmp_path: Path) -> None:
    rc, out = _run("check", "--profile", "no-such-profile", "--config", str(tmp_path / "none.toml"))
    assert rc == 4 and len(out.strip().splitlines()) == 1 and "Traceback" not in out


def test_scenarios_lists_the_demo_scenario() -> None:
    rc, out = _run("scenarios")
    assert rc == 0
    assert report.DEMO_SCENARIO in [line.split("\t")[0] for line in out.splitlines()]


@pytest.mark.slow
def test_report_has_a_hard_overall_timeout(tmp_path: Path) -> None:
    """Past --timeout the command stops, exits 3 with one line, and keeps the partial notebook."""
    from huledu_forensics.report import demo_bundle

    bundle = demo_bundle(tmp_path / "bundle")
    out = tmp_path / "out"
    exe = Path(sys.executable).with_name("huledu-forensics")
    proc = subprocess.run([str(exe), "report", "--bundle", str(bundle), "--id",
                           "278f7fd9-37fe-406a-a735-f15128cb6b1f", "--out", str(out), "--timeout", "2"],
                          capture_output=True, text=True, timeout=300)
    # 2 s: the notebook is still running then (kernel start, then imports and investigate in its first
    # cell); at 5 s a fast report had already written its verdict and was exporting
    assert proc.returncode == 3
    assert "did not finish within 2 s" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert (out / "report.ipynb").is_file() and not (out / "verdict.json").exists()


@pytest.mark.slow
def test_report_redact_ids(tmp_path: Path) -> None:
    from huledu_forensics.report import demo_bundle

    bundle = demo_bundle(tmp_path / "bundle")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["report", "--bundle", str(bundle), "--id",
                                      "278f7fd9-37fe-406a-a735-f15128cb6b1f", "--out", str(out),
                                      "--redact-ids"])
    assert result.exit_code == 1, result.output
    html = (out / "report.html").read_text()
    assert "test_identity_user" not in html and "user-" in html
    assert json.loads((out / "verdict.json").read_text())["root_cause"]["finding"] == "enum.label_missing"


def test_live_report_with_every_source_unreachable_exits_2_and_keeps_the_partial_bundle(tmp_path: Path) -> None:
    """Nothing could be read: that is incomplete evidence (2), not a bad id (4); what was learnt is kept."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('[profiles.down]\nhost = "127.0.0.1"\nport = 1\ndocker = false\n')
    out = tmp_path / "out"
    exe = Path(sys.executable).with_name("huledu-forensics")
    proc = subprocess.run([str(exe), "report", "--profile", "down", "--config", str(cfg), "--id",
                           "278f7fd9-37fe-406a-a735-f15128cb6b1f", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "unreachable" in errors[0] and "check --profile down" in errors[0]
    assert "Traceback" not in proc.stderr
    manifest = json.loads((out / "bundle" / "manifest.json").read_text())
    assert manifest["gaps"] and all(g["reason"] for g in manifest["gaps"])  # why each source is missing
