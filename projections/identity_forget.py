"""Forgetting erased customers: which identifiers go, the facts without them, and the suppression list.

Why: an erasure (issue 17) deletes a person's data keys, so nothing sealed of theirs can be read
again, but identity's state holds the identifiers in the clear (they are what it resolves). When it
reads ``SubjectErased`` it must drop every fact that names one of them, keep the customer ids as a
suppression list (a later event whose plaintext ``customer_id`` hint is one of them must not bring
the customer back) and tell the folds which customers changed.

What goes (``plan``): every identifier whose canonical customer is erased, and every ``customer_id``
identifier whose value is one of the erased ids (wherever it sits). Every fact row that names one of
them goes with it: the identifier's own row, the link evidence and unlinks of which it is an end, the
findings reported about it. The customers left are derived again where the dropped facts touched
them (``IdentityGraph.remove``: the regions of the identifiers left beside them, replayed whole), which
equals deriving everything from the facts that remain (``without``, ``IdentityResolver.from_facts``; the
tests check it) at the cost of those regions only. Event ids stay (they name no identifier), so an
erased event read again is a duplicate.

The suppression list (``Forgetting.ids``) holds the erased customer ids and every ``customer_id``
value among the identifiers forgotten (a customer merged from two CRM ids is erased as both).

Ordering between the erasure ledger and the raw topics: the forgotten ids apply from the moment the
``SubjectErased`` is read; an event observed before that had its facts dropped by the forgetting
itself. The two orders agree because after the erasure every other hint of the person opens as None
(its key is gone) and the customer_id hint is suppressed: forgetting the facts of events already
observed equals observing them without the person's hints (tests/unit/test_identity_erasure.py checks
it over generated streams). Events held in the stage's merge when the erasure arrives are stripped of
the forgotten identifiers (``strip``), as if they had been decoded after the keys were deleted.
One difference remains, documented rather than hidden: a link between two identifiers that survive,
made by an event that also carried a forgotten customer_id that did not join them (a refused or
capped link), keeps the trust that customer_id gave it, where a replay would give the trust of the
event without it. And a person who comes back after the erasure (an identifier of theirs sealed under
a new key) is a new customer; without a customer_id it is named, as before, after its earliest
identifier, so it may get the anonymous id the erased one had.

Idempotent by erasure id: a ``SubjectErased`` already applied is skipped (``IdentityStage.forget``);
applying its plan again would find nothing to drop anyway. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from touchstream.projections.identity_facts import CUSTOMER_ID, Identifier
from touchstream.projections.identity_journal import Facts
from touchstream.projections.identity_normalise import normalise
from touchstream.projections.identity_replay import anonymous_id

IDENTIFIER_FIELDS = ("identifier", "identifier_a", "identifier_b")   # what ``identity_links.explicit`` reads


@dataclass(frozen=True)
class Forgetting:
    """One erasure's effect on identity: the identifiers to drop and the customer ids to suppress."""

    erasure_id: str
    nodes: frozenset = field(default_factory=frozenset)   # Identifier
    ids: frozenset = field(default_factory=frozenset)     # customer ids for the suppression list

    def rows(self) -> list[tuple[str, str]]:
        """(customer_id, erasure_id) rows of the suppression list."""
        return [(cid, self.erasure_id) for cid in sorted(self.ids)]


def plan(erasure_id: str, customer_ids: Iterable[str], members: dict, canonical: dict) -> Forgetting:
    """What forgetting ``customer_ids`` drops, given the resolver's customers (``members``: id -> nodes)
    and ``canonical`` (node -> customer id)."""
    erased = set(customer_ids)
    nodes = {node for cid in erased for node in members.get(cid, ())}
    nodes |= {node for node in canonical if node.kind == CUSTOMER_ID and node.value in erased}
    ids = erased | {node.value for node in nodes if node.kind == CUSTOMER_ID}
    return Forgetting(erasure_id, frozenset(nodes), frozenset(ids))


def names(row: list, nodes: frozenset) -> bool:
    """A link row ([kind_a, value_a, kind_b, value_b, ...]) with an end among ``nodes``."""
    return Identifier(row[0], row[1]) in nodes or Identifier(row[2], row[3]) in nodes


def without(facts: Facts, nodes: frozenset) -> Facts:
    """The facts that name none of ``nodes`` (event ids are kept: they name no identifier)."""
    return Facts(list(facts.events),
                 [row for row in facts.nodes if Identifier(row[0], row[1]) not in nodes],
                 [row for row in facts.evidence if not names(row, nodes)],
                 [row for row in facts.separations if not names(row, nodes)],
                 [row for row in facts.reported if Identifier(row[1], row[2]) not in nodes])


def changed_customers(before: dict, after: dict) -> list[str]:
    """Customers whose identifiers differ between two node -> customer maps (one gone counts), sorted."""
    out: set[str] = set()
    for node, cid in before.items():
        if after.get(node) != cid:
            out.add(cid)
    for node, cid in after.items():
        if before.get(node) != cid:
            out.add(cid)
    return sorted(out)


def strip(record: dict, nodes: frozenset, region: str | None) -> None:
    """Blank, in place, the hints and named identifiers of ``record`` that are among ``nodes`` (a decoded
    event held back when the erasure came: as it would decode now that its keys are gone)."""
    if not nodes:
        return
    hints = record["envelope"]["identity"]
    for kind, value in list(hints.items()):
        if value is not None and normalise(kind, value, region)[0] in nodes:
            hints[kind] = None
    for name in IDENTIFIER_FIELDS:
        ident = record.get(name)
        if isinstance(ident, dict) and normalise(ident["kind"], ident["value"], region)[0] in nodes:
            record[name] = None


def clear_caches() -> None:
    """Drop the memoised normalisations and anonymous ids: they keep identifiers in memory."""
    normalise.cache_clear()
    anonymous_id.cache_clear()
