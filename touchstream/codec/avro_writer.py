"""Avro binary for one schema, by a writer compiled from it once: for records we build ourselves.

Why not fastavro here: fastavro checks every value against the schema as it writes,
and for a ``["null", record]`` union it validates the whole record to choose the
branch, so a ``Customer360`` (about 20 optional parts) cost 120 µs, more than the
fold of its events. A record the program built from a typed view needs no such
search: null is branch 0, anything else the other branch. This writer does no
checking beyond what writing needs (a missing field is a KeyError, a wrong type a
TypeError or AttributeError); the caller checks its records against the contract
(``customer_360_contract.to_record``) and the unit tests hold the bytes equal to
fastavro's. Supports the types the derived schemas use: primitives, records, enums,
arrays, maps, ``["null", X]`` unions, timestamp-millis and bytes decimals. Each
record becomes one generated function (built from the schema's types and field names
only), 54 µs for a typical Customer360 against 88 µs with a closure per field.
Pure: no I/O.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

from touchstream.codec.avro_codec import MAGIC

Writer = Callable[[bytearray, Any], None]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MILLISECOND = timedelta(milliseconds=1)
_DOUBLE, _FLOAT = struct.Struct("<d").pack, struct.Struct("<f").pack
_HEAD = struct.Struct(">bI")


def frame(schema_id: int) -> bytes:
    """The head of ``avro_codec``'s Confluent frame: the magic byte, then the schema id (big-endian)."""
    return _HEAD.pack(MAGIC, schema_id)


def write_long(buf: bytearray, n: int) -> None:
    """Zig-zag varint (int and long alike)."""
    if 0 <= n < 64:
        buf.append(n << 1)
        return
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        buf.append((n & 0x7F) | 0x80)
        n >>= 7
    buf.append(n)


def write_string(buf: bytearray, text: str) -> None:
    data = text.encode()
    write_long(buf, len(data))
    buf += data


def write_bytes(buf: bytearray, data: bytes) -> None:
    write_long(buf, len(data))
    buf += data


