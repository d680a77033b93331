"""Identity decisions: the events to publish when a re-derivation changes the customers.

Why: a wrong merge mixes two people's data, so every change must be explainable and
reversible (issue 3). ``decide`` compares what the graph held before a re-derivation
with what it holds after and says, per change, why, which event gave the evidence and
which event was being observed. Re-exported by ``identity_resolution``. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, NamedTuple

from touchstream.projections.identity_facts import Identifier, Trust
from touchstream.projections.identity_replay import Derivation


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
    if all(after.canonical[node] == old for node, old in before.canonical.items()):
        return []   # every identifier kept its customer: nothing merged, nothing split
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
    if not after.quarantined and not after.refused:
        return []   # no guard rail acted
    out = [IdentityFinding("identifier_cap", (node,), customers, cause.event_id, cause.event_id)
           for node, customers in sorted(after.quarantined.items()) if node not in before.quarantined]
    for pair, (rule, ev) in sorted(after.refused.items()):
        if rule != "identifier_cap" and before.refused.get(pair, ("",))[0] != rule:
            customers = tuple(sorted({after.canonical[n] for n in pair}))
            out.append(IdentityFinding(rule, pair, customers, ev.event_id, cause.event_id))
    return out
