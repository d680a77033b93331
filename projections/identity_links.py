"""What one event says about identity: its explicit identifiers, the trust it earns, the links it makes.

Why a module of its own: these rules read a single decoded event and nothing the resolver
keeps, so they can be read (and changed) without the resolver's bookkeeping; and they run
for every event, so they are written to cost little per event. Used by
``identity_resolution``, which documents the rules (all identifiers on an event linked
pairwise, ENVELOPE_TRUST, KIND_CEILING, the stated pair of identifiers_linked). Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from touchstream.events.envelope import KEY_PRIORITY
from touchstream.projections.identity_facts import CUSTOMER_ID, Identifier, Trust, pair_of
from touchstream.projections.identity_normalise import KIND_CEILING, envelope_trust

LINKED_EVENT, UNLINKED_EVENT = "identity.identifiers_linked", "identity.identifiers_unlinked"
_EPOCH, _MILLISECOND = datetime(1970, 1, 1, tzinfo=timezone.utc), timedelta(milliseconds=1)
_RANK = {kind: rank for rank, kind in enumerate(KEY_PRIORITY)}


def millis(moment: datetime) -> int:
    return (moment - _EPOCH) // _MILLISECOND


def explicit(record: dict) -> list[tuple[str, str]]:
    """(kind, value) of the identifiers an identity event names (``identifier``, ``identifier_a``/``_b``)."""
    out = []
    for name in ("identifier", "identifier_a", "identifier_b"):
        ident = record.get(name)
        if isinstance(ident, dict):
            out.append((ident["kind"], ident["value"]))
    return out


def event_trust(record: dict, hints: list[Identifier]) -> Trust:
    """What the event proves: an identity event says so itself, any other earns it by type (ENVELOPE_TRUST)."""
    event_type = record["envelope"]["event_type"]
    if event_type.startswith("identity."):
        return Trust.parse(record.get("trust"))
    return envelope_trust(event_type, CUSTOMER_ID in [n.kind for n in hints])


def lone_trust(event_type: str, trust: Trust) -> Trust:
    """How well an identifier alone is seen: an identity event's own trust, else its type's without a customer_id."""
    return trust if event_type.startswith("identity.") else envelope_trust(event_type, False)


def links(record: dict, hints: list, explicit_nodes: list, trust: Trust) -> tuple[list[tuple], str]:
    """Every pair of identifiers on the event with the trust the event earns (see ENVELOPE_TRUST), and
    the reason they share: ([(pair, trust), ...], reason). Cookies and devices stay under KIND_CEILING,
    except in the pair an identifiers_linked event states, which keeps its stated trust (listed last)."""
    nodes = hints + [n for n in explicit_nodes if n not in hints] if explicit_nodes else hints
    if len(nodes) < 2:
        return [], ""
    event_type = record["envelope"]["event_type"]
    detail = (record.get("reason") or record.get("how")) if event_type.startswith("identity.") else None
    reason = f"{event_type}:{detail or 'together'}"
    out = []
    for i, a in enumerate(nodes):
        capped = min(trust, KIND_CEILING.get(a.kind, trust))
        for b in nodes[i + 1:]:
            out.append((pair_of(a, b), min(capped, KIND_CEILING.get(b.kind, trust))))
    if event_type == LINKED_EVENT and len(explicit_nodes) == 2:   # the stated pair keeps its stated trust
        direct = pair_of(*explicit_nodes)
        out = [link for link in out if link[0] != direct] + [(direct, trust)]
    return out, reason


def anchor(nodes: list[Identifier]) -> Identifier | None:
    """The strongest hint (KEY_PRIORITY; the first of its kind): an event belongs to whichever customer holds it."""
    best, best_rank = None, len(KEY_PRIORITY)
    for node in nodes:
        rank = _RANK.get(node.kind, best_rank)
        if rank < best_rank:
            best, best_rank = node, rank
    return best


def membership_moves(before: dict, after: dict, anchor_node: Identifier | None) -> tuple[str, ...]:
    """Customers that gained or lost an identifier in one re-derivation, sorted.

    Why: the 360 and the lookup learn who holds an identifier only from claims, so every
    identifier that joins or leaves a customer must be announced, not only those a merge
    or split moves; otherwise an account number seen beside a known e-mail address is
    listed on the profile and found by no lookup. The one move the routed event itself
    announces (its anchor joining the customer it is routed to) needs no announcement."""
    out: set[str] = set()
    for node, customer in after.items():
        old = before.get(node)
        if old != customer and not (node == anchor_node and old is None):
            out.add(customer)
            if old is not None:
                out.add(old)
    return tuple(sorted(out))
