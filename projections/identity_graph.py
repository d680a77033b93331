"""The identity graph: identifiers as nodes, evidence as edges, customers derived by a guarded replay.

Why not a union-find over the live stream: a union-find cannot split, and merges must
be reversible (issue 3). So the graph keeps every piece of link *evidence* (which
event, when, how trusted, why) and derives the customers from it. A change re-derives
only the connected part of the evidence graph it touches (its *region*), by replaying
that region's links through the guard rails in a fixed order: verified links first,
then observed, then claimed; within a trust level by event time, then event id. That
order depends on the evidence alone, so the customers are a function of the *set* of
events seen: arrival order, duplicates, restarts and late events all converge on what a
fresh replay gives, and an unlink equals a replay without the evidence it retracts.

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

Pure: no I/O.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Iterable, Mapping, NamedTuple

CUSTOMER_ID = "customer_id"


class Trust(IntEnum):
    """How sure a link is; ordered so ``max``/``<`` read naturally."""

    CLAIMED = 1
    OBSERVED = 2
    VERIFIED = 3

    @classmethod
    def parse(cls, symbol: object) -> "Trust":
        """Avro symbol -> Trust. ``unknown`` (or anything unexpected) counts as claimed: assume the least."""
        return cls.__members__.get(str(symbol).upper(), cls.CLAIMED)

    @property
    def symbol(self) -> str:
        return self.name.lower()


class Identifier(NamedTuple):
    kind: str
    value: str   # normalised

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


Pair = tuple  # (Identifier, Identifier), smaller first: a link has no direction


def pair_of(a: Identifier, b: Identifier) -> Pair:
    return (a, b) if a <= b else (b, a)


class Evidence(NamedTuple):
    """One event's claim that two identifiers belong together. Sorts by event time, then event id."""

    at: int          # occurred_at, epoch milliseconds
    event_id: str
    trust: Trust
    reason: str

    @property
    def key(self) -> tuple[int, str]:
        return self.at, self.event_id


class Separation(NamedTuple):
    """An unlink: evidence between ``pair`` older than ``key`` is void (and, if separating, so are detours)."""

    pair: Pair
    at: int
    event_id: str
    trust: Trust
    reason: str

    @property
    def key(self) -> tuple[int, str]:
        return self.at, self.event_id


@dataclass(frozen=True)
class Rules:
    """The guard rails the replay applies (see the module doc); ``IdentityConfig`` builds them."""

    max_customers_per_identifier: int = 1
    merge_customers_min_trust: Trust = Trust.VERIFIED
    separate: bool = True

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


def anonymous_id(node: Identifier) -> str:
    """Customer id of a part without a customer_id: stable across replays (a hash of its first identifier)."""
    return "anon-" + hashlib.sha1(str(node).encode()).hexdigest()[:20]


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
            cid = self.label.get(root) or anonymous_id(min(members, key=lambda n: (first_seen[n], n)))
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


