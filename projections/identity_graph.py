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

Most changes need no replay (``IdentityGraph._grow``): identifiers that join, or stay in, a
customer that keeps its id, in a region no guard rail can act in (at most one customer_id,
no unlink), are derived at the event's own identifiers, with the same result. The replay's
fixed cost per event is what limited the one global identity process.

The guard rails the replay applies (trust guard, cap, separation) are described in
``identity_replay``; the value types live in ``identity_facts``. Both are re-exported
here, so ``identity_graph`` stays the one import for the graph and its facts.

Pure: no I/O.
"""

from __future__ import annotations

import bisect
from typing import Iterable, Mapping

from touchstream.projections.identity_facts import (  # noqa: F401  (re-exported)
    CUSTOMER_ID, Evidence, Identifier, Pair, Separation, Trust, pair_of,
)
from touchstream.projections.identity_replay import (  # noqa: F401  (re-exported)
    Derivation, Rules, anonymous_id, derive, first_link, plain_customer, replay_order,
)


class IdentityGraph:
    """Facts (nodes, evidence, separations) plus the customers derived from them, kept in step per region."""

    closed_form = True   # derive changes no guard rail can act in without a replay (False: always replay)

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
        seps = self.separations.get(pair[0])
        if seps and any(s.pair == pair and ev.key < s.key for s in seps):
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
        keys = self._separation_keys   # is ev the first link after some unlink?
        if not keys or not self.rules.separate:
            return False
        return bisect.bisect_right(keys, bucket[i - 1].key) < bisect.bisect_right(keys, ev.key)

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

    def remove(self, nodes: set) -> set:
        """Drop ``nodes`` with every fact naming them (sightings, evidence, unlinks) and what was derived for
        them (an erasure); returns the identifiers left that shared evidence, an unlink or a derived link with
        one of them: their regions must be derived again, whole (``rederive(left, replay=True)``)."""
        left: set = set()
        for node in nodes:
            for other in self.adjacent.pop(node, ()):
                self.evidence.pop(pair_of(node, other), None)
                if other not in nodes:
                    self.adjacent[other].discard(node)
                    left.add(other)
            for sep in self.separations.pop(node, ()):
                left.update(other for other in sep.pair if other not in nodes)
                for other in sep.pair:
                    kept = [s for s in self.separations.get(other, ()) if s != sep]
                    if kept:
                        self.separations[other] = kept
                    else:
                        self.separations.pop(other, None)
            for pair in self.links.pop(node, {}):
                for other in pair:
                    if other not in nodes and self.links.get(other, {}).pop(pair, None) is not None:
                        left.add(other)
            cid = self.canonical.pop(node, None)
            if cid is not None:
                self.members[cid].discard(node)
                if not self.members[cid]:
                    del self.members[cid]
            self.first_seen.pop(node, None)
            self.quarantined.pop(node, None)
        self._separation_keys = sorted(s.key for s in {s for seps in self.separations.values() for s in seps})
        return left

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

    def rederive(self, seeds: Iterable[Identifier], *, replay: bool = False) -> tuple[Derivation, Derivation]:
        """Replay every region around ``seeds`` and apply it; returns (before, after) over all of them.
        ``replay``: never the closed form (after ``remove``, a region's derived state is not its derivation).

        One pair for all regions: an unlink can leave the two sides of one old customer in
        two regions, and only together do they read as a split. When only the seeds changed
        (``_grow``), the pair covers the seeds and their pairs: all that changed.
        """
        seeds = [seed for seed in seeds if seed in self.first_seen]
        regions = self.regions(seeds)
        if self.closed_form and not replay and len(regions) == 1:
            grown = self._grow(regions[0], seeds)
            if grown is not None:
                return grown
        parts = []
        for region in regions:
            old = self._snapshot(region)
            new = derive(region, *self._edges(region), self.first_seen, self.rules)
            self._apply(region, old, new)
            parts.append((old, new))
        if len(parts) == 1:
            return parts[0]
        before, after = Derivation(), Derivation()
        for old, new in parts:
            for total, part in ((before, old), (after, new)):
                total.canonical.update(part.canonical)
                total.accepted.update(part.accepted)
                total.refused.update(part.refused)
                total.quarantined.update(part.quarantined)
                total.merges.extend(part.merges)
        return before, after

    def _grow(self, region: list, seeds: list) -> tuple[Derivation, Derivation] | None:
        """The common change derived at its seeds alone: identifiers joining, or staying in, a customer that
        keeps its id, in a region no guard rail can act in (``plain``). None: derive the region whole.

        Why it is enough: after every re-derivation a region's state is its derivation, and an
        event changes only its seeds (sightings) and the pairs between them (evidence; ``add``
        says when that matters). Such a region is one customer whose every link counts with its
        first evidence (``plain_customer``), so where the customer keeps its id, the rest of the
        region is already what a replay gives, and it holds no refused link and no quarantined one.
        """
        if not self.separations.keys().isdisjoint(region):
            return None   # unlinked, even without separating: evidence is gone, and a link with it
        cid = plain_customer(region, self.first_seen, self.rules)
        if cid is None:
            return None
        if any(self.canonical.get(node, cid) != cid for node in seeds):
            return None   # merged or renamed: the replay's merges say how
        return self._settle(seeds, cid)

    def _settle(self, seeds: list, cid: str) -> tuple[Derivation, Derivation]:
        """Seeds into customer ``cid``, the pairs between them counted with their first link (``_grow``)."""
        before, after = Derivation(), Derivation()
        for node in seeds:
            after.canonical[node] = cid
            if node in self.canonical:
                before.canonical[node] = cid
            else:
                self.canonical[node] = cid
                self.members.setdefault(cid, set()).add(node)
        inside, links = set(seeds), self.links
        for node in seeds:
            for other in self.adjacent.get(node, ()):
                if node < other and other in inside:
                    pair = (node, other)
                    old = links.get(node, {}).get(pair)
                    if old is not None:
                        before.accepted[pair] = old[1]
                    after.accepted[pair] = ev = first_link(self.evidence[pair])
                    links.setdefault(node, {})[pair] = links.setdefault(other, {})[pair] = ("accepted", ev)
        return before, after

    def _pairs(self, region: list) -> list:
        adjacent = self.adjacent
        return [(node, other) for node in region for other in adjacent.get(node, ()) if node < other]

    def _edges(self, region: list) -> tuple[list, list]:
        inside = set(region)
        seps = sorted({s for n in region for s in self.separations.get(n, ())
                       if s.pair[0] in inside and s.pair[1] in inside}, key=lambda s: s.key)
        seps = seps if self.rules.separate else []
        deadlines = sorted({s.key for s in seps})
        edges = [(pair, ev) for pair in self._pairs(region) for ev in _occurrences(self.evidence[pair], deadlines)]
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
        """Replace the region's derived state with ``after`` (an identifier that stays put is left alone)."""
        old, new = before.canonical, after.canonical
        for node, cid in old.items():
            if new[node] != cid:
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
        for node, cid in new.items():
            if old.get(node) != cid:
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
