"""The guarded replay: one region's link evidence in, the customers it makes out.

Why a replay and not a live union: the customers must be a function of the evidence
alone, so the graph (``identity_graph``) replays a region's links in a fixed order:
verified links first, then observed, then claimed; within a trust level by event time,
then event id (``replay_order``).

Guard rails applied during the replay:

- trust guard: two parts that each hold a customer_id merge only through a link of at
  least ``Rules.merge_customers_min_trust`` (never a claimed one);
- cap: an identifier (other than a customer_id) whose links reach more than
  ``Rules.max_customers_per_identifier`` distinct customers is quarantined, and the
  region is replayed again without any of its links (a shared office phone merges nothing).
  Observed and verified links count, also those the trust guard refuses (a phone seen with
  two customers is shared even if it merged neither); claimed ones never do, or anyone
  could disable someone else's e-mail address by typing it into a form;
- separation: an unlink of (a, b) at time T refuses every link older than T that would
  bring a and b together again by another path (``Rules.separate``; off = only the
  direct evidence between a and b is retracted).

A customer without a customer_id is named ``anon-`` + an HMAC-SHA256 of its earliest identifier,
keyed with ``Rules.anonymous_id_key``: an unkeyed hash would let anyone holding an id test a
guessed e-mail address against it. The key is the installation's secret; the identity process
reads it (``touchstream.identity.config_file``) and passes it in, so every replay with the same
key names the same customers the same way.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Mapping

from touchstream.projections.identity_facts import CUSTOMER_ID, Evidence, Identifier, Pair, Trust


@dataclass(frozen=True)
class Rules:
    """The guard rails the replay applies (see the module doc); ``IdentityConfig`` builds them."""

    max_customers_per_identifier: int = 1
    merge_customers_min_trust: Trust = Trust.VERIFIED
    separate: bool = True
    anonymous_id_key: bytes = field(default=b"", repr=False)   # the installation's secret (see the module doc)

    def __post_init__(self) -> None:
        if self.max_customers_per_identifier < 1:
            raise ValueError("max_customers_per_identifier must be at least 1")
        if self.merge_customers_min_trust < Trust.OBSERVED:
            raise ValueError("a claimed link never merges two customers: use observed or verified")


@dataclass
class Derivation:
    """What one replay decided for a region (or, as a snapshot, what the graph held before)."""

    canonical: dict = field(default_factory=dict)     # Identifier -> customer id
    accepted: dict = field(default_factory=dict)      # Pair -> Evidence that made the link count
    refused: dict = field(default_factory=dict)       # Pair -> (rule, Evidence) for links that never counted
    quarantined: dict = field(default_factory=dict)   # Identifier -> customers its links reached
    merges: list = field(default_factory=list)        # (Pair, Evidence) that joined two parts, replay order


@lru_cache(maxsize=1 << 14)   # a customer re-derived again soon keeps its name: no HMAC per re-derivation
def anonymous_id(node: Identifier, key: bytes) -> str:
    """Customer id of a part without a customer_id: stable across replays with the same ``key`` (an HMAC of
    its first identifier), and without the key no guess can be checked against it."""
    return "anon-" + hmac.new(key, str(node).encode(), hashlib.sha256).hexdigest()[:20]


def replay_order(item: tuple) -> tuple:
    """Verified first, then event time; within one event, links to a customer_id first (anchor to the account)."""
    pair, ev = item
    return -ev.trust, ev.at, ev.event_id, pair[0].kind != CUSTOMER_ID and pair[1].kind != CUSTOMER_ID, pair


class _Replay:
    """One pass of the guarded union over a region: a throwaway union-find; the facts stay in the graph."""

    def __init__(self, nodes: Iterable[Identifier], separations: list, rules: Rules, quarantined: dict):
        self.rules, self.separations, self.quarantined = rules, separations, quarantined
        self.parent = {n: n for n in nodes}
        self.size = dict.fromkeys(self.parent, 1)
        self.label = {n: n.value for n in self.parent if n.kind == CUSTOMER_ID}  # root -> smallest customer_id
        self.sides: dict = {}                                                    # root -> {(separation, side)}
        for i, sep in enumerate(separations):
            for side, node in enumerate(sep.pair):
                self.sides.setdefault(node, set()).add((i, side))
        self.reached: dict = {}
        self.result = Derivation(quarantined=dict(quarantined))

    def find(self, n: Identifier) -> Identifier:
        parent = self.parent
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    def play(self, edges: list) -> tuple | None:
        """Replay ``edges`` (in replay order). Returns (identifier, customers) when one crosses the cap."""
        accepted, refused = self.result.accepted, self.result.refused
        for pair, ev in edges:
            verdict = self._judge(pair, ev)
            if verdict is None:
                accepted.setdefault(pair, ev)
            elif isinstance(verdict, str):
                refused.setdefault(pair, (verdict, ev))
            else:
                return verdict
        return None

    def _judge(self, pair: Pair, ev: Evidence):
        x, y = pair
        if x in self.quarantined or y in self.quarantined:
            return "identifier_cap"
        rx, ry = self.find(x), self.find(y)
        if rx != ry and self._separated(rx, ry, ev):
            return "separated"
        labels = {label for label in (self.label.get(rx), self.label.get(ry)) if label is not None}
        for z in pair if ev.trust >= Trust.OBSERVED else ():   # counted before the trust guard: see module doc
            if z.kind != CUSTOMER_ID:
                reached = self.reached.setdefault(z, set())
                reached |= labels
                if len(reached) > self.rules.max_customers_per_identifier:
                    return z, tuple(sorted(reached))
        if rx == ry:
            return None
        if len(labels) == 2 and ev.trust < self.rules.merge_customers_min_trust:
            return "trust_guard"
        self._union(rx, ry)
        self.result.merges.append((pair, ev))
        return None

    def _separated(self, rx: Identifier, ry: Identifier, ev: Evidence) -> bool:
        mine, theirs = self.sides.get(rx), self.sides.get(ry)
        if not mine or not theirs:
            return False
        return any((i, 1 - side) in theirs and ev.key < self.separations[i].key for i, side in mine)

    def _union(self, rx: Identifier, ry: Identifier) -> None:
        if self.size[rx] < self.size[ry]:
            rx, ry = ry, rx
        self.parent[ry] = rx
        self.size[rx] += self.size[ry]
        if ry in self.label:
            label = self.label.pop(ry)
            self.label[rx] = min(label, self.label.get(rx, label))
        if ry in self.sides:
            self.sides.setdefault(rx, set()).update(self.sides.pop(ry))

    def finish(self, first_seen: Mapping) -> Derivation:
        groups: dict = {}
        for n in self.parent:
            groups.setdefault(self.find(n), []).append(n)
        for root, members in groups.items():
            cid = self.label.get(root)
            if cid is None:
                cid = anonymous_id(min(members, key=lambda n: (first_seen[n], n)), self.rules.anonymous_id_key)
            for n in members:
                self.result.canonical[n] = cid
        accepted = self.result.accepted
        self.result.refused = {p: r for p, r in self.result.refused.items() if p not in accepted}
        return self.result


def derive(nodes: list, edges: list, separations: list, first_seen: Mapping, rules: Rules) -> Derivation:
    """Replay a region's links (in replay order) until no identifier crosses the cap."""
    quarantined: dict = {}
    while True:
        replay = _Replay(nodes, separations, rules, quarantined)
        hub = replay.play(edges)
        if hub is None:
            return replay.finish(first_seen)
        quarantined[hub[0]] = hub[1]


def plain_customer(nodes: list, first_seen: Mapping, rules: Rules) -> str | None:
    """What ``derive`` names a connected region without an unlink in it, if no guard rail can act there:
    None when it holds two customer_ids.

    Why: most re-derivations are of a small region with at most one customer_id (a new
    cookie beside a known account), and sorting and replaying its links costs more than
    the rest of the event. With one label at most, the trust guard (two customers) and
    the cap (more customers than its minimum of one) cannot fire, and without an unlink
    nothing is separated: every link counts, with its ``first_link``, and the connected
    region is one customer, named as ``finish`` names it. ``IdentityGraph._grow`` relies on it.
    """
    label = None
    for node in nodes:
        if node.kind == CUSTOMER_ID:
            if label is not None:
                return None
            label = node.value
    if label is None:
        return anonymous_id(min(nodes, key=lambda n: (first_seen[n], n)), rules.anonymous_id_key)
    return label


def first_link(by_trust: Mapping) -> Evidence:
    """A pair's evidence a replay meets first when no unlink lies between: the earliest of its best trust."""
    return by_trust[max(by_trust)][0]
