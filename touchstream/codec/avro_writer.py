"""Avro binary for one schema, by a writer compiled from it once: the codec's encoder for every record.

Why not fastavro: fastavro interprets the schema for every value it writes. A profile
of ``schemaless_writer`` over validated demo events (py-spy --native, issue 16) finds
most of its time there: finding a ``["null", X]`` union's branch by validating the value
against each branch (19 %; for a record branch, the whole record), choosing each value's
writer by comparing type names (17 %), schema dict lookups (12 %), checking each record
for extra fields (8 %), looking up logical types (6 %), re-parsing the schema per call
(5 %); writing the bytes themselves (strings, varints, enums) is about a sixth. Here a
schema becomes, once, one generated function per record (from the schema's types and
field names only): strings, numbers and optional primitives written in place, null is
branch 0 or 1 as the schema says, no search: about 3x faster on the demo events.

Every value is type-checked as it is written (``avro_writer_types``): a wrong type raises,
it never becomes other bytes. A record missing a field gets the field's default, or null
for a nullable field without one, as fastavro does (``avro_writer_defaults``, a slow path). Unit tests hold the bytes equal to
fastavro's for every raw event and derived schema. Supports primitives, records, enums,
arrays, maps, ``["null", X]`` unions, timestamp-millis, date and bytes decimals; any other
construct raises ``UnsupportedSchema`` when compiled (the codec then keeps fastavro for that
schema). Pure: no I/O.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any, Callable

from touchstream.codec.avro_writer_defaults import Completer
from touchstream.codec.avro_writer_types import (
    DOUBLE, EPOCH, MILLISECOND, PRIMITIVES, UnsupportedSchema, Writer, array_writer, logical_writer,
    map_writer, symbols, write_boolean, write_double, write_int, write_long, write_long_value, write_millis, write_string,
)

__all__ = ["MAGIC", "UnsupportedSchema", "compile_writer", "frame", "write_long", "write_string"]
MAGIC = 0
_HEAD = struct.Struct(">bI")
_FAST = {"write_long": write_long, "write_int": write_int, "write_long_value": write_long_value,
         "write_string": write_string, "write_double": write_double, "write_boolean": write_boolean,
         "write_millis": write_millis, "DOUBLE": DOUBLE, "EPOCH": EPOCH, "MS": MILLISECOND,
         "datetime": datetime, "str": str, "int": int, "float": float}


def frame(schema_id: int) -> bytes:
    """The head of ``avro_codec``'s Confluent frame: the magic byte, then the schema id (big-endian)."""
    return _HEAD.pack(MAGIC, schema_id)


def compile_writer(schema: Any, head: bytes = b"") -> Callable[..., bytes]:
    """``schema`` (parsed JSON) -> ``encode(record, head=head) -> bytes``: ``head`` (a ``frame``), then the
    record's Avro binary. Raises ``UnsupportedSchema`` for a construct it does not write."""
    write = _Compiler().compile(schema, None)
    complete = Completer(schema).complete

    def encode(record: Any, head: bytes = head) -> bytes:
        buf = bytearray(head)
        try:
            write(buf, record)
        except KeyError:   # a missing field (or an unknown enum symbol): fill the defaults, write again
            buf = bytearray(head)
            try:
                write(buf, complete(record))
            except KeyError as exc:
                raise ValueError(f"{str(exc)[:60]} is not a symbol of its enum") from None
        return bytes(buf)
    return encode


