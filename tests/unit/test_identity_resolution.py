"""Identity resolution: invariants over generated event streams, the README scenario, the demo stream.

Why properties: identity resolution is judged by what must hold whatever the stream
does: a replay gives the same customers and decisions, arrival order and duplicates
change nothing, an undone link leaves no trace, and the guard rails hold. Events are
built as plain JSON and passed through the real catalogue, so they have the exact
shape the processor will decode.
"""

from __future__ import annotations

import collections
import json
import random
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from touchstream.demo import generator
from touchstream.demo.generator import DEFAULT_START, generate
from touchstream.events.catalogue import Catalogue
from touchstream.projections.identity_resolution import (
    CustomerMerged, CustomerSplit, IdentityConfig, IdentityFinding, IdentityLinked, IdentityResolver,
    IdentityUnlinked, normalise,
)

CATALOGUE = Catalogue()
T0 = DEFAULT_START
NOW = T0 + timedelta(days=400)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHAPES = {  # event type -> (channel, content, required fields)
    "web.page_viewed": ("web", "specification", {"url": "https://shop.example/p"}),
    "web.form_submitted": ("web", "inquiry", {"form_id": "signup-v3", "form_kind": "signup", "answers": {}}),
    "phone.call_ended": ("phone", "inquiry", {"call_id": "c-1", "direction": "inbound", "wait_seconds": 5,
                                              "talk_seconds": 60, "outcome": "completed"}),
    "store.visited": ("store", "inquiry", {"store_id": "ST-AMS-01"}),
    "email.opened": ("email", "promotion", {"message_id": "m-1"}),
}
TRUSTS = st.sampled_from(["verified", "observed", "claimed", "unknown"])
WORLD_A = {
    "customer_id": ["CU-1", "CU-2"],
    "email": ["ann@a.example", " Ann@A.example", "bob@a.example"],
    "phone": ["+31 6 1234 5601", "0612345601", "06-1234 5602"],
    "cookie_id": ["ck-a1", "ck-a2"],
    "device_id": ["dev-a1"],
    "loyalty_card": ["LC-A1"],
    "account_number": ["ACC-A1"],
}
WORLD_B = {kind: [v.replace("a", "b").replace("A", "B").replace("CU-", "CU-B").replace("56", "57")
                  for v in values] for kind, values in WORLD_A.items()}
SHARED = {**WORLD_A, "customer_id": ["CU-1", "CU-2", "CU-3", "CU-4"], "phone": ["+31 20 123 4567", "0612345601"]}
BLOCKED = {**WORLD_A, "phone": WORLD_A["phone"] + ["020-123 4567", "+31201234567"],
           "email": WORLD_A["email"] + ["test1@example.com", "Test2@Example.com"]}
BLOCKING = dict(blocked_values=(("phone", "020 123 4567"),), blocked_patterns=(("email", r"test\d*@example\.com"),))


# -- building events ---------------------------------------------------------------
def record(event_type: str, minute: int, identity: dict, event_id: str, **fields) -> dict:
    channel, content, base = SHAPES.get(event_type, ("web", "identity", {}))
    event = {"envelope": {"event_id": event_id, "event_type": event_type, "channel": channel, "content": content,
                          "occurred_at": (T0 + timedelta(minutes=minute)).isoformat(), "initiated_by": "customer",
                          "identity": dict(identity)}, **base, **fields}
    return CATALOGUE.validate(event, now=NOW, default_source="test").record


def ident(hint: tuple) -> dict:
    return {"kind": hint[0], "value": hint[1]}


def seen(hint, trust, minute, event_id):
    return record("identity.identifier_observed", minute, dict([hint]), event_id, identifier=ident(hint),
                  how="form", trust=trust)


def linked(a, b, trust, minute, event_id, reason="match_rule", identity=None):
    return record("identity.identifiers_linked", minute, identity or dict([a]), event_id, identifier_a=ident(a),
                  identifier_b=ident(b), trust=trust, reason=reason)


def unlinked(a, b, minute, event_id, reason="wrong_match"):
    return record("identity.identifiers_unlinked", minute, dict([a]), event_id, identifier_a=ident(a),
                  identifier_b=ident(b), trust="verified", reason=reason)


