"""The record format of the ``_schemas`` log, byte for byte as Confluent and Karapace write it.

Keeping the exact layout (field order, compact JSON) means a ``_schemas`` topic
written by us can be read by a Confluent or Karapace registry and the other way
round. Keys are JSON objects; a null value is a tombstone (hard delete).
Key types other than SCHEMA and CONFIG (NOOP, DELETE_SUBJECT, CLEAR_SUBJECT,
MODE) are markers other registries write; the per-version records already say
everything, so the fold skips them.
"""

from __future__ import annotations

import json

from touchstream.registry.base import AVRO, RegistryState, SchemaVersion

SCHEMA = "SCHEMA"
CONFIG = "CONFIG"
SKIPPED_KEYTYPES = frozenset({"NOOP", "DELETE_SUBJECT", "CLEAR_SUBJECT", "MODE"})


def _dump(obj: dict) -> bytes:
    # Jackson writes compact JSON and leaves non-ASCII unescaped.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def schema_key(subject: str, version: int) -> bytes:
    return _dump({"keytype": SCHEMA, "subject": subject, "version": version, "magic": 1})


def config_key(subject: str | None) -> bytes:
    return _dump({"keytype": CONFIG, "subject": subject, "magic": 0})


def schema_value(record: SchemaVersion) -> bytes:
    value: dict = {
        "subject": record.subject,
        "version": record.version,
        "id": record.id,
        "schema": record.schema,
        "deleted": record.deleted,
    }
    if record.schema_type != AVRO:
        value["schemaType"] = record.schema_type
    return _dump(value)


def config_value(level: str) -> bytes:
    return _dump({"compatibilityLevel": level})


class MalformedRecord(ValueError):
    """A ``_schemas`` record this registry cannot interpret."""


def _load(raw: bytes, what: str) -> dict:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRecord(f"{what} is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise MalformedRecord(f"{what} is not a JSON object")
    return obj


def apply(state: RegistryState, key: bytes | None, value: bytes | None) -> bool:
    """Fold one record into ``state``; False for a marker record that changes nothing.

    Raises MalformedRecord for a record that cannot be read, so the caller can
    log it and go on (one bad record must not stop a registry from starting).
    """
    if key is None:
        raise MalformedRecord("record without key")
    k = _load(key, "key")
    keytype = k.get("keytype")
    if keytype in SKIPPED_KEYTYPES:
        return False
    if keytype == SCHEMA:
        subject, version = k.get("subject"), k.get("version")
        if not isinstance(subject, str) or not isinstance(version, int):
            raise MalformedRecord("SCHEMA key without subject/version")
        if value is None:
            state.remove_schema(subject, version)
            return True
        v = _load(value, "SCHEMA value")
        try:
            # The key is the record's identity (compaction and tombstones go by it), so it wins.
            record = SchemaVersion(
                subject=subject,
                version=version,
                id=int(v["id"]),
                schema=str(v["schema"]),
                schema_type=v.get("schemaType") or AVRO,
                deleted=bool(v.get("deleted", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedRecord(f"SCHEMA value lacks {exc}") from exc
        state.put_schema(record)
        return True
    if keytype == CONFIG:
        subject = k.get("subject")
        if subject is not None and not isinstance(subject, str):
            raise MalformedRecord("CONFIG key with a non-string subject")
        if value is None:
            state.put_config(subject, None)
            return True
        level = _load(value, "CONFIG value").get("compatibilityLevel")
        if not isinstance(level, str):
            raise MalformedRecord("CONFIG value without compatibilityLevel")
        state.put_config(subject, level.upper())
        return True
    raise MalformedRecord(f"unknown keytype {keytype!r}")
