"""Fixtures of the fault suite: the deterministic event set, the clean run, one home per case, the report.

Why one clean run per session: it is the yardstick every case is hashed against (the same
events folded by an undisturbed stack), and it is the most expensive thing here after the
cases themselves. It publishes the events as a JSON Lines file through ``touchstream
publish`` (``--keep-recorded-at``), the way an export is replayed; its stack stays up for
the publish-twice case, which publishes the same file again.

Sizes: ``TOUCHSTREAM_FAULT_CUSTOMERS`` (default 60) and ``TOUCHSTREAM_FAULT_DAYS`` (30) pick
the demo's size. Each case prints one line (``fault=... lost=0 double=0 false=0
hash_equal=True``), repeated in the terminal summary, so the README can quote the figures.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import OVERRIDE_VARS
from tests.faults import tally
from tests.faults.fault_stack import demo_events, event_ids, isolated_stack, settle
from touchstream.config import Settings
from touchstream.demo.jsonl_export import write_jsonl
from touchstream.stack import local_stack

LINES: list[str] = []


@dataclass
class CleanRun:
    settings: Settings          # its stack, still running
    events: list[dict]
    ids: set[str]
    file: Path                  # the events as JSON Lines
    snapshot: tally.Snapshot


def publish_file(settings: Settings, path: Path) -> None:
    """``touchstream publish --keep-recorded-at FILE`` against ``settings``' stack, as an operator runs it."""
    done = subprocess.run([sys.executable, "-m", "touchstream.cli", "publish", "--keep-recorded-at", "--quiet",
                           str(path)], env=local_stack.child_env(settings), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"touchstream publish failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="session", autouse=True)
def _no_overrides() -> Iterator[None]:
    """A developer's TOUCHSTREAM_BOOTSTRAP (etc.) must not point a case at another stack."""
    with pytest.MonkeyPatch.context() as mp:
        for name in OVERRIDE_VARS:
            mp.delenv(name, raising=False)
        yield


@pytest.fixture(scope="session")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CleanRun]:
    events = demo_events()
    folder = tmp_path_factory.mktemp("fault-clean")
    path = folder / "events.jsonl"
    write_jsonl(events, path)
    with isolated_stack(folder / "home") as settings:
        publish_file(settings, path)
        settle(settings)
        snap = tally.take(settings)
        LINES.append(f"clean: events={len(events)} customers={len(snap.customer_events)} "
                     f"cases={len(snap.case_contacts)} sla_events={len(snap.sla_on_topic)} "
                     f"findings={len(snap.findings_held)} transient_findings="
                     f"{len(set(snap.findings_on_topic) - snap.findings_held)}")
        yield CleanRun(settings, events, event_ids(events), path, snap)


@pytest.fixture
def fault_home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def report(request: pytest.FixtureRequest):
    """``report(fault, figures)``: print the case's line now and again in the terminal summary."""
    writer = request.config.pluginmanager.get_plugin("terminalreporter")

    def emit(fault: str, figures: tally.Figures, events: int, detail: str = "") -> None:
        line = figures.line(fault, events) + (f"  ({detail})" if detail else "")
        LINES.append(line)
        if writer is not None:
            writer.write_line("\n" + line)
        for why in figures.why:
            LINES.append(f"  {why}")

    return emit


def pytest_terminal_summary(terminalreporter) -> None:
    if LINES:
        terminalreporter.section("fault suite figures")
        for line in LINES:
            terminalreporter.write_line(line)
