"""What fastavro writes for a field a record lacks, for ``avro_writer``'s slow path.

The compiled writer reads every field as ``record[name]``: the fast path for the records
we write (validation fills every field). When a field is missing (``KeyError``), the
encoder fills the record once with this walk of the schema and writes it again: the
field's default, else null when its type is a union with null, else an error naming the
field, at any depth, as fastavro's writer does. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _full(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


class Completer:
    """``Completer(schema).complete(value)``: a copy of ``value`` with every missing record field filled."""

    def __init__(self, schema: Any):
        self.schema = schema
        self.named: dict[str, dict] = {}
        self._collect(schema, None)

    def complete(self, value: Any) -> Any:
        return self._value(self.schema, value, None)

    def _collect(self, schema: Any, namespace: str | None) -> None:
        """Every named type's definition, by full name (a reference may come before a value of it)."""
        if isinstance(schema, list):
            for branch in schema:
                self._collect(branch, namespace)
        elif isinstance(schema, dict):
            if schema.get("type") in ("record", "enum", "fixed"):
                namespace = schema.get("namespace", namespace)
                self.named[_full(schema["name"], namespace)] = schema
            for field in schema.get("fields", ()):
                self._collect(field["type"], namespace)
            for key in ("items", "values", "type"):
                if isinstance(schema.get(key), (list, dict)):
                    self._collect(schema[key], namespace)

    def _value(self, schema: Any, value: Any, namespace: str | None) -> Any:
        if isinstance(schema, list):
            others = [s for s in schema if s != "null"]
            return value if value is None or len(others) != 1 else self._value(others[0], value, namespace)
        if isinstance(schema, str):
            named = None if schema in _PRIMITIVES else self.named.get(_full(schema, namespace))
            return value if named is None else self._value(named, value, namespace)
        kind = schema["type"]
        if kind in ("record", "enum", "fixed"):
            namespace = schema.get("namespace", namespace)
        if kind == "record" and isinstance(value, dict):
            return self._record(schema, value, namespace)
        if kind == "array" and isinstance(value, (list, tuple)):
            return [self._value(schema["items"], item, namespace) for item in value]
        if kind == "map" and isinstance(value, dict):
            return {key: self._value(schema["values"], item, namespace) for key, item in value.items()}
        if isinstance(kind, (list, dict)) or (kind not in _PRIMITIVES and kind not in ("record", "enum", "fixed",
                                                                                       "array", "map")):
            return self._value(kind, value, namespace)
        return value   # a primitive, or a value of the wrong shape: the writer raises on it

    def _record(self, schema: dict, value: dict, namespace: str | None) -> dict:
        out = dict(value)
        for field in schema["fields"]:
            name, tp = field["name"], field["type"]
            if name in value:
                out[name] = self._value(tp, value[name], namespace)
            elif "default" in field:
                out[name] = self._value(tp, field["default"], namespace)
            elif tp == "null" or (isinstance(tp, list) and "null" in tp):
                out[name] = None
            else:
                raise ValueError(f"{schema['name']}: no value and no default for field {name!r}")
        return out
