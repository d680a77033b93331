"""No fault at all: a second stack fed the same events hashes exactly like the clean run.

Why: every case is judged against one clean run, so the yardstick itself must be
reproducible: a case whose hash differs must be showing its fault, not noise (arrival order
across partitions, anonymous ids keyed per install, the SLA timer's watermark). It also
proves the comparison sees the whole stack: different homes, ports, broker, DuckDB files.
It is also issue 14's two-runs test: identity's decision log and routes, sequence numbers
included, hash the same in both runs (``tally.EXACT``).
"""

from __future__ import annotations

import pytest

from tests.faults import tally
from tests.faults.fault_stack import PacedPublisher, isolated_stack, settle

# Each case runs a stack of its own on a shared machine: the timeout guards against a hang, not for speed.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_an_undisturbed_second_run_equals_the_clean_one(clean, fault_home, report):
    with isolated_stack(fault_home) as settings:
        PacedPublisher(settings, clean.events).start().join()
        settle(settings)
        run = tally.take(settings)
    figures = tally.compare(clean.snapshot, run, clean.ids)
    report("none", figures, len(clean.ids), "control: a second clean stack, paced SDK publisher")
    assert figures.clean, figures.why
    assert run.exact == clean.snapshot.exact, "identity numbered its decisions or routes differently"
