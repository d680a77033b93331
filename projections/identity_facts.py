"""The facts of the identity graph: identifiers, how trusted a link is, link evidence and unlinks.

Why a module of its own: these value types are shared by the replay
(``identity_replay``), the graph that keeps them (``identity_graph``), the
decisions derived from them (``identity_decisions``) and the resolver that
records them (``identity_resolution``); none of those needs the others to
describe a fact. Pure: no I/O.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

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