def _full(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


class _Compiler:
    def __init__(self) -> None:
        self.named: dict[str, Writer] = {}
        self.enums: dict[str, dict[str, bytes]] = {}
        self.pending: set[str] = set()   # records being compiled: a reference to one must look it up late

    def compile(self, schema: Any, namespace: str | None) -> Writer:
        if isinstance(schema, str):
            return PRIMITIVES.get(schema) or self._reference(schema, namespace)
        if isinstance(schema, list):
            return self._union(schema, namespace)
        kind, logical = schema["type"], schema.get("logicalType")
        if logical is not None:
            return logical_writer(kind, logical, schema)
        if kind == "record":
            return self._record(schema, namespace)
        if kind == "enum":
            namespace = schema.get("namespace", namespace)
            index = self.enums[_full(schema["name"], namespace)] = symbols(schema["symbols"])

            def enum(buf: bytearray, value: Any) -> None:
                buf += index[value]
            return self._name(schema, namespace, enum)
        if kind == "array":
            return array_writer(self.compile(schema["items"], namespace))
        if kind == "map":
            return map_writer(self.compile(schema["values"], namespace))
        if isinstance(kind, (str, list, dict)) and kind != "fixed":
            return self.compile(kind, namespace)
        raise UnsupportedSchema(f"Avro type {str(schema)[:80]}")

    def _name(self, schema: dict, namespace: str | None, writer: Writer) -> Writer:
        self.named[_full(schema["name"], namespace)] = writer
        return writer

    def _reference(self, name: str, namespace: str | None) -> Writer:
        full, named = _full(name, namespace), self.named
        if full not in named:
            raise UnsupportedSchema(f"unknown Avro type {name!r}")
        if full not in self.pending:
            return named[full]
        return lambda buf, value: named[full](buf, value)

    def _record(self, schema: dict, namespace: str | None) -> Writer:
        """A record's writer as generated straight-line Python (a function call per field cost a third of the
        time); a missing field is a KeyError, for ``encode`` to fill the defaults."""
        namespace = schema.get("namespace", namespace)
        self._name(schema, namespace, lambda buf, value: real(buf, value))   # its fields may refer to it
        self.pending.add(_full(schema["name"], namespace))
        env = dict(_FAST)
        lines = ["def record(buf, v):", "  pass"]
        for n, f in enumerate(schema["fields"]):
            lines += self._write(f["type"], f"v[{f['name']!r}]", f"f{n}", "  ", namespace, env)
        exec("\n".join(lines), env)   # noqa: S102 - source built above from the schema's types and names only
        real = env["record"]
        self.pending.discard(_full(schema["name"], namespace))
        self._name(schema, namespace, real)
        return real

    def _write(self, tp: Any, expr: str, tag: str, indent: str, namespace: str | None, env: dict) -> list[str]:
        """Lines writing the value of ``expr`` (of type ``tp``) into ``buf``; anything unusual goes to the
        checked writers of ``avro_writer_types``."""
        if tp == "string":
            return [f"{indent}{tag} = {expr}",
                    f"{indent}if {tag}.__class__ is not str: write_string(buf, {tag})",
                    f"{indent}else:", f"{indent}  {tag} = {tag}.encode()", f"{indent}  n{tag} = len({tag})",
                    f"{indent}  buf.append(n{tag} << 1) if n{tag} < 64 else write_long(buf, n{tag})",
                    f"{indent}  buf += {tag}"]
        if tp in ("int", "long"):
            slow = "write_int" if tp == "int" else "write_long_value"
            return [f"{indent}{tag} = {expr}",
                    f"{indent}if {tag}.__class__ is int and 0 <= {tag} < 64: buf.append({tag} << 1)",
                    f"{indent}else: {slow}(buf, {tag})"]
        if tp == "double":
            return [f"{indent}{tag} = {expr}",
                    f"{indent}if {tag}.__class__ is float: buf += DOUBLE({tag})",
                    f"{indent}else: write_double(buf, {tag})"]
        if tp == "boolean":
            return [f"{indent}{tag} = {expr}", f"{indent}if {tag} is True: buf.append(1)",
                    f"{indent}elif {tag} is False: buf.append(0)", f"{indent}else: write_boolean(buf, {tag})"]
        if isinstance(tp, dict) and tp.get("logicalType") == "timestamp-millis" and tp["type"] == "long":
            return [f"{indent}{tag} = {expr}",
                    f"{indent}if {tag}.__class__ is datetime and {tag}.tzinfo is not None:",
                    f"{indent}  write_long(buf, ({tag} - EPOCH) // MS)",
                    f"{indent}else: write_millis(buf, {tag})"]
        if isinstance(tp, list) and len(tp) == 2 and "null" in tp:
            null = tp.index("null")
            return [f"{indent}{tag} = {expr}", f"{indent}if {tag} is None:", f"{indent}  buf.append({null << 1})",
                    f"{indent}else:", f"{indent}  buf.append({(1 - null) << 1})",
                    *self._write(tp[1 - null], tag, f"{tag}_", indent + "  ", namespace, env)]
        name = f"write_{tag}"
        env[name] = self.compile(tp, namespace)
        enum = self._enum(tp, namespace)
        if enum is not None:   # compiled above: known now
            env[f"S{tag}"] = enum
            return [f"{indent}buf += S{tag}[{expr}]"]
        return [f"{indent}{name}(buf, {expr})"]

    def _enum(self, tp: Any, namespace: str | None) -> dict[str, bytes] | None:
        if isinstance(tp, str):
            return self.enums.get(_full(tp, namespace))
        if isinstance(tp, dict) and tp.get("type") == "enum":
            return self.enums[_full(tp["name"], tp.get("namespace", namespace))]
        return None

    def _union(self, branches: list, namespace: str | None) -> Writer:
        if len(branches) != 2 or "null" not in branches:
            raise UnsupportedSchema(f"only [\"null\", X] unions are compiled, not {str(branches)[:80]}")
        null = branches.index("null")
        other = self.compile(branches[1 - null], namespace)
        null_tag, other_tag = null << 1, (1 - null) << 1

        def union(buf: bytearray, value: Any) -> None:
            if value is None:
                buf.append(null_tag)
            else:
                buf.append(other_tag)
                other(buf, value)
        return union
