"""The interaction catalogue: every event type, and the one door an event passes to be published.

``Catalogue.validate`` turns a plain-JSON event into a ``ValidEvent`` (Avro values,
partition key, topic) or raises ``EventValidationError`` naming every field path
and reason. The SDK, the HTTP collector and ``touchstream publish`` all go
through it, so the three agree on what is valid. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from touchstream.events.envelope import check_envelope, fill_defaults, partition_key
from touchstream.events.validation import EventValidationError, Problem, compile_schema
from touchstream.schemas import EventSchema, load_latest
from touchstream.topics import raw_topic


@dataclass(frozen=True)
class ValidEvent:
    """An event that passed every rule, ready to encode and send."""

    schema: EventSchema
    record: dict
    key: bytes
    topic: str

    @property
    def event_id(self) -> str:
        return self.record["envelope"]["event_id"]

    @property
    def event_type(self) -> str:
        return self.schema.event_type

    @property
    def channel(self) -> str:
        return self.record["envelope"]["channel"]


class Catalogue:
    """Event types by name, with their latest schema (what producers write)."""

    def __init__(self, schemas: Mapping[str, EventSchema] | None = None):
        self.schemas = dict(load_latest() if schemas is None else schemas)
        self._compiled: dict = {}

    def __contains__(self, event_type: str) -> bool:
        return event_type in self.schemas

    def event_types(self) -> list[str]:
        return sorted(self.schemas)

    def schema(self, event_type: str) -> EventSchema:
        return self.schemas[event_type]

    def validate(self, event: Any, *, now: datetime | None = None, source: str | None = None,
                 default_source: str | None = None) -> ValidEvent:
        """Check one plain-JSON event; ``source`` overrides envelope.source, ``default_source`` fills it."""
        now = now or datetime.now(timezone.utc)
        if not isinstance(event, dict):
            raise EventValidationError([Problem("", f"an event is a JSON object, got {type(event).__name__}")])
        envelope = event.get("envelope")
        if not isinstance(envelope, dict):
            raise EventValidationError([Problem("envelope", "required object is missing")])
        event_type = envelope.get("event_type")
        schema = self.schemas.get(event_type)
        if schema is None:
            reason = "required field is missing" if event_type is None else f"unknown event type {str(event_type)[:60]!r}"
            raise EventValidationError([Problem("envelope.event_type", reason)])
        convert = self._compiled.get(event_type) or self._compile(schema)
        problems: list[Problem] = []
        record = convert(fill_defaults(event, now=now, source=source, default_source=default_source), None, problems)
        if problems:
            raise EventValidationError(problems)
        valid_envelope = record["envelope"]
        problems = check_envelope(valid_envelope, schema.meta)
        if problems:
            raise EventValidationError(problems)
        return ValidEvent(schema, record, partition_key(valid_envelope["identity"]), raw_topic(schema.domain))

    def _compile(self, schema: EventSchema):
        """The schema compiled once (not per event: validation is the hot path)."""
        conv = self._compiled[schema.event_type] = compile_schema(schema.schema)
        return conv

    def validate_batch(self, events: list[Any], *, now: datetime | None = None, source: str | None = None,
                       default_source: str | None = None) -> list[ValidEvent]:
        """All or nothing: problems carry the item index (``[3].envelope.channel``)."""
        now = now or datetime.now(timezone.utc)
        valid, problems = [], []
        for index, event in enumerate(events):
            try:
                valid.append(self.validate(event, now=now, source=source, default_source=default_source))
            except EventValidationError as exc:
                problems.extend(Problem(f"[{index}].{p.path}".rstrip("."), p.reason) for p in exc.problems)
        if problems:
            raise EventValidationError(problems)
        return valid
