"""Exponential backoff, capped, forgotten after a healthy spell.

One policy for every "try again later" in Touchstream: the supervisor restarting a
crashed service, and a stage waiting out a registry or broker outage. Why capped:
an outage of an hour must not turn into a retry once a day after it ends. Why reset
after a healthy spell: a service that ran for an hour and then crashed once is a new
incident, not the tenth failure in a row, so it is restarted at once again.
Deterministic (no jitter): one local stack, nothing to desynchronise, and tests can
state the exact delays.
"""

from __future__ import annotations


class Backoff:
    """``next_delay()`` gives base, base*factor, base*factor**2, ... up to ``cap``.

    ``next_delay(ran=seconds)`` first forgets the earlier failures when the thing
    retried had run for ``healthy_after`` seconds or more before failing again.
    """

    def __init__(self, base: float = 1.0, factor: float = 2.0, cap: float = 60.0, healthy_after: float = 60.0):
        if base <= 0 or factor < 1 or cap < base:
            raise ValueError("need base > 0, factor >= 1 and cap >= base")
        self.base, self.factor, self.cap, self.healthy_after = base, factor, cap, healthy_after
        self.failures = 0

    def next_delay(self, ran: float | None = None) -> float:
        if ran is not None and ran >= self.healthy_after:
            self.failures = 0
        delay = min(self.cap, self.base * self.factor ** min(self.failures, 64))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0
