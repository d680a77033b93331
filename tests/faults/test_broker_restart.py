"""The broker stopped and started again while a channel system publishes: nothing lost, nothing twice.

Why: the broker is the event store; a restart (an upgrade, a crash) makes every producer and
consumer of the stack lose its connections at once. The publisher is the SDK's, sending in
small acknowledged batches and sending a batch again when ``flush`` reports it undelivered
(the SDK's idempotent producer retries within ``message.timeout.ms``, 60 s, by itself; a
longer outage surfaces as ``PublishError``). Identity and serving must ride it out: a
stage that died is restarted (by the stack's supervisor, else here), so the figures still
tell what the crash cost, and the case fails naming it.
"""

from __future__ import annotations

import time

import pytest

from tests.faults import tally
from tests.faults.fault_stack import PacedPublisher, died_since, isolated_stack, pids, revive, settle
from touchstream.stack import local_stack

# Each case runs a stack of its own on a shared machine: the timeout guards against a hang, not for speed.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_broker_restart_while_publishing(clean, fault_home, report):
    with isolated_stack(fault_home) as settings:
        sender = PacedPublisher(settings, clean.events, seconds=20).start()
        sender.wait_sent(0.3)
        before = pids(settings)
        t0 = time.monotonic()
        local_stack.down(settings, ["broker"])
        local_stack.up(settings, ["broker"])
        outage = time.monotonic() - t0
        sender.join()
        died = died_since(settings, before)
        revive(settings)
        settle(settings)
        run = tally.take(settings)
    figures = tally.compare(clean.snapshot, run, clean.ids)
    report("broker-restart", figures, len(clean.ids),
           f"broker_down={outage:.1f}s resent_batches={sender.retries} died={','.join(died) or 'none'}")
    assert not died, f"{died} did not survive the broker restart (see their logs under {fault_home}/logs)"
    assert figures.clean, figures.why