def build(spec: tuple, event_id: str) -> dict:
    what, minute, *rest = spec
    if what == "linked":
        return linked(rest[0], rest[1], rest[2], minute, event_id)
    if what == "unlinked":
        return unlinked(rest[0], rest[1], minute, event_id)
    if what == "observed":
        envelope, hint, trust = rest
        return record("identity.identifier_observed", minute, dict([envelope]), event_id, identifier=ident(hint),
                      how="login", trust=trust)
    return record(rest[0], minute, dict(rest[1]), event_id)


def hints(world: dict):
    return st.sampled_from([(kind, value) for kind, values in world.items() for value in values])


@st.composite
def specs(draw, world=WORLD_A, unlinks=True, max_size=18):
    """Event specs over a small pool, so identifiers collide, links chain and guard rails get hit."""
    h, out = hints(world), []
    kinds = ["envelope", "envelope", "linked", "observed"] + (["unlinked"] if unlinks else [])
    for _ in range(draw(st.integers(0, max_size))):
        what, minute = draw(st.sampled_from(kinds)), draw(st.integers(0, 60))
        if what == "envelope":
            out.append((what, minute, draw(st.sampled_from(sorted(SHAPES))), draw(st.lists(h, min_size=1, max_size=3))))
        elif what == "linked":
            out.append((what, minute, draw(h), draw(h), draw(TRUSTS)))
        elif what == "observed":
            out.append((what, minute, draw(h), draw(h), draw(TRUSTS)))
        else:
            out.append((what, minute, draw(h), draw(h)))
    return out


def stream(spec_list: list, prefix: str = "e") -> list[dict]:
    return [build(spec, f"{prefix}{i:03d}") for i, spec in enumerate(spec_list)]


configs = st.builds(IdentityConfig, max_customers_per_identifier=st.integers(1, 3),
                    merge_customers_min_trust=st.sampled_from(["verified", "observed"]),
                    unlink_separates=st.booleans())


def run(events: list[dict], config: IdentityConfig | None = None) -> tuple[IdentityResolver, list]:
    resolver, decisions = IdentityResolver(config), []
    for event in events:
        decisions.extend(resolver.observe(event).decisions)
    return resolver, decisions


def facts(resolver: IdentityResolver) -> dict:
    return {k: v for k, v in resolver.to_dict().items() if k != "events"}


def norm(hint: tuple):
    return normalise(*hint)[0]


# -- replay, order, duplicates -----------------------------------------------------
@FAST
@given(spec_list=specs(), config=configs)
def test_replay_gives_the_same_state_and_decisions(spec_list, config):
    events = stream(spec_list)
    first, first_decisions = run(events, config)
    again, again_decisions = run(events, config)
    assert [d.as_dict() for d in first_decisions] == [d.as_dict() for d in again_decisions]
    assert first.to_dict() == again.to_dict()
    json.dumps([d.as_dict() for d in first_decisions])
    fresh = IdentityResolver.from_dict(json.loads(json.dumps(first.to_dict())), config)
    assert fresh.assignment() == first.assignment()          # incremental == derived from scratch
    assert fresh.findings() == first.findings()


@FAST
@given(spec_list=specs(), config=configs, rnd=st.randoms(use_true_random=False))
def test_arrival_order_does_not_change_the_customers(spec_list, config, rnd):
    events = stream(spec_list)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    in_order, _ = run(events, config)
    out_of_order, _ = run(shuffled, config)
    assert out_of_order.to_dict() == in_order.to_dict()
    assert out_of_order.assignment() == in_order.assignment()
    assert out_of_order.findings() == in_order.findings()


@FAST
@given(spec_list=specs(), config=configs, data=st.data())
def test_a_duplicate_event_id_changes_nothing(spec_list, config, data):
    events = stream(spec_list)
    assume(events)
    resolver, _ = run(events, config)
    before = resolver.to_dict()
    original = events[data.draw(st.integers(0, len(events) - 1))]
    repeat = resolver.observe(original)
    assert repeat.decisions == []
    assert resolver.to_dict() == before
    other = data.draw(specs(max_size=1).filter(bool))[0]   # same event_id, other content: still a repeat
    assert resolver.observe(build(other, original["envelope"]["event_id"])).decisions == []
    assert resolver.to_dict() == before


