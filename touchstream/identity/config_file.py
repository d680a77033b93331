"""Identity guard rails from ``$TOUCHSTREAM_HOME/identity.toml`` (absent: the defaults).

Example::

    default_region = "NL"
    max_customers_per_identifier = 1
    merge_customers_min_trust = "verified"
    blocked_values = [["phone", "+31 20 123 4567"], ["email", "test@example.com"]]
    blocked_patterns = [["email", ".*@mailinator\\\\.com"]]

Beside it, ``anon_id.key`` (0600, made once): the secret that keys anonymous customer ids
(``anon-`` + an HMAC of an identifier, see ``identity_replay``). It is read with the guard
rails because a replay that should give the live ids must use both; losing or replacing it
renames every anonymous customer.

Read when the identity process starts: an edit applies to the events observed after a
restart of ``identity``. Re-deriving past events under new rules needs an identity replay
from the raw topics, which is not automated yet (the customer-360 rebuild replays the
already-resolved ``touchstream.customer-events``).
"""

from __future__ import annotations

import dataclasses
import secrets
import tomllib
from pathlib import Path

from touchstream.private_files import secret_file
from touchstream.projections.identity_resolution import IdentityConfig

ANONYMOUS_ID_KEY_FILE = "anon_id.key"

FIELDS = ("default_region", "blocked_values", "blocked_patterns", "max_customers_per_identifier",
          "merge_customers_min_trust", "unlink_separates")


class IdentityConfigError(ValueError):
    """The identity config file is malformed; the message names the file and the key."""


def anonymous_id_key(path: Path) -> str:
    """The installation's anonymous-id key (hex) in ``path``, created once (0600)."""
    return secret_file(path, lambda: secrets.token_hex(32))


def load_identity_config(path: Path, key_path: Path | None = None) -> IdentityConfig:
    """The guard rails in ``path`` with the anonymous-id key in ``key_path`` (default: beside ``path``,
    in ``$TOUCHSTREAM_HOME``): the live stage and every replay of it load both, so they name alike."""
    rails, key_path = _guard_rails(path), key_path or path.with_name(ANONYMOUS_ID_KEY_FILE)
    try:
        return dataclasses.replace(rails, anonymous_id_key=anonymous_id_key(key_path))
    except ValueError:
        raise IdentityConfigError(f"{key_path}: not a hex key (restore the install's key file)") from None


def _guard_rails(path: Path) -> IdentityConfig:
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
