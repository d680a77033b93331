"""kill -9 of serving, and of identity, while events flow: the restarted process loses nothing,
counts nothing twice and publishes no derived event a clean run does not.

Why SIGKILL mid-batch: it is the crash that skips every shutdown hook, so whatever a stage
applied, produced or committed without the rest of its batch is exactly what a restart must
reconcile (serving: DuckDB rows with their offsets in one transaction; identity: records
re-keyed onto customer-events and decisions before its consumer group commit). The kill waits
until the stage is some records behind the raw topics, i.e. has a batch in hand.
"""

from __future__ import annotations

import time

import pytest

from tests.faults import tally
from tests.faults.fault_stack import PacedPublisher, isolated_stack, kill9, restart, settle
from tests.integration.pipeline_helpers import wait_for
from touchstream.processors.replay import committed_offsets
from touchstream.serving.catchup import IDENTITY_GROUP, end_offsets, lag
from touchstream.stack import local_stack
from touchstream.topics import load_topics, raw_topics

# Each case runs a stack of its own on a shared machine: the timeout guards against a hang, not for speed.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def behind(settings, name: str) -> int:
    """Raw records ``name`` has not applied (serving: the interaction log; identity: its group's commits)."""
    if name == "serving":
        return lag(settings)
    raw = raw_topics(load_topics(settings.topic_config))
    done = committed_offsets(settings, IDENTITY_GROUP, raw)
    return sum(max(0, end - done.get(tp, 0)) for tp, end in end_offsets(settings, raw).items())


def wait_busy(settings, name: str, want: int = 50, patience: float = 20.0) -> int:
    """Wait until ``name`` is ``want`` records behind (it holds a batch), or at least 1 after ``patience`` s."""
    deadline = time.monotonic() + patience
    def busy() -> int:
        n = behind(settings, name)
        return n if n >= want or (n > 0 and time.monotonic() > deadline) else 0

    try:
        return wait_for(busy, timeout=patience + 60, interval=0.05, what=f"{name} to have work")
    except AssertionError:   # it kept up with the publisher the whole time: kill it at rest, still a crash
        return behind(settings, name)


@pytest.mark.parametrize("victim", ["serving", "identity"])
def test_kill9_mid_batch_then_restart(victim, clean, fault_home, report):
    with isolated_stack(fault_home) as settings:
        sender = PacedPublisher(settings, clean.events).start()
        sender.wait_sent(0.4)
        backlog = wait_busy(settings, victim)
        pid = kill9(settings, victim)
        restart(settings, victim)
        assert local_stack.supervisor(settings).running_pid(victim) not in (None, pid)
        sender.join()
        settle(settings)
        run = tally.take(settings)
    figures = tally.compare(clean.snapshot, run, clean.ids)
    report(f"kill-{victim}", figures, len(clean.ids), f"killed {backlog} raw records behind")
    assert figures.clean, figures.why
