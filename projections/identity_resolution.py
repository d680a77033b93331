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
    resolver = IdentityResolver(config, journal=True)
    resolver.changes()               # Facts: rows added or changed since the last call (``identity_journal``)
    IdentityResolver.from_facts(store_facts, config, journal=True)   # restore from rows
    gone = resolver.forgetting("erasure-1", ["CU-42"])   # an erasure: what goes (``identity_forget``)
    resolver.forget(gone)            # -> customers to announce; CU-42 suppressed as a customer_id hint from now

Rules this module adds to ``identity_graph``'s replay:

- links: all identifiers on one event (envelope hints, plus ``identifier``/``identifier_a``/
  ``identifier_b`` of identity events) are linked pairwise, with the trust of ENVELOPE_TRUST;
  an identity event's own ``trust`` applies to all of them (``unknown`` = claimed), and the
  pair an identifiers_linked event names keeps it exactly. Cookies and devices never link
  above observed (KIND_CEILING), except in that named pair.
- an identifiers_unlinked event links nothing: its pair's older evidence is voided.
- canonical id: the smallest customer_id in the customer, else ``anon-`` + an HMAC of its
  earliest-seen identifier keyed with the installation's secret (``IdentityConfig.anonymous_id_key``);
  derived from the events and that key alone, so a replay with the same key gives the same ids.
- a repeated event_id changes nothing (same answer, no decisions); blocked values are
  dropped before anything else (one ``blocked_value`` finding per value); a customer_id hint
  that names a forgotten (erased) customer is dropped silently, as if absent (``identity_forget``).

Normalisation, ``IdentityConfig`` and the trust table live in ``identity_normalise``, the
decision events and the decision diff in ``identity_decisions`` (both re-exported here), and
what one event says (its explicit identifiers, trust and links) in ``identity_links``.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

from touchstream.projections import identity_forget

from touchstream.projections.identity_decisions import (  # noqa: F401  (re-exported)
    Cause, CustomerMerged, CustomerSplit, IdentityFinding, IdentityLinked, IdentityUnlinked, decide,
)
from touchstream.projections.identity_graph import (  # noqa: F401  (Derivation, Rules re-exported)
    CUSTOMER_ID, Derivation, Evidence, IdentityGraph, Identifier, Rules, Separation, Trust, pair_of,
)
from touchstream.projections.identity_journal import FACT_KINDS, NO_JOURNAL, Facts, Journal, link_row, reported_row
from touchstream.projections.identity_links import (
    UNLINKED_EVENT, anchor, event_trust, explicit, links, lone_trust, membership_moves, millis,
)
from touchstream.projections.identity_normalise import (  # noqa: F401  (re-exported)
    ENVELOPE_TRUST, KIND_CEILING, KINDS, C, IdentityConfig, O, V, envelope_trust, normalise,
)

__all__ = ["IdentityResolver", "IdentityConfig", "Resolution", "Identifier", "Trust", "normalise", "ENVELOPE_TRUST",
           "IdentityLinked", "IdentityUnlinked", "CustomerMerged", "CustomerSplit", "IdentityFinding"]

class Resolution(NamedTuple):
    customer_id: str | None
    decisions: list
    anchor: Identifier | None = None   # the hint that decides the customer (strongest kind): routes the event
    duplicate: bool = False            # an event id seen before: nothing changed, nothing to forward
    moved: tuple = ()                  # customers whose members changed, beyond the anchor joining its customer


