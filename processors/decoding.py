"""Decoding a raw record into an event, shared by every stage that reads raw topics.

A registry outage (unreachable, or failing on its side) is waited out with backoff
for as long as it lasts: it is not the record's fault, and no later record could be
decoded either; a registry that answers but refuses is retried a few times and then
raised, which stops the stage (a configuration to fix; the supervisor restarts it).
A record that cannot be an event raises ``DecodeError``
so the caller dead-letters it. So does a record that decodes but breaks the
envelope contract (``check_consumed``): the broker takes whatever an authorised
producer writes, so every raw consumer checks again, the same way, and no
projection ever folds such a record.
"""

from __future__ import annotations

import time
from datetime import timedelta

import httpx

from touchstream.backoff import Backoff
from touchstream.codec.avro_codec import AvroCodec, Decoded, DecodeError, RegistryError
from touchstream.events.envelope import MAX_CLOCK_SKEW, check_consumed
from touchstream.processors.outages import REGISTRY, Outage, registry_down
from touchstream.processors.records import RawRecord
from touchstream.publishing.dead_letters import DeadLetter


def decode(codec: AvroCodec, value: bytes | None, attempts: int = 8, *, sleep=time.sleep,
           outage: Outage = REGISTRY) -> Decoded:
    """The event in ``value``. A schema not cached yet needs the registry: while it cannot be reached
    (connection refused, a timeout, a 5xx) this waits, with backoff capped at 30 s, however long it
    takes; a refusal is retried ``attempts`` times, then raised."""
    delays, refused = Backoff(base=0.2, cap=30.0), 0
    while True:
        try:
            decoded = codec.decode(value)
        except (RegistryError, httpx.TransportError) as exc:
            if registry_down(exc):
                outage.failed(f"{type(exc).__name__}: {exc}")
            else:
                refused += 1
                if refused >= attempts:
                    raise
            sleep(delays.next_delay())
            continue
        outage.recovered()
        if not isinstance(decoded.record, dict) or "envelope" not in decoded.record:
            raise DecodeError(f"schema id {decoded.schema_id} is not a Touchstream event (no envelope)")
        return decoded


def decode_event(codec: AvroCodec, value: bytes | None) -> dict:
    return decode(codec, value).record


def decode_checked(codec: AvroCodec, record: RawRecord, max_skew: timedelta = MAX_CLOCK_SKEW) -> Decoded:
    """``decode``, then the envelope contract; a violation is a ``DecodeError`` naming each field and why."""
    decoded = decode(codec, record.value)
    problems = check_consumed(decoded.record["envelope"], decoded.meta, record.received_at, max_skew)
    if decoded.erased:   # its hints were there and were erased: an anonymous event now, still counted
        problems = [p for p in problems if p.path != "envelope.identity"]
    if problems:
        raise DecodeError("breaks the event contract: " + "; ".join(str(p) for p in problems))
    return decoded


def decode_batch(codec: AvroCodec, records: list[RawRecord], max_skew: timedelta = MAX_CLOCK_SKEW
                 ) -> tuple[list[tuple[RawRecord, Decoded]], list[DeadLetter]]:
    """(record, decoded) for every record that is a valid event, and a dead letter for every one that is not."""
    good, letters = [], []
    for record in records:
        try:
            good.append((record, decode_checked(codec, record, max_skew)))
        except DecodeError as exc:
            letters.append(DeadLetter(record, exc.reason))
    return good, letters
