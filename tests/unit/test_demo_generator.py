"""The demo generator: valid, deterministic, time-ordered, and rich enough to exercise the catalogue.

One 300-customer, 60-day run is generated once per module and inspected from the
outside, the way projections will see it: identities are clustered from the
events alone, complaint lifecycles are recognised from the case events alone.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from touchstream.demo.generator import DEFAULT_START, event_id_prefix, generate
from touchstream.demo.jsonl_export import write_jsonl
from touchstream.events.catalogue import Catalogue
from touchstream.events.validation import parse_timestamp

CUSTOMERS, DAYS, SEED = 300, 60, 7
NOW = DEFAULT_START + timedelta(days=400)  # later than every event
CATALOGUE = Catalogue()


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return list(generate(CUSTOMERS, DAYS, SEED))


def _at(event: dict) -> datetime:
    return parse_timestamp(event["envelope"]["occurred_at"])


def _shape(value):
    """Structure of a value, keeping short word-like strings (enum symbols, channel names) verbatim."""
    if isinstance(value, dict):
        return tuple(sorted((k, _shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(sorted(set(_shape(v) for v in value)))
    if isinstance(value, str) and len(value) <= 24 and not any(ch.isdigit() or ch == " " for ch in value):
        return value
    return type(value).__name__


def test_every_event_passes_the_catalogue():
    for event in generate(80, 30, 11):
        valid = CATALOGUE.validate(event, now=NOW)
        assert valid.record["envelope"]["source"] == event["envelope"]["source"]


def test_every_shape_of_event_in_a_large_run_passes_the_catalogue(events):
    """Validating all 30k events costs ~10 s; one per distinct shape (incl. enum values) covers the same rules."""
    seen = set()
    for event in events:
        shape = _shape(event)
        if shape not in seen:
            seen.add(shape)
            CATALOGUE.validate(event, now=NOW)
    assert len(seen) > 300


def test_every_event_type_of_the_catalogue_appears(events):
    seen = {e["envelope"]["event_type"] for e in events}
    assert set(CATALOGUE.event_types()) - seen == set()


def test_events_are_in_time_order_inside_the_window(events):
    times = [_at(e) for e in events]
    assert times == sorted(times)
    assert times[0] >= DEFAULT_START and times[-1] < DEFAULT_START + timedelta(days=DAYS)
    for event in events[:2000]:
        env = event["envelope"]
        assert parse_timestamp(env["recorded_at"]) >= parse_timestamp(env["occurred_at"])


def test_ids_are_unique_and_carry_the_run_prefix(events):
    ids = [e["envelope"]["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(event_id_prefix(CUSTOMERS, DAYS, SEED)) for i in ids)


def test_volume_per_customer_is_realistic(events):
    per_30_days = len(events) / CUSTOMERS / DAYS * 30
    assert 20 <= per_30_days <= 60


def test_same_arguments_same_bytes_other_seed_other_events(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_jsonl(generate(40, 15, 3), first)
    write_jsonl(generate(40, 15, 3), second)
    assert first.read_bytes() == second.read_bytes() and first.stat().st_size > 0
    other = list(generate(40, 15, 4))
    assert [json.loads(line) for line in first.read_text().splitlines()] != other


def test_sources_are_channel_systems(events):
    sources = {e["envelope"]["source"] for e in events}
    assert {"web-shop", "esp-mailer", "pbx", "sms-gateway", "pos", "crm", "social-listener"} <= sources


def _clusters(events):
    """Union-find over identity values: values in one envelope or one identifiers_linked event are one customer."""
    parent: dict[str, str] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(values):
        roots = [find(v) for v in values]
        for r in roots[1:]:
            parent[r] = roots[0]

    for e in events:
        union([f"{k}:{v}" for k, v in e["envelope"]["identity"].items() if v])
        if e["envelope"]["event_type"] == "identity.identifiers_linked":
            union([f"{e[s]['kind']}:{e[s]['value']}" for s in ("identifier_a", "identifier_b")])
    members = defaultdict(list)
    for e in events:
        k, v = next((k, v) for k, v in e["envelope"]["identity"].items() if v)
        members[find(f"{k}:{v}")].append(e)
    return members


def test_identity_fragments_surface_one_channel_at_a_time_and_get_linked(events):
    """A customer first seen by cookie only, then by e-mail, phone and loyalty card, with links between them."""
    found = 0
    for cluster in _clusters(events).values():
        if set(cluster[0]["envelope"]["identity"]) != {"cookie_id"}:
            continue
        first_seen: dict[str, int] = {}
        for n, e in enumerate(cluster):
            for kind in e["envelope"]["identity"]:
                first_seen.setdefault(kind, n)
        if not {"email", "phone", "loyalty_card"} <= set(first_seen):
            continue
        links = {frozenset((e["identifier_a"]["kind"], e["identifier_b"]["kind"])) for e in cluster
                 if e["envelope"]["event_type"] == "identity.identifiers_linked"}
        if (first_seen["cookie_id"] < first_seen["email"] < first_seen["phone"] < first_seen["loyalty_card"]
                and frozenset(("cookie_id", "email")) in links and frozenset(("loyalty_card", "phone")) in links
                and any("phone" in pair and "customer_id" in pair for pair in links)):
            found += 1
    assert found >= 1


def _cases(events):
    cases = defaultdict(list)
    for e in events:
        is_case_event = e["envelope"]["event_type"].startswith(("complaint.", "phone.callback_made"))
        case = e.get("case_id") if is_case_event else None
        if case:
            cases[case].append(e)
            assert e["envelope"]["correlation_id"] == case
    return cases


def _kinds(case_events):
    types = [e["envelope"]["event_type"] for e in case_events]
    kinds = set()
    first_contact = any(e.get("resolved_on_first_contact") is True for e in case_events)
    if first_contact and "complaint.callback_promised" not in types:
        kinds.add("fcr")
    for promise in (e for e in case_events if e["envelope"]["event_type"] == "complaint.callback_promised"):
        deadline = parse_timestamp(promise["promised_by"])
        kept = any(e["envelope"]["event_type"] == "phone.callback_made"
                   and e.get("callback_id") == promise["callback_id"] and e["reached"] and _at(e) <= deadline
                   for e in case_events)
        kinds.add("callback_kept" if kept else "callback_missed")
    if "complaint.escalated" in types:
        kinds.add("escalated")
    if "complaint.reopened" in types and types.index("complaint.closed") < types.index("complaint.reopened"):
        kinds.add("reopened")
    openings = [e for e in case_events if e["envelope"]["event_type"] == "complaint.opened"]
    if any(e["envelope"]["initiated_by"] == "company" for e in openings):
        kinds.add("proactive")
    if "complaint.satisfaction_given" in types:
        kinds.add("rated")
    return kinds


def test_complaints_cover_every_lifecycle(events):
    cases = _cases(events)
    seen = set().union(*(_kinds(evs) for evs in cases.values()))
    assert {"fcr", "callback_kept", "callback_missed", "escalated", "reopened", "proactive", "rated"} <= seen
    opened_on = {e["envelope"]["channel"] for evs in cases.values() for e in evs
                 if e["envelope"]["event_type"] == "complaint.opened"}
    assert {"phone", "email", "web", "store", "social"} <= opened_on


def test_a_case_is_threaded_across_channels_by_correlation_id(events):
    by_corr = defaultdict(set)
    for e in events:
        corr = e["envelope"].get("correlation_id")
        if corr and corr.startswith("CASE-"):
            by_corr[corr].add(e["envelope"]["channel"])
    assert max(len(channels) for channels in by_corr.values()) >= 3


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=-(2**40), max_value=2**40), customers=st.integers(0, 6), days=st.integers(0, 8))
def test_any_small_run_is_valid_and_ordered(seed, customers, days):
    events = list(generate(customers, days, seed))
    end = DEFAULT_START + timedelta(days=days)
    previous = DEFAULT_START
    for event in events:
        CATALOGUE.validate(event, now=NOW)
        at = _at(event)
        assert previous <= at < end
        previous = at
    if customers == 0 or days == 0:
        assert events == []


def test_other_start_shifts_the_window():
    start = datetime(2025, 3, 1, tzinfo=timezone.utc)
    events = list(generate(5, 3, 1, start=start))
    assert events and all(start <= _at(e) < start + timedelta(days=3) for e in events)
    with pytest.raises(ValueError):
        generate(5, 3, 1, start=datetime(2025, 3, 1))
