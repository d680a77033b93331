"""Register every event schema of ``touchstream.schemas`` with the running registry.

Goes through confluent-kafka's ``SchemaRegistryClient`` on purpose: it is the
client producers use, so bootstrap proves the registry speaks its dialect. All
versions are registered oldest first, so the registry checks each step of a
schema's history against its compatibility level, exactly as producers would
have met it. Registering is idempotent: a schema a subject holds keeps its id.
"""

from __future__ import annotations

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from touchstream.config import Settings
from touchstream.schemas import EventSchema, load_all


class SchemaRegistrationError(RuntimeError):
    """The registry refused (or could not be asked to take) one of our schemas."""

    def __init__(self, schema: EventSchema, reason: str):
        self.subject = schema.subject
        self.schema = schema
        super().__init__(f"registering {schema.subject} v{schema.version} ({schema.path.name}) failed: {reason}")


def schema_key(schema: EventSchema) -> str:
    """``phone.call_ended.v1``: event type and file version, unique per registered file."""
    return f"{schema.event_type}.v{schema.version}"


def register_all(settings: Settings, schemas: list[EventSchema] | None = None) -> dict[str, int]:
    """Register every schema (all versions, in version order); ``{schema_key: registry id}``."""
    client = SchemaRegistryClient({"url": settings.registry_url})
    ordered = sorted(load_all() if schemas is None else schemas, key=lambda s: (s.subject, s.version))
    ids: dict[str, int] = {}
    try:
        for item in ordered:
            try:
                ids[schema_key(item)] = client.register_schema(item.subject, Schema(item.canonical, "AVRO"))
            except SchemaRegistryError as exc:
                raise SchemaRegistrationError(item, f"{exc.error_message} (error code {exc.error_code})") from exc
            except Exception as exc:  # httpx transport errors: the registry is not there
                raise SchemaRegistrationError(item, f"registry at {settings.registry_url} unreachable: {exc}") from exc
    finally:
        client.close()
    return ids