class IdentityGraph:
    """Facts (nodes, evidence, separations) plus the customers derived from them, kept in step per region."""

    def __init__(self, rules: Rules):
        self.rules = rules
        self.first_seen: dict = {}      # Identifier -> occurred_at (ms) of the earliest event naming it
        self.evidence: dict = {}        # Pair -> {Trust: [Evidence, ...] sorted}
        self.adjacent: dict = {}        # Identifier -> {Identifier}: pairs with evidence
        self.separations: dict = {}     # Identifier -> [Separation] (under both ends)
        self._separation_keys: list = []
        self.canonical: dict = {}       # derived: Identifier -> customer id
        self.members: dict = {}         # derived: customer id -> {Identifier}
        self.links: dict = {}           # derived: Identifier -> {Pair: (rule or "accepted", Evidence)}
        self.quarantined: dict = {}     # derived: Identifier -> customers

    # -- facts ---------------------------------------------------------------------
    def touch(self, node: Identifier, at: int) -> bool:
        """Record a sighting; True when the node is new or was seen earlier than known (may rename an anon id)."""
        known = self.first_seen.get(node)
        if known is not None and known <= at:
            return False
        self.first_seen[node] = at
        return True

    def add(self, pair: Pair, ev: Evidence) -> bool:
        """Store evidence; True when the replay could change (a new earliest link, or the first after an unlink)."""
        if any(s.pair == pair and ev.key < s.key for s in self.separations.get(pair[0], ())):
            return False   # an unlink already voided this evidence
        by_trust = self.evidence.setdefault(pair, {})
        if not by_trust:
            self.adjacent.setdefault(pair[0], set()).add(pair[1])
            self.adjacent.setdefault(pair[1], set()).add(pair[0])
        bucket = by_trust.setdefault(ev.trust, [])
        i = bisect.bisect_left(bucket, ev)
        if i < len(bucket) and bucket[i] == ev:
            return False
        bucket.insert(i, ev)
        if i == 0:
            return True
        keys, previous = self._separation_keys, bucket[i - 1].key   # is ev the first link after some unlink?
        return self.rules.separate and bisect.bisect_right(keys, previous) < bisect.bisect_right(keys, ev.key)

    def separate(self, sep: Separation) -> None:
        """Void the evidence between sep.pair older than the unlink, and remember it for late evidence."""
        a, b = sep.pair
        for node in (a, b):
            self.separations.setdefault(node, []).append(sep)
        bisect.insort(self._separation_keys, sep.key)
        by_trust = self.evidence.get(sep.pair, {})
        for trust in list(by_trust):
            by_trust[trust] = [e for e in by_trust[trust] if e.key >= sep.key]
            if not by_trust[trust]:
                del by_trust[trust]
        if sep.pair in self.evidence and not by_trust:
            del self.evidence[sep.pair]
            self.adjacent[a].discard(b)
            self.adjacent[b].discard(a)

    # -- derivation ----------------------------------------------------------------
    def regions(self, seeds: Iterable[Identifier]) -> list[list]:
        """Connected parts of the evidence graph around ``seeds`` (each listed once)."""
        seen: set = set()
        out = []
        for seed in sorted(seeds):
            if seed in seen or seed not in self.first_seen:
                continue
            part, todo = [], [seed]
            seen.add(seed)
            while todo:
                node = todo.pop()
                part.append(node)
                for other in self.adjacent.get(node, ()):
                    if other not in seen:
                        seen.add(other)
                        todo.append(other)
            out.append(part)
        return out

    def rederive(self, seeds: Iterable[Identifier]) -> tuple[Derivation, Derivation]:
        """Replay every region around ``seeds`` and apply it; returns (before, after) over all of them.

        One pair for all regions: an unlink can leave the two sides of one old customer in
        two regions, and only together do they read as a split.
        """
        before, after = Derivation(), Derivation()
        for region in self.regions(seeds):
            old = self._snapshot(region)
            new = derive(region, *self._edges(region), self.first_seen, self.rules)
            self._apply(region, old, new)
            for total, part in ((before, old), (after, new)):
                total.canonical.update(part.canonical)
                total.accepted.update(part.accepted)
                total.refused.update(part.refused)
                total.quarantined.update(part.quarantined)
                total.merges.extend(part.merges)
        return before, after

    def _edges(self, region: list) -> tuple[list, list]:
        inside = set(region)
        seps = sorted({s for n in region for s in self.separations.get(n, ())
                       if s.pair[0] in inside and s.pair[1] in inside}, key=lambda s: s.key)
        seps = seps if self.rules.separate else []
        deadlines = sorted({s.key for s in seps})
        edges = []
        for node in region:
            for other in self.adjacent.get(node, ()):
                if node < other:
                    pair = (node, other)
                    edges.extend((pair, ev) for ev in _occurrences(self.evidence[pair], deadlines))
        edges.sort(key=replay_order)
        return edges, seps

    def _snapshot(self, region: list) -> Derivation:
        snap = Derivation()
        for node in region:
            if node in self.canonical:
                snap.canonical[node] = self.canonical[node]
            if node in self.quarantined:
                snap.quarantined[node] = self.quarantined[node]
            for pair, (rule, ev) in self.links.get(node, {}).items():
                if rule == "accepted":
                    snap.accepted[pair] = ev
                else:
                    snap.refused[pair] = (rule, ev)
        return snap

    def _apply(self, region: list, before: Derivation, after: Derivation) -> None:
        for node, cid in before.canonical.items():
            members = self.members[cid]
            members.discard(node)
            if not members:
                del self.members[cid]
        for node in region:
            self.links.pop(node, None)
            self.quarantined.pop(node, None)
        for pairs, status in ((after.accepted.items(), None), (after.refused.items(), True)):
            for pair, value in pairs:
                entry = value if status else ("accepted", value)
                for node in pair:
                    self.links.setdefault(node, {})[pair] = entry
        self.quarantined.update(after.quarantined)
        for node, cid in after.canonical.items():
            self.canonical[node] = cid
            self.members.setdefault(cid, set()).add(node)


def _occurrences(by_trust: Mapping, deadlines: list) -> list:
    """The evidence a replay looks at: per trust level the earliest, and the earliest after each unlink."""
    out = []
    for bucket in by_trust.values():
        picks = {bucket[0]}
        for deadline in deadlines:
            i = bisect.bisect_left(bucket, deadline)   # Evidence compares by (at, event_id, ...) first
            if i < len(bucket):
                picks.add(bucket[i])
        out.extend(picks)
    return out