# -- reversible merges -------------------------------------------------------------
@FAST
@given(spec_list=specs(), config=configs, a=hints(WORLD_A), b=hints(WORLD_A), trust=TRUSTS,
       at=st.integers(0, 60), gap=st.integers(1, 30), rnd=st.randoms(use_true_random=False))
def test_link_then_unlink_equals_the_same_events_without_the_link(spec_list, config, a, b, trust, at, gap, rnd):
    """Whatever else the stream holds (other unlinks, caps, trust guards), and in any arrival order."""
    assume(norm(a) != norm(b))
    base = stream(spec_list)
    undo = unlinked(a, b, at + gap, "undo")
    with_link = base + [linked(a, b, trust, at, "wrong"), undo]
    without = base + [seen(a, trust, at, "wrong-a"), seen(b, trust, at, "wrong-b"), undo]
    rnd.shuffle(with_link)
    linked_then_unlinked, _ = run(with_link, config)
    never_linked, _ = run(without, config)
    assert linked_then_unlinked.assignment() == never_linked.assignment()
    assert linked_then_unlinked.findings() == never_linked.findings()
    assert facts(linked_then_unlinked) == facts(never_linked)


@FAST
@given(side_a=specs(WORLD_A), side_b=specs(WORLD_B), config=configs, a=hints(WORLD_A), b=hints(WORLD_B),
       trust=TRUSTS, at=st.integers(0, 60), gap=st.integers(1, 30))
def test_an_undone_wrong_merge_leaves_both_customers_as_they_were(side_a, side_b, config, a, b, trust, at, gap):
    """Two unrelated people, one wrong link, then its unlink: as if neither had happened."""
    base = stream(side_a, "a") + stream(side_b, "b")
    resolver, _ = run(base, config)
    resolver.observe(linked(a, b, trust, at, "wrong"))
    merged = resolver.customer_of(*a) if resolver.customer_of(*a) == resolver.customer_of(*b) else None
    decisions = resolver.observe(unlinked(a, b, at + gap, "undo")).decisions
    reference, _ = run(base + [seen(a, trust, at, "wrong-a"), seen(b, trust, at, "wrong-b"),
                               seen(a, "verified", at + gap, "undo-a"), seen(b, "verified", at + gap, "undo-b")],
                       config)
    assert resolver.assignment() == reference.assignment()
    kept = [sep for sep in facts(resolver)["separations"] if sep[5] != "undo"]
    assert {**facts(resolver), "separations": kept} == facts(reference)
    if merged is not None:   # the wrong link had merged them: the unlink says so, and splits them
        pair = tuple(sorted((norm(a), norm(b))))
        assert any(isinstance(d, IdentityUnlinked) and d.identifiers == pair for d in decisions)
        assert any(isinstance(d, CustomerSplit) and d.from_id == merged for d in decisions)


def test_merge_and_split_decisions_say_why_which_event_and_which_identifiers():
    config = IdentityConfig(max_customers_per_identifier=2)
    resolver, _ = run([record("web.page_viewed", 0, {"customer_id": "CU-1", "email": "ann@x.example"}, "login-1"),
                       linked(("phone", "+31612345678"), ("customer_id", "CU-2"), "verified", 1, "agent-2",
                              "agent_confirmed")], config)
    assert resolver.customer_of("email", "ann@x.example") == "CU-1"
    assert resolver.customer_of("phone", "0612345678") == "CU-2"
    email, phone = norm(("email", "ann@x.example")), norm(("phone", "+31612345678"))
    merge = resolver.observe(linked(("email", "ann@x.example"), ("phone", "06 1234 5678"), "verified", 2, "wrong"))
    merged = [d for d in merge.decisions if isinstance(d, CustomerMerged)]
    assert merged == [CustomerMerged(("CU-2",), "CU-1", (email, phone), "verified",
                                     "identity.identifiers_linked:match_rule", "wrong", "wrong")]
    assert resolver.customer_of("phone", "+31612345678") == "CU-1"
    split = resolver.observe(unlinked(("phone", "+31612345678"), ("email", "ann@x.example"), 3, "undo"))
    assert CustomerSplit("CU-1", ("CU-1", "CU-2"), (email, phone), "verified",
                         "identity.identifiers_unlinked:wrong_match", "undo") in split.decisions
    assert any(isinstance(d, IdentityUnlinked) and d.identifiers == (email, phone) and d.event_id == "wrong"
               for d in split.decisions)
    assert resolver.customer_of("phone", "+31612345678") == "CU-2"
    json.dumps([d.as_dict() for d in merge.decisions + split.decisions])
    late = resolver.observe(linked(("email", "ann@x.example"), ("phone", "+31612345678"), "claimed", 1, "late"))
    assert late.decisions == [] and resolver.customer_of("phone", "+31612345678") == "CU-2"   # older than the unlink
    again = resolver.observe(linked(("email", "ann@x.example"), ("phone", "+31612345678"), "verified", 5, "again"))
    assert any(isinstance(d, CustomerMerged) and d.event_id == "again" for d in again.decisions)   # newer: counts


