"""A codec for unit tests: ``AvroCodec``'s interface and wire format, with the registry in a dict.

Same frame as on Kafka (byte 0x00, 4-byte big-endian schema id, fastavro schemaless
body) and the same ``Decoded`` answer, so the real processors can run in process
without a registry server. Every event schema (``load_latest``) and every derived
record (``load_derived``) is registered up front; an id is given per distinct schema
text, as a registry does.
"""

from __future__ import annotations

import io

import fastavro

from touchstream.codec.avro_codec import _HEADER, MAGIC, Decoded, DecodeError
from touchstream.schemas import META_KEY, load_derived, load_latest


class LocalCodec:
    def __init__(self) -> None:
        self._ids: dict[str, int] = {}                        # canonical schema text -> id
        self._by_id: dict[int, tuple[object, str]] = {}       # id -> (parsed schema, event_type)
        for schema in [*load_latest().values(), *load_derived().values()]:
            self.schema_id(schema)

    def schema_id(self, schema) -> int:
        known = self._ids.get(schema.canonical)
        if known is not None:
            return known
        schema_id = self._ids[schema.canonical] = len(self._ids) + 1
        event_type = (schema.schema.get(META_KEY) or {}).get("event_type", schema.record_name)
        self._by_id[schema_id] = (fastavro.parse_schema(schema.schema), event_type)
        return schema_id

    def encode(self, schema, record: dict) -> bytes:
        schema_id = self.schema_id(schema)
        buf = io.BytesIO()
        buf.write(_HEADER.pack(MAGIC, schema_id))
        fastavro.schemaless_writer(buf, self._by_id[schema_id][0], record)
        return buf.getvalue()

    def decode(self, data: bytes | None) -> Decoded:
        if data is None:
            raise DecodeError("empty record value (tombstone) on a raw topic")
        if len(data) < 5:
            raise DecodeError(f"record is {len(data)} bytes, shorter than the 5-byte Confluent header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise DecodeError(f"unknown magic byte {magic}; not Confluent-framed Avro")
        if schema_id not in self._by_id:
            raise DecodeError(f"schema id {schema_id} is not in the registry")
        writer, event_type = self._by_id[schema_id]
        try:
            record = fastavro.schemaless_reader(io.BytesIO(data[5:]), writer)
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise DecodeError(f"Avro body does not match schema id {schema_id}: {type(exc).__name__}") from exc
        return Decoded(schema_id, event_type, record)
