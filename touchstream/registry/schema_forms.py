"""Parsing a submitted schema text into the forms the registry needs.

- ``text``: what is stored and served, compact JSON in the submitter's key order
  (Confluent also stores a re-serialised form, not the raw request bytes).
- ``identity``: decides "is this the same schema?" for id reuse and lookup. It
  is the Avro library's own JSON rendering with sorted keys, so whitespace, key
  order and ``"string"`` vs ``{"type": "string"}`` do not matter, while docs,
  defaults and custom attributes still do (they change what a reader gets).
- ``parsed``: the ``avro`` library's schema object, for the compatibility checker.

Validation is the Avro library's (names, types) plus fastavro's check that
defaults match their field types, which ``avro`` 1.12 does not do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import avro.errors
import avro.schema
import fastavro
from fastavro.schema import SchemaParseException as FastavroParseError

from touchstream.registry.base import AVRO, InvalidSchema

SUPPORTED_TYPES = (AVRO,)


@dataclass(frozen=True)
class ParsedSchema:
    text: str
    identity: str
    parsed: avro.schema.Schema


def _compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@lru_cache(maxsize=2048)
def parse(text: str, schema_type: str = AVRO, normalize: bool = False) -> ParsedSchema:
    """Validate and parse ``text``; InvalidSchema (42201) says what is wrong."""
    if (schema_type or AVRO).upper() not in SUPPORTED_TYPES:
        raise InvalidSchema(f"Unsupported schema type {schema_type!r}; this registry serves AVRO only")
    if not isinstance(text, str) or not text.strip():
        raise InvalidSchema("Invalid schema: empty")
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise InvalidSchema(f"Invalid schema: not JSON ({exc})") from exc
    try:
        parsed = avro.schema.parse(json.dumps(body))
    except (avro.errors.AvroException, TypeError, ValueError, KeyError) as exc:
        raise InvalidSchema(f"Invalid schema: {exc}") from exc
    try:
        fastavro.parse_schema(body, _write_hint=False)
    except (FastavroParseError, TypeError, ValueError, KeyError) as exc:
        raise InvalidSchema(f"Invalid schema: {exc}") from exc
    rendered = parsed.to_json()
    identity = json.dumps(rendered, sort_keys=True, separators=(",", ":"))
    return ParsedSchema(text=_compact(rendered if normalize else body), identity=identity, parsed=parsed)


def identity_of(text: str, schema_type: str = AVRO) -> str | None:
    """Identity of an already stored text; None when it cannot be parsed (a foreign record)."""
    try:
        return parse(text, schema_type).identity
    except InvalidSchema:
        return None