# -- guard rails -------------------------------------------------------------------
def _strip_blocked(spec: tuple, blocked) -> tuple | None:
    """The same event as if the blocked identifiers had never been written on it."""
    what, minute, *rest = spec
    if what == "envelope":
        kept = [h for h in dict(rest[1]).items() if not blocked(h)]   # one hint per kind on an envelope
        return (what, minute, rest[0], kept) if kept else None
    a, b, trust = rest
    kept = [h for h in ((a, b) if what == "linked" else (a,)) if not blocked(h)]
    if what == "observed" and not blocked(b):
        return (what, minute, a, b, trust) if kept else ("observed", minute, b, b, trust)
    if what == "linked" and len(kept) == 2:
        return spec
    return ("observed", minute, kept[0], kept[0], trust) if kept else None


@FAST
@given(spec_list=specs(BLOCKED, unlinks=False))
def test_blocked_values_are_invisible_and_never_merge(spec_list):
    config = IdentityConfig(**BLOCKING)
    is_blocked = lambda hint: config.blocked(norm(hint))  # noqa: E731
    events = stream(spec_list)
    resolver, decisions = run(events, config)
    stripped = [(s, f"e{i:03d}") for i, s in enumerate(map(lambda s: _strip_blocked(s, is_blocked), spec_list)) if s]
    reference, _ = run([build(s, eid) for s, eid in stripped])
    assert resolver.assignment() == reference.assignment()
    everywhere = {h for s in spec_list for h in (dict(s[3]).items() if s[0] == "envelope" else s[2:4])}
    for hint in filter(is_blocked, everywhere):
        assert resolver.customer_of(*hint) is None
    reported = [d.identifiers[0] for d in decisions if isinstance(d, IdentityFinding) and d.rule == "blocked_value"]
    assert sorted(reported) == sorted({norm(h) for h in everywhere if is_blocked(h)})
    assert not any(is_blocked(tuple(n)) for d in decisions if isinstance(d, IdentityLinked) for n in d.identifiers)


@FAST
@given(spec_list=specs(SHARED, unlinks=False, max_size=24), config=configs)
def test_the_cap_stops_an_identifier_joining_too_many_customers(spec_list, config):
    """An identifier seen with customer_ids of more than N customers merges nothing and is a finding."""
    events = stream(spec_list)
    resolver, _ = run(events, config)
    with_customers = collections.defaultdict(set)
    for event in events:
        event_type = event["envelope"]["event_type"]
        if event_type == "web.form_submitted" or event.get("trust") in ("claimed", "unknown"):
            continue   # claimed links never count towards the cap
        nodes = {norm(h) for h in event["envelope"]["identity"].items() if h[1]} | {
            norm((event[k]["kind"], event[k]["value"])) for k in ("identifier", "identifier_a", "identifier_b")
            if k in event}
        for node in nodes:
            with_customers[node] |= {resolver.customer_of(*n) for n in nodes if n.kind == "customer_id"}
    findings = resolver.findings()
    for node, customers in with_customers.items():
        if node.kind != "customer_id" and len(customers) > config.max_customers_per_identifier:
            alone = resolver.customer_of(*node)
            assert [(k, v) for k, v, _t in resolver.identifiers_of(alone)] == [tuple(node)]
            assert any(f[0] == "identifier_cap" and f[1] == (str(node),) for f in findings)


