"""Whether a consumer's group membership is stuck: out of the steady join state for minutes while
the broker answers.

Why: in the 200-customer broker-restart fault case, serving's customer-360 consumer lost its
session three seconds after the broker came back ("SESSTMOUT ... revoking assignment and
rejoining group"), and never joined again: the broker removed the member, the group stayed
empty for ten minutes, nothing was logged, and the 360s stopped (the same class of hang as
identity's, fixed in ``BatchSource._track``, whose cause was a commit in flight). librdkafka's
statistics name the join state, so a stuck membership can be seen, logged with what librdkafka
says of it, and ended by a new consumer (``BatchSource``): a sink resumes at its own offsets,
identity at its merge's commits, so a new member loses and repeats nothing.
"""

from __future__ import annotations

import json
import time
from typing import Callable

STEADY = "steady"


class GroupWatch:
    """Fed librdkafka's statistics (``on_stats``); ``stuck()`` once the join state has not been steady
    for ``stuck_after`` seconds while ``reachable()`` (a broker outage explains a rejoin that waits)."""

    def __init__(self, reachable: Callable[[], bool], *, stuck_after: float = 120.0,
                 clock: Callable[[], float] = time.monotonic):
        self.reachable, self.stuck_after, self.clock = reachable, stuck_after, clock
        self.last: dict = {}                 # the group part of the latest statistics, for the log
        self._unsteady_since: float | None = None

    def on_stats(self, text: str) -> None:
        try:
            group = json.loads(text).get("cgrp") or {}
        except ValueError:
            return
        state = group.get("join_state")
        if state is None:
            return
        self.last = {k: group.get(k) for k in ("state", "join_state", "rebalance_age", "rebalance_cnt",
                                                "rebalance_reason", "assignment_size")}
        if state == STEADY or not self.reachable():
            self._unsteady_since = None
        elif self._unsteady_since is None:
            self._unsteady_since = self.clock()

    def stuck(self) -> bool:
        since = self._unsteady_since
        return since is not None and self.clock() - since >= self.stuck_after

    def renewed(self) -> None:
        """A new consumer replaced the stuck one: its own statistics start the watch again."""
        self._unsteady_since, self.last = None, {}
