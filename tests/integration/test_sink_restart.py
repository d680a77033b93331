"""A serving process killed mid-stream (SIGKILL) and restarted ends with exactly the same rows."""

from __future__ import annotations

import os
import signal
import threading
import uuid

import pytest

from tests.integration.pipeline_helpers import page_view, sql, wait_count, wait_for
from touchstream.publishing.publisher import Publisher
from touchstream.serving.catchup import wait_caught_up
from touchstream.stack import local_stack

pytestmark = pytest.mark.integration
TOTAL = 3000


def test_kill_and_restart_neither_loses_nor_duplicates(stack):
    tag = f"crash-{uuid.uuid4().hex[:8]}"
    events = [page_view(tag, n, cookie=f"c{n % 97}") for n in range(TOTAL)]

    def publish():
        with Publisher(stack, source="web-shop") as publisher:
            for start in range(0, TOTAL, 100):
                publisher.publish_batch(events[start:start + 100])
                publisher.flush()

    sender = threading.Thread(target=publish)
    sender.start()
    wait_count(stack, "correlation_id = ?", [tag], 300, timeout=120)

    sup = local_stack.supervisor(stack)
    pid = sup.running_pid("serving")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not sup.is_running("serving"), timeout=30, what="serving to die")
    sender.join(timeout=300)
    assert not sender.is_alive()
    # Publish the same events again: a producer retry after the crash.
    with Publisher(stack, source="web-shop") as publisher:
        publisher.publish_batch(events[:500])

    local_stack.up(stack, services=["serving"])
    wait_caught_up(stack, timeout=180)
    rows = sql(stack, "SELECT count(*), count(DISTINCT event_id) FROM interactions WHERE correlation_id = ?", [tag])
    assert rows == [[TOTAL, TOTAL]]
    expected = {e["envelope"]["event_id"] for e in events}
    ids = {r[0] for r in sql(stack, "SELECT event_id FROM interactions WHERE correlation_id = ?", [tag])}
    assert ids == expected
