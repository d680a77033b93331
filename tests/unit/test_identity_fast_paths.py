"""Identity's derivation without a replay gives exactly what the guarded replay gives.

Why: ``IdentityGraph._grow`` derives most changes at the event's own identifiers instead of
replaying their region (at most one customer_id, no unlink, the customer keeps its id),
because the replay's fixed cost per event was the identity stage's ceiling (issue 15 part 3).
It relies on every region's state being its derivation after each event. Identity semantics
must not change, so over generated streams (unlinks, blocked values, caps, trust levels,
repeated events): after every event the derived state equals a replay of the facts from
scratch, and a resolver that may skip the replay answers every event exactly as one that
always replays (``IdentityGraph.closed_form = False``).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_identity_resolution import (
    BLOCKED, BLOCKING, CATALOGUE, FAST, NOW, SHARED, WORLD_A, configs, specs, stream,
)
from touchstream.demo.generator import generate
from touchstream.projections.identity_graph import IdentityGraph
from touchstream.projections.identity_resolution import IdentityConfig, IdentityResolver

STREAMS = st.one_of(specs(WORLD_A, max_size=24), specs(SHARED, max_size=24), specs(BLOCKED, max_size=24))
CONFIGS = st.one_of(configs, st.builds(IdentityConfig, max_customers_per_identifier=st.integers(1, 3),
                                       unlink_separates=st.booleans(), **{k: st.just(v) for k, v in BLOCKING.items()}))


def _with_repeats(events: list[dict], data) -> list[dict]:
    """Some events delivered again (a duplicate is answered, not re-derived)."""
    repeats = data.draw(st.lists(st.integers(0, len(events) - 1), max_size=4)) if events else []
    return events + [events[i] for i in repeats]


def _derived(resolver: IdentityResolver) -> tuple:
    graph = resolver._graph
    return graph.canonical, graph.members, graph.links, graph.quarantined


def _state(resolver: IdentityResolver) -> dict:
    customers = resolver.customers()
    return {"assignment": resolver.assignment(), "findings": resolver.findings(), "customers": customers,
            "links": {cid: resolver.links_of(cid) for cid in customers},
            "identifiers": {cid: resolver.identifiers_of(cid) for cid in customers}}


def _answers(events: list[dict], config: IdentityConfig, closed_form: bool = True) -> tuple[list, dict]:
    """Every Resolution as plain data with the state after it, and the facts at the end."""
    resolver, out = IdentityResolver(config), []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(IdentityGraph, "closed_form", closed_form)
        for event in events:
            res = resolver.observe(event)
            out.append((res.customer_id, [d.as_dict() for d in res.decisions], res.anchor, res.duplicate, res.moved,
                        _state(resolver)))
    return out, {"facts": resolver.to_dict(), "notes": resolver.notes()}


@FAST
@given(spec_list=STREAMS, config=CONFIGS, data=st.data())
def test_after_every_event_the_derived_state_is_a_replay_of_the_facts(spec_list, config, data):
    """Customers, members, links (with the evidence that made them count) and quarantined identifiers."""
    resolver = IdentityResolver(config)
    for event in _with_repeats(stream(spec_list), data):
        resolver.observe(event)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(IdentityGraph, "closed_form", False)
            replayed = IdentityResolver.from_facts(resolver.facts(), config)
        assert _derived(resolver) == _derived(replayed)


@FAST
@given(spec_list=STREAMS, config=CONFIGS, data=st.data())
def test_the_closed_form_answers_every_event_as_the_replay_does(spec_list, config, data):
    """Same decisions, routes, moves and state per event, same facts at the end."""
    events = _with_repeats(stream(spec_list), data)
    assert _answers(events, config) == _answers(events, config, closed_form=False)


def test_the_demo_is_resolved_alike_with_and_without_the_closed_form():
    """Real traffic shapes (personas, cookies, logins, unlinks), where most changes take the closed form."""
    events = [CATALOGUE.validate(e, now=NOW, default_source="demo").record for e in generate(60, 40, 11)]
    grown, real = [], IdentityGraph._grow

    def counted(graph, region, seeds):
        out = real(graph, region, seeds)
        grown.append(out is not None)
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(IdentityGraph, "_grow", counted)
        fast = _answers(events, IdentityConfig())
    assert fast == _answers(events, IdentityConfig(), closed_form=False)
    assert sum(grown) > len(grown) // 2


def test_an_unlink_that_leaves_the_region_whole_still_retracts_the_link():
    """Not separating: an unlink of two identifiers still joined by a third drops their own link only."""
    from tests.unit.test_identity_resolution import record, unlinked
    a, b, c = ("email", "ann@a.example"), ("phone", "0612345601"), ("cookie_id", "ck-a1")
    events = [record("phone.call_ended", 0, dict([a, b]), "e1"), record("phone.call_ended", 1, dict([b, c]), "e2"),
              record("phone.call_ended", 2, dict([a, c]), "e3"), unlinked(a, b, 3, "e4")]
    config = IdentityConfig(unlink_separates=False)
    fast, slow = _answers(events, config), _answers(events, config, closed_form=False)
    assert fast == slow
    assert [d["event_type"] for d in fast[0][-1][1]] == ["identity.unlinked"]
