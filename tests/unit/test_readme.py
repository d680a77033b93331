"""The README (and docs/scaling.md) stays true: every `touchstream` command in its shell blocks parses with the real CLI,
every `make` target it names exists, and the prerequisites it names are the ones `make test` checks."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from touchstream.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SCALING = (ROOT / "docs" / "scaling.md").read_text()
SHELL_BLOCKS = re.findall(r"```sh\n(.*?)```", README + SCALING, flags=re.S)


def _commands() -> list[str]:
    found = []
    for block in SHELL_BLOCKS:
        for line in block.splitlines():
            line = line.split("   #")[0]
            if "$(" in line and "touchstream" in line:  # KEY=$(touchstream keys create ... | tail -1)
                line = line.split("$(", 1)[1].split("|", 1)[0]
            match = re.search(r"(?:^|\s)(?:\.venv/bin/)?touchstream (.+)$", line.strip())
            if match:
                found.append(match.group(1).strip())
    return found


COMMANDS = _commands()


def test_readme_has_commands():
    assert len(COMMANDS) >= 6


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses(command):
    build_parser().parse_args(shlex.split(command))


@pytest.mark.parametrize("target", sorted(set(re.findall(r"^make (\w+)", "\n".join(SHELL_BLOCKS), flags=re.M))))
def test_readme_make_targets_exist(target):
    assert re.search(rf"^{target}:", (ROOT / "Makefile").read_text(), flags=re.M)


def _subcommands(parser) -> dict:
    found = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return found[0] if found else {}


def test_readme_cli_table_lists_every_command_and_sub_command():
    """A command nobody can find is a command nobody uses (``keys revoke`` was missing once)."""
    table = README.split("## CLI", 1)[1].split("\n## ", 1)[0]
    for name, parser in _subcommands(build_parser()).items():
        assert f"`touchstream {name}" in table, name
        for sub in _subcommands(parser):
            assert re.search(rf"`(touchstream )?{name} {sub}\b", table), f"{name} {sub}"


def test_make_test_checks_the_browser_first_and_the_quick_start_names_it(tmp_path):
    """A newcomer's ``make test`` without Chromium stops at once, with the command that fixes it."""
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "Chromium" in quick.split("\n\n")[1] and "sudo apt-get install -y chromium" in quick
    makefile = (ROOT / "Makefile").read_text()
    for target in ("test", "integration"):
        assert re.search(rf"^{target}: check-browser\b", makefile, flags=re.M), target
    browser_test = (ROOT / "tests" / "integration" / "test_dashboard_in_browser.py").read_text()
    path = re.search(r"^CHROMIUM \?= (\S+)$", makefile, flags=re.M).group(1)
    assert f'CHROMIUM = Path("{path}")' in browser_test   # the path make checks is the one the test drives
    run = ["make", "-s", "-C", str(ROOT), "check-browser"]
    missing = subprocess.run([*run, f"CHROMIUM={tmp_path / 'none'}"], capture_output=True, text=True)
    assert missing.returncode != 0 and "sudo apt-get install -y chromium" in missing.stderr
    assert subprocess.run([*run, f"CHROMIUM={sys.executable}"], capture_output=True).returncode == 0
