"""The same JSON Lines file published twice changes nothing: every event is applied once.

Why: re-running an import after a timeout or a crash of the importer is the commonest
"fault" an operator causes. The second run is published to the clean run's own stack after
its snapshot was taken, so the clean snapshot is the yardstick and the stack the victim.
"""

from __future__ import annotations

import pytest

from tests.faults import tally
from tests.faults.conftest import publish_file
from tests.faults.fault_stack import settle

# Each case runs a stack of its own on a shared machine: the timeout guards against a hang, not for speed.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_publishing_the_same_file_again_adds_nothing(clean, report):
    publish_file(clean.settings, clean.file)
    settle(clean.settings)
    figures = tally.compare(clean.snapshot, tally.take(clean.settings), clean.ids)
    report("publish-twice", figures, len(clean.ids))
    assert figures.clean, figures.why
