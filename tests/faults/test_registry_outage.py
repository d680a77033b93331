"""The schema registry away for 30 s while events of types nobody has decoded yet arrive.

Why: the registry is only needed for a schema id a process has not cached, which is exactly
what a new event type (or a new version) brings: identity and serving then cannot decode the
record until the registry is back. They must wait and retry, not crash, dead-letter the
record, or let the SLA clocks run on without it. The publisher cached every id before the
outage (it encoded one event of each type), so the events do reach Kafka meanwhile.

``TOUCHSTREAM_FAULT_REGISTRY_OUTAGE`` sets the outage in seconds (default 30, the issue's
figure; the whole suite stays within its time budget with it).
"""

from __future__ import annotations

import os
import time

import pytest

from tests.faults import tally
from tests.faults.fault_stack import died_since, isolated_stack, pids, publisher, revive, settle
from touchstream.serving.catchup import wait_pipeline
from touchstream.stack import local_stack

# Each case runs a stack of its own on a shared machine: the timeout guards against a hang, not for speed.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
OUTAGE = float(os.environ.get("TOUCHSTREAM_FAULT_REGISTRY_OUTAGE", "30"))
NEW_TYPES = 4


def split_before_new_types(events: list[dict], new: int = NEW_TYPES) -> int:
    """The index from which ``new`` event types appear that no earlier event has."""
    first: dict[str, int] = {}
    for index, event in enumerate(events):
        first.setdefault(event["envelope"]["event_type"], index)
    return sorted(first.values())[-new]


def test_split_leaves_new_types_for_the_outage():
    events = [{"envelope": {"event_type": t}} for t in "aabacbdeaef"]
    k = split_before_new_types(events, 2)
    assert k == 7 and {e["envelope"]["event_type"] for e in events[:k]} == {"a", "b", "c", "d"}


def publish_across_outage(settings, events: list[dict], k: int) -> tuple[dict, float]:
    """Send ``events[:k]``, let the stages apply them, stop the registry, send the rest.

    Returns the stages' pids before the outage and when it began. (A function of its own so the
    publisher's librdkafka handle is gone before the stack is: no reconnect chatter after ``down``.)"""
    with publisher(settings) as p:
        valid = [p.validate(e) for e in events]
        for schema in {v.schema.subject: v.schema for v in valid}.values():
            p.codec.schema_id(schema)          # cache every id while the registry answers
        p.send_valid(valid[:k])
        p.flush()
        wait_pipeline(settings)                 # the stages have cached the ids of the first part
        before, t0 = pids(settings), time.monotonic()
        local_stack.down(settings, ["registry"])
        p.send_valid(valid[k:])
        p.flush()
    return before, t0


def test_registry_outage_while_new_event_types_arrive(clean, fault_home, report):
    events = clean.events
    k = split_before_new_types(events)
    with isolated_stack(fault_home) as settings:
        before, t0 = publish_across_outage(settings, events, k)
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - t0)))
        died = died_since(settings, before)
        local_stack.up(settings, ["registry"])
        revive(settings)
        settle(settings)
        run = tally.take(settings)
    figures = tally.compare(clean.snapshot, run, clean.ids)
    report("registry-outage", figures, len(clean.ids),
           f"outage={OUTAGE:.0f}s published_during={len(events) - k} new_types={NEW_TYPES} "
           f"died={','.join(died) or 'none'}")
    assert not died, f"{died} did not survive {OUTAGE:.0f}s without the registry (logs under {fault_home}/logs)"
    assert figures.clean, figures.why
