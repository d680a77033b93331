"""Which customer each event belongs to, as the fold stage learns it: highest sequence wins.

Why: the identity stage re-keys events by canonical customer id, and after a
merge or split it re-announces who holds which identifiers. Those records reach
the fold over several partitions in no particular order, so each claim
"identifier X belongs to customer C" carries the identity stage's sequence
number and the newest claim wins wherever it arrives. An event belongs to the
customer that holds its anchor (its strongest identifier), so a claim that
moves an anchor moves that event's history: both customers are refolded from
their events, which makes the result equal to a replay with the final identity.
Pure: no I/O.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple


class Claim(NamedTuple):
    identifier: str   # "kind:value"
    customer_id: str
    seq: int


class Routing(NamedTuple):
    updates: dict[str, Claim]    # identifier -> claim to store (newer than what was stored)
    owner: dict[str, str]        # identifier -> customer after this batch (for every identifier claimed)
    moved: set[str]              # customers that lost or gained history: refold them from their events


def route(claims: Iterable[Claim], stored: dict[str, Claim]) -> Routing:
    """Merge this batch's claims with the stored ones (``stored``: the current claim per identifier)."""
    best: dict[str, Claim] = {}
    for claim in claims:
        held = best.get(claim.identifier) or stored.get(claim.identifier)
        if held is None or claim.seq > held.seq:
            best[claim.identifier] = claim
    moved: set[str] = set()
    for identifier, claim in best.items():
        before = stored.get(identifier)
        if before is not None and before.customer_id != claim.customer_id:
            moved.update((before.customer_id, claim.customer_id))
    owner = {i: c.customer_id for i, c in stored.items()}
    owner.update({i: c.customer_id for i, c in best.items()})
    return Routing(best, owner, moved)



def departures(routing: Routing, stored: dict[str, Claim], local) -> dict[str, Claim]:
    """Identifiers this store must hand over: their stored claim named a customer of its own
    (``local(customer)``) and their new claim names one on another partition, so the events
    stored under them belong there now."""
    out = {}
    for identifier, claim in routing.updates.items():
        before = stored.get(identifier)
        if before is not None and local(before.customer_id) and not local(claim.customer_id):
            out[identifier] = claim
    return out
