"""Decoding a raw record into an event, shared by every stage that reads raw topics.

A registry outage is retried (it is not the record's fault) and then raised,
which stops the stage; a record that cannot be an event raises ``DecodeError``
so the caller dead-letters it.
"""

from __future__ import annotations

import time

from touchstream.codec.avro_codec import AvroCodec, Decoded, DecodeError, RegistryError


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
