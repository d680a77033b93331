"""Identity hints normalised, the guard-rail settings, and how much one event proves (the trust table).

Why: two spellings of one e-mail address or phone number must meet as one identifier,
and how far identifiers seen together may be trusted depends on the kind of event that
carried them (domain.md section 3, issue 3). These tables and settings are what a
rebuild (replay) depends on, so they sit apart from the resolver's bookkeeping.
Re-exported by ``identity_resolution``. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import phonenumbers

from touchstream.projections.identity_facts import Identifier, Trust
from touchstream.projections.identity_replay import Rules

KINDS = frozenset(("customer_id", "email", "phone", "cookie_id", "device_id", "loyalty_card", "account_number"))
V, O, C = Trust.VERIFIED, Trust.OBSERVED, Trust.CLAIMED
# How much the hints on one event prove about each other, by event type (first matching prefix wins):
# (prefixes, trust if the envelope carries a customer_id, trust otherwise, why). One table, documented in the report.
ENVELOPE_TRUST = (
    (("web.form_submitted",), C, C, "typed into a form: the customer says so, nothing proves it"),
    (("identity.",), None, None, "identity events state the trust their system can honestly claim"),
    (("web.",), V, O, "a customer_id on the web means a logged-in session; without one the site only saw them together"),
    (("email.", "commerce.", "complaint.", "meeting.", "document.", "postal.", "campaign.", "feedback."), V, O,
     "systems of record work on the account: next to a customer_id the other hints are the account's own"),
    (("",), O, O, "a channel system saw them together: caller id, card at the till, SMS number, social handle"),
)
# A browser or a device can be shared: seeing one with a customer is never proof, whatever the event says.
KIND_CEILING = {"cookie_id": O, "device_id": O}


@lru_cache(maxsize=1 << 16)
def normalise(kind: str, value: str, region: str | None = "NL") -> tuple[Identifier | None, str | None]:
    """(identifier, note). E-mail trimmed and lower-cased, phone in E.164, others trimmed.

    A phone that does not parse is kept as its digits with note ``unparsed_phone``
    (never an exception): two spellings of one odd number still meet.
    """
    text = (value or "").strip()
    if kind not in KINDS or not text:
        return None, None
    if kind == "email":
        return Identifier(kind, text.lower()), None
    if kind == "phone":
        try:
            number = phonenumbers.parse(text, region)
            if phonenumbers.is_possible_number(number):
                return Identifier(kind, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)), None
        except phonenumbers.NumberParseException:
            pass
        digits = re.sub(r"\D", "", text)
        return (Identifier(kind, digits) if digits else None), "unparsed_phone"
    return Identifier(kind, text), None


@dataclass(frozen=True)
class IdentityConfig:
    """Guard rails and normalisation settings. Changing them needs a rebuild (replay), like any projection."""

    default_region: str | None = "NL"                         # for phone numbers written without +country
    blocked_values: tuple[tuple[str, str], ...] = ()          # (kind, value as written): never linked
    blocked_patterns: tuple[tuple[str, str], ...] = ()        # (kind or "*", regex full-matching the normalised value)
    max_customers_per_identifier: int = 1                      # more customers than this: identifier quarantined
    merge_customers_min_trust: str = "verified"               # weakest link that may merge two customer_ids
    unlink_separates: bool = True                              # an unlink also refuses detours older than it
    anonymous_id_key: str = field(default="", repr=False)    # hex, the install's secret (load_identity_config
                                                               # reads it, never from identity.toml); "" in tests
    rules: Rules = field(init=False, repr=False, compare=False)
    _blocked: frozenset = field(init=False, repr=False, compare=False)
    _patterns: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rules = Rules(self.max_customers_per_identifier, Trust.parse(self.merge_customers_min_trust),
                      self.unlink_separates, bytes.fromhex(self.anonymous_id_key))
        blocked = {normalise(kind, value, self.default_region)[0] for kind, value in self.blocked_values}
        patterns = tuple((kind, re.compile(regex)) for kind, regex in self.blocked_patterns)
        object.__setattr__(self, "rules", rules)
        object.__setattr__(self, "_blocked", frozenset(blocked - {None}))
        object.__setattr__(self, "_patterns", patterns)

    def blocked(self, node: Identifier) -> bool:
        if node in self._blocked:
            return True
        return bool(self._patterns) and any(
            kind in ("*", node.kind) and regex.fullmatch(node.value) for kind, regex in self._patterns)


@lru_cache(maxsize=1024)
def envelope_trust(event_type: str, has_customer_id: bool) -> Trust | None:
    for prefix, with_id, without_id, _why in ENVELOPE_TRUST:
        if event_type.startswith(prefix):
            return with_id if has_customer_id else without_id
    return O
