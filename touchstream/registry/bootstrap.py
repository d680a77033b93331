"""Register every event and derived record schema of ``touchstream.schemas`` with the running registry.

Goes through confluent-kafka's ``SchemaRegistryClient`` on purpose: it is the
client producers use, so bootstrap proves the registry speaks its dialect. All
versions are registered oldest first, so the registry checks each step of a
schema's history against its compatibility level, exactly as producers would
have met it. Registering is idempotent: a schema a subject holds keeps its id.
Derived records (customer-360, identity decisions, findings) are published
contracts like the events, so they are registered the same way (subject = the
record's full name).
"""

from __future__ import annotations

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from touchstream.config import Settings
from touchstream.registry.credentials import client_config
from touchstream.schemas import DerivedSchema, EventSchema, load_all, load_derived_versions

Contract = EventSchema | DerivedSchema


class SchemaRegistrationError(RuntimeError):
    """The registry refused (or could not be asked to take) one of our schemas."""

    def __init__(self, schema: Contract, reason: str):
        self.subject = schema.subject
        self.schema = schema
        super().__init__(f"registering {schema.subject} v{schema.version} ({schema.path.name}) failed: {reason}")


def schema_key(schema: Contract) -> str:
    """``phone.call_ended.v1`` / ``derived.customer_360.v1``: name and file version, unique per registered file."""
    if isinstance(schema, DerivedSchema):
        return f"derived.{schema.name}.v{schema.version}"
    return f"{schema.event_type}.v{schema.version}"


def register_all(settings: Settings, schemas: list[Contract] | None = None) -> dict[str, int]:
    """Register every schema (all versions, in version order); ``{schema_key: registry id}``.

    Without ``schemas``: every event schema and every derived record schema; with it, only those.
    """
    client = SchemaRegistryClient(client_config(settings, write=True))
    chosen = [*load_all(), *load_derived_versions()] if schemas is None else schemas
    ordered = sorted(chosen, key=lambda s: (s.subject, s.version))
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
