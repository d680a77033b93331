"""Compatibility levels, decided by the Avro project's own reader/writer checker.

The resolution rules (promotions, defaults, union branches, enum symbols, aliases)
are ``avro.compatibility.ReaderWriterCompatibilityChecker``'s; this module only
chooses which pairs to check for a level and turns the checker's findings into
sentences that name the field, because "incompatible" alone leaves a producer
team guessing.

BACKWARD: the new schema can read data written with the previous one(s).
FORWARD: the previous schema(s) can read data written with the new one.
FULL: both. ``_TRANSITIVE``: against every live version, not only the latest.
"""

from __future__ import annotations

from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
)
from avro.schema import RecordSchema, Schema

from touchstream.registry.base import InvalidCompatibilityLevel

LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)


def validate_level(level: object) -> str:
    """The level in upper case, or InvalidCompatibilityLevel (42203)."""
    if isinstance(level, str) and level.upper() in LEVELS:
        return level.upper()
    raise InvalidCompatibilityLevel(
        "Invalid compatibility level. Valid values are none, backward, forward, full, "
        "backward_transitive, forward_transitive, and full_transitive"
    )


def check(new: Schema, previous: list[tuple[int, Schema]], level: str) -> list[str]:
    """Reasons why ``new`` breaks ``level`` against ``previous`` ((version, schema), oldest first).

    An empty list means compatible.
    """
    level = validate_level(level)
    if level == "NONE" or not previous:
        return []
    targets = previous if level.endswith("_TRANSITIVE") else previous[-1:]
    backward = level.startswith(("BACKWARD", "FULL"))
    forward = level.startswith(("FORWARD", "FULL"))
    reasons: list[str] = []
    for version, old in reversed(targets):
        if backward:
            result = ReaderWriterCompatibilityChecker().get_compatibility(reader=new, writer=old)
            reasons += _describe(result, new, f"the new schema cannot read data written with version {version}")
        if forward:
            result = ReaderWriterCompatibilityChecker().get_compatibility(reader=old, writer=new)
            reasons += _describe(result, old, f"version {version} cannot read data written with the new schema")
    return reasons


def _describe(result: SchemaCompatibilityResult, reader: Schema, context: str) -> list[str]:
    if result.compatibility is not SchemaCompatibilityType.incompatible:
        return []
    kinds = ", ".join(sorted({k.name.upper() for k in result.incompatibilities}))
    # merge() also unions in the root "/" of the compatible parts; it names nothing.
    locations = sorted(result.locations - {"/"}) or ["/"]
    places = {loc: field_path(reader, loc) for loc in locations}
    messages = set(result.messages)
    out: list[str] = []
    # A missing-default finding's message is the bare field name: pair it with its location.
    for loc, path in list(places.items()):
        leaf = path.rsplit(".", 1)[-1] if path else ""
        if leaf and leaf in messages:
            out.append(
                f"{context}: field '{path}' (at {loc}) is missing in the writer's schema and has no default "
                "value in the reader's schema; give it a default"
            )
            messages.discard(leaf)
            del places[loc]
    if len(messages) == 1 and len(places) == 1:
        (loc, path), message = next(iter(places.items())), next(iter(messages))
        target = f"field '{path}'" if path else "the top level"
        out.append(f"{context}: {kinds} at {target} (at {loc}): {message}")
    elif messages or places:
        where = ", ".join(f"'{p}' (at {loc})" if p else loc for loc, p in places.items())
        detail = "; ".join(sorted(messages)) or "incompatible"
        out.append(f"{context}: {kinds}: {detail}" + (f" at {where}" if where else ""))
    return out


def field_path(schema: Schema, location: str) -> str:
    """Turn a checker location such as ``/fields/0/type/fields/5/type`` into ``envelope.source``.

    Only the reader schema is walked (the checker's locations point into it);
    a step that does not fit ends the walk with what was named so far.
    """
    names: list[str] = []
    node = schema
    steps = [s for s in location.split("/") if s]
    i = 0
    while i < len(steps):
        step = steps[i]
        if step == "fields" and isinstance(node, RecordSchema) and i + 1 < len(steps):
            try:
                fld = node.fields[int(steps[i + 1])]
            except (ValueError, IndexError):
                break
            names.append(fld.name)
            node = fld.type
            i += 2
            continue
        if step == "type":
            i += 1
            continue
        if step in ("items", "values") and hasattr(node, step):
            node = getattr(node, step)
            i += 1
            continue
        break
    return ".".join(names)
