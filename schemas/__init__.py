"""The Avro contracts of every event, loaded from the ``.avsc`` files beside this module.

Layout: ``<domain>/<event_name>.v<N>.avsc`` for events, ``common/<fullname>.avsc``
for the shared named types (Envelope, IdentityHints, Money and the enums). An event
schema refers to shared types by full name; ``EventSchema.schema`` is the expanded
form (each named type defined once, inline) that is registered and used on the wire.

``derived/<name>.v<N>.avsc`` are the records Touchstream's processors publish
(customer-360, identity decisions, findings), not interaction events: namespace
``touchstream.derived``, ``x-touchstream`` names their topic and record key. They are
published contracts like the events (locked, registered), but kept out of
``load_all`` so everything that walks the interaction catalogue stays about events.

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
DERIVED_DIR = SCHEMA_DIR / "derived"
DERIVED_NAMESPACE = "touchstream.derived"
META_KEY = "x-touchstream"
_FILE_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\.v(?P<version>[0-9]+)\.avsc$")


class SchemaLayoutError(ValueError):
    """A schema file breaks the layout rules above."""


class _Contract:
    """What every loaded contract (event or derived record) says of itself; needs ``schema``."""

    schema: dict

    @property
    def record_name(self) -> str:
        return f"{self.schema['namespace']}.{self.schema['name']}"

    @property
    def subject(self) -> str:
        """Registry subject: RecordNameStrategy, so one topic can carry many record types."""
        return self.record_name

    @property
    def meta(self) -> dict:
        return self.schema[META_KEY]

    @property
    def canonical(self) -> str:
        return json.dumps(self.schema, sort_keys=False, separators=(",", ":"))


@dataclass(frozen=True)
class EventSchema(_Contract):
    """One version of one event type's contract."""

    event_type: str
    domain: str
    version: int
    path: Path
    schema: dict


@dataclass(frozen=True)
class DerivedSchema(_Contract):
    """One version of a record a processor publishes (``derived/<name>.v<N>.avsc``)."""

    name: str
    version: int
    path: Path
    schema: dict

    @property
    def topic(self) -> str:
        """The topic the record is published on (``x-touchstream.topic``)."""
        return self.meta["topic"]

    @property
    def key(self) -> str:
        """What the Kafka record key is (``x-touchstream.key``), in words."""
        return self.meta["key"]


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


def _read(path: Path, what: str) -> tuple[re.Match, dict]:
    match = _FILE_RE.match(path.name)
    if not match:
        raise SchemaLayoutError(f"{path}: expected <{what}>.v<N>.avsc")
    return match, json.loads(path.read_text())


def _load_file(path: Path) -> EventSchema:
    match, body = _read(path, "event_name")
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


def event_files() -> list[Path]:
    """Every event ``.avsc`` file: the domain folders, not ``common/`` or ``derived/``."""
    return sorted(p for p in SCHEMA_DIR.glob("*/*.avsc") if p.parent not in (COMMON_DIR, DERIVED_DIR))


@lru_cache(maxsize=1)
def load_all() -> tuple[EventSchema, ...]:
    """Every version of every event schema, ordered by event type then version."""
    loaded = [_load_file(p) for p in event_files()]
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


# --------------------------------------------------------------------------- derived records


def _load_derived_file(path: Path) -> DerivedSchema:
    match, body = _read(path, "name")
    if body.get("type") != "record":
        raise SchemaLayoutError(f"{path}: a derived schema is a record")
    if body.get("namespace") != DERIVED_NAMESPACE:
        raise SchemaLayoutError(f"{path}: namespace should be {DERIVED_NAMESPACE}")
    meta = body.get(META_KEY)
    for key in ("topic", "key"):
        if not isinstance(meta, dict) or not isinstance(meta.get(key), str) or not meta[key]:
            raise SchemaLayoutError(f"{path}: missing '{META_KEY}.{key}'")
    return DerivedSchema(match["name"], int(match["version"]), path, expand(body))


@lru_cache(maxsize=1)
def load_derived_versions() -> tuple[DerivedSchema, ...]:
    """Every version of every derived record schema, ordered by name then version (registration order)."""
    loaded = [_load_derived_file(p) for p in sorted(DERIVED_DIR.glob("*.avsc"))]
    return tuple(sorted(loaded, key=lambda s: (s.name, s.version)))


@lru_cache(maxsize=1)
def load_derived() -> dict[str, DerivedSchema]:
    """The newest version of each derived record, by file name without version (``"customer_360"``)."""
    return {item.name: item for item in load_derived_versions()}
