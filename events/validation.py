"""Plain JSON -> Avro-ready Python values, checked against an event schema.

Channel systems send plain JSON (HTTP, JSON Lines, SDK keyword arguments). This
module turns it into the values fastavro writes (datetime, date, Decimal, ...)
and, when it cannot, names every offending field path and the reason, so a
channel system can fix its payload without reading Avro. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

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


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _typename(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 with an offset, epoch milliseconds, or an aware datetime -> aware UTC datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _Invalid("timestamp has no time zone; send UTC, e.g. 2026-01-31T09:30:00Z")
        return value.astimezone(timezone.utc)
    if isinstance(value, bool):
        raise _Invalid("expected a timestamp, got bool")
    if isinstance(value, int):
        if not LONG_MIN // 1000 < value < LONG_MAX // 1000:
            raise _Invalid("epoch milliseconds out of range")
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise _Invalid(f"not an ISO-8601 timestamp: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise _Invalid("timestamp has no time zone; send UTC, e.g. 2026-01-31T09:30:00Z")
        return parsed.astimezone(timezone.utc)
    raise _Invalid(f"expected an ISO-8601 timestamp or epoch millis, got {_typename(value)}")


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


def _primitive(schema: dict, value: Any) -> Any:
    kind, logical = schema["type"], schema.get("logicalType")
    if logical in ("timestamp-millis", "timestamp-micros") and kind == "long":
        return parse_timestamp(value)
    if logical == "date" and kind == "int":
        return _date(value)
    if logical == "decimal" and kind in ("bytes", "fixed"):
        return _decimal(schema, value)
    return _SIMPLE[kind](value)


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


class _Converter:
    """Walks one schema and one value together, collecting every problem."""

    def __init__(self) -> None:
        self.named: dict[str, dict] = {}
        self.problems: list[Problem] = []

    def convert(self, schema: Any, value: Any, path: str, namespace: str | None = None) -> Any:
        try:
            return self._convert(schema, value, path, namespace)
        except _Invalid as exc:
            self.problems.append(Problem(path, exc.reason))
            return None

    def _convert(self, schema: Any, value: Any, path: str, namespace: str | None) -> Any:
        if isinstance(schema, str):
            if schema in _SIMPLE:
                return _SIMPLE[schema](value)
            full = schema if "." in schema else f"{namespace}.{schema}"
            schema = self.named.get(full) or self.named[schema]
        if isinstance(schema, list):
            return self._union(schema, value, path, namespace)
        kind = schema["type"]
        if kind in ("record", "error", "enum", "fixed"):
            namespace = schema.get("namespace", namespace)
            self.named[f"{namespace}.{schema['name']}" if namespace else schema["name"]] = schema
        if kind in ("record", "error"):
            return self._record(schema, value, path, namespace)
        if kind == "enum":
            return self._enum(schema, value)
        if kind == "array":
            if not isinstance(value, list):
                raise _Invalid(f"expected a list, got {_typename(value)}")
            return [self.convert(schema["items"], v, f"{path}[{i}]", namespace) for i, v in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                raise _Invalid(f"expected an object, got {_typename(value)}")
            return {k: self.convert(schema["values"], v, _join(path, str(k)), namespace) for k, v in value.items()}
        if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _SIMPLE):
            return self._convert(kind, value, path, namespace)
        return _primitive(schema, value)

    def _record(self, schema: dict, value: Any, path: str, namespace: str | None) -> dict:
        if not isinstance(value, dict):
            raise _Invalid(f"expected an object, got {_typename(value)}")
        out: dict[str, Any] = {}
        known = {f["name"] for f in schema["fields"]}
        for extra in sorted(set(value) - known):
            self.problems.append(Problem(_join(path, str(extra)), "unknown field"))
        for field in schema["fields"]:
            name, sub = field["name"], _join(path, field["name"])
            if name in value:
                out[name] = self.convert(field["type"], value[name], sub, namespace)
            elif "default" in field:
                out[name] = self.convert(field["type"], field["default"], sub, namespace)
            else:
                self.problems.append(Problem(sub, "required field is missing"))
        return out

    @staticmethod
    def _enum(schema: dict, value: Any) -> str:
        if not isinstance(value, str) or value not in schema["symbols"]:
            allowed = ", ".join(schema["symbols"])
            raise _Invalid(f"{str(value)[:40]!r} is not one of: {allowed}")
        return value

    def _union(self, branches: list, value: Any, path: str, namespace: str | None) -> Any:
        if value is None:
            if "null" in branches:
                return None
            raise _Invalid("must not be null")
        candidates = [b for b in branches if b != "null"]
        reasons = []
        for branch in candidates:
            trial = _Converter()
            trial.named = self.named
            result = trial.convert(branch, value, path, namespace)
            if not trial.problems:
                return result
            reasons.extend(trial.problems)
        if len(candidates) == 1:
            self.problems.extend(reasons)
            return None
        raise _Invalid("matches no branch of the union: " + "; ".join(p.reason for p in reasons))


def index_named(schema: Any, namespace: str | None = None, named: dict | None = None) -> dict[str, dict]:
    """Every named type defined anywhere in ``schema``, by full name.

    Needed up front: a type may be defined inside an array that this value
    leaves empty and referred to by name in a later field.
    """
    named = {} if named is None else named
    if isinstance(schema, list):
        for branch in schema:
            index_named(branch, namespace, named)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            namespace = schema.get("namespace", namespace)
            name = schema["name"]
            named[name if "." in name or not namespace else f"{namespace}.{name}"] = schema
        for field in schema.get("fields", ()):
            index_named(field["type"], namespace, named)
        for key in ("items", "values"):
            if key in schema:
                index_named(schema[key], namespace, named)
        if isinstance(kind, (dict, list)):
            index_named(kind, namespace, named)
    return named


def to_avro(schema: dict, data: Any, named: dict[str, dict] | None = None) -> dict:
    """Convert ``data`` to the Python values fastavro writes for ``schema``.

    Raises ``EventValidationError`` listing every problem (not just the first).
    ``named`` is ``index_named(schema)``, passed in when the caller caches it.
    """
    conv = _Converter()
    conv.named = dict(index_named(schema) if named is None else named)
    result = conv.convert(schema, data, "")
    if conv.problems:
        raise EventValidationError(conv.problems)
    return result


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
