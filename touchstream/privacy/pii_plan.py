"""Which values of a schema are personal, and how each is sealed and opened.

The schemas mark personal fields ``"pii": true`` (identity hints, identifier values, free text);
``plan`` compiles a schema into the tree of just those fields, once per schema, so sealing and
opening a record walk a handful of paths instead of the whole record. Leaves say whose the value
is (``subjects``): an identity hint is its own subject (``email`` field -> ``email:<value>``), a
``value`` beside a ``kind`` is that identifier, anything else is free text of the event's subject.
Pure: no I/O (the key ring is passed in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from touchstream.events.envelope import IDENTITY_FIELDS
from touchstream.privacy.subjects import subject

HINT, IDENTIFIER, TEXT = "hint", "identifier", "text"
# Personal text that identifies rather than tells (a handle on a social platform): kept as identifiers
# are, so it does not expire with free text (``projections.retention`` reads the same set).
KEPT_TEXT = frozenset({"author_handle"})


@dataclass(frozen=True)
class Leaf:
    role: str          # HINT, IDENTIFIER or TEXT
    nullable: bool     # what an erased value becomes: None, else ""
    expires: bool = False   # free text: sealed again under its month's key, deleted after free_text_days


@dataclass(frozen=True)
class Fields:
    nodes: tuple       # ((field name, node), ...)


@dataclass(frozen=True)
class Items:
    node: "Node"
    mapping: bool      # map values (else array items)


Node = Union[Leaf, Fields, Items]


def plan(schema: dict) -> Fields | None:
    """The personal fields of a record schema; None if it has none."""
    return _node(schema, {}, None)


def _node(t, names: dict, ns: str | None):
    """``t``'s node (None: nothing personal below it). ``names``: the named records met so far, by
    full name; ``ns``: the enclosing namespace (a reference or a definition without one inherits it)."""
    if isinstance(t, str):
        found = names.get(t) or names.get(f"{ns}.{t}")
        return None if found is None else _node(found, names, ns)
    if isinstance(t, list):
        found = [n for n in (_node(b, names, ns) for b in t) if n is not None]
        return found[0] if found else None
    kind = t.get("type")
    if kind == "record":
        ns = t.get("namespace", ns)
        names[t["name"] if "." in t["name"] else f"{ns}.{t['name']}"] = t
        return _fields(t, names, ns)
    if kind in ("array", "map"):
        inner = _node(t["items" if kind == "array" else "values"], names, ns)
        return None if inner is None else Items(inner, mapping=kind == "map")
    if isinstance(kind, (dict, list)):
        return _node(kind, names, ns)
    return None


def _fields(record: dict, names: dict, ns: str | None) -> Fields | None:
    siblings = {f["name"] for f in record["fields"]}
    nodes = []
    for f in record["fields"]:
        if f.get("pii"):
            nodes.append((f["name"], _leaf(f, siblings)))
        else:
            inner = _node(f["type"], names, ns)
            if inner is not None:
                nodes.append((f["name"], inner))
    return Fields(tuple(nodes)) if nodes else None


def _leaf(field: dict, siblings: set[str]):
    branches = field["type"] if isinstance(field["type"], list) else [field["type"]]
    nullable, expires = "null" in branches, field["name"] not in KEPT_TEXT
    for typ in branches:
        if isinstance(typ, dict) and typ.get("type") in ("map", "array"):
            return Items(Leaf(TEXT, False, expires), mapping=typ["type"] == "map")
    if field["name"] in IDENTITY_FIELDS:
        return Leaf(HINT, nullable)
    if field["name"] == "value" and "kind" in siblings:
        return Leaf(IDENTIFIER, nullable)
    return Leaf(TEXT, nullable, expires)


def transform(record: dict, node: Fields, fn: Callable) -> dict:
    """``record`` with ``fn(value, leaf, parent, name)`` in place of each personal string: copied where
    something changed, shared where nothing did (the caller's record is never modified)."""
    return compiled(node)(record, fn, None, None)


def compiled(node: Node) -> Callable:
    """``node`` as nested closures, built once per node: a record's walk is then a few calls, not a
    generic tree walk (this runs for every event published and every event decoded)."""
    made = _COMPILED.get(id(node))
    if made is None or made[0] is not node:
        made = _COMPILED[id(node)] = (node, _compile(node))
    return made[1]


_COMPILED: dict[int, tuple] = {}


def _compile(node: Node) -> Callable:
    if isinstance(node, Leaf):
        def leaf(value, fn, parent, name):
            return fn(value, node, parent, name) if value.__class__ is str and value else value
        return leaf
    if isinstance(node, Fields):
        subs = tuple((field, _compile(inner)) for field, inner in node.nodes)

        def fields(value, fn, _parent, _name):
            out = None
            for field, sub in subs:
                old = value.get(field)
                if old is not None:
                    new = sub(old, fn, value, field)
                    if new is not old:
                        if out is None:
                            out = dict(value)
                        out[field] = new
            return value if out is None else out
        return fields
    inner = _compile(node.node)
    if node.mapping:
        return lambda value, fn, parent, name: {k: inner(v, fn, parent, name) for k, v in value.items()}
    return lambda value, fn, parent, name: [inner(v, fn, parent, name) for v in value]


def whose(leaf: Leaf, name: str, value: str, parent: dict, primary: str | None) -> str:
    """The subject whose key seals ``value`` (``parent`` is the record holding it)."""
    if leaf.role == HINT:
        return subject(name, value)
    if leaf.role == IDENTIFIER:
        return subject(str(parent.get("kind")), value)
    if primary is None:
        raise ValueError("free text on an event with no identifier to seal it under")
    return primary