def write_millis(buf: bytearray, moment: datetime | int) -> None:
    """timestamp-millis: an aware datetime (floored to the millisecond, as fastavro does) or epoch millis."""
    write_long(buf, moment if type(moment) is int else (moment - EPOCH) // MILLISECOND)


def decimal_writer(scale: int) -> Writer:
    """bytes decimal: the unscaled value, two's complement big-endian, in as many bytes as fastavro uses."""
    def write(buf: bytearray, value: Decimal) -> None:
        sign, digits, exponent = value.as_tuple()
        if -exponent > scale:
            raise ValueError(f"{value} has more than {scale} decimal places")
        magnitude = int("".join(map(str, digits))) * 10 ** (exponent + scale)
        write_bytes(buf, (-magnitude if sign else magnitude).to_bytes((magnitude.bit_length() + 8) // 8, "big",
                                                                     signed=True))
    return write


PRIMITIVES: dict[str, Writer] = {
    "null": lambda buf, value: None, "boolean": lambda buf, value: buf.append(1 if value else 0),
    "int": write_long, "long": write_long, "string": write_string, "bytes": write_bytes,
    "double": lambda buf, value: buf.extend(_DOUBLE(value)), "float": lambda buf, value: buf.extend(_FLOAT(value)),
}


def compile_writer(schema: Any) -> Callable[..., bytes]:
    """``schema`` (parsed JSON) -> ``encode(record, head=b"") -> bytes``: ``head`` (a ``frame``), then the
    record's Avro binary."""
    write = _Compiler().compile(schema, None)

    def encode(record: Any, head: bytes = b"") -> bytes:
        buf = bytearray(head)
        write(buf, record)
        return bytes(buf)
    return encode


class _Compiler:
    def __init__(self) -> None:
        self.named: dict[str, Writer] = {}

    def compile(self, schema: Any, namespace: str | None) -> Writer:
        if isinstance(schema, str):
            return PRIMITIVES.get(schema) or self._reference(schema, namespace)
        if isinstance(schema, list):
            return self._union(schema, namespace)
        kind, logical = schema["type"], schema.get("logicalType")
        if logical == "timestamp-millis" and kind == "long":
            return write_millis
        if logical == "decimal" and kind == "bytes":
            return decimal_writer(schema.get("scale", 0))
        if kind == "record":
            return self._record(schema, namespace)
        if kind == "enum":
            index = {symbol: i for i, symbol in enumerate(schema["symbols"])}
            return self._name(schema, namespace, lambda buf, value: write_long(buf, index[value]))
        if kind == "array":
            return _array(self.compile(schema["items"], namespace))
        if kind == "map":
            return _map(self.compile(schema["values"], namespace))
        if kind in PRIMITIVES and logical is None:
            return PRIMITIVES[kind]
        raise ValueError(f"unsupported Avro type {schema!r}")

    def _name(self, schema: dict, namespace: str | None, writer: Writer) -> Writer:
        name = schema["name"]
        self.named[name if "." in name or not namespace else f"{namespace}.{name}"] = writer
        return writer

    def _reference(self, name: str, namespace: str | None) -> Writer:
        full = name if "." in name or not namespace else f"{namespace}.{name}"
        named = self.named
        if full not in named:
            raise ValueError(f"unknown Avro type {name!r}")
        return lambda buf, value: named[full](buf, value)

    def _record(self, schema: dict, namespace: str | None) -> Writer:
        """A record's writer as generated straight-line Python: its strings, numbers and optional
        primitives written in place (a function call per field cost a third of the time)."""
        namespace = schema.get("namespace", namespace)
        self._name(schema, namespace, lambda buf, value: real(buf, value))   # its fields may refer to it
        env = {"write_long": write_long, "DOUBLE": _DOUBLE}
        lines = ["def record(buf, v):"]
        for n, f in enumerate(schema["fields"]):
            lines += self._write(f["type"], f"v[{f['name']!r}]", f"f{n}", "    ", namespace, env)
        exec("\n".join(lines), env)   # noqa: S102 - source built above from the schema's types only
        real = env["record"]
        self._name(schema, namespace, real)
        return real

    def _write(self, tp: Any, expr: str, tag: str, indent: str, namespace: str | None, env: dict) -> list[str]:
        """Lines writing the value of ``expr`` (of type ``tp``) into ``buf``."""
        if tp == "string":
            return [f"{indent}{tag} = {expr}.encode()", f"{indent}n{tag} = len({tag})",
                    f"{indent}buf.append(n{tag} << 1) if n{tag} < 64 else write_long(buf, n{tag})",
                    f"{indent}buf += {tag}"]
        if tp in ("int", "long"):
            return [f"{indent}{tag} = {expr}",
                    f"{indent}buf.append({tag} << 1) if 0 <= {tag} < 64 else write_long(buf, {tag})"]
        if tp == "double":
            return [f"{indent}buf += DOUBLE({expr})"]
        if tp == "boolean":
            return [f"{indent}buf.append(1 if {expr} else 0)"]
        if isinstance(tp, list) and len(tp) == 2 and "null" in tp:
            null = tp.index("null")
            return [f"{indent}{tag} = {expr}", f"{indent}if {tag} is None:", f"{indent}    buf.append({null << 1})",
                    f"{indent}else:", f"{indent}    buf.append({(1 - null) << 1})",
                    *self._write(tp[1 - null], tag, f"{tag}_", indent + "    ", namespace, env)]
        name = f"write_{tag}"
        env[name] = self.compile(tp, namespace)
        return [f"{indent}{name}(buf, {expr})"]

    def _union(self, branches: list, namespace: str | None) -> Writer:
        if len(branches) != 2 or "null" not in branches:
            raise ValueError(f"only [\"null\", X] unions are supported, not {branches!r}")
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


def _array(item: Writer) -> Writer:
    def array(buf: bytearray, values: list) -> None:
        if values:
            write_long(buf, len(values))
            for value in values:
                item(buf, value)
        buf.append(0)
    return array


def _map(item: Writer) -> Writer:
    def mapping(buf: bytearray, values: dict) -> None:
        if values:
            write_long(buf, len(values))
            for key, value in values.items():
                write_string(buf, key)
                item(buf, value)
        buf.append(0)
    return mapping
