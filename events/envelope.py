"""Rules every event obeys beyond its Avro shape, and the partition key.

The schema says *what type* a field has; these rules say what makes sense for a
customer interaction: the event type matches its schema, the channel, content
and initiator are ones the catalogue allows for that type, somebody is
identified, and event times are not before 2000. Whether occurred_at is too far
ahead needs a trusted clock, so that rule (``time_rules.check_skew``) is applied
where recorded_at is stamped: the publishers, and the raw-topic consumers.
Pure: no I/O.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from touchstream.events.time_rules import DEFAULT_MAX_SKEW, check_skew, check_time_range
from touchstream.events.validation import Problem

IDENTITY_FIELDS = ("customer_id", "email", "phone", "cookie_id", "device_id", "loyalty_card", "account_number")
# Strongest first: the key under which a record is partitioned, so one
# customer's events stay in order on one partition as long as the channel
# system sends the same strongest hint.
KEY_PRIORITY = ("customer_id", "account_number", "loyalty_card", "email", "phone", "device_id", "cookie_id")
MAX_CLOCK_SKEW: timedelta = DEFAULT_MAX_SKEW
_EVENT_ID_RE = re.compile(r"^[A-Za-z0-9._:/@+=-]{1,128}$")
_PHONE_RE = re.compile(r"^\+?[0-9 ()./-]{5,32}$")


def new_event_id() -> str:
    return str(uuid.uuid4())


def fill_defaults(event: dict, *, now: datetime, source: str | None = None, default_source: str | None = None) -> dict:
    """Fill what a producer may omit (event_id, recorded_at) and stamp ``source``.

    A recorded_at already present is kept: the publishers overwrite it with their
    own clock before this (``time_rules.stamp_recorded_at``) unless they replay an export.

    ``source`` is authoritative when given (the API key's system or the SDK's
    ``Publisher(source=)``): a web-shop key cannot claim to be the call centre.
    ``default_source`` only fills a missing one (trusted replays of exports).

    A generated event_id makes a retry a duplicate, so producers that retry should
    send their own ids; that is documented, not enforced.
    """
    envelope = event.get("envelope")
    if not isinstance(envelope, dict):
        return dict(event)
    env = dict(envelope)
    if env.get("event_id") is None:
        env["event_id"] = new_event_id()
    if env.get("recorded_at") is None:
        env["recorded_at"] = now.astimezone(timezone.utc)
    if source is not None:
        env["source"] = source
    elif default_source is not None:
        env.setdefault("source", default_source)
    return {**event, "envelope": env}


_ALLOWED = (("channel", "channels"), ("content", "contents"), ("initiated_by", "initiated_by"))


def check_envelope(envelope: Mapping[str, Any], meta: Mapping[str, Any]) -> list[Problem]:
    """Catalogue and sanity rules on an envelope already converted to Avro values.

    Runs on every published and every consumed event: no closure or temporary
    collection is made per call, and reasons are formatted only for a problem.
    """
    problems: list[Problem] = []
    if envelope["event_type"] != meta["event_type"]:
        problems.append(Problem("envelope.event_type",
                                f"is {envelope['event_type']!r} but the schema is {meta['event_type']!r}"))
    if not _EVENT_ID_RE.match(envelope["event_id"]):
        problems.append(Problem("envelope.event_id", "must be 1-128 characters of letters, digits and ._:/@+=-"))
    for field, allowed_key in _ALLOWED:
        allowed = meta.get(allowed_key)
        if allowed and envelope[field] not in allowed:
            problems.append(Problem(f"envelope.{field}", f"{envelope[field]!r} is not allowed for "
                                    f"{meta['event_type']}; allowed: {', '.join(allowed)}"))
    if not envelope["source"].strip():
        problems.append(Problem("envelope.source", "must name the channel system"))
    problems.extend(check_time_range(envelope))
    problems.extend(check_identity(envelope["identity"]))
    return problems


def check_identity(identity: Mapping[str, Any]) -> list[Problem]:
    """Blank hints, no hint at all, and the e-mail and phone shapes; one pass over the hints."""
    problems = []
    identified = False
    for field, value in identity.items():
        if value is None:
            continue
        if value.strip():
            identified = True
        else:
            problems.append(Problem(f"envelope.identity.{field}", "must not be blank; omit it or send null"))
    if not identified:
        problems.append(Problem("envelope.identity", f"needs at least one of: {', '.join(IDENTITY_FIELDS)}"))
    email = identity.get("email")
    if email and ("@" not in email or email.startswith("@") or email.endswith("@")):
        problems.append(Problem("envelope.identity.email", "is not an e-mail address"))
    phone = identity.get("phone")
    if phone and not _PHONE_RE.match(phone):
        problems.append(Problem("envelope.identity.phone", "is not a phone number"))
    return problems


def partition_key(identity: Mapping[str, Any]) -> bytes:
    """Kafka record key: the strongest identity hint, tagged by kind so kinds never collide."""
    for field in KEY_PRIORITY:
        value = identity.get(field)
        if value and value.strip():
            value = value.strip()
            if field == "email":
                value = value.lower()
            elif field == "phone":
                value = re.sub(r"[^0-9+]", "", value)
            return f"{field}:{value}".encode()
    raise ValueError("no identity hint to key by")


def check_consumed(envelope: Mapping[str, Any], meta: Mapping[str, Any] | None, received_at: datetime | None,
                   max_skew: timedelta = MAX_CLOCK_SKEW) -> list[Problem]:
    """The same rules for a record read off a raw topic, where nobody validated it for us.

    Why again on consumption: Kafka accepts whatever an authorised producer writes, and a producer
    that is not Touchstream's publisher never ran ``check_envelope``. ``meta`` is the writer
    schema's metadata (None: the schema is not a Touchstream event schema). ``received_at`` is the
    broker's log-append time: the one time on the record no producer chose, so neither event time
    nor recorded time may run more than ``max_skew`` ahead of it (and event time not ahead of
    recorded time: ``time_rules.check_skew``).
    """
    if not meta or "event_type" not in meta:
        return [Problem("envelope.event_type", "the writer schema declares no Touchstream event type")]
    problems = check_envelope(envelope, meta) + check_skew(envelope, max_skew, now=received_at)
    if received_at is not None and envelope["occurred_at"] - received_at > max_skew:
        problems.append(Problem("envelope.occurred_at", f"is after the broker received the record "
                                f"({received_at.isoformat()}) by more than {max_skew.total_seconds():g} s"))
    return problems
