"""Which event times can be trusted: the rules on ``occurred_at`` and ``recorded_at``.

``occurred_at`` comes from the channel system's clock; SLA clocks, watermarks and
windows run on it, so one event dated 2099 would close every window at once.
``recorded_at`` is the trusted clock: Touchstream stamps it at receipt (collector,
SDK, ``touchstream publish``) and ignores a client's value, except in an explicit
replay of an export. The rules, in one place so the publishers and the raw-topic
consumers agree:

* both times are on or after ``EARLIEST`` (2000-01-01): anything earlier is a
  default or garbage value (0001-01-01, the Unix epoch), not an interaction;
* ``occurred_at`` leads ``recorded_at`` by at most ``max_skew`` (clocks drift a
  little; more is a wrong or hostile clock);
* with ``now`` (the checker's clock: the publisher's, or the broker's
  log-append time for a consumer): neither time is more than ``max_skew`` ahead
  of it (a replayed export or a forged record cannot claim the future).

There is no fixed upper year: "in the future" is only meaningful against a clock,
and the skew rule is that bound. Pure: no I/O; the caller passes its clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from touchstream.events.validation import Problem, parse_timestamp

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
DEFAULT_MAX_SKEW = timedelta(seconds=300)
TIME_FIELDS = ("occurred_at", "recorded_at")


def _envelope_of(envelope_or_record: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept a whole event/record (``{"envelope": {...}, ...}``) or just its envelope."""
    inner = envelope_or_record.get("envelope")
    if inner is None:   # an envelope; this and the dict test spare the costly isinstance against typing's Mapping
        return envelope_or_record
    return inner if type(inner) is dict or isinstance(inner, Mapping) else envelope_or_record


def _skew(max_skew: timedelta | float | int) -> timedelta:
    return max_skew if isinstance(max_skew, timedelta) else timedelta(seconds=max_skew)


def _times(envelope: Mapping[str, Any]) -> tuple[dict[str, datetime], list[Problem]]:
    """The envelope's times as aware UTC datetimes; unreadable ones become problems."""
    found, problems = {}, []
    for field in TIME_FIELDS:
        value = envelope.get(field)
        if value is None:
            problems.append(Problem(f"envelope.{field}", "required field is missing"))
            continue
        if type(value) is datetime and value.tzinfo is timezone.utc:
            found[field] = value   # converted or decoded already: parsing would return it as it is
            continue
        try:
            found[field] = parse_timestamp(value)
        except Exception as exc:  # noqa: BLE001 - validation's own error type is private; keep its reason
            problems.append(Problem(f"envelope.{field}", getattr(exc, "reason", str(exc))))
    return found, problems


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _too_early(times: dict[str, datetime]) -> list[Problem]:
    return [Problem(f"envelope.{field}", f"{_iso(moment)} is before {EARLIEST.date()}; send the real time")
            for field, moment in times.items() if moment < EARLIEST]


def _too_late(times: dict[str, datetime], skew: timedelta, now: datetime | None) -> list[Problem]:
    """Reasons are written only for a time that is too late: the publishers check every event."""
    occurred, recorded = times.get("occurred_at"), times.get("recorded_at")
    problems = []
    if occurred is not None and recorded is not None and occurred - recorded > skew:
        problems.append(Problem("envelope.occurred_at", f"is in the future: {_iso(occurred)} is {_limit(skew)} after "
                                f"recorded_at {_iso(recorded)} (check the sending system's clock)"))
    if now is not None:
        clock = now.astimezone(timezone.utc)
        for field, moment in times.items():
            if moment - now > skew and not any(p.path == f"envelope.{field}" for p in problems):
                problems.append(Problem(f"envelope.{field}", f"is in the future: {_iso(moment)} is {_limit(skew)} "
                                        f"after the receiving clock {_iso(clock)}"))
    return problems


def _limit(skew: timedelta) -> str:
    return f"more than {skew.total_seconds():g} s"


def check_time_range(envelope_or_record: Mapping[str, Any]) -> list[Problem]:
    """The clock-free rule only (no time before ``EARLIEST``): what the catalogue checks.

    The catalogue asks it of every event, with both times already converted to UTC: those
    are compared as they are, and only other values go through the parse.
    """
    envelope = _envelope_of(envelope_or_record)
    occurred, recorded = envelope.get("occurred_at"), envelope.get("recorded_at")
    if (type(occurred) is datetime and type(recorded) is datetime and occurred.tzinfo is timezone.utc
            and recorded.tzinfo is timezone.utc and occurred >= EARLIEST and recorded >= EARLIEST):
        return []
    return _too_early(_times(envelope)[0])


def check_skew(envelope_or_record: Mapping[str, Any], max_skew: timedelta | float = DEFAULT_MAX_SKEW, *,
               now: datetime | None = None) -> list[Problem]:
    """The clock rules only: occurred_at vs recorded_at, and both vs ``now`` when given."""
    return _too_late(_times(_envelope_of(envelope_or_record))[0], _skew(max_skew), now)


def check_times(envelope_or_record: Mapping[str, Any], max_skew: timedelta | float = DEFAULT_MAX_SKEW, *,
                now: datetime | None = None) -> list[Problem]:
    """Every time rule on one event, envelope or record (plain JSON or decoded Avro values).

    Returns ``Problem(path, reason)`` items (empty when the times can be trusted); a
    raw-topic consumer dead-letters the record when the list is not empty.
    ``max_skew`` is a ``timedelta`` or seconds (``Settings.max_clock_skew_seconds``);
    ``now`` is the checker's clock (omit it to skip the recorded_at-vs-now rule).
    """
    times, unreadable = _times(_envelope_of(envelope_or_record))
    return [*unreadable, *_too_early(times), *_too_late(times, _skew(max_skew), now)]


def stamp_recorded_at(event: Any, now: datetime) -> Any:
    """A copy of ``event`` whose ``envelope.recorded_at`` is ``now``: the receiver's clock, not the sender's.

    Anything that is not an event object is returned as is, for validation to reject.
    """
    if not isinstance(event, dict) or not isinstance(event.get("envelope"), dict):
        return event
    return {**event, "envelope": {**event["envelope"], "recorded_at": now.astimezone(timezone.utc)}}
