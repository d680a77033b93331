"""A plain reference for ``Catalogue.validate``: what the catalogue accepts, returns and says, written to be read.

Why it exists: the product's validation is tuned for the publish hot path (compiled converters,
fields taken inline, fast paths for converted times), and tuning must never change the accepted
set, the record or a single problem's path and reason. This module states the same rules the
slow, obvious way (walk the schema for every value, collect problems as it goes), and
``tests/unit/test_validation_reference.py`` holds the two to the same outcome on generated events.

It restates every rule the tuning touched: the schema walk, the timestamp parse and millisecond
cut, the defaults, the envelope, identity and time-range rules, and the search for text that
cannot be stored (``text_problems``). It reuses only the leaves the
tuning did not touch (``validation._leaf`` for ints, decimals, dates, strings, ...), the problem
and error types, ``partition_key`` and ``raw_topic``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from touchstream.events import envelope as envelope_module
from touchstream.events.validation import EventValidationError, Problem, _Invalid, _leaf, _typename
from touchstream.topics import raw_topic

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
NO_ZONE = "timestamp has no time zone; send UTC, e.g. 2026-01-31T09:30:00Z"
HINTS = "customer_id, email, phone, cookie_id, device_id, loyalty_card, account_number"


def timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _Invalid(NO_ZONE)
        return value.astimezone(timezone.utc)
    if isinstance(value, bool):
        raise _Invalid("expected a timestamp, got bool")
    if isinstance(value, int):
        if not -(2**63) // 1000 < value < (2**63 - 1) // 1000:
            raise _Invalid("epoch milliseconds out of range")
        try:
            return EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            raise _Invalid("epoch milliseconds outside the years 1-9999") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise _Invalid(f"not an ISO-8601 timestamp: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise _Invalid(NO_ZONE)
        return parsed.astimezone(timezone.utc)
    raise _Invalid(f"expected an ISO-8601 timestamp or epoch millis, got {_typename(value)}")


def leaf(schema: dict):
    if schema["type"] == "long" and schema.get("logicalType") == "timestamp-millis":
        def millis(value):
            moment = timestamp(value)
            return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)
        return millis
    if schema["type"] == "long" and schema.get("logicalType") == "timestamp-micros":
        return timestamp
    return _leaf(schema)


def text(path: list) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


class Walk:
    """One schema, walked afresh for every value: named types are looked up by name as met."""

    def __init__(self, schema: Any):
        self.named: dict[str, Any] = {}
        self._collect(schema, None)

    def _collect(self, schema: Any, namespace: str | None) -> None:
        """Register named types under the names the product resolves: children before parents."""
        if isinstance(schema, list):
            for branch in schema:
                self._collect(branch, namespace)
        elif isinstance(schema, dict):
            kind = schema["type"]
            if kind in ("record", "error", "enum", "fixed"):
                namespace = schema.get("namespace", namespace)
                for field in schema.get("fields", []):
                    self._collect(field["type"], namespace)
                name = schema["name"]
                self.named[name if "." in name or not namespace else f"{namespace}.{name}"] = (schema, namespace)
                self.named.setdefault(name, (schema, namespace))
            elif isinstance(kind, (list, dict)):
                self._collect(kind, namespace)
            elif kind in ("array", "map"):
                self._collect(schema["items" if kind == "array" else "values"], namespace)

    def value(self, schema: Any, value: Any, path: list, problems: list, namespace: str | None = None) -> Any:
        if isinstance(schema, list):
            return self.union(schema, value, path, problems, namespace)
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return self.leaf({"type": schema}, value, path, problems)
            return self.reference(schema, value, path, problems, namespace)
        kind = schema["type"]
        if isinstance(kind, (list, dict)):
            return self.value(kind, value, path, problems, namespace)
        if kind in ("record", "error"):
            return self.record(schema, value, path, problems, schema.get("namespace", namespace))
        if kind in ("enum", "fixed"):
            if type(value) is str and value in schema["symbols"]:
                return value
            problems.append(Problem(text(path), f"{str(value)[:40]!r} is not one of: {', '.join(schema['symbols'])}"))
            return None
        if kind == "array":
            if not isinstance(value, list):
                problems.append(Problem(text(path), f"expected a list, got {_typename(value)}"))
                return None
            return [self.value(schema["items"], v, path + [i], problems, namespace) for i, v in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                problems.append(Problem(text(path), f"expected an object, got {_typename(value)}"))
                return None
            return {k: self.value(schema["values"], v, path + [str(k)], problems, namespace) for k, v in value.items()}
        if kind not in PRIMITIVES:
            return self.reference(kind, value, path, problems, namespace)
        return self.leaf(schema, value, path, problems)

    def reference(self, name: str, value: Any, path: list, problems: list, namespace: str | None) -> Any:
        full = name if "." in name or not namespace else f"{namespace}.{name}"
        schema, its_namespace = self.named.get(full) or self.named[name]
        return self.value(schema, value, path, problems, its_namespace)

    def leaf(self, schema: dict, value: Any, path: list, problems: list) -> Any:
        try:
            return leaf(schema)(value)
        except _Invalid as exc:
            problems.append(Problem(text(path), exc.reason))
            return None

    def record(self, schema: dict, value: Any, path: list, problems: list, namespace: str | None) -> Any:
        if not isinstance(value, dict):
            problems.append(Problem(text(path), f"expected an object, got {_typename(value)}"))
            return None
        names = [f["name"] for f in schema["fields"]]
        for extra in sorted((k for k in value if k not in names), key=str):
            problems.append(Problem(text(path + [str(extra)]), "unknown field"))
        out = {}
        for field in schema["fields"]:
            name = field["name"]
            if name in value:
                out[name] = self.value(field["type"], value[name], path + [name], problems, namespace)
            elif "default" not in field:
                problems.append(Problem(text(path + [name]), "required field is missing"))
            elif field["default"] is None:
                out[name] = None
            else:
                out[name] = self.value(field["type"], field["default"], path + [name], problems, namespace)
        return out

    def union(self, schema: list, value: Any, path: list, problems: list, namespace: str | None) -> Any:
        branches = [b for b in schema if b != "null"]
        if value is None:
            if "null" not in schema:
                problems.append(Problem(text(path), "must not be null"))
            return None
        failures: list[Problem] = []
        for branch in branches:
            trial: list[Problem] = []
            result = self.value(branch, value, path, trial, namespace)
            if not trial:
                return result
            failures += trial
        if len(branches) == 1:
            problems += failures
        else:
            problems.append(Problem(text(path), "matches no branch of the union: "
                                    + "; ".join(p.reason for p in failures)))
        return None


def envelope_problems(env: dict, meta: dict) -> list[Problem]:
    found = []
    if env["event_type"] != meta["event_type"]:
        found.append(("event_type", f"is {env['event_type']!r} but the schema is {meta['event_type']!r}"))
    if not re.match(r"^[A-Za-z0-9._:/@+=-]{1,128}$", env["event_id"]):
        found.append(("event_id", "must be 1-128 characters of letters, digits and ._:/@+=-"))
    for field, key in (("channel", "channels"), ("content", "contents"), ("initiated_by", "initiated_by")):
        if meta.get(key) and env[field] not in meta[key]:
            found.append((field, f"{env[field]!r} is not allowed for {meta['event_type']}; "
                                 f"allowed: {', '.join(meta[key])}"))
    if env["source"].strip() == "":
        found.append(("source", "must name the channel system"))
    for field in ("occurred_at", "recorded_at"):
        try:
            moment = None if env.get(field) is None else timestamp(env[field])
        except _Invalid:
            moment = None
        if moment is not None and moment < EARLIEST:
            iso = moment.isoformat().replace("+00:00", "Z")
            found.append((field, f"{iso} is before 2000-01-01; send the real time"))
    return [Problem(f"envelope.{field}", reason) for field, reason in found] + identity_problems(env["identity"])


def identity_problems(identity: dict) -> list[Problem]:
    hints = {k: v for k, v in identity.items() if v is not None}
    found = [(f".{k}", "must not be blank; omit it or send null") for k, v in hints.items() if v.strip() == ""]
    if all(v.strip() == "" for v in hints.values()):
        found.append(("", f"needs at least one of: {HINTS}"))
    email, phone = hints.get("email"), hints.get("phone")
    if email and ("@" not in email or email[0] == "@" or email[-1] == "@"):
        found.append((".email", "is not an e-mail address"))
    if phone and re.match(r"^\+?[0-9 ()./-]{5,32}$", phone) is None:
        found.append((".phone", "is not a phone number"))
    return [Problem(f"envelope.identity{where}", reason) for where, reason in found]


def validate(schemas: dict, event: Any, now: datetime, source: str | None = None,
             default_source: str | None = None) -> tuple[Any, bytes, str]:
    """(record, key, topic) of a valid event; raises ``EventValidationError`` as the catalogue does."""
    if not isinstance(event, dict):
        raise EventValidationError([Problem("", f"an event is a JSON object, got {type(event).__name__}")])
    if not isinstance(event.get("envelope"), dict):
        raise EventValidationError([Problem("envelope", "required object is missing")])
    event_type = event["envelope"].get("event_type")
    if event_type not in schemas:
        reason = "required field is missing" if event_type is None else f"unknown event type {str(event_type)[:60]!r}"
        raise EventValidationError([Problem("envelope.event_type", reason)])
    schema = schemas[event_type]
    env = dict(event["envelope"])
    env["event_id"] = envelope_module.new_event_id() if env.get("event_id") is None else env["event_id"]
    env["recorded_at"] = now.astimezone(timezone.utc) if env.get("recorded_at") is None else env["recorded_at"]
    if source is not None:
        env["source"] = source
    elif default_source is not None and "source" not in env:
        env["source"] = default_source
    problems: list[Problem] = []
    record = Walk(schema.schema).value(schema.schema, dict(event, envelope=env), [], problems)
    if not problems:
        problems = envelope_problems(record["envelope"], schema.meta)
    if problems:
        raise EventValidationError(problems)
    return record, envelope_module.partition_key(record["envelope"]["identity"]), raw_topic(schema.domain)


def unstorable(value: Any, here: str = "") -> list[Problem]:
    """``text_problems``, recursively: a mapping's bad keys (last first), then its values in order."""
    def why(text: str) -> str | None:
        for char in text:
            if char == "\x00":
                return "contains a NUL character (\\u0000)"
            if "\ud800" <= char <= "\udfff":
                return "contains a lone UTF-16 surrogate"
        return None

    if isinstance(value, str):
        return [Problem(here, why(value))] if why(value) else []
    if isinstance(value, dict):
        bad = [key for key in value if isinstance(key, str) and why(key)]
        found = [Problem(f"{here}.<key>" if here else "<key>", f"a key {why(key)}") for key in reversed(bad)]
        for key, inner in value.items():
            if key not in bad:
                found += unstorable(inner, f"{here}.{key}" if here else str(key))
        return found
    if isinstance(value, (list, tuple)):
        return [p for index, inner in enumerate(value) for p in unstorable(inner, f"{here}[{index}]")]
    return []
