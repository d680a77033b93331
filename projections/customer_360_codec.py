"""JSON-friendly dicts of the customer-360 state, and back; fingerprints for replay-equals-live checks.

Why generic (driven by the dataclass type hints) rather than hand-written per
class: the state grows section by section, and a hand-kept codec drifts. Why
this encoding: datetimes as ISO-8601 (UTC), Decimals as strings (exact),
timedeltas as seconds, sets as sorted lists, so ``json.dumps(to_dict(p),
sort_keys=True)`` is canonical and its hash says whether two profiles are equal.
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from dataclasses import fields, is_dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from touchstream.projections.customer_360_state import Profile


def encode(value: Any) -> Any:
    """A dataclass tree -> dicts, lists, str, int, float, bool, None."""
    if is_dataclass(value):
        return {f.name: encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuple
        return {name: encode(v) for name, v in zip(value._fields, value)}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (set, frozenset)):
        return sorted(encode(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(tp: Any, data: Any) -> Any:
    """The inverse of ``encode`` for a value of type ``tp``."""
    if data is None:
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return decode(next(a for a in args if a is not type(None)), data)
    if is_dataclass(tp) or (isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")):
        hints = _hints(tp)
        return tp(**{name: decode(hints[name], data[name]) for name in hints if name in data})
    scalar = _SCALARS.get(tp)
    if scalar is not None:
        return scalar(data)
    if origin in (list, set, frozenset):
        return origin(decode(args[0], v) for v in data)
    if origin is tuple:
        return tuple(decode(args[0], v) for v in data)
    if origin is dict:
        return {k: decode(args[1], v) for k, v in data.items()}
    return data


_SCALARS = {datetime: datetime.fromisoformat, date: date.fromisoformat, Decimal: Decimal,
            timedelta: lambda s: timedelta(seconds=s)}


def to_dict(profile: Profile) -> dict:
    """The whole state (bookkeeping included), enough to resume folding after a restart."""
    return encode(profile)


def from_dict(data: dict) -> Profile:
    return decode(Profile, data)


def canonical_json(profile: Profile) -> str:
    return json.dumps(to_dict(profile), sort_keys=True, separators=(",", ":"))


def fingerprint(profile: Profile) -> str:
    """sha256 of the canonical JSON: equal fingerprints <=> equal states (replay vs live, restart vs none)."""
    return hashlib.sha256(canonical_json(profile).encode()).hexdigest()


def differences(a: Profile, b: Profile) -> list[str]:
    """Top-level sections that differ, for a readable replay-equals-live failure."""
    da, db = to_dict(a), to_dict(b)
    return sorted(k for k in da.keys() | db.keys() if da.get(k) != db.get(k))
