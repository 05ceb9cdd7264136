"""The README tells the truth: its commands exist with the options it shows, and the demo prints what
the README says it prints."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from huledu_forensics.cli import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _readme_commands() -> list[list[str]]:
    out = []
    for line in README.splitlines():
        m = re.search(r"(?:^\$ |`)(huledu-forensics [^`#]*)", line)
        if m:
            out.append(shlex.split(m.group(1).replace("[", " ").replace("]", " ")))
    return out


def test_every_command_is_in_the_readme_and_has_help_with_an_example() -> None:
    for name, cmd in cli.commands.items():
        assert f"huledu-forensics {name}" in README, f"README does not mention `{name}`"
        assert cmd.help, name
        assert "Example" in (cmd.epilog or ""), f"{name} --help has no example"


def test_readme_commands_use_real_options() -> None:
    commands = _readme_commands()
    assert len(commands) >= 10
    for argv in commands:
        sub = cli.commands.get(argv[1])
        assert sub is not None, f"README shows unknown command {argv[1]!r}"
        known = {opt for p in sub.params if isinstance(p, click.Option) for opt in p.opts}
        for tok in argv[2:]:
            if tok.startswith("--"):
                assert tok in known, f"`huledu-forensics {argv[1]}` has no option {tok}"


@pytest.mark.slow
def test_demo_prints_what_the_readme_shows(tmp_path: Path) -> None:
    block = README.split("investigation notebook headless and prints the verdict:\n\n```text\n")[1]
    shown = block.split("```")[0]
    exe = Path(sys.executable).with_name("huledu-forensics")
    proc = subprocess.run([str(exe), "demo", "--out", "out/demo"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == shown


def _console_example(command_prefix: str) -> tuple[str, str]:
    """The README's ``$ <command>`` line starting with ``command_prefix`` and the output shown under it."""
    lines = README.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(f"$ {command_prefix}"):
            out = []
            for nxt in lines[i + 1:]:
                if nxt.strip().startswith("```") or nxt.strip().startswith("$ "):
                    break
                out.append(nxt.strip())
            return line.strip()[2:], "\n".join(out)
    raise AssertionError(f"no `$ {command_prefix}` example in the README")


def _run_on_demo_bundle(tmp_path: Path, command_prefix: str,
                        timeout: int) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run the README's console example starting with ``command_prefix`` against the demo bundle in
    ``tmp_path/out/demo/bundle``; return the process and the output the README shows."""
    from huledu_forensics.report import demo_bundle

    demo_bundle(tmp_path / "out" / "demo" / "bundle")
    command, shown = _console_example(command_prefix)
    exe = Path(sys.executable).with_name("huledu-forensics")
    proc = subprocess.run([str(exe), *shlex.split(command)[1:]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout)
    return proc, shown


def test_unknown_id_example_prints_what_the_readme_shows(tmp_path: Path) -> None:
    """The first-ten-minutes example: an id the bundle never mentions fails before any notebook runs."""
    proc, shown = _run_on_demo_bundle(tmp_path, "huledu-forensics report --bundle out/demo/bundle --id 0000", 120)
    assert proc.returncode == 4
    assert proc.stdout + proc.stderr.strip() == shown
    assert not (tmp_path / "out" / "nope" / "report.ipynb").exists()


def test_scan_example_prints_what_the_readme_shows(tmp_path: Path) -> None:
    """The scan section's example: the groups, what each error class shows (rows only), the next step."""
    proc, shown = _run_on_demo_bundle(tmp_path, "huledu-forensics scan --bundle out/demo/bundle", 300)
    assert proc.returncode == 1, proc.stderr
    assert "\n".join(line.strip() for line in proc.stdout.rstrip("\n").splitlines()) == shown


def test_readme_says_what_a_newcomer_trips_over() -> None:
    assert "## The first ten minutes" in README
    assert ". .venv/bin/activate" in README and "--allow-root" in README
    assert "--forensics-bundle=PATH" in README  # two words would move pytest's rootdir
    assert "`check` exits 0 when every source of the profile answers and 3 when any does not" in README
    check_help = cli.commands["check"].help or ""
    assert "Exits 0 when all are reachable, 3 otherwise" in check_help  # the README and --help agree
    assert "--notebook stuck_batches --bundle B --out DIR" in README  # the one notebook that needs no --id
