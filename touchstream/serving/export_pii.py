"""Which exported values are personal data, read from the Avro contracts rather than listed by hand.

Why from the schemas: a field marked ``"pii": true`` in an ``.avsc`` is masked for
analysts without the PII scope (docs/events.md), so a new personal field in a new
schema version is masked in exports the day it ships, without touching the exporter.
Masking is nulling (keys kept, so readers see the field exists): an unsalted hash of
an e-mail address or phone number is reversed by hashing candidates, so it would
still be personal data. Pure: no I/O beyond reading the packaged schemas.
"""

from __future__ import annotations

import json
from functools import lru_cache

import pyarrow as pa

from touchstream.schemas import common_types, load_all, load_derived

Path = tuple[str, ...]   # field names; "*" is every item of an array or value of a map


def hint_columns() -> tuple[str, ...]:
    """The envelope's identity hints the contract marks pii (the interaction log's identifier columns)."""
    hints = common_types()["touchstream.common.IdentityHints"]["fields"]
    return tuple(f["name"] for f in hints if f.get("pii"))


def pii_paths(schema) -> frozenset[Path]:
    """Paths of every field marked ``"pii": true`` in an (expanded) Avro schema.

    Named types defined once and then referenced by name are followed; a recursive
    type is walked once per path. A field marked pii is masked whole, not descended.
    """
    named: dict[str, dict] = {}
    out: set[Path] = set()

    def walk(node, path: Path, namespace: str, seen: frozenset) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch, path, namespace, seen)
        elif isinstance(node, str):
            full = node if "." in node else f"{namespace}.{node}"
            if full in named and full not in seen:
                walk(named[full], path, namespace, seen)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "error"):
                space = node.get("namespace", namespace)
                full = node["name"] if "." in node["name"] else f"{space}.{node['name']}"
                named[full] = node
                for f in node["fields"]:
                    if f.get("pii"):
                        out.add(path + (f["name"],))
                    else:
                        walk(f["type"], path + (f["name"],), space, seen | {full})
            elif kind in ("array", "map"):
                walk(node["items" if kind == "array" else "values"], path + ("*",), namespace, seen)
            elif isinstance(kind, (list, dict, str)):
                walk(kind, path, namespace, seen)

    walk(schema, (), "", frozenset())
    return frozenset(out)


@lru_cache(maxsize=1)
def payload_paths() -> dict[str, frozenset[Path]]:
    """Per event type, the pii paths of its payload (the record without the envelope), over every version."""
    out: dict[str, set] = {}
    for s in load_all():
        out.setdefault(s.event_type, set()).update(p for p in pii_paths(s.schema) if p[0] != "envelope")
    return {k: frozenset(v) for k, v in out.items()}


@lru_cache(maxsize=1)
def profile_paths() -> frozenset[Path]:
    """The pii paths of a customer-360 profile (its JSON is the published ``Customer360`` record)."""
    return pii_paths(load_derived()["customer_360"].schema)


def blank(node, path: Path) -> None:
    """Null what ``path`` names inside parsed JSON, in place (absent keys and nulls on the way are fine)."""
    head, rest = path[0], path[1:]
    if head == "*":
        keys = range(len(node)) if isinstance(node, list) else list(node) if isinstance(node, dict) else ()
    else:
        keys = (head,) if isinstance(node, dict) and head in node else ()
    for key in keys:
        if not rest:
            node[key] = None
        elif node[key] is not None:
            blank(node[key], rest)


def masked_json(text: str | None, paths: frozenset[Path] | None) -> str | None:
    """JSON text with ``paths`` nulled; ``paths`` None (unclassifiable) nulls the whole value."""
    if text is None or paths is None:
        return None
    if not paths:
        return text
    value = json.loads(text)
    for path in paths:
        blank(value, path)
    return json.dumps(value, separators=(",", ":"))


def payload_rows(batch: pa.RecordBatch) -> list:
    """Per interaction row, its event type's payload paths (None for a type the catalogue does not know)."""
    by_type = payload_paths()
    return [by_type.get(t) for t in batch.column("event_type").to_pylist()]


def profile_rows(batch: pa.RecordBatch) -> list:
    return [profile_paths()] * batch.num_rows


def mask_json(batch: pa.RecordBatch, column: str, paths_per_row) -> pa.RecordBatch:
    """The batch with the pii fields inside its JSON ``column`` nulled (``paths_per_row(batch)`` says which)."""
    at = batch.schema.get_field_index(column)
    masked = [masked_json(t, p) for t, p in zip(batch.column(at).to_pylist(), paths_per_row(batch))]
    return batch.set_column(at, batch.schema.field(at), pa.array(masked, batch.column(at).type))
