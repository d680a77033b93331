"""Identity guard rails from ``$TOUCHSTREAM_HOME/identity.toml`` (absent: the defaults).

Example::

    default_region = "NL"
    max_customers_per_identifier = 1
    merge_customers_min_trust = "verified"
    blocked_values = [["phone", "+31 20 123 4567"], ["email", "test@example.com"]]
    blocked_patterns = [["email", ".*@mailinator\\\\.com"]]

Read when the identity process starts: an edit applies to the events observed after a
restart of ``identity``. Re-deriving past events under new rules needs an identity replay
from the raw topics, which is not automated yet (the customer-360 rebuild replays the
already-resolved ``touchstream.customer-events``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from touchstream.projections.identity_resolution import IdentityConfig

FIELDS = ("default_region", "blocked_values", "blocked_patterns", "max_customers_per_identifier",
          "merge_customers_min_trust", "unlink_separates")


class IdentityConfigError(ValueError):
    """The identity config file is malformed; the message names the file and the key."""


def load_identity_config(path: Path) -> IdentityConfig:
    if not path.exists():
        return IdentityConfig()
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise IdentityConfigError(f"{path}: {exc}") from None
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        raise IdentityConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    for name in ("blocked_values", "blocked_patterns"):
        pairs = doc.get(name, [])
        if not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs):
            raise IdentityConfigError(f"{path}: {name} must be a list of [kind, value] string pairs")
        doc[name] = tuple(tuple(p) for p in pairs)
    try:
        return IdentityConfig(**doc)
    except (TypeError, ValueError) as exc:
        raise IdentityConfigError(f"{path}: {exc}") from None
