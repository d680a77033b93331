"""Whose a personal value is: the subject whose data key seals it.

An identifier seals under itself (``email:alice@example.com``); free text seals under the event's
strongest identifier, the one its Kafka record is keyed by. Erasing a customer deletes the keys of
every identifier identity resolution joined into it, so both kinds are reached. Identifiers are
normalised the way identity resolution normalises them (e-mail lower case, phone E.164), so two
spellings of one address share one key and erasure finds it from identity's own identifiers.
Pure: no I/O.
"""

from __future__ import annotations

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
