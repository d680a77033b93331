"""Routing claims: the newest claim per identifier wins, whatever the order and batching of delivery."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from touchstream.projections.customer_360_routing import Claim, route

claims = st.lists(st.builds(Claim, st.sampled_from(["email:a", "email:b", "phone:+31", "cookie_id:c"]),
                            st.sampled_from(["CU-1", "CU-2", "anon-x"]), st.integers(1, 40)),
                  max_size=30, unique_by=lambda c: c.seq)


def _deliver(batches: list[list[Claim]]) -> tuple[dict, set]:
    stored: dict = {}
    moved: set = set()
    for batch in batches:
        routing = route(batch, stored)
        stored.update(routing.updates)
        moved |= routing.moved
    return stored, moved


@settings(max_examples=200, deadline=None)
@given(claims, st.data())
def test_any_order_and_batching_ends_with_the_newest_claim_per_identifier(items, data):
    shuffled = data.draw(st.permutations(items))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(items)), max_size=5)))
    batches = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)])]
    stored, _ = _deliver(batches)
    newest = {}
    for claim in items:
        if claim.identifier not in newest or claim.seq > newest[claim.identifier].seq:
            newest[claim.identifier] = claim
    assert stored == newest


def test_a_newer_claim_moves_history_and_names_both_customers():
    stored = {"email:a": Claim("email:a", "anon-x", 5)}
    routing = route([Claim("email:a", "CU-1", 9), Claim("email:a", "CU-2", 7)], stored)
    assert routing.updates == {"email:a": Claim("email:a", "CU-1", 9)}
    assert routing.moved == {"anon-x", "CU-1"}
    assert routing.owner["email:a"] == "CU-1"


def test_an_older_claim_changes_nothing():
    stored = {"email:a": Claim("email:a", "CU-1", 9)}
    routing = route([Claim("email:a", "CU-2", 3)], stored)
    assert routing.updates == {} and routing.moved == set() and routing.owner == {"email:a": "CU-1"}

