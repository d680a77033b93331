"""The value writers ``avro_writer`` calls when it does not write a value in place.

Each one checks the Python type it is given, because the compiled writer has no
schema to fall back on: a value of the wrong type raises (``TypeError`` or
``ValueError``) and never becomes bytes of another type (``True`` for an int, an
``int`` past 2**63, a naive datetime, a string where an array belongs). fastavro
is laxer on a few of these (it writes ``True`` as 1 and a naive datetime in local
time); for every value the validation (``touchstream.events.validation``) lets
through, the bytes are fastavro's. Pure: no I/O.
"""

from __future__ import annotations

import struct
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

Writer = Callable[[bytearray, Any], None]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
EPOCH_DAY = date(1970, 1, 1).toordinal()
MILLISECOND = timedelta(milliseconds=1)
INT_RANGE, LONG_RANGE = (-(2**31), 2**31 - 1), (-(2**63), 2**63 - 1)
DOUBLE, FLOAT = struct.Struct("<d").pack, struct.Struct("<f").pack


class UnsupportedSchema(ValueError):
    """A construct the compiled writer does not write (the codec falls back to fastavro for its schema)."""


def wrong(value: Any, kind: str) -> TypeError:
    return TypeError(f"expected {kind}, got {type(value).__name__}: {str(value)[:40]!r}")


def write_long(buf: bytearray, n: int) -> None:
    """Zig-zag varint of a known 64-bit int (lengths, counts; values go through ``write_int``/``write_long_value``)."""
    if 0 <= n < 64:
        buf.append(n << 1)
        return
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        buf.append((n & 0x7F) | 0x80)
        n >>= 7
    buf.append(n)


def _integer(value: Any, bounds: tuple[int, int], kind: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise wrong(value, kind)
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{value} is out of range for Avro {kind}")
    return value


def _integer_writer(bounds: tuple[int, int], kind: str) -> Writer:
    low, high = bounds

    def write(buf: bytearray, n: Any) -> None:
        if n.__class__ is not int or not low <= n <= high:
            n = _integer(n, bounds, kind)
        if 0 <= n < 64:
            buf.append(n << 1)
        else:
            write_long(buf, n)
    return write


write_int, write_long_value = _integer_writer(INT_RANGE, "int"), _integer_writer(LONG_RANGE, "long")


def write_string(buf: bytearray, text: Any) -> None:
    if text.__class__ is not str and not isinstance(text, str):
        raise wrong(text, "string")
    data = text.encode()
    n = len(data)
    if n < 64:
        buf.append(n << 1)
    else:
        write_long(buf, n)
    buf += data


def write_bytes(buf: bytearray, data: Any) -> None:
    if not isinstance(data, (bytes, bytearray)):
        raise wrong(data, "bytes")
    write_long(buf, len(data))
    buf += data


def write_double(buf: bytearray, value: Any) -> None:
    if value.__class__ is not float and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        raise wrong(value, "double")
    buf += DOUBLE(value)


def write_float(buf: bytearray, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise wrong(value, "float")
    buf += FLOAT(value)


def write_boolean(buf: bytearray, value: Any) -> None:
    if value is not True and value is not False:
        raise wrong(value, "boolean")
    buf.append(1 if value else 0)


def write_null(buf: bytearray, value: Any) -> None:
    if value is not None:
        raise wrong(value, "null")


def write_millis(buf: bytearray, moment: Any) -> None:
    """timestamp-millis: an aware datetime (floored to the millisecond, as fastavro does) or epoch millis."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError(f"timestamp-millis needs an aware datetime, got naive {moment}")
        write_long(buf, (moment - EPOCH) // MILLISECOND)
    else:
        write_long_value(buf, moment)


def write_date(buf: bytearray, day: Any) -> None:
    """date: a ``date`` (not a datetime: its time would be dropped unseen) or days since the epoch."""
    if type(day) is date:
        write_long(buf, day.toordinal() - EPOCH_DAY)
    elif isinstance(day, date):
        raise wrong(day, "date")
    else:
        write_int(buf, day)


def decimal_writer(scale: int, precision: int) -> Writer:
    """bytes decimal: the unscaled value, two's complement big-endian, in as many bytes as fastavro uses."""
    def write(buf: bytearray, value: Any) -> None:
        if not isinstance(value, Decimal):
            raise wrong(value, "Decimal")
        sign, digits, exponent = value.as_tuple()
        if not isinstance(exponent, int) or -exponent > scale:
            raise ValueError(f"{value} has more than {scale} decimal places (or is not finite)")
        if len(digits) > precision:
            raise ValueError(f"{value} has more than {precision} digits")
        magnitude = int("".join(map(str, digits))) * 10 ** (exponent + scale)
        write_bytes(buf, (-magnitude if sign else magnitude).to_bytes((magnitude.bit_length() + 8) // 8, "big",
                                                                     signed=True))
    return write


PRIMITIVES: dict[str, Writer] = {
    "null": write_null, "boolean": write_boolean, "int": write_int, "long": write_long_value,
    "string": write_string, "bytes": write_bytes, "double": write_double, "float": write_float,
}


def logical_writer(kind: str, logical: str, schema: dict) -> Writer:
    if logical == "timestamp-millis" and kind == "long":
        return write_millis
    if logical == "date" and kind == "int":
        return write_date
    if logical == "decimal" and kind == "bytes":
        return decimal_writer(schema.get("scale", 0), schema["precision"])
    raise UnsupportedSchema(f"logical type {logical!r} on {kind!r}")


def symbols(names: list[str]) -> dict[str, bytes]:
    """An enum's symbol -> its index, already zig-zag encoded (a plain dict: an unknown symbol is a KeyError,
    which ``avro_writer``'s encoder turns into a ValueError)."""
    out = {}
    for i, symbol in enumerate(names):
        encoded = bytearray()
        write_long(encoded, i)
        out[symbol] = bytes(encoded)
    return out


def array_writer(item: Writer) -> Writer:
    def array(buf: bytearray, values: Any) -> None:
        if values.__class__ is not list and not isinstance(values, (list, tuple)):
            raise wrong(values, "array (list)")
        if values:
            write_long(buf, len(values))
            for value in values:
                item(buf, value)
        buf.append(0)
    return array


def map_writer(item: Writer) -> Writer:
    def mapping(buf: bytearray, values: Any) -> None:
        if values.__class__ is not dict and not isinstance(values, dict):
            raise wrong(values, "map (dict)")
        if values:
            write_long(buf, len(values))
            for key, value in values.items():
                write_string(buf, key)
                item(buf, value)
        buf.append(0)
    return mapping
