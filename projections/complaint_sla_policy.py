"""SLA policies as versioned data: parse and check ``sla_policies.toml``, pick the version for a case.

Why data and not code: response and resolution targets are a business decision
that changes (a new channel, a stricter promise), and a case must keep being
measured against the policy in force when it opened. So policies are versions with
a ``valid_from``; ``policy_for`` picks the one in force at an instant, and
``complaint_sla.pin_policy`` records its name on the case. The file format is
documented at the top of ``sla_policies.toml``.

Why strict checking with key paths: a typo in a target silently falling back to
the default would be a wrong SLA for months; every problem names its place
(``versions[1].targets.urgent.phone.first_response: ...``). Parsing is pure;
``load_policies`` only reads the file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from touchstream.projections.complaint_sla_calendar import WEEKDAYS, Calendar

TARGETS = ("first_response", "next_response", "periodic_update", "resolution")
CLOCK_KINDS = TARGETS + ("callback",)
PRIORITIES = ("low", "normal", "high", "urgent", "unknown")      # complaint.opened Priority enum
CHANNELS = ("web", "email", "phone", "sms", "store", "postal_mail", "social", "meeting", "document", "field_sales",
            "unknown")                                            # touchstream.common.Channel
DEFAULT, ALWAYS = "default", "always"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?$")
_CLOCK = re.compile(r"^(\d\d):(\d\d)$")


class PolicyError(ValueError):
    """A policy file problem, with the key path it is at."""


class Target(NamedTuple):
    span: timedelta
    calendar: Calendar | None    # None: around the clock


@dataclass(frozen=True)
class Policy:
    version: str
    valid_from: datetime
    warning_fraction: float
    escalate_on_breach: tuple[str, ...]
    calendars: dict[str, Calendar]
    rows: dict[tuple[str, str], dict[str, Any]]   # (priority, channel) -> {target: timedelta, calendar: name}

    def target(self, kind: str, priority: str | None, channel: str | None) -> Target:
        """The target of a clock kind for a case; each key falls back on its own (see the file's doc)."""
        chain = [(priority, channel), (priority, DEFAULT), (DEFAULT, channel), (DEFAULT, DEFAULT)]
        span = next(row[kind] for key in chain if kind in (row := self.rows.get(key, {})))
        calendar = next((row["calendar"] for key in chain if "calendar" in (row := self.rows.get(key, {}))), ALWAYS)
        return Target(span, None if calendar == ALWAYS else self.calendars[calendar])


def load_policies(path: str | Path | None = None) -> tuple[Policy, ...]:
    """Read and check a policy file (default: the ``sla_policies.toml`` shipped beside this module)."""
    if path is None:
        text = resources.files("touchstream.projections").joinpath("sla_policies.toml").read_text()
    else:
        text = Path(path).read_text()
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not valid TOML: {exc}") from None
    return parse_policies(doc)


def parse_policies(doc: dict) -> tuple[Policy, ...]:
    """Check a parsed policy document; versions sorted by valid_from."""
    if doc.get("format") != 1:
        raise PolicyError(f"format: expected 1, got {doc.get('format')!r}")
    _only(doc, ("format", "versions"), "")
    versions = doc.get("versions")
    if not isinstance(versions, list) or not versions:
        raise PolicyError("versions: at least one [[versions]] entry is required")
    policies = [_version(v, f"versions[{i}]") for i, v in enumerate(versions)]
    for field, values in (("version", [p.version for p in policies]), ("valid_from", [p.valid_from for p in policies])):
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:
            raise PolicyError(f"versions: {field} used twice: {', '.join(twice)}")
    return tuple(sorted(policies, key=lambda p: p.valid_from))


def policy_for(policies: tuple[Policy, ...], opened_at: datetime) -> Policy | None:
    """The version in force at ``opened_at`` (the latest valid_from not after it); None before the first."""
    return next((p for p in reversed(policies) if p.valid_from <= opened_at), None)


def parse_duration(text: Any, path: str) -> timedelta:
    match = _DURATION.match(text) if isinstance(text, str) and text else None
    if match is None:
        raise PolicyError(f"{path}: {text!r} is not a duration like '90m', '4h' or '1h30m'")
    return timedelta(hours=int(match.group(1) or 0), minutes=int(match.group(2) or 0))


def _version(doc: Any, path: str) -> Policy:
    if not isinstance(doc, dict):
        raise PolicyError(f"{path}: expected a table")
    _only(doc, ("version", "valid_from", "warning_fraction", "escalate_on_breach", "calendars", "targets"), path)
    name = doc.get("version")
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{path}.version: a non-empty string is required")
    valid_from = doc.get("valid_from")
    if not isinstance(valid_from, datetime) or valid_from.tzinfo is None:
        raise PolicyError(f"{path}.valid_from: an offset date-time is required (e.g. 2026-01-01T00:00:00Z)")
    fraction = doc.get("warning_fraction", 0.8)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise PolicyError(f"{path}.warning_fraction: a number between 0 and 1 (exclusive) is required")
    escalate = doc.get("escalate_on_breach", [])
    if not isinstance(escalate, list) or any(k not in CLOCK_KINDS for k in escalate):
        raise PolicyError(f"{path}.escalate_on_breach: a list of {', '.join(CLOCK_KINDS)}")
    calendars = {key: _calendar(key, value, f"{path}.calendars.{key}")
                 for key, value in _table(doc.get("calendars", {}), f"{path}.calendars").items()}
    if ALWAYS in calendars:
        raise PolicyError(f"{path}.calendars.{ALWAYS}: the name is reserved (24x7)")
    rows = _targets(_table(doc.get("targets"), f"{path}.targets"), set(calendars), f"{path}.targets")
    return Policy(name, valid_from, float(fraction), tuple(escalate), calendars, rows)


def _targets(doc: dict, calendars: set[str], path: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for priority, by_channel in doc.items():
        if priority not in PRIORITIES + (DEFAULT,):
            raise PolicyError(f"{path}.{priority}: unknown priority (one of {', '.join(PRIORITIES)} or default)")
        for channel, row in _table(by_channel, f"{path}.{priority}").items():
            here = f"{path}.{priority}.{channel}"
            if channel not in CHANNELS + (DEFAULT,):
                raise PolicyError(f"{here}: unknown channel (one of {', '.join(CHANNELS)} or default)")
            _only(_table(row, here), TARGETS + ("calendar",), here)
            parsed: dict[str, Any] = {k: parse_duration(v, f"{here}.{k}") for k, v in row.items() if k != "calendar"}
            if "calendar" in row:
                if row["calendar"] != ALWAYS and row["calendar"] not in calendars:
                    raise PolicyError(f"{here}.calendar: {row['calendar']!r} is not defined under calendars")
                parsed["calendar"] = row["calendar"]
            rows[(priority, channel)] = parsed
    missing = [k for k in TARGETS if k not in rows.get((DEFAULT, DEFAULT), {})]
    if missing:
        raise PolicyError(f"{path}.default.default: must set {', '.join(missing)}")
    return rows


def _calendar(name: str, doc: Any, path: str) -> Calendar:
    _only(_table(doc, path), ("timezone", "weekdays", "hours", "holidays"), path)
    zone = doc.get("timezone")
    weekdays = doc.get("weekdays")
    if not isinstance(weekdays, list) or not weekdays or any(d not in WEEKDAYS for d in weekdays):
        raise PolicyError(f"{path}.weekdays: a non-empty list of {', '.join(WEEKDAYS)}")
    hours = doc.get("hours")
    if not isinstance(hours, list) or len(hours) != 2:
        raise PolicyError(f"{path}.hours: [opens, closes] as two 'HH:MM' strings")
    opens, closes = (_clock(h, f"{path}.hours[{i}]") for i, h in enumerate(hours))
    holidays = doc.get("holidays", [])
    if not isinstance(holidays, list) or any(not isinstance(d, date) or isinstance(d, datetime) for d in holidays):
        raise PolicyError(f"{path}.holidays: a list of dates (2026-12-25)")
    try:
        return Calendar(name, str(zone), frozenset(WEEKDAYS.index(d) for d in weekdays), opens, closes,
                        frozenset(holidays))
    except (ValueError, KeyError) as exc:        # ZoneInfoNotFoundError is a KeyError
        raise PolicyError(f"{path}: {exc if isinstance(exc, ValueError) else f'unknown timezone {zone!r}'}") from None


def _clock(text: Any, path: str) -> time:
    match = _CLOCK.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise PolicyError(f"{path}: {text!r} is not a time of day 'HH:MM'")
    return time(int(match.group(1)), int(match.group(2)))


def _table(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise PolicyError(f"{path}: expected a table")
    return value


def _only(doc: dict, keys: tuple[str, ...], path: str) -> None:
    unknown = sorted(set(doc) - set(keys))
    if unknown:
        raise PolicyError(f"{path + '.' if path else ''}{unknown[0]}: unknown key (expected one of {', '.join(keys)})")
