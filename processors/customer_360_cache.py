"""What the customer-360 sink keeps in memory: the profiles it folds onto, and who holds each identifier.

``ProfileCache``: an LRU of profiles over the fold states in DuckDB.

Why two tiers: memory is bounded (a profile is about 10 kB in Python objects, and the
customers are many), and refolding an evicted customer from its stored events cost
more the more customers there were. A profile the LRU lets go is written to
``FoldStates`` in the transaction of the batch that let it go, and read back (its row
deleted) when the customer has events again; only a customer with neither (new, moved,
or cached when the process last stopped) is refolded from its events. The invariant
(every row is the fold of all committed events of a customer out of the cache) is
described in ``projections/customer_360_fold_states.py``.
"""

from __future__ import annotations

from collections import OrderedDict

from typing import Iterable

from touchstream.projections import customer_360 as c360
from touchstream.projections.customer_360_fold_states import FoldStates
from touchstream.projections.customer_360_routing import Claim


# A profile of fewer events is not stored when evicted: refolding its few events when its customer
# returns (the history query runs for the batch's moved customers anyway) costs less than packing
# and unpacking it (about 90 + 80 µs, micro-bench: 100k customers, 400k events).
MIN_STORED_EVENTS = 4


class ProfileCache:
    def __init__(self, states: FoldStates, config: c360.Config, size: int):
        self.states, self.config, self.size = states, config, size
        self.min_stored = MIN_STORED_EVENTS
        self._lru: OrderedDict[str, c360.Profile] = OrderedDict()
        self.stats = {"restored": 0, "stored": 0}

    def bases(self, con, customers: set[str], moved: set[str]) -> tuple[dict[str, c360.Profile], set[str]]:
        """(profile as of the last commit, for the customers of ``customers`` found in memory or stored;
        the customers to refold from their events: the others, and every customer in ``moved``).

        Takes (deletes) the stored states of every customer it does not find in memory, and of
        ``moved``: all of them change in this batch. A stored state folded with another config
        is not used."""
        found = {c: self._lru[c] for c in customers - moved if c in self._lru}
        missed = (customers - found.keys()) | moved
        if missed:
            stored = self.states.take(con, missed)
            usable = {c: p for c, p in stored.items() if c not in moved and p.config == self.config}
            found.update(usable)
            self.stats["restored"] += len(usable)
        return found, (customers | moved) - found.keys()

    def keep(self, con, profiles: dict[str, c360.Profile], dropped: set[str]) -> None:
        """After the batch's folds: ``profiles`` become the newest; ``dropped`` customers (left without
        events) go; the least recently used beyond the size go too, stored by this batch's transaction
        unless they have fewer than ``min_stored`` events."""
        for customer in dropped:
            self._lru.pop(customer, None)
        for customer, profile in profiles.items():
            self._lru[customer] = profile
            self._lru.move_to_end(customer)
        evicted = {}
        while len(self._lru) > self.size:
            customer, profile = self._lru.popitem(last=False)
            if len(profile.applied) >= self.min_stored:
                evicted[customer] = profile
        if evicted:
            self.states.put(con, evicted)
            self.stats["stored"] += len(evicted)

    def clear(self) -> None:
        """After a rolled back batch: the memory may hold folds (and lack stored states) it undid."""
        self._lru.clear()

    def __len__(self) -> int:
        return len(self._lru)


class ClaimCache:
    """The claims of ``c360_identity`` (who holds an identifier, at which sequence) this sink read or
    wrote, an LRU in front of the table; an identifier nobody claims is remembered as None.

    Why: the sink asks twice per batch (the batch's identifiers, then those of every profile it
    writes), and each DuckDB lookup joins the whole identity table, which grows with the customers
    (claims lookups 11 -> 34 µs per event from 10k to 100k customers). Only this sink writes its
    version of the table, so what it read or wrote stays true until it writes again, through ``put``."""

    def __init__(self, store, size: int = 300_000):
        self.store, self.size = store, size
        self._lru: OrderedDict[str, Claim | None] = OrderedDict()

    def get(self, con, identifiers: Iterable[str]) -> dict[str, Claim]:
        """The current claim of each identifier that has one."""
        found, missing = {}, set()
        for key in set(identifiers):
            if key in self._lru:
                self._lru.move_to_end(key)
                found[key] = self._lru[key]
            else:
                missing.add(key)
        if missing:
            stored = self.store.claims(con, missing)
            for key in missing:
                found[key] = self._keep(key, stored.get(key))
        return {key: claim for key, claim in found.items() if claim is not None}

    def put(self, con, claims: Iterable[Claim]) -> None:
        claims = list(claims)
        self.store.put_claims(con, claims)
        for claim in claims:
            self._keep(claim.identifier, claim)

    def _keep(self, key: str, claim: Claim | None) -> Claim | None:
        self._lru[key] = claim
        self._lru.move_to_end(key)
        if len(self._lru) > self.size:
            self._lru.popitem(last=False)
        return claim

    def clear(self) -> None:
        """After a rolled back batch: it may hold claims the batch wrote."""
        self._lru.clear()
