"""Compile an Avro schema once into a converter for plain JSON values.

Validation is the hot path of every publish (SDK, collector, JSON Lines):
walking the schema dict for every event cost more than encoding it. A compiled
converter is a tree of functions made once per schema; per event it only calls
them. Field paths are kept as a cheap linked chain of tuples and rendered to a
string ("lines[0].unit_price.amount") only when a problem is reported. A record
is a generated function with its fields written out (``record_function``), and
it takes a field whose value its converter would return unchanged (a plain
string, an enum symbol, a null of an optional field, ...) without calling it:
most fields of an event are such, and a call per field was most of the cost.
Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, Callable

Path = tuple | None
Converter = Callable[[Any, Path, list], Any]


def render(path: Path) -> str:
    """``((None, "lines"), 0), "sku")`` -> ``lines[0].sku``."""
    parts: list[str] = []
    while path is not None:
        path, segment = path
        parts.append(f"[{segment}]" if isinstance(segment, int) else f".{segment}")
    return "".join(reversed(parts)).lstrip(".")


class SchemaCompiler:
    """Turns a schema into a ``Converter(value, path, problems) -> value``.

    ``leaf(schema) -> Callable[[value], value]`` converts primitives and logical
    types and raises ``invalid`` (an exception class with ``.reason``) on bad input;
    ``problem(path_str, reason)`` builds the problem records collected in ``problems``.
    """

    def __init__(self, leaf: Callable[[dict], Callable], invalid: type, problem: Callable, typename: Callable):
        self._leaf = leaf
        self._invalid = invalid
        self._problem = problem
        self._typename = typename
        self._compiled: dict[str, Converter] = {}

    def compile(self, schema: Any, namespace: str | None = None) -> Converter:
        if isinstance(schema, list):
            return self._union(schema, namespace)
        if isinstance(schema, str):
            if schema not in _PRIMITIVES:
                return self._reference(schema, namespace)
            schema = {"type": schema}
        kind = schema["type"]
        if isinstance(kind, (list, dict)):
            return self.compile(kind, namespace)
        if kind in ("record", "error", "enum", "fixed"):
            namespace = schema.get("namespace", namespace)
            name = schema["name"]
            # References resolve at call time, so a recursive type needs no forward slot.
            conv = self._record(schema, namespace) if kind in ("record", "error") else self._enum(schema)
            self._compiled[name if "." in name or not namespace else f"{namespace}.{name}"] = conv
            self._compiled.setdefault(name, conv)
            return conv
        if kind == "array":
            return self._array(self.compile(schema["items"], namespace))
        if kind == "map":
            return self._map(self.compile(schema["values"], namespace))
        if kind not in _PRIMITIVES:
            return self._reference(kind, namespace)
        return self._leaf_converter(schema)

    def _reference(self, name: str, namespace: str | None) -> Converter:
        full = name if "." in name or not namespace else f"{namespace}.{name}"
        compiled = self._compiled

        def conv(value, path, problems):
            return (compiled.get(full) or compiled[name])(value, path, problems)

        return conv

    def _leaf_converter(self, schema: dict) -> Converter:
        fn, invalid, problem = self._leaf(schema), self._invalid, self._problem
        plain_string = schema["type"] == "string" and "logicalType" not in schema

        def leaf(value, path, problems):
            if plain_string and type(value) is str:
                return value
            try:
                return fn(value)
            except invalid as exc:
                problems.append(problem(render(path), exc.reason))
                return None

        return leaf

    def _record(self, schema: dict, namespace: str | None) -> Converter:
        fields = [
            (f["name"], self.compile(f["type"], namespace), unchanged_types(f["type"]), enum_symbols(f["type"]),
             "default" in f, f.get("default"))
            for f in schema["fields"]
        ]
        scope = {"names": frozenset(f[0] for f in fields), "problem": self._problem, "typename": self._typename,
                 "render": render}
        return record_function(fields, scope, label=schema["name"])

    def _enum(self, schema: dict) -> Converter:
        symbols = frozenset(schema["symbols"])
        allowed = ", ".join(schema["symbols"])
        problem = self._problem

        def enum(value, path, problems):
            if type(value) is str and value in symbols:
                return value
            problems.append(problem(render(path), f"{str(value)[:40]!r} is not one of: {allowed}"))
            return None

        return enum

    def _array(self, item: Converter) -> Converter:
        problem, typename = self._problem, self._typename

        def array(value, path, problems):
            if not isinstance(value, list):
                problems.append(problem(render(path), f"expected a list, got {typename(value)}"))
                return None
            return [item(v, (path, i), problems) for i, v in enumerate(value)]

        return array

    def _map(self, values: Converter) -> Converter:
        problem, typename = self._problem, self._typename

        def mapping(value, path, problems):
            if not isinstance(value, dict):
                problems.append(problem(render(path), f"expected an object, got {typename(value)}"))
                return None
            return {k: values(v, (path, str(k)), problems) for k, v in value.items()}

        return mapping

    def _union(self, schema: list, namespace: str | None) -> Converter:
        problem = self._problem
        nullable = "null" in schema
        others = [self.compile(b, namespace) for b in schema if b != "null"]
        if nullable and len(others) == 1:
            # ["null", X]: by far the common case; problems keep X's own paths and reasons.
            inner = others[0]

            def optional(value, path, problems):
                return None if value is None else inner(value, path, problems)

            return optional

        def union(value, path, problems):
            if value is None:
                if nullable:
                    return None
                problems.append(problem(render(path), "must not be null"))
                return None
            reasons: list = []
            for branch in others:
                trial: list = []
                result = branch(value, path, trial)
                if not trial:
                    return result
                reasons.extend(trial)
            if len(others) == 1:
                problems.extend(reasons)
            else:
                problems.append(problem(render(path), "matches no branch of the union: "
                                        + "; ".join(p.reason for p in reasons)))
            return None

        return union


_RECORD_HEAD = """\
def record(value, path, problems):
    if not isinstance(value, dict):
        problems.append(problem(render(path), f"expected an object, got {typename(value)}"))
        return None
    if not names.issuperset(value):
        for extra in sorted(set(value) - names, key=str):
            problems.append(problem(render((path, str(extra))), "unknown field"))
    out = {}"""


def record_function(fields: list[tuple], scope: dict, label: str = "record") -> Converter:
    """One record's converter as a function of its own, its fields written out one after the other.

    Why generated: a loop over the fields (unpack the field's tuple, test, branch) cost more
    than the fields' work. The text is fixed but for the field's index: names, converters and
    defaults are passed in ``scope`` (``name3``, ``conv3``, ...), so no schema text is ever
    compiled as code. Per field, in schema order: the value taken as it is when its exact type
    is one its converter returns unchanged (``unchanged_types``) or it is one of the field's
    enum symbols, else converted; a missing field gets its default (converted unless null) or
    is reported missing.
    """
    lines = [_RECORD_HEAD]
    for i, (name, conv, unchanged, symbols, has_default, default) in enumerate(fields):
        scope.update({f"name{i}": name, f"conv{i}": conv, f"unchanged{i}": unchanged, f"symbols{i}": symbols,
                      f"default{i}": default})
        taken = _TAKEN.get(unchanged, f"type(item) in unchanged{i}" if unchanged else None)
        if symbols is not None:
            taken = ("item is None or " if taken else "") + f"(type(item) is str and item in symbols{i})"
        converted = f"conv{i}(item, (path, name{i}), problems)"
        result = f"item if {taken} else {converted}" if taken else converted
        lines += [f"    if name{i} in value:", f"        item = value[name{i}]", f"        out[name{i}] = {result}",
                  "    else:"]
        if not has_default:
            lines.append(f"        problems.append(problem(render((path, name{i})), 'required field is missing'))")
        else:
            filled = "None" if default is None else f"conv{i}(default{i}, (path, name{i}), problems)"
            lines.append(f"        out[name{i}] = {filled}")
    lines.append("    return out")
    # Fixed text; the schema's values are in scope, not in it. The file name shows in tracebacks and profiles.
    exec(compile("\n".join(lines), f"<record {label}>", "exec"), scope)   # noqa: S102
    return scope["record"]


_TAKEN = {frozenset({str}): "type(item) is str", frozenset({str, type(None)}): "item is None or type(item) is str",
          frozenset({type(None)}): "item is None"}
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
# Primitives whose leaf returns a value of exactly this type as it is, with no range to check.
_UNCHANGED = {"null": type(None), "boolean": bool, "float": float, "double": float, "string": str}


def enum_symbols(schema: Any) -> frozenset | None:
    """The symbols of an enum written out in place, also as the branch of ``["null", enum]``."""
    if isinstance(schema, list):
        others = [b for b in schema if b != "null"]
        return enum_symbols(others[0]) if "null" in schema and len(others) == 1 else None
    if isinstance(schema, dict) and schema["type"] == "enum":
        return frozenset(schema["symbols"])
    return None


def unchanged_types(schema: Any) -> frozenset:
    """The exact types of the values a converter of ``schema`` returns unchanged and never reports.

    Conservative: a type is listed only when that is certain from the schema alone (no
    logical type, no named type, no union but ``["null", X]``); the rest go to the converter.
    """
    if isinstance(schema, list):
        others = [b for b in schema if b != "null"]
        if "null" in schema and len(others) == 1:
            return unchanged_types(others[0]) | {type(None)}
        return frozenset()
    if isinstance(schema, dict):
        if "logicalType" in schema or not isinstance(schema["type"], str):
            return frozenset()
        schema = schema["type"]
    return frozenset({_UNCHANGED[schema]}) if schema in _UNCHANGED else frozenset()
