"""The consent policy from ``consent_policy.toml`` (or ``$TOUCHSTREAM_HOME/consent.toml``): which purposes
need an opt-in, on which channels, as the ``Config.opt_in`` slots the pure 360 fold reads.

Why a file and not code: whether marketing by post or phone needs a prior opt-in is a legal
choice that differs per country and changes, and the fold must not read files (it is pure),
so serving and the fold workers read it once at start and pass it in ``Config``. Why strict
checking with key paths: a misspelt purpose or channel that silently required nothing would
hide every violation; each problem names its place (``opt_in.marketing[1]: ...``). The format
is documented at the top of the shipped ``consent_policy.toml``.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

FILE = "consent.toml"      # in $TOUCHSTREAM_HOME: the installation's policy, else the shipped default
PURPOSES = ("marketing", "service", "profiling", "third_party_sharing", "research", "other", "unknown")
CHANNELS = ("web", "email", "phone", "sms", "store", "postal_mail", "social", "meeting", "document", "field_sales",
            "unknown")   # touchstream.common.Channel


class ConsentPolicyError(ValueError):
    """A consent policy problem, with the key path it is at."""


def load_opt_in(home: Path | None = None) -> tuple[str, ...]:
    """The opt-in slots of ``home/consent.toml`` if there is one, else of the shipped default."""
    path = None if home is None else Path(home) / FILE
    if path is not None and path.exists():
        text, where = path.read_text(), str(path)
    else:
        text = resources.files("touchstream.projections").joinpath("consent_policy.toml").read_text()
        where = "consent_policy.toml"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConsentPolicyError(f"{where}: not valid TOML: {exc}") from None
    try:
        return parse_opt_in(doc)
    except ConsentPolicyError as exc:
        raise ConsentPolicyError(f"{where}: {exc}") from None


def parse_opt_in(doc: dict) -> tuple[str, ...]:
    """A parsed policy document -> sorted ``"<channel|all>:<purpose>"`` slots that need an opt-in."""
    if doc.get("format") != 1:
        raise ConsentPolicyError(f"format: expected 1, got {doc.get('format')!r}")
    unknown = sorted(set(doc) - {"format", "opt_in"})
    if unknown:
        raise ConsentPolicyError(f"unknown key(s) {', '.join(unknown)}; known: format, opt_in")
    table = doc.get("opt_in", {})
    if not isinstance(table, dict):
        raise ConsentPolicyError("opt_in: expected a table")
    return tuple(sorted(slot for purpose, value in table.items() for slot in _slots(purpose, value)))


def _slots(purpose: str, value) -> list[str]:
    here = f"opt_in.{purpose}"
    if purpose not in PURPOSES:
        raise ConsentPolicyError(f"{here}: unknown purpose (one of {', '.join(PURPOSES)})")
    if isinstance(value, bool):
        return [f"all:{purpose}"] if value else []
    if not isinstance(value, list):
        raise ConsentPolicyError(f"{here}: true, false or a list of channels")
    for n, channel in enumerate(value):
        if channel not in CHANNELS:
            raise ConsentPolicyError(f"{here}[{n}]: {channel!r} is not a channel (one of {', '.join(CHANNELS)})")
    return [f"{channel}:{purpose}" for channel in sorted(set(value))]