@FAST
@given(spec_list=specs(SHARED, max_size=24), config=configs)
def test_customer_ids_are_only_ever_joined_by_strong_enough_links(spec_list, config):
    """A claimed link never merges two verified customers: every customer's ids hang on strong links."""
    resolver, _ = run(stream(spec_list), config)
    strong = {"verified"} | ({"observed"} if config.merge_customers_min_trust == "observed" else set())
    for customer, members in resolver.customers().items():
        ids = {n for n in members if n.kind == "customer_id"}
        if len(ids) < 2:
            continue
        graph = collections.defaultdict(set)
        for a, b, trust, _reason, _event in resolver.links_of(customer):
            if trust in strong:
                graph[a].add(b)
                graph[b].add(a)
        start = min(ids)
        reach, todo = {start}, [start]
        while todo:
            for other in graph[todo.pop()] - reach:
                reach.add(other)
                todo.append(other)
        assert ids <= reach, (customer, ids, resolver.links_of(customer))


def test_a_claimed_link_between_two_verified_customers_is_refused_and_reported():
    resolver, _ = run([record("web.page_viewed", 0, {"customer_id": "CU-1", "email": "ann@x.example"}, "e1"),
                       record("web.page_viewed", 1, {"customer_id": "CU-2", "email": "bob@x.example"}, "e2")])
    form = resolver.observe(record("web.form_submitted", 2, {"email": "ann@x.example", "cookie_id": "ck-9"}, "e3"))
    assert form.customer_id == "CU-1"
    refused = resolver.observe(linked(("email", "ann@x.example"), ("email", "bob@x.example"), "claimed", 3, "e4"))
    assert resolver.customer_of("email", "bob@x.example") == "CU-2"
    assert [d.rule for d in refused.decisions if isinstance(d, IdentityFinding)] == ["trust_guard"]
    assert not any(isinstance(d, CustomerMerged) for d in refused.decisions)


def test_a_shared_office_phone_links_nobody():
    office = ("phone", "+31 20 123 4567")
    resolver, decisions = run([record("phone.call_ended", i, {"customer_id": f"CU-{i}", "phone": office[1]}, f"c{i}")
                               for i in range(3)])
    assert [resolver.customer_of("customer_id", f"CU-{i}") for i in range(3)] == ["CU-0", "CU-1", "CU-2"]
    assert resolver.customer_of(*office).startswith("anon-")
    caps = [d for d in decisions if isinstance(d, IdentityFinding) and d.rule == "identifier_cap"]
    assert [(d.identifiers, d.customers) for d in caps] == [((norm(office),), ("CU-0", "CU-1"))]
    assert any(isinstance(d, CustomerSplit) and d.from_id == "CU-0" for d in decisions)


# -- normalisation -----------------------------------------------------------------
def test_identifiers_are_normalised_and_odd_phones_kept_with_a_note():
    assert normalise("email", "  Ann.Bakker@Example.COM ")[0] == ("email", "ann.bakker@example.com")
    assert normalise("phone", "06-1234 5678")[0] == normalise("phone", "+31 6 12345678")[0] == ("phone", "+31612345678")
    assert normalise("phone", "(0)20 123 4567", "NL")[0] == ("phone", "+31201234567")
    assert normalise("phone", "12")[0:2] == (("phone", "12"), "unparsed_phone")
    assert normalise("phone", "call me")[0] is None
    assert normalise("cookie_id", " ck-1 ")[0] == ("cookie_id", "ck-1")
    assert normalise("unknown", "x") == (None, None) and normalise("email", "   ") == (None, None)
    assert normalise("phone", "+999 123456")[0:2] == (("phone", "999123456"), "unparsed_phone")  # no such country
    resolver, decisions = run([record("phone.call_ended", 0, {"phone": "1-2-3"}, "p1"),
                               record("phone.call_ended", 1, {"phone": "(123)"}, "p2")])
    assert resolver.customer_of("phone", "123..") == resolver.customer_of("phone", "+12 3") is not None
    assert [d.rule for d in decisions] == ["unparsed_phone"]
    assert resolver.notes() == {"phone:123": "unparsed_phone"}


