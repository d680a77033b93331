"""Decoding a raw record into an event, shared by every stage that reads raw topics.

A registry outage is retried (it is not the record's fault) and then raised,
which stops the stage; a record that cannot be an event raises ``DecodeError``
so the caller dead-letters it. So does a record that decodes but breaks the
envelope contract (``check_consumed``): the broker takes whatever an authorised
producer writes, so every raw consumer checks again, the same way, and no
projection ever folds such a record.
"""

from __future__ import annotations

import time
from datetime import timedelta

from touchstream.codec.avro_codec import AvroCodec, Decoded, DecodeError, RegistryError
from touchstream.events.envelope import MAX_CLOCK_SKEW, check_consumed
from touchstream.processors.records import RawRecord
from touchstream.publishing.dead_letters import DeadLetter


def decode(codec: AvroCodec, value: bytes | None, attempts: int = 8) -> Decoded:
    for attempt in range(attempts):
        try:
            decoded = codec.decode(value)
            if not isinstance(decoded.record, dict) or "envelope" not in decoded.record:
                raise DecodeError(f"schema id {decoded.schema_id} is not a Touchstream event (no envelope)")
            return decoded
        except RegistryError:
            if attempt == attempts - 1:
                raise
            time.sleep(min(0.2 * 2**attempt, 5.0))
    raise AssertionError("unreachable")


def decode_event(codec: AvroCodec, value: bytes | None) -> dict:
    return decode(codec, value).record


def decode_checked(codec: AvroCodec, record: RawRecord, max_skew: timedelta = MAX_CLOCK_SKEW) -> Decoded:
    """``decode``, then the envelope contract; a violation is a ``DecodeError`` naming each field and why."""
    decoded = decode(codec, record.value)
    problems = check_consumed(decoded.record["envelope"], decoded.meta, record.received_at, max_skew)
    if problems:
        raise DecodeError("breaks the event contract: " + "; ".join(str(p) for p in problems))
    return decoded


def decode_batch(codec: AvroCodec, records: list[RawRecord]) -> tuple[list[tuple[RawRecord, Decoded]], list[DeadLetter]]:
    """(record, decoded) for every record that is a valid event, and a dead letter for every one that is not."""
    good, letters = [], []
    for record in records:
        try:
            good.append((record, decode_checked(codec, record)))
        except DecodeError as exc:
            letters.append(DeadLetter(record, exc.reason))
    return good, letters
