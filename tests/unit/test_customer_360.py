"""The customer-360 fold: rules over generated streams (hypothesis), worked scenarios, and the demo stream.

Events are built as plain JSON and passed through ``Catalogue.validate``, so the
fold sees exactly the Avro-shaped dicts the processors will give it.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.avro_strategies import json_for
from tests.event_builders import DEFAULTS, EUR
from touchstream.demo.generator import generate, run_tag
from touchstream.events.catalogue import Catalogue
from touchstream.projections.customer_360 import (Config, apply, differences, fingerprint, fold, from_dict,
                                                  new_profile, to_dict, view)

CAT = Catalogue()
NOW = datetime(2100, 1, 1, tzinfo=timezone.utc)
T0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)  # a Monday
_ids = itertools.count(1)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# -- building single events ------------------------------------------------------------------
def ev(event_type: str, hours: float, event_id: str | None = None, channel: str | None = None,
       content: str | None = None, by: str | None = None, **fields) -> dict:
    """One validated event at ``T0 + hours``; envelope values default to the first the catalogue allows."""
    meta = CAT.schema(event_type).meta
    at = _iso(T0 + timedelta(hours=hours))
    env = {"event_id": event_id or f"x{next(_ids):05d}", "event_type": event_type, "occurred_at": at,
           "recorded_at": at, "channel": channel or meta["channels"][0], "content": content or meta["contents"][0],
           "initiated_by": by or meta["initiated_by"][0], "source": "test", "identity": {"customer_id": "CU-1"}}
    return CAT.validate({"envelope": env, **DEFAULTS.get(event_type, {}), **fields}, now=NOW).record


def run(*events, config: Config | None = None):
    return fold(events, "CU-1", config)


# -- generated streams -------------------------------------------------------------------------
POOL = {
    "case_id": ["K1", "K2"], "message_id": ["M1", "M2", "M3"], "in_reply_to": ["M1", "M2", "PM1"],
    "campaign_id": ["CMP-1", "CMP-2"], "order_id": ["O1", "O2"], "invoice_id": ["I1", "I2"],
    "payment_id": ["P1", "P2"], "credit_id": ["CR1", "CR2"], "return_id": ["R1"], "receipt_id": ["RC1", "RC2"],
    "call_id": ["C1", "C2"], "mail_id": ["PM1", "PM2"], "document_id": ["D1"], "meeting_id": ["MT1"],
    "session_id": ["S1", "S2"], "conversation_id": ["CH1"], "question_key": ["household_size", "roast"],
    "question_id": ["q1", "q2"], "comment_id": ["SC1"], "review_id": ["RV1"], "callback_id": ["CB1"],
    "for_channel": ["email", "sms", "postal_mail"],   # consents on the channels campaigns use: contact_without_consent
}
FOCUS = ("email.sent", "email.opened", "email.received", "sms.sent", "campaign.message_sent", "postal.mail_sent",
         "phone.call_started", "phone.call_answered", "complaint.opened", "complaint.resolved", "complaint.reopened",
         "commerce.order_placed", "feedback.golden_question_answered", "feedback.survey_answered",
         "web.form_submitted", "feedback.consent_given", "feedback.consent_withdrawn", "web.page_viewed")
HINTS = ({"customer_id": "CU-1"}, {"customer_id": "CU-1", "email": "a@x.example"}, {"cookie_id": "ck-1"})
SMALL = Config(last_n=5, window=timedelta(days=2), overload_cap=1)


def _field(f: dict, named: dict, namespace: str):
    """A small pool for the keys the fold threads by, so events collide; any valid value otherwise."""
    optional = isinstance(f["type"], list) and "null" in f["type"]
    if f["name"] in POOL:
        pool = st.sampled_from(POOL[f["name"]])
        return st.one_of(st.none(), pool) if optional else pool
    if f["name"] == "answers":
        return st.dictionaries(st.sampled_from(["email", "first_name", "order_id"]), st.sampled_from(["a", "b"]),
                               max_size=2)
    if f["name"] == "sentiment":
        return st.one_of(st.none(), st.floats(-1, 1))
    return json_for(f["type"], named, namespace)


def _biased(allowed: list[str], favourite: str) -> list[str]:
    """Promotions and company-initiated messages more often: they drive the touchmap findings."""
    return allowed + [favourite] * 2 if favourite in allowed else allowed


def _envelope(event_type: str):
    meta = CAT.schema(event_type).meta
    return st.fixed_dictionaries({
        "event_type": st.just(event_type), "source": st.just("test"), "identity": st.sampled_from(HINTS),
        "occurred_at": st.integers(0, 40).map(lambda n: _iso(T0 + n * timedelta(hours=3))),
        "channel": st.sampled_from(meta["channels"]), "content": st.sampled_from(_biased(meta["contents"], "promotion")),
        "initiated_by": st.sampled_from(_biased(meta["initiated_by"], "company")),
        "correlation_id": st.one_of(st.none(), st.sampled_from(POOL["case_id"])),
    })


@lru_cache(maxsize=None)
def _plain(event_type: str):
    """Plain JSON of one event type: schema-valid fields, small pools for the keys the fold threads by."""
    schema, named = CAT.schema(event_type).schema, {}
    json_for(schema, named)  # registers the named types (enums, records) the fields refer to
    fields = {f["name"]: _field(f, named, schema["namespace"]) for f in schema["fields"][1:]}
    return st.builds(lambda body, env: {**body, "envelope": env}, st.fixed_dictionaries(fields),
                     _envelope(event_type))


@st.composite
def streams(draw, max_size: int = 30) -> list[dict]:
    types = draw(st.lists(st.sampled_from(CAT.event_types() + list(FOCUS) * 3), max_size=max_size))
    out = []
    for n, event_type in enumerate(types):
        plain = draw(_plain(event_type))
        plain["envelope"]["event_id"] = f"e{n:03d}"
        plain["envelope"]["recorded_at"] = plain["envelope"]["occurred_at"]
        out.append(CAT.validate(plain, now=NOW).record)
    return out


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.data_too_large])


@FAST
@given(events=streams(), data=st.data())
def test_any_arrival_order_gives_the_same_profile(events, data):
    shuffled = data.draw(st.permutations(events))
    a, b = run(*events, config=SMALL), run(*shuffled, config=SMALL)
    for finding in a.findings.values():
        event(f"finding: {finding.kind}")  # --hypothesis-show-statistics: what the streams exercised
    assert differences(a, b) == []
    assert a == b and fingerprint(a) == fingerprint(b) and view(a) == view(b)


@FAST
@given(events=streams(), data=st.data())
def test_a_duplicate_event_id_changes_nothing(events, data):
    if not events:
        return
    copies = data.draw(st.lists(st.sampled_from(events), min_size=1, max_size=5))
    mixed = data.draw(st.permutations(events + copies))
    assert run(*mixed, config=SMALL) == run(*events, config=SMALL)


@FAST
@given(events=streams(), cut=st.integers(0, 30))
def test_replay_is_deterministic_and_a_restored_checkpoint_folds_on_identically(events, cut):
    straight = run(*events, config=SMALL)
    assert fingerprint(straight) == fingerprint(run(*events, config=SMALL))
    stored = json.loads(json.dumps(to_dict(run(*events[:cut], config=SMALL))))
    resumed = fold(events[cut:], "CU-1", profile=from_dict(stored))
    assert resumed == straight and fingerprint(resumed) == fingerprint(straight)


@FAST
@given(events=streams())
def test_timeline_and_seen_match_a_naive_recomputation(events):
    p = run(*events, config=SMALL)
    marks = sorted((e["envelope"]["occurred_at"], e["envelope"]["event_id"]) for e in events)
    assert (p.first_seen, p.last_seen) == ((marks[0], marks[-1]) if marks else (None, None))
    kept = sorted((e["envelope"]["occurred_at"], e["envelope"]["event_id"]) for e in events
                  if not e["envelope"]["event_type"].startswith("identity.")
                  and e["envelope"]["event_type"] not in ("email.delivered", "sms.delivered"))[-SMALL.last_n:]
    assert [tuple(i.mark) for i in p.interactions] == kept
    json.dumps(view(p))


# -- scenarios ---------------------------------------------------------------------------------
def test_one_mail_is_one_contact_and_its_open_is_a_response():
    p = run(ev("email.sent", 0, by="company", content="promotion", campaign_id="CMP"),
            ev("email.delivered", 0.1, by="company"), ev("email.opened", 2, by="company"),
            ev("email.received", 3, by="customer", content="inquiry"))
    email = p.channels["email"]
    assert (email["company"].count, email["customer"].count) == (1, 1)
    row = next(r for r in view(p)["pmp"] if r["channel"] == "email")
    assert (row["company_messages"], row["responded"], row["response_rate"], row["customer_initiated"]) == \
        (1, 1, 1.0, 1)
    assert [i.event_type for i in p.interactions] == ["email.sent", "email.opened", "email.received"]


def test_automated_opens_are_not_responses():
    p = run(ev("email.sent", 0, by="company"), ev("email.opened", 1, by="company", automated=True))
    assert view(p)["pmp"][0]["responded"] == 0


def test_journey_follows_the_latest_signal_and_support_needs_a_sale_before():
    inquiry = ev("web.page_viewed", 10, content="inquiry")
    assert run(ev("web.page_viewed", 0, content="specification")).journey.stage == "research"
    assert run(ev("email.clicked", 1, by="company", content="promotion")).journey.stage == "attraction"
    assert run(ev("commerce.order_placed", 2)).journey.stage == "sale"
    assert run(inquiry).journey.stage == "research"  # a prospect's question
    assert run(inquiry, ev("commerce.order_placed", 5)).journey.stage == "support"
    assert run(inquiry, ev("commerce.order_placed", 12)).journey.stage == "sale"


def test_commerce_balance_revenue_and_last_order_by_event_time():
    p = run(ev("commerce.order_placed", 50, order_id="O2", total=EUR("40.00")),
            ev("commerce.order_placed", 1), ev("commerce.invoice_issued", 2), ev("commerce.payment_received", 3),
            ev("commerce.credit_issued", 4), ev("commerce.return_received", 5), ev("commerce.order_delivered", 30))
    c = view(p)["commerce"]
    assert c["orders"] == 2 and c["last_order"]["order_id"] == "O2"
    assert c["balance_due"] == {"EUR": "30.00"} and c["revenue_to_date"] == {"EUR": "115.00"}
    assert c["last_delivery_at"].startswith("2026-03-03T15:00")
    assert (c["invoices"]["count"], c["payments"]["count"], c["credits"]["count"], c["returns"]["count"]) == (1, 1, 1, 1)


def test_complaint_state_comes_from_event_time_not_arrival():
    steps = [ev("complaint.opened", 0), ev("complaint.escalated", 1), ev("complaint.resolved", 2),
             ev("complaint.reopened", 3), ev("complaint.opened", 4, case_id="K2"), ev("complaint.closed", 5,
                                                                                      case_id="K2")]
    for order in (steps, steps[::-1]):
        c = view(run(*order))["complaints"]
        assert c["open_count"] == 1 and c["total"] == 2
        assert (c["last"]["case_id"], c["last"]["state"]) == ("K2", "closed")
        assert {r["case_id"]: r["state"] for r in c["cases"]} == {"K1": "reopened", "K2": "closed"}


def test_the_same_question_answered_twice_is_a_finding_with_both_channels():
    p = run(ev("feedback.golden_question_answered", 0, channel="phone", by="company", answer="2"),
            ev("feedback.golden_question_answered", 9, channel="web", by="company", answer="3"),
            ev("feedback.survey_answered", 1), ev("feedback.survey_answered", 2, question_id="q2"))
    found = {f["id"]: f for f in view(p)["findings"]}
    assert set(found) == {"repeat_question:golden:household_size"}
    assert found["repeat_question:golden:household_size"]["channels"] == ["phone", "web"]
    assert p.answers["golden:household_size"].answer == "3"


def test_a_known_field_asked_again_in_a_form_is_a_repeated_request():
    p = run(ev("web.form_submitted", 0, answers={"email": "a@x.example", "order_id": "O1"}),
            ev("web.form_submitted", 5, answers={"email": "a@x.example", "order_id": "O2"}))
    assert [f["id"] for f in view(p)["findings"]] == ["repeated_request:email"]


def test_consent_latest_statement_per_channel_and_purpose_wins():
    p = run(ev("feedback.consent_withdrawn", 5, for_channel="email"), ev("feedback.consent_given", 1, for_channel="email"),
            ev("feedback.consent_given", 2, purpose="service"))
    assert {k: c.status for k, c in p.consents.items()} == {"email:marketing": "withdrawn", "all:service": "given"}


def test_attitude_keeps_the_latest_scores_and_a_sentiment_mean():
    p = run(ev("feedback.csat_given", 5, score=2), ev("feedback.csat_given", 1, score=5), ev("feedback.nps_given", 0),
            ev("social.comment_posted", 1, sentiment=0.5), ev("social.comment_posted", 2, sentiment=-0.25))
    a = view(p)["attitude"]
    assert (a["csat"]["value"], a["nps"]["value"]) == (2, 9)
    assert a["sentiment"]["count"] == 2 and a["sentiment"]["mean"] == 0.125 and a["sentiment"]["last"]["value"] == -0.25


def test_overload_counts_company_messages_in_a_sliding_window():
    cfg = Config(overload_cap=2)
    close = [ev("email.sent", h, by="company", message_id=f"M{h}") for h in (0, 24, 48)]
    spread = [ev("email.sent", h, by="company", message_id=f"M{h}") for h in (0, 100, 200)]
    assert [f["kind"] for f in view(run(*close, config=cfg))["findings"]] == ["overload"]
    assert view(run(*spread, config=cfg))["findings"] == []
    replies = [ev("email.sent", h, by="customer", message_id=f"M{h}") for h in (0, 24, 48)]
    assert view(run(*replies, config=cfg))["findings"] == []  # answers to the customer are not pressure


def test_one_campaign_on_two_channels_within_a_window_is_redundant():
    mail = ev("campaign.message_sent", 0, channel="email")
    assert [f["kind"] for f in view(run(mail, ev("sms.sent", 30, by="company", campaign_id="CMP")))["findings"]] \
        == ["redundant"]
    assert view(run(mail, ev("sms.sent", 24 * 8, by="company", campaign_id="CMP")))["findings"] == []


def test_a_promotion_while_a_complaint_is_open_is_a_conflict_even_when_the_complaint_arrives_late():
    promo = ev("email.sent", 5, by="company", content="promotion")
    opened, closed = ev("complaint.opened", 1), ev("complaint.closed", 3)
    assert view(run(promo))["findings"] == []
    found = view(run(promo, ev("complaint.opened", 1)))["findings"]
    assert [(f["kind"], f["subject"]) for f in found] == [("conflict", "K1")]
    assert view(run(promo, opened, closed))["findings"] == []


def test_touchmap_windows_are_tumbling_weeks_of_company_messages_per_channel():
    p = run(ev("email.sent", 0, by="company"), ev("sms.sent", 1, by="company"),
            ev("email.sent", 24 * 7, by="company", message_id="M2"), ev("web.page_viewed", 24 * 7 + 1))
    tm = view(p)["touchmap"]
    assert [(w["start"][:10], w["by_channel"]) for w in tm["windows"]] == \
        [("2026-03-02", {"email": 1, "sms": 1}), ("2026-03-09", {"email": 1})]
    assert tm["last_window"]["total"] == 1


def test_identifiers_keep_first_last_seen_and_best_trust():
    link = ev("identity.identifiers_linked", 1, identifier_a={"kind": "email", "value": "a@x.example"},
              identifier_b={"kind": "customer_id", "value": "CU-1"}, trust="verified", reason="login")
    p = run(ev("web.page_viewed", 0), link, ev("web.page_viewed", 2))
    cid = p.identifiers["customer_id:CU-1"]
    assert (cid.trust, cid.first_seen, cid.last_seen) == ("verified", T0, T0 + timedelta(hours=2))
    assert p.identifiers["email:a@x.example"].trust == "verified"


def test_last_n_is_configurable_and_apply_returns_the_profile():
    p = new_profile("CU-1", Config(last_n=2))
    for h in range(5):
        assert apply(p, ev("web.page_viewed", h)) is p
    assert [i.mark.at for i in p.interactions] == [T0 + timedelta(hours=3), T0 + timedelta(hours=4)]


# -- the demo stream ---------------------------------------------------------------------------
CUSTOMERS, DAYS, SEED = 60, 30, 11


def _ground_truth(records: list[dict]) -> dict[str, list[dict]]:
    """Group by demo customer: union-find over hints seen together, anchored by the index the ids encode.

    cid (CU-<tag>-<idx>) and e-mail (<first>.<last><idx>.<tag>@) carry the index; phone, loyalty card and
    account number are the generator's arithmetic on it (personas.Customer); cookies join through links.
    """
    base = int(run_tag(CUSTOMERS, DAYS, SEED), 16)
    anchor = {}
    for i in range(CUSTOMERS):
        anchor[f"phone:+316{(base + i * 7919) % 10**8:08d}"] = i
        anchor[f"loyalty_card:LC{(base + i * 104729) % 10**10:010d}"] = i
        anchor[f"account_number:ACC-{(base + i * 7907) % 10**7:07d}"] = i
    parent: dict[str, str] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r in records:
        values = [f"{k}:{v}" for k, v in r["envelope"]["identity"].items() if v]
        if r["envelope"]["event_type"] == "identity.identifiers_linked":
            values += [f"{r[s]['kind']}:{r[s]['value']}" for s in ("identifier_a", "identifier_b")]
        root = find(values[0])
        for v in values[1:]:
            parent[find(v)] = root
    index = defaultdict(set)
    for value in list(parent):
        m = re.match(r"customer_id:CU-\w{4}-(\d{6})$", value) or re.match(r"email:[a-z]+\.[a-z]+(\d+)\.", value)
        idx = int(m.group(1)) if m else anchor.get(value)
        if idx is not None:
            index[find(value)].add(idx)
    assert all(len(ids) == 1 for ids in index.values())  # hints never mix two demo customers
    groups = defaultdict(list)
    for r in records:
        k, v = next((k, v) for k, v in r["envelope"]["identity"].items() if v)
        root = find(f"{k}:{v}")
        groups[f"C{min(index[root])}" if index.get(root) else f"anon:{root}"].append(r)
    return groups


@pytest.fixture(scope="module")
def demo() -> dict[str, list[dict]]:
    records = [CAT.validate(e, now=NOW, default_source="demo").record for e in generate(CUSTOMERS, DAYS, SEED)]
    return _ground_truth(records)


def test_demo_profiles_agree_with_the_raw_events(demo):
    started = time.perf_counter()
    profiles = {key: fold(events, key) for key, events in demo.items()}
    elapsed = time.perf_counter() - started
    total = sum(len(events) for events in demo.values())
    print(f"\ncustomer-360 apply: {total} demo events in {elapsed:.3f}s = {total / elapsed:,.0f} events/s")
    assert total / elapsed > 2_000  # catches an accidental quadratic fold, not a benchmark
    assert sum(1 for k in demo if k.startswith("C")) == CUSTOMERS
    anonymous = [r for k, events in demo.items() if k.startswith("anon") for r in events]
    assert all({k for k, v in r["envelope"]["identity"].items() if v} == {"cookie_id"} for r in anonymous)
    for key, events in demo.items():
        p, types = profiles[key], defaultdict(set)
        for r in events:
            types[r["envelope"]["event_type"]].add(r.get("order_id") or r.get("receipt_id") or r.get("case_id"))
        v = view(p)
        assert v["commerce"]["orders"] == len(types["commerce.order_placed"] | types["store.purchase_completed"])
        assert v["complaints"]["total"] == len({r["case_id"] for r in events if r.get("case_id")})
        assert v["events"] == len(events) and len(v["interactions"]) <= 20
        json.dumps(v)


def test_demo_profiles_are_order_free_and_survive_a_restart(demo):
    import random
    rng = random.Random(3)
    for key in sorted(demo, key=lambda k: -len(demo[k]))[:8]:
        events = demo[key]
        straight = fold(events, key)
        shuffled = rng.sample(events, len(events))
        half = from_dict(json.loads(json.dumps(to_dict(fold(shuffled[: len(events) // 2], key)))))
        resumed = fold(shuffled[len(events) // 2:] + events[:5], key, profile=half)
        assert differences(straight, resumed) == [] and fingerprint(straight) == fingerprint(resumed)


def test_demo_shows_stages_pmp_and_findings(demo):
    profiles = [fold(events, key) for key, events in demo.items() if key.startswith("C")]
    stages = {p.journey.stage for p in profiles}
    assert {"research", "sale", "support"} <= stages
    assert any(view(p)["pmp"] and view(p)["pmp"][0]["channel"] != "web" for p in profiles)
    assert any(p.commerce.orders for p in profiles) and any(p.complaints for p in profiles)
    assert any(p.attitude.csat or p.attitude.nps for p in profiles)
    kinds = {f.kind for p in profiles for f in p.findings.values()}
    assert {"conflict", "overload"} <= kinds, kinds


def test_identifiers_are_normalised_and_trusted_as_their_events_prove():
    def seen(event_type: str, identity: dict, hours: float) -> dict:
        record = ev(event_type, hours)
        record["envelope"]["identity"] = {**{k: None for k in record["envelope"]["identity"]}, **identity}
        return record

    profile = run(seen("web.page_viewed", {"cookie_id": "ck-1", "email": "Ann@Example.COM"}, 1),
                  seen("web.page_viewed", {"customer_id": "CU-1", "cookie_id": "ck-1", "email": "ann@example.com"}, 2),
                  seen("web.form_submitted", {"phone": "06 12345678"}, 3))
    trust = {(i["kind"], i["value"]): i["trust"] for i in view(profile)["identifiers"]}
    assert trust == {("cookie_id", "ck-1"): "observed",         # a browser is never proof
                     ("email", "ann@example.com"): "verified",  # logged in: one identifier, both spellings
                     ("customer_id", "CU-1"): "verified",
                     ("phone", "+31612345678"): "claimed"}      # typed into a form
