"""Plain JSON -> Avro-ready Python values, checked against an event schema.

Channel systems send plain JSON (HTTP, JSON Lines, SDK keyword arguments). This
module turns it into the values fastavro writes (datetime, date, Decimal, ...)
and, when it cannot, names every offending field path and the reason, so a
channel system can fix its payload without reading Avro. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from touchstream.events.schema_compiler import Converter, SchemaCompiler

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Problem:
    """One reason an event was rejected: where (dotted path) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path or '<event>'}: {self.reason}"


class EventValidationError(ValueError):
    """An event breaks its contract. ``problems`` lists every field path and reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    def as_dicts(self) -> list[dict[str, str]]:
        return [{"path": p.path, "reason": p.reason} for p in self.problems]


class _Invalid(Exception):
    def __init__(self, reason: str):
        self.reason = reason


def _typename(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 with an offset, epoch milliseconds, or an aware datetime -> aware UTC datetime."""
    if type(value) is str:   # what channel systems send: no isinstance chain before it
        return _parse_iso(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _Invalid("timestamp has no time zone; send UTC, e.g. 2026-01-31T09:30:00Z")
        return value.astimezone(timezone.utc)
    if isinstance(value, bool):
        raise _Invalid("expected a timestamp, got bool")
    if isinstance(value, int):
        if not LONG_MIN // 1000 < value < LONG_MAX // 1000:
            raise _Invalid("epoch milliseconds out of range")
        try:
            return EPOCH + timedelta(milliseconds=value)   # exact; value / 1000 as a float is not
        except OverflowError:
            raise _Invalid("epoch milliseconds outside the years 1-9999") from None
    if isinstance(value, str):
        return _parse_iso(value)
    raise _Invalid(f"expected an ISO-8601 timestamp or epoch millis, got {_typename(value)}")


def _parse_iso(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _Invalid(f"not an ISO-8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise _Invalid("timestamp has no time zone; send UTC, e.g. 2026-01-31T09:30:00Z")
    return parsed.astimezone(timezone.utc)


def _to_millis(value: Any) -> datetime:
    """What the wire keeps of a timestamp-millis: the validated record equals the decoded one.

    A moment already whole in milliseconds is returned as it is: ``datetime.replace`` costs
    more than the parse, and it would only copy it.
    """
    moment = _parse_iso(value) if type(value) is str else parse_timestamp(value)
    if moment.microsecond % 1000 == 0:
        return moment
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise _Invalid(f"not an ISO date (YYYY-MM-DD): {value[:20]!r}") from None
    raise _Invalid(f"expected a date YYYY-MM-DD, got {_typename(value)}")


def _decimal(schema: dict, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise _Invalid(f"expected a decimal number (string like \"12.50\"), got {_typename(value)}")
    try:
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise _Invalid(f"not a decimal number: {str(value)[:40]!r}") from None
    if not number.is_finite():
        raise _Invalid("decimal must be finite")
    scale, precision = schema.get("scale", 0), schema["precision"]
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > scale:
        raise _Invalid(f"more than {scale} decimal places")
    quantized = number.quantize(Decimal(1).scaleb(-scale))
    if len(quantized.as_tuple().digits) > precision:
        raise _Invalid(f"more than {precision} significant digits")
    return quantized


def _integer(value: Any, low: int, high: int, kind: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise _Invalid(f"expected {kind}, got {_typename(value)}")
    if not low <= value <= high:
        raise _Invalid(f"{kind} out of range")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected string, got {_typename(value)}")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected boolean, got {_typename(value)}")
    return value


def _floating(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(f"expected number, got {_typename(value)}")
    return float(value)


def _null(value: Any) -> None:
    if value is not None:
        raise _Invalid(f"expected null, got {_typename(value)}")


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise _Invalid(f"expected bytes, got {_typename(value)}")


_SIMPLE: dict[str, Callable[[Any], Any]] = {
    "string": _string,
    "boolean": _boolean,
    "int": lambda v: _integer(v, INT_MIN, INT_MAX, "int"),
    "long": lambda v: _integer(v, LONG_MIN, LONG_MAX, "long"),
    "float": _floating,
    "double": _floating,
    "null": _null,
    "bytes": _bytes,
}


def _leaf(schema: dict) -> Callable[[Any], Any]:
    """The converter of one primitive or logical type (raises ``_Invalid``)."""
    kind, logical = schema["type"], schema.get("logicalType")
    if logical == "timestamp-millis" and kind == "long":
        return _to_millis
    if logical == "timestamp-micros" and kind == "long":
        return parse_timestamp
    if logical == "date" and kind == "int":
        return _date
    if logical == "decimal" and kind in ("bytes", "fixed"):
        return lambda value: _decimal(schema, value)
    return _SIMPLE[kind]


def compile_schema(schema: Any) -> Converter:
    """Compile once, convert many: callers on the hot path keep the result."""
    return SchemaCompiler(_leaf, _Invalid, Problem, _typename).compile(schema)


def to_avro(schema: dict, data: Any, compiled: Converter | None = None) -> dict:
    """Convert ``data`` to the Python values fastavro writes for ``schema``.

    Raises ``EventValidationError`` listing every problem (not just the first).
    ``compiled`` is ``compile_schema(schema)``, passed in when the caller caches it.
    """
    problems: list[Problem] = []
    result = (compiled or compile_schema(schema))(data, None, problems)
    if problems:
        raise EventValidationError(problems)
    return result


# NUL ends a C string and breaks many readers of an export; a lone surrogate is not UTF-8 at
# all, so Avro cannot write it. Both are garbage or an attack, never customer text.
_UNWRITABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (NUL, lone surrogate), or None."""
    bad = _UNWRITABLE.search(value)
    if bad is None:
        return None
    return "contains a NUL character (\\u0000)" if bad.group() == "\x00" else "contains a lone UTF-16 surrogate"


def _writable(text: str) -> bool:
    """``text_problem(text) is None``, without the regex for ASCII text (where only NUL can be wrong)."""
    return "\x00" not in text if text.isascii() else _UNWRITABLE.search(text) is None


def _all_writable(value: Any) -> bool:
    """Whether ``text_problems(value)`` is empty: the same strings and keys looked at, no path made."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            if not _writable(item):
                return False
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str) and not _writable(key):
                    return False
                if isinstance(inner, str):
                    if not _writable(inner):
                        return False
                elif isinstance(inner, (dict, list, tuple)):
                    todo.append(inner)
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
    return True


def text_problems(value: Any, path: str = "") -> list[Problem]:
    """Every string and mapping key in ``value`` that cannot be stored as text, with its path.

    A walk of the plain-JSON event before conversion (the converter's fast path for strings
    looks at no characters), with its own stack so no nesting depth can overflow it. Every
    publish calls it, and nearly every event is clean: a first walk that builds no path
    answers that case, and only an event with a problem is walked again for the paths.
    """
    if _all_writable(value):
        return []
    problems, todo = [], [(path, value)]
    while todo:
        here, item = todo.pop()
        if isinstance(item, str):
            reason = text_problem(item)
            if reason:
                problems.append(Problem(here, reason))
        elif isinstance(item, dict):
            for key, inner in reversed(list(item.items())):
                reason = text_problem(key) if isinstance(key, str) else None
                if reason:
                    problems.append(Problem(f"{here}.<key>" if here else "<key>", f"a key {reason}"))
                else:
                    todo.append((f"{here}.{key}" if here else str(key), inner))
        elif isinstance(item, (list, tuple)):
            todo.extend((f"{here}[{index}]", inner) for index, inner in reversed(list(enumerate(item))))
    return problems


def to_json(value: Any) -> Any:
    """The inverse for display and export: datetimes as ISO UTC, decimals as strings."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