class IdentityResolver:
    """Resolves every event's identity hints to a canonical customer id, as events arrive."""

    def __init__(self, config: IdentityConfig | None = None, *, journal: bool = False, forgotten: Iterable[str] = ()):
        self.config = config or IdentityConfig()
        self.forgotten = frozenset(Identifier(CUSTOMER_ID, cid) for cid in forgotten)   # erased: never a hint again
        self._graph = IdentityGraph(self.config.rules)
        self._events: set[str] = set()
        self._node_trust: dict[Identifier, Trust] = {}
        self._notes: dict[Identifier, str] = {}
        self._reported: set[tuple[str, Identifier]] = set()   # one finding per blocked / odd identifier
        self._journal = Journal() if journal else NO_JOURNAL  # only a resolver whose state is stored keeps one

    # -- the stream ----------------------------------------------------------------
    def observe(self, record: dict) -> Resolution:
        env = record["envelope"]
        event_id, event_type = env["event_id"], env["event_type"]
        if event_id in self._events:
            head = anchor(self._nodes(record, None))
            return Resolution(self._graph.canonical.get(head) if head else None, [], head, True)
        self._events.add(event_id)
        self._journal.event(event_id)
        decisions: list = []
        hints = self._identifiers(env["identity"].items(), event_id, decisions)
        named = explicit(record)
        named = self._identifiers(named, event_id, decisions) if named else []
        at, trust = millis(env["occurred_at"]), event_trust(record, hints)
        seeds = self._sightings(event_type, hints + named, at, trust)
        cause = None
        if event_type == UNLINKED_EVENT:
            cause = self._unlink(record, named, at, trust, seeds)
        else:
            pairs, reason = links(record, hints, named, trust)
            for pair, link_trust in pairs:
                ev = Evidence(at, event_id, link_trust, reason)
                self._journal.evidence(pair, ev)
                if self._graph.add(pair, ev):
                    seeds.update(pair)
        head, moved = anchor(hints + named), ()
        if seeds:
            before, after = self._graph.rederive(seeds)
            decisions += decide(before, after, cause or Cause(event_id, event_type, trust, None))
            moved = membership_moves(before.canonical, after.canonical, head)
        return Resolution(self._graph.canonical.get(head) if head else None, decisions, head, False, moved)

    def _identifiers(self, items: Iterable, event_id: str, decisions: list | None) -> list[Identifier]:
        """Normalised, deduplicated, blocked ones dropped (reported once each when ``decisions`` is given)."""
        out: list[Identifier] = []
        region, blocked, forgotten = self.config.default_region, self.config.blocked, self.forgotten
        for kind, value in items:
            if value is None:
                continue
            node, note = normalise(kind, value, region)
            if node is None or node in out or (forgotten and node in forgotten):
                continue
            rule = "blocked_value" if blocked(node) else note
            if rule:   # rare: a blocked value, or a note (then ``rule`` is the note)
                if decisions is not None and (rule, node) not in self._reported:
                    self._reported.add((rule, node))
                    self._journal.reported(rule, node)
                    decisions.append(IdentityFinding(rule, (node,), (), event_id, event_id))
                if rule == "blocked_value":
                    continue
                if self._notes.get(node) != note:
                    self._notes[node] = note
                    self._journal.node(node)
            out.append(node)
        return out

    def _nodes(self, record: dict, decisions: list | None) -> list[Identifier]:
        env = record["envelope"]
        items = list(env["identity"].items()) + explicit(record)
        return self._identifiers(items, env["event_id"], decisions)

    def _sightings(self, event_type: str, nodes: list, at: int, trust: Trust) -> set:
        """Register every identifier (with how well it was seen); a new or earlier-seen node must be (re)derived."""
        lone = lone_trust(event_type, trust)
        touch, node_trust, journal = self._graph.touch, self._node_trust, self._journal
        seeds = set()
        for node in nodes:
            if touch(node, at):
                seeds.add(node)
                journal.node(node)
            ceiling = KIND_CEILING.get(node.kind)   # min(lone, ceiling), lone when the kind has none
            best = lone if ceiling is None or lone <= ceiling else ceiling
            if best > node_trust.get(node, 0):
                node_trust[node] = best
                journal.node(node)
        return seeds

    def _unlink(self, record: dict, explicit: list, at: int, trust: Trust, seeds: set) -> Cause:
        """identifiers_unlinked: void the pair's older evidence and re-derive both sides. Envelope hints are not linked."""
        reason = f"{UNLINKED_EVENT}:{record.get('reason') or 'unknown'}"
        event_id = record["envelope"]["event_id"]
        if len(explicit) != 2:
            return Cause(event_id, reason, trust, None)
        pair = pair_of(*explicit)
        sep = Separation(pair, at, event_id, trust, reason)
        self._graph.separate(sep)
        self._journal.separation(sep)
        seeds.update(pair)
        return Cause(event_id, reason, trust, pair)

    # -- queries -------------------------------------------------------------------
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

    def members_of(self, customer_id: str) -> list[Identifier]:
        """The identifiers that make up a customer now (empty: no such customer, e.g. merged away)."""
        return sorted(self._graph.members.get(customer_id, ()))

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
    def changes(self) -> Facts:
        """The facts recorded since the last call, as rows (a store writes only these); needs ``journal=True``."""
        return self._journal.drain(self._node_row)

    def _node_row(self, node: Identifier) -> list:
        return [node.kind, node.value, self._graph.first_seen[node], self._node_trust.get(node, C).symbol,
                self._notes.get(node)]

    def facts(self) -> Facts:
        """Every fact (events seen, sightings, evidence, unlinks, findings reported), sorted."""
        g = self._graph
        return Facts(sorted(self._events), [self._node_row(n) for n in sorted(g.first_seen)],
                     [link_row(pair, ev) for pair, by_trust in sorted(g.evidence.items())
                      for _t, bucket in sorted(by_trust.items()) for ev in bucket],
                     sorted(link_row(s.pair, s) for s in {s for seps in g.separations.values() for s in seps}),
                     sorted(reported_row(rule, node) for rule, node in self._reported))

    def forgetting(self, erasure_id: str, customer_ids: Iterable[str]) -> identity_forget.Forgetting:
        """What forgetting these customers drops (``identity_forget.plan``); nothing changes yet."""
        return identity_forget.plan(erasure_id, customer_ids, self._graph.members, self._graph.canonical)

    def forget(self, gone: identity_forget.Forgetting) -> list[str]:
        """Drop every fact naming ``gone.nodes``, derive again the regions they touched, and suppress
        ``gone.ids`` from now on; the customers whose identifiers changed, sorted (an erased one has none).
        Equals ``from_facts`` of the facts left (``identity_forget.without``), without re-deriving the rest."""
        nodes, graph = gone.nodes, self._graph
        erased = {graph.canonical[node] for node in nodes if node in graph.canonical}
        before, after = graph.rederive(graph.remove(nodes), replay=True)
        for node in nodes:
            self._node_trust.pop(node, None)
            self._notes.pop(node, None)
        self._reported = {(rule, node) for rule, node in self._reported if node not in nodes}
        self._journal.forget(nodes)
        self.forgotten |= {Identifier(CUSTOMER_ID, cid) for cid in gone.ids}
        return sorted(erased | set(identity_forget.changed_customers(before.canonical, after.canonical)))

    @classmethod
    def from_facts(cls, facts: Facts, config: IdentityConfig | None = None, *,
                   journal: bool = False, forgotten: Iterable[str] = ()) -> "IdentityResolver":
        """The resolver the facts describe; the customers are re-derived. Separations go in before the
        evidence, so evidence an unlink voided is refused again however the rows were kept.
        ``forgotten``: the suppression list (erased customer ids)."""
        resolver = cls(config, journal=journal, forgotten=forgotten)
        g = resolver._graph
        resolver._events = set(facts.events)
        for kind, value, at, trust, note in facts.nodes:
            node = Identifier(kind, value)
            g.first_seen[node] = at
            resolver._node_trust[node] = Trust.parse(trust)
            if note:
                resolver._notes[node] = note
        for ka, va, kb, vb, at, event_id, trust, reason in facts.separations:
            g.separate(Separation((Identifier(ka, va), Identifier(kb, vb)), at, event_id, Trust.parse(trust), reason))
        for ka, va, kb, vb, at, event_id, trust, reason in facts.evidence:
            g.add((Identifier(ka, va), Identifier(kb, vb)), Evidence(at, event_id, Trust.parse(trust), reason))
        resolver._reported = {(rule, Identifier(kind, value)) for rule, kind, value in facts.reported}
        g.rederive(g.first_seen)
        return resolver

    def to_dict(self) -> dict:
        """Facts only (events seen, sightings, evidence, unlinks): the customers are re-derived on load."""
        return {"version": 1, **self.facts().as_dict()}

    @classmethod
    def from_dict(cls, data: dict, config: IdentityConfig | None = None, *,
                  journal: bool = False) -> "IdentityResolver":
        if data.get("version") != 1:
            raise ValueError(f"unknown identity state version {data.get('version')!r}")
        return cls.from_facts(Facts(*(data[kind] for kind in FACT_KINDS)), config, journal=journal)
