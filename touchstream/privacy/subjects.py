"""Whose a personal value is: the subject whose data key seals it.

An identifier seals under itself (``email:alice@example.com``); free text seals under the event's
strongest identifier, the one its Kafka record is keyed by. Erasing a customer deletes the keys of
every identifier identity resolution joined into it, so both kinds are reached. Free text is sealed
once more under its month's key (``text_period``), which retention deletes once the month is older
than ``free_text_days`` (``expired_periods``): the text then expires on every topic, copies included. Identifiers are
normalised the way identity resolution normalises them (e-mail lower case, phone E.164), so two
spellings of one address share one key and erasure finds it from identity's own identifiers.
Pure: no I/O.
"""

from __future__ import annotations

import time
from typing import Mapping

from touchstream.events.envelope import KEY_PRIORITY
from touchstream.projections.identity_normalise import normalise


def subject(kind: str, value: str) -> str:
    """``kind:value`` as identity resolution would name the identifier (trimmed where it would not parse)."""
    identifier, _note = normalise(kind, value)
    if identifier is None:
        return f"{kind}:{value.strip()}"
    return f"{identifier.kind}:{identifier.value}"


def primary_subject(identity: Mapping[str, object]) -> str | None:
    """The event's strongest identifier (``KEY_PRIORITY``), as a subject; None if it carries none."""
    for kind in KEY_PRIORITY:
        value = identity.get(kind)
        if isinstance(value, str) and value.strip():
            return subject(kind, value)
    return None


PERIOD = "period:"   # the subject of a month's free-text key: period:2026-12 (UTC)
FIRST_PERIOD = (2020, 1)   # no free text was sealed before this month (sealing came in 2026)


def text_period(at: float) -> str:
    """The subject whose key seals (a second time) the free text sealed at ``at`` (epoch seconds)."""
    return PERIOD + time.strftime("%Y-%m", time.gmtime(at))


def expired_periods(now_ms: int, keep_ms: int) -> list[str]:
    """Every month, from ``FIRST_PERIOD``, that ended more than ``keep_ms`` before ``now_ms``: its free
    text is past retention whatever day of it the text was sealed on."""
    cutoff = time.gmtime((now_ms - keep_ms) / 1000)
    year, month, out = *FIRST_PERIOD, []
    while (year, month) < (cutoff.tm_year, cutoff.tm_mon):   # the cutoff's own month has not ended before it
        out.append(f"{PERIOD}{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out
