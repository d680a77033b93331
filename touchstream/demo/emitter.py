"""Builds the demo's plain-JSON events and keeps them in event-time order.

Why one object: every id, timestamp and random draw of a demo run comes from the
same seeded source in the same order, so a run is reproducible byte for byte
(event_id is a counter under a run tag, recorded_at is occurred_at plus a seeded
delay, never the wall clock). Times are integer epoch milliseconds inside the
generator and ISO-8601 strings in the events. Pure: no I/O.
"""

from __future__ import annotations

import heapq
import random
from datetime import date, datetime, timedelta, timezone

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_DAY = date(1970, 1, 1)
_TWO = tuple(f"{n:02d}" for n in range(60))
_THREE = tuple(f"{n:03d}" for n in range(1000))
ASIDE_SEQ = 10**12   # aside() events sort as seq - ASIDE_SEQ: before the main sequence's at one instant

# How long each channel system takes to hand an event to Touchstream: (min, spread) in ms.
# Tills and the mail room upload in batches; web and telephony stream.
RECORD_DELAY = {
    "web-shop": (40, 900), "web-chat": (30, 500), "esp-mailer": (500, 20_000), "pbx": (200, 2_500),
    "sms-gateway": (300, 4_000), "pos": (30_000, 600_000), "crm": (200, 3_000),
    "social-listener": (60_000, 900_000), "campaign-manager": (100, 1_000), "warehouse": (1_000, 60_000),
    "carrier-tracking": (5_000, 300_000), "billing": (500, 5_000), "payments": (1_000, 30_000),
    "survey-tool": (1_000, 10_000), "field-sales": (10_000, 600_000), "esign": (500, 5_000),
    "mailroom": (600_000, 3_000_000), "helpdesk": (300, 3_000), "preference-center": (100, 1_500),
}


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class Emitter:
    """Seeded randomness, id counters, ISO formatting and the pending-event heap of one run."""

    def __init__(self, rng: random.Random, tag: str, start_ms: int, end_ms: int):
        self.rng = rng
        self.tag = tag
        self.start_ms, self.end_ms = start_ms, end_ms
        self._event_prefix = f"demo-{tag}-"
        self._id_tag = tag[:6]
        self._seq = 0      # event ids
        self._aside = 0    # events queued by aside(), with their own ids and random source
        self._aside_rng = random.Random(f"touchstream-demo-aside|{tag}")
        self._ids = 0      # business ids (orders, cases, messages, ...)
        self.pending: list = []  # heap of (t, seq, event): queued, not yet yielded
        self._days: dict[int, str] = {}
        self._hours: dict[int, str] = {}
        self._floor = start_ms  # everything before this was already yielded
        self.emitted = 0

    # -- ids and time -----------------------------------------------------------
    def new_id(self, kind: str) -> str:
        self._ids += 1
        return f"{kind}-{self._id_tag}-{self._ids:07d}"

    def _day(self, day: int) -> str:
        text = self._days.get(day)
        if text is None:
            text = self._days[day] = (_EPOCH_DAY + timedelta(days=day)).isoformat()
        return text

    def iso(self, t: int) -> str:
        """Epoch ms -> ``2026-01-05T09:30:00.000Z``; hot path (two per event), so prefixes are cached."""
        hour, rem = divmod(t, HOUR)
        prefix = self._hours.get(hour)
        if prefix is None:
            prefix = self._hours[hour] = f"{self._day(hour // 24)}T{_TWO[hour % 24]}:"
        minute, rem = divmod(rem, MINUTE)
        sec, ms = divmod(rem, 1000)
        return f"{prefix}{_TWO[minute]}:{_TWO[sec]}.{_THREE[ms]}Z"

    def date(self, t: int) -> str:
        return self._day(t // DAY)

    def at(self, day_start: int, from_hour: float, to_hour: float) -> int:
        """A random moment of the day between two hours (the company works 8-18, customers 7-23)."""
        return day_start + int((from_hour + self.rng.random() * (to_hour - from_hour)) * HOUR)

    def office(self, t: int, from_hour: int = 8, to_hour: int = 18) -> int:
        """``t`` if it falls in office hours, else early in the next opening (company-side actions)."""
        day, rem = divmod(t, DAY)
        if from_hour * HOUR <= rem < to_hour * HOUR:
            return t
        if rem >= to_hour * HOUR:
            day += 1
        return day * DAY + from_hour * HOUR + int(self.rng.random() * 2 * HOUR)

    @staticmethod
    def money(cents: int, currency: str = "EUR") -> dict:
        return {"amount": f"{cents // 100}.{cents % 100:02d}", "currency": currency}

    # -- events -----------------------------------------------------------------
    def emit(self, t: int, event_type: str, channel: str, content: str, initiated_by: str, source: str,
             identity: dict, fields: dict, corr: str | None = None, cause: str | None = None) -> str:
        """Queue one event; returns its event_id (for causation). Events outside the window are dropped."""
        self._seq += 1
        return self._queue(t, self._seq, f"{self._event_prefix}{self._seq:08d}", self.rng, event_type, channel,
                           content, initiated_by, source, identity, fields, corr, cause)

    def aside(self, t: int, event_type: str, channel: str, content: str, initiated_by: str, source: str,
              identity: dict, fields: dict) -> str:
        """Queue an event outside the run's main sequence: ids ``demo-<tag>-a0000001`` and a random source of
        their own, so adding such events (``consent_register``) leaves every other event of a run as it was,
        ids and times included. At one instant they come before the main sequence's events."""
        self._aside += 1
        return self._queue(t, self._aside - ASIDE_SEQ, f"{self._event_prefix}a{self._aside:07d}", self._aside_rng,
                           event_type, channel, content, initiated_by, source, identity, fields, None, None)

    def _queue(self, t: int, seq: int, event_id: str, rng: random.Random, event_type: str, channel: str,
               content: str, initiated_by: str, source: str, identity: dict, fields: dict, corr: str | None,
               cause: str | None) -> str:
        if t >= self.end_ms:
            return event_id
        if t < self._floor:
            raise ValueError(f"{event_type} at {self.iso(t)} is before already yielded events (generator bug)")
        lo, spread = RECORD_DELAY[source]
        envelope = {
            "event_id": event_id, "event_type": event_type, "occurred_at": self.iso(t),
            "recorded_at": self.iso(t + lo + int(rng.random() * spread)),
            "channel": channel, "content": content, "initiated_by": initiated_by,
            "source": source, "identity": identity,
        }
        if corr is not None:
            envelope["correlation_id"] = corr
        if cause is not None:
            envelope["causation_id"] = cause
        heapq.heappush(self.pending, (t, seq, {"envelope": envelope, **fields}))
        return event_id

    def drain(self, before_ms: int):
        """Yield queued events that happened before ``before_ms``, oldest first (ties: creation order)."""
        self._floor = max(self._floor, before_ms)
        heap = self.pending
        pop = heapq.heappop
        while heap and heap[0][0] < before_ms:
            self.emitted += 1
            yield pop(heap)[2]
