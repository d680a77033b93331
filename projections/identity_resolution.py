"""Identity resolution: decoded events in, one canonical customer id and auditable decisions out.

Why: every representative on every channel must see the same customer at once
(domain.md section 3), yet a wrong merge mixes two people's data, so merges must be
explainable and reversible (issue 3). This module reads the identity hints of any
event, normalises them, turns co-occurrence and explicit identity events into trusted
link evidence, and lets ``identity_graph`` derive the customers. Pure: no I/O.

API::

    resolver = IdentityResolver(IdentityConfig(default_region="NL", blocked_values=(("phone", "020 123 4567"),)))
    res = resolver.observe(record)   # record: decoded Avro-shaped dict (Catalogue.validate(...).record)
    res.customer_id                  # canonical id of the event's strongest hint (None if all hints are blocked)
    res.decisions                    # IdentityLinked / IdentityUnlinked / CustomerMerged / CustomerSplit / IdentityFinding
    resolver.customer_of("email", " Ann@Example.COM ")      # -> "CU-42" (input normalised like events)
    resolver.identifiers_of("CU-42")                         # -> [("email", "ann@example.com", "verified"), ...]
    IdentityResolver.from_dict(resolver.to_dict(), config)  # plain dicts/lists/str/int only

Rules this module adds to ``identity_graph``'s replay:

- links: all identifiers on one event (envelope hints, plus ``identifier``/``identifier_a``/
  ``identifier_b`` of identity events) are linked pairwise, with the trust of ENVELOPE_TRUST;
  an identity event's own ``trust`` applies to all of them (``unknown`` = claimed), and the
  pair an identifiers_linked event names keeps it exactly. Cookies and devices never link
  above observed (KIND_CEILING), except in that named pair.
- an identifiers_unlinked event links nothing: its pair's older evidence is voided.
- canonical id: the smallest customer_id in the customer, else ``anon-<hash>`` of its
  earliest-seen identifier; derived from the events alone, so a replay gives the same ids.
- a repeated event_id changes nothing (same answer, no decisions); blocked values are
  dropped before anything else (one ``blocked_value`` finding per value).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import ClassVar, Iterable, NamedTuple

import phonenumbers

from touchstream.events.envelope import KEY_PRIORITY
from touchstream.projections.identity_graph import (
    CUSTOMER_ID, Derivation, Evidence, IdentityGraph, Identifier, Rules, Separation, Trust, pair_of,
)

__all__ = ["IdentityResolver", "IdentityConfig", "Resolution", "Identifier", "Trust", "normalise", "ENVELOPE_TRUST",
           "IdentityLinked", "IdentityUnlinked", "CustomerMerged", "CustomerSplit", "IdentityFinding"]

KINDS = frozenset(("customer_id", "email", "phone", "cookie_id", "device_id", "loyalty_card", "account_number"))
LINKED_EVENT, UNLINKED_EVENT = "identity.identifiers_linked", "identity.identifiers_unlinked"
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
    rules: Rules = field(init=False, repr=False, compare=False)
    _blocked: frozenset = field(init=False, repr=False, compare=False)
    _patterns: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rules = Rules(self.max_customers_per_identifier, Trust.parse(self.merge_customers_min_trust),
                      self.unlink_separates)
        blocked = {normalise(kind, value, self.default_region)[0] for kind, value in self.blocked_values}
        patterns = tuple((kind, re.compile(regex)) for kind, regex in self.blocked_patterns)
        object.__setattr__(self, "rules", rules)
        object.__setattr__(self, "_blocked", frozenset(blocked - {None}))
        object.__setattr__(self, "_patterns", patterns)

    def blocked(self, node: Identifier) -> bool:
        return node in self._blocked or any(
            kind in ("*", node.kind) and regex.fullmatch(node.value) for kind, regex in self._patterns)


class Resolution(NamedTuple):
    customer_id: str | None
    decisions: list


class _Link(NamedTuple):
    a: Identifier
    b: Identifier
    trust: Trust
    reason: str


@lru_cache(maxsize=1024)
def envelope_trust(event_type: str, has_customer_id: bool) -> Trust | None:
    for prefix, with_id, without_id, _why in ENVELOPE_TRUST:
        if event_type.startswith(prefix):
            return with_id if has_customer_id else without_id
    return O


def _capped(a: Identifier, b: Identifier, trust: Trust) -> Trust:
    return min(trust, KIND_CEILING.get(a.kind, V), KIND_CEILING.get(b.kind, V))


def _millis(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


def _event_trust(record: dict, hints: list[Identifier]) -> Trust:
    """What the event proves: an identity event says so itself, any other earns it by type (ENVELOPE_TRUST)."""
    event_type = record["envelope"]["event_type"]
    if event_type.startswith("identity."):
        return Trust.parse(record.get("trust"))
    return envelope_trust(event_type, any(n.kind == CUSTOMER_ID for n in hints))


def _explicit(record: dict) -> list[tuple[str, str]]:
    return [(ident["kind"], ident["value"]) for name in ("identifier", "identifier_a", "identifier_b")
            if isinstance(ident := record.get(name), dict)]


# -- decisions: events to publish, each saying why, which event, which identifiers -----------------
class Cause(NamedTuple):
    """The event being observed when a decision was taken."""

    event_id: str
    reason: str
    trust: Trust
    pair: tuple | None   # the unlinked pair, for an unlink


class _Decision:
    event_type: ClassVar[str]

    def as_dict(self) -> dict:
        """Plain JSON-ready dict (identifiers as {kind, value}), tagged with the event type to publish."""
        plain = lambda v: ({"kind": v.kind, "value": v.value} if isinstance(v, Identifier)  # noqa: E731
                           else [plain(x) for x in v] if isinstance(v, tuple) else v)
        return {"event_type": self.event_type, **{f.name: plain(getattr(self, f.name)) for f in fields(self)}}


@dataclass(frozen=True)
class IdentityLinked(_Decision):
    """A link between two identifiers now counts towards ``customer_id``."""

    event_type: ClassVar[str] = "identity.linked"
    customer_id: str
    identifiers: tuple      # (Identifier, Identifier)
    trust: str
    reason: str             # "<event_type>:<how/reason>" of the evidence
    event_id: str           # the event that gave the evidence
    decided_by: str         # the event being observed when it was decided


@dataclass(frozen=True)
class IdentityUnlinked(_Decision):
    """A link no longer counts: retracted by an unlink, or refused after a re-derivation (``reason`` says which)."""

    event_type: ClassVar[str] = "identity.unlinked"
    customer_id: str        # the customer it counted for
    identifiers: tuple
    reason: str
    event_id: str           # the evidence that had made it
    decided_by: str


@dataclass(frozen=True)
class CustomerMerged(_Decision):
    """Customers ``from_ids`` are now ``into_id`` (an anonymous profile gaining a customer_id counts too)."""

    event_type: ClassVar[str] = "customer.merged"
    from_ids: tuple
    into_id: str
    because: tuple | None   # the link (two identifiers) that joined them
    trust: str | None
    reason: str
    event_id: str | None    # the event that gave that link
    decided_by: str


@dataclass(frozen=True)
class CustomerSplit(_Decision):
    """Customer ``from_id`` falls apart into ``into_ids`` (an unlink, or an identifier over the cap)."""

    event_type: ClassVar[str] = "customer.split"
    from_id: str
    into_ids: tuple
    because: tuple          # the unlinked pair, or the quarantined identifier(s)
    trust: str
    reason: str
    decided_by: str


@dataclass(frozen=True)
class IdentityFinding(_Decision):
    """A guard rail acted: blocked_value, unparsed_phone, identifier_cap, trust_guard or separated."""

    event_type: ClassVar[str] = "identity.finding"
    rule: str
    identifiers: tuple
    customers: tuple        # the customers involved (for identifier_cap: those its links reached)
    event_id: str
    decided_by: str


def decide(before: Derivation, after: Derivation, cause: Cause) -> list:
    """The decisions that turn ``before`` into ``after`` (one re-derivation), in a deterministic order."""
    return [*_link_changes(before, after, cause), *_customer_changes(before, after, cause),
            *_findings(before, after, cause)]


def _link_changes(before: Derivation, after: Derivation, cause: Cause) -> list:
    out: list = []
    for pair in sorted(after.accepted.keys() - before.accepted.keys()):
        ev = after.accepted[pair]
        out.append(IdentityLinked(after.canonical[pair[0]], pair, ev.trust.symbol, ev.reason, ev.event_id,
                                  cause.event_id))
    for pair in sorted(before.accepted.keys() - after.accepted.keys()):
        rule = after.refused.get(pair, (cause.reason,))[0]
        out.append(IdentityUnlinked(before.canonical[pair[0]], pair, rule, before.accepted[pair].event_id,
                                    cause.event_id))
    return out


def _customer_changes(before: Derivation, after: Derivation, cause: Cause) -> list:
    targets: dict = {}
    sources: dict = {}
    for node, old in before.canonical.items():
        targets.setdefault(old, set()).add(after.canonical[node])
        sources.setdefault(after.canonical[node], set()).add(old)
    out: list = []
    for new in sorted(sources):   # merged: an old customer that went wholly into another
        merged = tuple(sorted(o for o in sources[new] if o != new and len(targets[o]) == 1))
        if merged:
            pair, ev = _bridge(new, before, after)
            out.append(CustomerMerged(merged, new, pair, ev and ev.trust.symbol, ev.reason if ev else "renamed",
                                      ev and ev.event_id, cause.event_id))
    for old in sorted(targets):
        if len(targets[old]) > 1:
            because = cause.pair or tuple(sorted(after.quarantined.keys() - before.quarantined.keys()))
            out.append(CustomerSplit(old, tuple(sorted(targets[old])), because, cause.trust.symbol, cause.reason,
                                     cause.event_id))
    return out


def _bridge(into: str, before: Derivation, after: Derivation) -> tuple:
    """The first link (replay order) that joined parts of different old customers; else one that joined new ones."""
    parent: dict = {}
    labels: dict = {}
    attach = (None, None)

    def find(n):
        while n in parent:
            n = parent[n]
        return n

    for pair, ev in after.merges:
        if after.canonical[pair[0]] != into:
            continue
        ra, rb = find(pair[0]), find(pair[1])
        la = labels.get(ra, {before.canonical[ra]} if ra in before.canonical else set())
        lb = labels.get(rb, {before.canonical[rb]} if rb in before.canonical else set())
        if la and lb and not (la <= lb or lb <= la):
            return pair, ev
        if attach[0] is None and bool(la) != bool(lb):
            attach = (pair, ev)
        parent[rb] = ra
        labels[ra] = la | lb
    return attach


def _findings(before: Derivation, after: Derivation, cause: Cause) -> list:
    out = [IdentityFinding("identifier_cap", (node,), customers, cause.event_id, cause.event_id)
           for node, customers in sorted(after.quarantined.items()) if node not in before.quarantined]
    for pair, (rule, ev) in sorted(after.refused.items()):
        if rule != "identifier_cap" and before.refused.get(pair, ("",))[0] != rule:
            customers = tuple(sorted({after.canonical[n] for n in pair}))
            out.append(IdentityFinding(rule, pair, customers, ev.event_id, cause.event_id))
    return out


class IdentityResolver:
    """Resolves every event's identity hints to a canonical customer id, as events arrive."""

    def __init__(self, config: IdentityConfig | None = None):
        self.config = config or IdentityConfig()
        self._graph = IdentityGraph(self.config.rules)
        self._events: set[str] = set()
        self._node_trust: dict[Identifier, Trust] = {}
        self._notes: dict[Identifier, str] = {}
        self._reported: set[tuple[str, Identifier]] = set()   # one finding per blocked / odd identifier

    # -- the stream ----------------------------------------------------------------
    def observe(self, record: dict) -> Resolution:
        env = record["envelope"]
        event_id, event_type = env["event_id"], env["event_type"]
        if event_id in self._events:
            return Resolution(self._strongest(self._nodes(record, None)), [])
        self._events.add(event_id)
        decisions: list = []
        hints = self._identifiers(env["identity"].items(), event_id, decisions)
        explicit = self._identifiers(_explicit(record), event_id, decisions)
        at, trust = _millis(env["occurred_at"]), _event_trust(record, hints)
        seeds = self._sightings(record, hints, explicit, at, trust)
        cause = Cause(event_id, event_type, trust, None)
        if event_type == UNLINKED_EVENT:
            cause = self._unlink(record, explicit, at, trust, seeds)
        else:
            for link in self._links(record, hints, explicit, trust):
                if self._graph.add(pair_of(link.a, link.b), Evidence(at, event_id, link.trust, link.reason)):
                    seeds.update((link.a, link.b))
        if seeds:
            decisions += decide(*self._graph.rederive(seeds), cause)
        return Resolution(self._strongest(hints + explicit), decisions)

    def _identifiers(self, items: Iterable, event_id: str, decisions: list | None) -> list[Identifier]:
        """Normalised, deduplicated, blocked ones dropped (reported once each when ``decisions`` is given)."""
        out: list[Identifier] = []
        for kind, value in items:
            node, note = normalise(kind, value, self.config.default_region) if value is not None else (None, None)
            if node is None or node in out:
                continue
            rule = "blocked_value" if self.config.blocked(node) else note
            if rule and decisions is not None and (rule, node) not in self._reported:
                self._reported.add((rule, node))
                decisions.append(IdentityFinding(rule, (node,), (), event_id, event_id))
            if rule == "blocked_value":
                continue
            if note:
                self._notes[node] = note
            out.append(node)
        return out

    def _nodes(self, record: dict, decisions: list | None) -> list[Identifier]:
        env = record["envelope"]
        items = list(env["identity"].items()) + _explicit(record)
        return self._identifiers(items, env["event_id"], decisions)

    def _sightings(self, record: dict, hints: list, explicit: list, at: int, trust: Trust) -> set:
        """Register every identifier (with how well it was seen); a new or earlier-seen node must be (re)derived."""
        event_type = record["envelope"]["event_type"]
        lone = trust if event_type.startswith("identity.") else envelope_trust(event_type, False)
        seeds = set()
        for node in hints + explicit:
            if self._graph.touch(node, at):
                seeds.add(node)
            best = min(lone, KIND_CEILING.get(node.kind, V))
            if best > self._node_trust.get(node, 0):
                self._node_trust[node] = best
        return seeds

    def _links(self, record: dict, hints: list, explicit: list, trust: Trust) -> list[_Link]:
        """Every pair of identifiers on the event, with the trust the event earns (see ENVELOPE_TRUST)."""
        event_type = record["envelope"]["event_type"]
        detail = (record.get("reason") or record.get("how")) if event_type.startswith("identity.") else None
        reason = f"{event_type}:{detail or 'together'}"
        nodes = hints + [n for n in explicit if n not in hints]
        links = [_Link(a, b, _capped(a, b, trust), reason) for i, a in enumerate(nodes) for b in nodes[i + 1:]]
        if event_type == LINKED_EVENT and len(explicit) == 2:   # the stated pair keeps its stated trust
            direct = pair_of(*explicit)
            links = [k for k in links if pair_of(k.a, k.b) != direct] + [_Link(*direct, trust, reason)]
        return links

    def _unlink(self, record: dict, explicit: list, at: int, trust: Trust, seeds: set) -> Cause:
        """identifiers_unlinked: void the pair's older evidence and re-derive both sides. Envelope hints are not linked."""
        reason = f"{UNLINKED_EVENT}:{record.get('reason') or 'unknown'}"
        event_id = record["envelope"]["event_id"]
        if len(explicit) != 2:
            return Cause(event_id, reason, trust, None)
        pair = pair_of(*explicit)
        self._graph.separate(Separation(pair, at, event_id, trust, reason))
        seeds.update(pair)
        return Cause(event_id, reason, trust, pair)

    # -- queries -------------------------------------------------------------------
    def _strongest(self, nodes: list[Identifier]) -> str | None:
        for kind in KEY_PRIORITY:
            for node in nodes:
                if node.kind == kind:
                    return self._graph.canonical.get(node)
        return None

    def customer_of(self, kind: str, value: str) -> str | None:
        node, _note = normalise(kind, value, self.config.default_region)
        return self._graph.canonical.get(node) if node is not None else None

    def identifiers_of(self, customer_id: str) -> list[tuple[str, str, str]]:
        """(kind, value, trust): trust is the best of how the identifier was seen and of its counted links."""
        out = []
        for node in sorted(self._graph.members.get(customer_id, ())):
            trust = V if node.kind == CUSTOMER_ID else self._node_trust.get(node, C)
            for rule, ev in self._graph.links.get(node, {}).values():
                if rule == "accepted":
                    trust = max(trust, ev.trust)
            out.append((node.kind, node.value, trust.symbol))
        return out

    def links_of(self, customer_id: str) -> list[tuple[Identifier, Identifier, str, str, str]]:
        """The links that hold a customer together: (a, b, trust, reason, event_id), the audit trail of a 360."""
        links = {pair: ev for node in self._graph.members.get(customer_id, ())
                 for pair, (rule, ev) in self._graph.links.get(node, {}).items() if rule == "accepted"}
        return [(*pair, ev.trust.symbol, ev.reason, ev.event_id) for pair, ev in sorted(links.items())]

    def customers(self) -> dict[str, list[Identifier]]:
        return {cid: sorted(nodes) for cid, nodes in sorted(self._graph.members.items())}

    def assignment(self) -> dict[str, str]:
        """Every identifier ("kind:value") -> its canonical customer id: what replays are compared on."""
        return {str(node): cid for node, cid in sorted(self._graph.canonical.items())}

    def findings(self) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
        """Standing findings: (rule, identifiers, customers) for quarantined identifiers and refused links."""
        graph = self._graph
        out = [("identifier_cap", (str(n),), customers) for n, customers in sorted(graph.quarantined.items())]
        refused = {(rule, pair) for links in graph.links.values() for pair, (rule, _ev) in links.items()
                   if rule not in ("accepted", "identifier_cap")}
        out += [(rule, tuple(map(str, pair)), ()) for rule, pair in sorted(refused)]
        return out

    def notes(self) -> dict[str, str]:
        return {str(node): note for node, note in sorted(self._notes.items())}

    # -- state as plain data -------------------------------------------------------
    def to_dict(self) -> dict:
        """Facts only (events seen, sightings, evidence, unlinks): the customers are re-derived on load."""
        g = self._graph
        return {
            "version": 1,
            "events": sorted(self._events),
            "nodes": [[n.kind, n.value, g.first_seen[n], self._node_trust.get(n, C).symbol, self._notes.get(n)]
                      for n in sorted(g.first_seen)],
            "evidence": [[*pair[0], *pair[1], ev.at, ev.event_id, ev.trust.symbol, ev.reason]
                         for pair, by_trust in sorted(g.evidence.items()) for _t, bucket in sorted(by_trust.items())
                         for ev in bucket],
            "separations": sorted([*s.pair[0], *s.pair[1], s.at, s.event_id, s.trust.symbol, s.reason]
                                  for s in {s for seps in g.separations.values() for s in seps}),
            "reported": sorted([rule, *node] for rule, node in self._reported),
        }

    @classmethod
    def from_dict(cls, data: dict, config: IdentityConfig | None = None) -> "IdentityResolver":
        if data.get("version") != 1:
            raise ValueError(f"unknown identity state version {data.get('version')!r}")
        resolver = cls(config)
        g = resolver._graph
        resolver._events = set(data["events"])
        for kind, value, at, trust, note in data["nodes"]:
            node = Identifier(kind, value)
            g.first_seen[node] = at
            resolver._node_trust[node] = Trust.parse(trust)
            if note:
                resolver._notes[node] = note
        for ka, va, kb, vb, at, event_id, trust, reason in data["separations"]:
            g.separate(Separation((Identifier(ka, va), Identifier(kb, vb)), at, event_id, Trust.parse(trust), reason))
        for ka, va, kb, vb, at, event_id, trust, reason in data["evidence"]:
            g.add((Identifier(ka, va), Identifier(kb, vb)), Evidence(at, event_id, Trust.parse(trust), reason))
        resolver._reported = {(rule, Identifier(kind, value)) for rule, kind, value in data["reported"]}
        g.rederive(g.first_seen)
        return resolver