# -- the README scenario and the demo ----------------------------------------------
def test_cookie_then_email_login_then_call_then_loyalty_card_is_one_customer():
    resolver, _ = run([record("web.page_viewed", 0, {"cookie_id": "ck-1"}, "visit")])
    anonymous = resolver.customer_of("cookie_id", "ck-1")
    assert anonymous.startswith("anon-")
    login = resolver.observe(linked(("email", "Ann@Example.com"), ("customer_id", "CU-42"), "verified", 10, "login",
                                    "login", {"cookie_id": "ck-1", "customer_id": "CU-42"}))
    assert login.customer_id == "CU-42"
    assert any(isinstance(d, CustomerMerged) and d.from_ids == (anonymous,) and d.into_id == "CU-42"
               and d.event_id == "login" for d in login.decisions)
    resolver.observe(record("phone.call_ended", 20, {"phone": "06 1234 5678", "customer_id": "CU-42"}, "call"))
    till = resolver.observe(record("store.visited", 30, {"loyalty_card": "LC-7", "phone": "+31612345678"}, "till"))
    assert till.customer_id == "CU-42" and till.decisions
    assert resolver.identifiers_of("CU-42") == [
        ("cookie_id", "ck-1", "observed"), ("customer_id", "CU-42", "verified"),
        ("email", "ann@example.com", "verified"), ("loyalty_card", "LC-7", "observed"),
        ("phone", "+31612345678", "observed")]
    assert {kind for a, b, *_ in resolver.links_of("CU-42") for kind, _v in (a, b)} >= {
        "cookie_id", "email", "phone", "loyalty_card"}


@pytest.fixture(scope="module")
def demo():
    """A demo run, its records, and its customers (recorded as the generator creates them)."""
    people = []
    real = generator._new_customer
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generator, "_new_customer", lambda *a: people.append(real(*a)) or people[-1])
        events = [CATALOGUE.validate(e, now=NOW, default_source="demo").record for e in generate(120, 30, 5)]
    return events, people


def test_the_demo_resolves_each_persona_as_its_events_connect_it(demo):
    """Equal to plain connectivity of the events' hints (cookies retired by an unlink left out), never two people."""
    events, people = demo
    resolver, _ = run(events)
    retired = {(e["identifier_a"]["kind"], e["identifier_a"]["value"]) for e in events
               if e["envelope"]["event_type"] == "identity.identifiers_unlinked"}
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x
    for e in events:
        hints_ = [h for h in e["envelope"]["identity"].items() if h[1]]
        hints_ += [(e[k]["kind"], e[k]["value"]) for k in ("identifier", "identifier_a", "identifier_b") if k in e]
        nodes = [norm(h) for h in hints_ if h not in retired]
        for node in nodes[1:] if not e["envelope"]["event_type"].endswith("unlinked") else ():
            parent[find(node)] = find(nodes[0])
        for node in nodes:
            find(node)
    components = collections.defaultdict(set)
    for node in parent:
        components[find(node)].add(resolver.customer_of(*node))
    assert all(len(ids) == 1 for ids in components.values())
    assert len({next(iter(ids)) for ids in components.values()}) == len(components)
    owner = {}
    for c in people:
        for hint in (("customer_id", c.cid), ("email", c.email), ("phone", c.phone), ("loyalty_card", c.loyalty)):
            customer = resolver.customer_of(*hint) if hint[1] else None
            if customer is not None:
                assert owner.setdefault(customer, c.idx) == c.idx, "one customer holds two people"
    whole = [c for c in people if c.loyalty and {resolver.customer_of(*h) for h in (
        ("cookie_id", c.cookie), ("email", c.email), ("phone", c.phone), ("loyalty_card", c.loyalty))} == {c.cid}]
    assert whole, "some personas go cookie -> e-mail -> phone -> loyalty card and end as one customer"


def test_the_demo_in_any_order_and_reloaded_gives_the_same_customers(demo):
    events, _ = demo
    resolver, _ = run(events)
    shuffled = list(events)
    random.Random(3).shuffle(shuffled)
    assert run(shuffled)[0].assignment() == resolver.assignment()
    assert IdentityResolver.from_dict(resolver.to_dict()).assignment() == resolver.assignment()
