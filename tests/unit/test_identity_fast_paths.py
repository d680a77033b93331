"""Identity's closed-form derivation gives exactly what the guarded replay gives.

Why: ``IdentityGraph`` derives most regions without replaying them (``identity_replay.plain``:
at most one customer_id, no unlink inside, no old customer merged away), because the replay's
fixed cost per event was the identity stage's ceiling (issue 15 part 3). Identity semantics
must not change, so over generated streams (unlinks, blocked values, caps, trust levels,
repeated events) every region is derived both ways and compared, and a resolver that may use
the closed form answers every event exactly as one that always replays.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import touchstream.projections.identity_graph as identity_graph
from tests.unit.test_identity_resolution import (
    BLOCKED, BLOCKING, CATALOGUE, FAST, NOW, SHARED, WORLD_A, configs, specs, stream,
)
from touchstream.demo.generator import generate
from touchstream.projections.identity_resolution import IdentityConfig, IdentityResolver

STREAMS = st.one_of(specs(WORLD_A, max_size=24), specs(SHARED, max_size=24), specs(BLOCKED, max_size=24))
CONFIGS = st.one_of(configs, st.builds(IdentityConfig, max_customers_per_identifier=st.integers(1, 3),
                                       unlink_separates=st.booleans(), **{k: st.just(v) for k, v in BLOCKING.items()}))
REAL_PLAIN = identity_graph.plain


def _with_repeats(events: list[dict], data) -> list[dict]:
    """Some events delivered again (a duplicate is answered, not re-derived)."""
    repeats = data.draw(st.lists(st.integers(0, len(events) - 1), max_size=4)) if events else []
    return events + [events[i] for i in repeats]


def _answers(events: list[dict], config: IdentityConfig) -> tuple[list, dict]:
    """Every Resolution as plain data, and the resolver's state and queries afterwards."""
    resolver, out = IdentityResolver(config), []
    for event in events:
        res = resolver.observe(event)
        out.append((res.customer_id, [d.as_dict() for d in res.decisions], res.anchor, res.duplicate, res.moved))
    customers = resolver.customers()
    state = {"facts": resolver.to_dict(), "assignment": resolver.assignment(), "findings": resolver.findings(),
             "customers": customers, "notes": resolver.notes(),
             "links": {cid: resolver.links_of(cid) for cid in customers},
             "identifiers": {cid: resolver.identifiers_of(cid) for cid in customers}}
    return out, state


def _replay_only(events: list[dict], config: IdentityConfig) -> tuple[list, dict]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(identity_graph, "plain", lambda *args: None)
        return _answers(events, config)


@FAST
@given(spec_list=STREAMS, config=CONFIGS, data=st.data())
def test_every_region_derived_in_closed_form_equals_its_replay(spec_list, config, data):
    """Each time ``plain`` answers, the replay of the same region gives the same customers and links."""
    resolver = IdentityResolver(config)

    def checked(nodes, pairs, evidence, first_seen, rules):
        fast = REAL_PLAIN(nodes, pairs, evidence, first_seen, rules)
        if fast is not None:
            slow = identity_graph.derive(nodes, *resolver._graph._edges(nodes), first_seen, rules)
            assert (fast.canonical, fast.accepted) == (slow.canonical, slow.accepted)
            assert fast.refused == slow.refused == {} and fast.quarantined == slow.quarantined == {}
        return fast

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(identity_graph, "plain", checked)
        for event in _with_repeats(stream(spec_list), data):
            resolver.observe(event)


@FAST
@given(spec_list=STREAMS, config=CONFIGS, data=st.data())
def test_the_closed_form_answers_every_event_as_the_replay_does(spec_list, config, data):
    """Same decisions, routes and moves per event, same state and queries at the end."""
    events = _with_repeats(stream(spec_list), data)
    assert _answers(events, config) == _replay_only(events, config)


def test_the_demo_is_resolved_alike_with_and_without_the_closed_form():
    """Real traffic shapes (personas, cookies, logins, unlinks), where most regions take the closed form."""
    events = [CATALOGUE.validate(e, now=NOW, default_source="demo").record for e in generate(120, 40, 11)]
    answered = []

    def counted(*args):
        out = REAL_PLAIN(*args)
        answered.append(out is not None)
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(identity_graph, "plain", counted)
        fast = _answers(events, IdentityConfig())
    assert fast == _replay_only(events, IdentityConfig())
    assert sum(answered) > len(answered) // 2
