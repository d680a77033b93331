"""Business-hours arithmetic for SLA clocks: add working time, measure working time.

Why its own module: a "4 working hours" target that starts on Friday at 16:00 is
due on Monday morning, and the same instant means a different local hour in
summer and winter. A ``Calendar`` names the service hours in local time (weekdays,
one opening and closing time, holidays) and a zoneinfo time zone; every instant in
and out is timezone-aware UTC. ``None`` as a calendar means around the clock.

The two functions are inverses: ``working_time(c, a, add_working(c, a, d)) == d``
for every start ``a`` and span ``d`` (the tests check it), so a due time and a
measured duration never disagree. Exact ``timedelta`` arithmetic, no floats.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Iterator
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 366 * 50          # a span that needs more calendar days than this is a configuration error


@dataclass(frozen=True)
class Calendar:
    """Service hours: ``opens``-``closes`` local time on ``weekdays`` (0 = Monday), except ``holidays``."""

    name: str
    timezone: str
    weekdays: frozenset[int]
    opens: time
    closes: time
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not self.weekdays or self.opens >= self.closes:
            raise ValueError(f"calendar {self.name}: needs a weekday and opens before it closes")
        _zone(self.timezone)

    def is_open(self, moment: datetime) -> bool:
        for opens, closes in _intervals(self, moment):
            if opens > moment:
                return False
            if moment < closes:
                return True
        return False

    def periods(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """[open, close) intervals in UTC from the local day of ``start`` on (earlier ones of that day included)."""
        return _intervals(self, start)


@lru_cache(maxsize=None)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _intervals(cal: Calendar, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    zone = _zone(cal.timezone)
    day = start.astimezone(zone).date()
    for offset in range(MAX_DAYS):
        current = day + timedelta(days=offset)
        if current.weekday() not in cal.weekdays or current in cal.holidays:
            continue
        opens = datetime.combine(current, cal.opens, zone).astimezone(timezone.utc)
        closes = datetime.combine(current, cal.closes, zone).astimezone(timezone.utc)
        if closes > opens:                    # hours inside a DST gap can collapse
            yield opens, closes
    raise ValueError(f"calendar {cal.name}: no service hours within {MAX_DAYS} days of {start.isoformat()}")


def add_working(cal: Calendar | None, start: datetime, span: timedelta) -> datetime:
    """The instant at which ``span`` of working time has passed since ``start`` (counting starts at the next
    opening when ``start`` is outside service hours; a span that ends at closing time ends there)."""
    if cal is None:
        return start + span
    if span <= timedelta(0):
        return start
    remaining = span
    for opens, closes in _intervals(cal, start):
        if closes <= start:
            continue
        begin = max(opens, start)
        if remaining <= closes - begin:
            return begin + remaining
        remaining -= closes - begin
    raise AssertionError("unreachable: _intervals raises first")


def working_time(cal: Calendar | None, start: datetime, end: datetime) -> timedelta:
    """Working time between two instants (zero when ``end`` is not after ``start``)."""
    if end <= start:
        return timedelta(0)
    if cal is None:
        return end - start
    total = timedelta(0)
    for opens, closes in _intervals(cal, start):
        if opens >= end:
            break
        begin, finish = max(opens, start), min(closes, end)
        if finish > begin:
            total += finish - begin
    return total
