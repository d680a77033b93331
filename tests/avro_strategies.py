"""Hypothesis strategies that generate plain-JSON values valid for an Avro schema.

Shared by the unit tests: the JSON shape is what channel systems send, so a
round trip JSON -> Avro -> bytes -> Avro -> JSON must give the input back.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from hypothesis import strategies as st

EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
IDENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


def _timestamp():
    # 1900..2200: before the epoch (negative millis) and far after it.
    return st.integers(-70 * 365 * 86400 * 1000, 200 * 365 * 86400 * 1000).map(
        lambda ms: (EPOCH + timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")
    )


def _decimal(schema):
    scale, precision = schema.get("scale", 0), schema["precision"]
    bound = 10 ** (precision - scale) - 1
    return st.decimals(min_value=-bound, max_value=bound, places=scale, allow_nan=False, allow_infinity=False).map(str)


def json_for(schema, named=None, namespace=None):
    """A strategy of plain-JSON values for ``schema`` (expanded, named types inline)."""
    named = {} if named is None else named
    if isinstance(schema, list):
        return st.one_of(*[json_for(b, named, namespace) for b in schema])
    if isinstance(schema, str):
        simple = {
            "null": st.none(), "boolean": st.booleans(), "int": st.integers(-(2**31), 2**31 - 1),
            "long": st.integers(-(2**53), 2**53), "float": st.floats(-1e6, 1e6, width=32),
            "double": st.floats(-1e9, 1e9, allow_nan=False), "string": TEXT,
        }
        if schema in simple:
            return simple[schema]
        return named[schema] if "." in schema or schema in named else named[f"{namespace}.{schema}"]
    kind, logical = schema["type"], schema.get("logicalType")
    if kind in ("record", "enum", "fixed"):
        namespace = schema.get("namespace", namespace)
        full = schema["name"] if "." in schema["name"] else f"{namespace}.{schema['name']}"
        named[full] = st.deferred(lambda: _named(schema, named, namespace))
        return _named(schema, named, namespace)
    if logical == "timestamp-millis":
        return _timestamp()
    if logical == "date":
        return st.dates(date(1990, 1, 1), date(2100, 1, 1)).map(date.isoformat)
    if logical == "decimal":
        return _decimal(schema)
    if kind == "array":
        return st.lists(json_for(schema["items"], named, namespace), max_size=3)
    if kind == "map":
        return st.dictionaries(IDENT, json_for(schema["values"], named, namespace), max_size=3)
    return json_for(kind, named, namespace)


def _named(schema, named, namespace):
    if schema["type"] == "enum":
        return st.sampled_from(schema["symbols"])
    return st.fixed_dictionaries({f["name"]: json_for(f["type"], named, namespace) for f in schema["fields"]})
