"""``publisher.<domain>.<event>(**fields)``: typed helpers over ``Publisher.publish``.

Why: a channel system's developer gets the event's fields as keyword arguments
(with a signature an IDE can show) instead of hand-building the envelope; the
catalogue's fixed channel/content/initiator are filled in. recorded_at is not an
argument: the publisher stamps it.
"""

from __future__ import annotations

import inspect
from datetime import datetime, timezone
from typing import Any

from touchstream.events.validation import EventValidationError, Problem

ENVELOPE_ARGS = ("identity", "occurred_at", "channel", "content", "initiated_by", "correlation_id", "causation_id", "event_id")


class DomainHelpers:
    """``publisher.<domain>.<event>(**fields)``: builds the envelope, then ``publish``."""

    def __init__(self, publisher, domain: str, event_types: list[str]):
        self._publisher = publisher
        self._domain = domain
        self._types = {t.split(".", 1)[1]: t for t in event_types}

    def __dir__(self) -> list[str]:
        return sorted(self._types)

    def __getattr__(self, name: str):
        if name not in self._types:
            raise AttributeError(f"no event {self._domain}.{name}; known: {', '.join(sorted(self._types))}")
        schema = self._publisher.catalogue.schema(self._types[name])

        def helper(**kwargs: Any) -> str:
            return self._publisher.publish(build_event(schema, kwargs))

        fields = [f["name"] for f in schema.schema["fields"] if f["name"] != "envelope"]
        params = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in (*ENVELOPE_ARGS, *fields)]
        helper.__signature__ = inspect.Signature(params)
        helper.__name__ = name
        helper.__doc__ = schema.schema.get("doc")
        return helper


def build_event(schema, kwargs: dict[str, Any]) -> dict:
    """Split helper keyword arguments into envelope and payload; default what the catalogue fixes."""
    meta = schema.meta
    env: dict[str, Any] = {"event_type": schema.event_type}
    for arg in ENVELOPE_ARGS:
        if arg in kwargs:
            env[arg] = kwargs.pop(arg)
    for field, allowed in (("channel", "channels"), ("content", "contents"), ("initiated_by", "initiated_by")):
        if field not in env and len(meta.get(allowed) or []) == 1:
            env[field] = meta[allowed][0]
    env.setdefault("occurred_at", datetime.now(timezone.utc))
    missing = [f for f in ("channel", "content", "initiated_by", "identity") if f not in env]
    if missing:
        raise EventValidationError([Problem(f"envelope.{m}", "required field is missing") for m in missing])
    return {"envelope": env, **kwargs}
