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
