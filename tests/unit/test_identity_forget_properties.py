"""Forgetting, as properties: it equals observing without the person, and equals deriving from the facts left.

Why: identity's state must stay a function of the log (raw topics and the erasure ledger). An
erasure read live forgets what was observed before it; a rebuild reads the ledger first and then
observes the events with the person's hints unreadable (keys deleted) or suppressed (customer ids).
These properties say the two agree over generated streams (``projections/identity_forget`` explains
the one documented exception, which the generated worlds avoid: a refused link between two survivors
on an event that carried a forgotten customer_id), and that the in-place forgetting equals a resolver
derived from the facts that remain, for any stream and any customers forgotten.
"""

from __future__ import annotations

import copy
import random

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_identity_erasure import ANNA, ANNA_2, people
from tests.unit.test_identity_resolution import FAST, SHARED, WORLD_A, WORLD_B, configs, norm, specs, stream
from tests.unit.test_identity_store_contract import rows
from tests.pipeline_harness import validated
from touchstream.processors.identity_store import Saved
from touchstream.processors.identity_store_memory import MemoryIdentityStore
from touchstream.processors.identity_store_sqlite import open_identity_store
from touchstream.projections.identity_facts import CUSTOMER_ID
from touchstream.projections.identity_forget import without
from touchstream.projections.identity_resolution import IdentityResolver


# -- the order: forgetting what was observed equals observing it without the person ------------------
POST = {kind: WORLD_A[kind] + WORLD_B[kind] for kind in WORLD_A}   # after the erasure: anyone, A included


def without_hints(event: dict, gone: set) -> dict:
    """The event as if the hints and named identifiers in ``gone`` (normalised) were absent."""
    out = copy.deepcopy(event)
    hints = out["envelope"]["identity"]
    for kind, value in list(hints.items()):
        if value is not None and norm((kind, value)) in gone:
            hints[kind] = None
    for name in ("identifier", "identifier_a", "identifier_b"):
        ident = out.get(name)
        if isinstance(ident, dict) and norm((ident["kind"], ident["value"])) in gone:
            out[name] = None
    return out


@FAST
@given(a=specs(WORLD_A, max_size=12), b=specs(WORLD_B, max_size=12), post=specs(POST, max_size=12),
       config=configs, seed=st.integers(0, 2**16))
def test_forgetting_then_observing_equals_observing_without_the_persons_hints(a, b, post, config, seed):
    """Person A's events (their own identifiers only) and others' are observed, then every customer holding
    one of A's identifiers is forgotten, then more events come (A's customer ids and identifiers among them,
    and copies of earlier events). That equals observing A's earlier events with none of their identifiers
    and the later ones without the forgotten customer ids."""
    rnd = random.Random(seed)
    before = stream(a, "a") + stream(b, "b")
    rnd.shuffle(before)
    later = stream(post, "p") + rnd.sample(before, min(3, len(before)))
    live = IdentityResolver(config, journal=True)
    for event in before:
        live.observe(event)
    erased_ids = sorted({live.customer_of(*hint) for kind, values in WORLD_A.items() for hint in
                         ((kind, v) for v in values)} - {None})
    gone = live.forgetting("er-1", erased_ids)
    seen_a = {node for node in map(norm, ((k, v) for k, vs in WORLD_A.items() for v in vs))
              if node in set(map(norm, _hints_of(before)))}
    assert gone.nodes == seen_a   # the premise: A's identifiers are exactly what the erasure drops
    left = without(live.facts(), gone.nodes)
    live.forget(gone)
    derived = IdentityResolver.from_facts(left, config, forgotten=gone.ids)   # in place = from the facts left
    assert (live.facts(), live.assignment(), live.findings()) == (left, derived.assignment(), derived.findings())
    for event in later:
        live.observe(event)

    replay = IdentityResolver(config)
    suppressed = {norm((CUSTOMER_ID, cid)) for cid in gone.ids}
    for event in before:
        replay.observe(without_hints(event, set(gone.nodes)))
    for event in later:
        replay.observe(without_hints(event, suppressed))
    assert live.facts() == replay.facts()
    assert live.assignment() == replay.assignment()


def _hints_of(events: list[dict]):
    for event in events:
        yield from ((k, v) for k, v in event["envelope"]["identity"].items() if v is not None)
        for name in ("identifier", "identifier_a", "identifier_b"):
            if isinstance(event.get(name), dict):
                yield event[name]["kind"], event[name]["value"]


# -- both store backends forget alike ------------------------------------------------------------------
def test_the_memory_and_the_sqlite_store_forget_the_same_rows(tmp_path):
    resolver = IdentityResolver(journal=True)
    for event in validated(people()):
        resolver.observe(event.record)
    gone = resolver.forgetting("er-1", [ANNA])
    loaded = []
    for store in (MemoryIdentityStore(), open_identity_store(tmp_path)):
        store.save(Saved(1, 5, {}, resolver.facts()))
        store.forget(gone, 9)
        saved = store.load()
        loaded.append((rows(saved.facts), sorted(map(tuple, saved.forgotten)), saved.counter))
    assert loaded[0] == loaded[1]
    assert loaded[0][0] == rows(without(resolver.facts(), gone.nodes))
    assert loaded[0][1] == [(ANNA, "er-1"), (ANNA_2, "er-1")]


@FAST
@given(spec_list=specs(SHARED, max_size=24), config=configs, data=st.data())
def test_forgetting_in_place_equals_deriving_from_the_facts_left(spec_list, config, data):
    """Any stream (shared identifiers, unlinks, guard rails hit), any customers forgotten: the resolver that
    forgot in place equals one derived from the facts that remain, and the customers it says changed are
    exactly those whose identifiers differ."""
    live = IdentityResolver(config, journal=True)
    for event in stream(spec_list):
        live.observe(event)
    customers = sorted(live.customers())
    chosen = data.draw(st.lists(st.sampled_from(customers), unique=True, max_size=3) if customers else st.just([]))
    gone = live.forgetting("er-1", chosen)
    before, left = live.customers(), without(live.facts(), gone.nodes)
    changed = live.forget(gone)
    derived = IdentityResolver.from_facts(left, config, forgotten=gone.ids)
    assert (live.facts(), live.assignment(), live.findings()) == (left, derived.assignment(), derived.findings())
    after = live.customers()
    assert changed == sorted(c for c in {*before, *after} if before.get(c) != after.get(c))
    assert not {str(n) for n in gone.nodes} & set(live.assignment()) and not set(chosen) & set(after)
