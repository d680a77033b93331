"""The Avro contracts of every event, loaded from the ``.avsc`` files beside this module.

Layout: ``<domain>/<event_name>.v<N>.avsc`` for events, ``common/<fullname>.avsc``
for the shared named types (Envelope, IdentityHints, Money and the enums). An event
schema refers to shared types by full name; ``EventSchema.schema`` is the expanded
form (each named type defined once, inline) that is registered and used on the wire.

A published file is never edited: a change is a new ``v<N+1>`` file that stays
BACKWARD compatible (new fields carry defaults), or an upcaster in ``events/``.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent
COMMON_DIR = SCHEMA_DIR / "common"
META_KEY = "x-touchstream"
_FILE_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\.v(?P<version>[0-9]+)\.avsc$")


class SchemaLayoutError(ValueError):
    """A schema file breaks the layout rules above."""


@dataclass(frozen=True)
class EventSchema:
    """One version of one event type's contract."""

    event_type: str
    domain: str
    version: int
    path: Path
    schema: dict

    @property
    def record_name(self) -> str:
        return f"{self.schema['namespace']}.{self.schema['name']}"

    @property
    def subject(self) -> str:
        """Registry subject: RecordNameStrategy, so a domain topic can carry many event types."""
        return self.record_name

    @property
    def meta(self) -> dict:
        return self.schema[META_KEY]

    @property
    def canonical(self) -> str:
        return json.dumps(self.schema, sort_keys=False, separators=(",", ":"))


@lru_cache(maxsize=1)
def common_types() -> dict[str, dict]:
    """Shared named types by full name, read from ``common/``."""
    out: dict[str, dict] = {}
    for path in sorted(COMMON_DIR.glob("*.avsc")):
        body = json.loads(path.read_text())
        full = f"{body['namespace']}.{body['name']}"
        if path.stem != full:
            raise SchemaLayoutError(f"{path}: file must be named {full}.avsc")
        out[full] = body
    return out


def expand(schema: dict, named: dict[str, dict] | None = None) -> dict:
    """Inline each reference to a shared type at its first use (Avro: define once, then by name)."""
    named = common_types() if named is None else named
    seen: set[str] = set()

    def walk(node):
        if isinstance(node, list):
            return [walk(n) for n in node]
        if isinstance(node, str):
            if node in named and node not in seen:
                seen.add(node)
                return walk(copy.deepcopy(named[node]))
            return node
        kind = node.get("type")
        out = dict(node)
        if kind in ("record", "error", "enum", "fixed"):
            seen.add(f"{node.get('namespace', '')}.{node['name']}".lstrip("."))
        if kind in ("record", "error"):
            out["fields"] = [dict(f, type=walk(f["type"])) for f in node["fields"]]
        elif kind == "array":
            out["items"] = walk(node["items"])
        elif kind == "map":
            out["values"] = walk(node["values"])
        elif isinstance(kind, (list, dict)) or kind in named:
            out["type"] = walk(kind)
        return out

    return walk(copy.deepcopy(schema))


def _load_file(path: Path) -> EventSchema:
    match = _FILE_RE.match(path.name)
    if not match:
        raise SchemaLayoutError(f"{path}: expected <event_name>.v<N>.avsc")
    body = json.loads(path.read_text())
    domain = path.parent.name
    meta = body.get(META_KEY)
    if not isinstance(meta, dict) or "event_type" not in meta:
        raise SchemaLayoutError(f"{path}: missing '{META_KEY}.event_type'")
    expected = f"{domain}.{match['name']}"
    if meta["event_type"] != expected:
        raise SchemaLayoutError(f"{path}: event_type {meta['event_type']!r} should be {expected!r}")
    if body.get("namespace") != f"touchstream.{domain}":
        raise SchemaLayoutError(f"{path}: namespace should be touchstream.{domain}")
    return EventSchema(expected, domain, int(match["version"]), path, expand(body))


@lru_cache(maxsize=1)
def load_all() -> tuple[EventSchema, ...]:
    """Every version of every event schema, ordered by event type then version."""
    paths = [p for p in SCHEMA_DIR.glob("*/*.avsc") if p.parent != COMMON_DIR]
    loaded = [_load_file(p) for p in paths]
    return tuple(sorted(loaded, key=lambda s: (s.event_type, s.version)))


@lru_cache(maxsize=1)
def load_latest() -> dict[str, EventSchema]:
    """The newest version of each event type: what producers write."""
    latest: dict[str, EventSchema] = {}
    for item in load_all():
        latest[item.event_type] = item
    return latest


def domains() -> list[str]:
    return sorted({s.domain for s in load_all()})
