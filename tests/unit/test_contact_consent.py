"""Consent enforcement (issue 17): a company-initiated contact without the customer's permission is a finding.

The rule is in ``projections/customer_360_consent.py``: the consent in force at the contact's
occurred_at decides (channel and "all" scopes, the latest of them wins), a withdrawal always
counts, a never-given consent only where the policy (``Config.opt_in``) requires an opt-in.
Each test is named after the case it holds; the property tests shuffle generated streams.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from hypothesis import event, given
from hypothesis import strategies as st

from tests.event_builders import CAT, plain_event
from tests.local_codec import LocalCodec
from tests.pipeline_harness import Live
from tests.unit.test_customer_360 import FAST, streams
from touchstream.projections.customer_360 import Config, apply, fingerprint, fold, view
from touchstream.projections.customer_360_contract import finding_records
from touchstream.topics import FINDINGS_TOPIC

NOW = datetime(2100, 1, 1, tzinfo=timezone.utc)
T0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
OPT_IN = Config(opt_in=("email:marketing", "sms:marketing"))
CODEC = LocalCodec()
_ids = itertools.count(1)


def ev(event_type: str, hours: float, **kw) -> dict:
    """One validated event of customer CU-1 at ``T0 + hours``."""
    plain = plain_event(event_type, T0 + timedelta(hours=hours), {"customer_id": "CU-1"},
                        event_id=kw.pop("event_id", f"k{next(_ids):05d}"), **kw)
    return CAT.validate(plain, now=NOW).record


def consent(hours: float, given: bool = True, channel: str | None = None, purpose: str = "marketing", **kw) -> dict:
    kind = "feedback.consent_given" if given else "feedback.consent_withdrawn"
    return ev(kind, hours, purpose=purpose, for_channel=channel, **kw)


def campaign(hours: float, channel: str = "email", message_id: str = "M1", **kw) -> dict:
    return ev("campaign.message_sent", hours, channel=channel, content="promotion", message_id=message_id,
              campaign_id="CMP-1", purpose="promotion", template="t", **kw)


def findings(*events, config: Config | None = None) -> list[dict]:
    return [f for f in view(fold(events, "CU-1", config))["findings"] if f["kind"] == "contact_without_consent"]


def test_a_campaign_after_a_withdrawal_on_its_channel_is_a_finding():
    withdrawn, sent = consent(0, False, "sms", event_id="w1"), campaign(2, "sms", event_id="c1")
    (found,) = findings(sent, withdrawn)
    assert found == {"id": "contact_without_consent:sms:msg:M1", "kind": "contact_without_consent",
                     "at": "2026-03-02T11:00:00+00:00", "subject": "sms:marketing", "channels": ["sms"],
                     "evidence": ["w1", "c1"]}


def test_a_withdrawal_on_another_channel_or_for_another_purpose_does_not_apply():
    assert findings(consent(0, False, "email"), campaign(2, "sms")) == []
    assert findings(consent(0, False, "sms", purpose="profiling"), campaign(2, "sms")) == []


def test_never_given_is_a_finding_only_where_the_policy_requires_an_opt_in():
    assert findings(campaign(1, "email")) == []   # the default policy requires no opt-in
    (found,) = findings(campaign(1, "email", event_id="c2"), config=OPT_IN)
    assert found["evidence"] == ["c2"] and found["subject"] == "email:marketing"
    assert findings(campaign(1, "postal_mail", message_id="PM1"), config=OPT_IN) == []   # not opt-in by post
    assert findings(campaign(1, "postal_mail", message_id="PM1"), config=Config(opt_in=("all:marketing",)))


def test_a_consent_given_before_the_contact_permits_it():
    assert findings(consent(0, True, "email"), campaign(1, "email"), config=OPT_IN) == []
    assert findings(consent(0, True), campaign(1, "sms"), config=OPT_IN) == []   # "all" covers sms
    # given after the contact: it was not in force when the message went out
    assert len(findings(campaign(1, "email"), consent(2, True, "email"), config=OPT_IN)) == 1


def test_a_withdrawal_that_occurred_after_the_contact_does_not_make_it_a_violation():
    events = (consent(0, True, "email"), campaign(1, "email"), consent(3, False, "email"))
    assert findings(*events) == [] and findings(*events, config=OPT_IN) == []
    assert len(findings(*events, campaign(4, "email", message_id="M2"))) == 1   # the next one is


def test_a_withdrawal_at_the_same_instant_as_the_contact_is_in_force():
    assert len(findings(consent(1, False, "email"), campaign(1, "email"))) == 1


def test_a_late_withdrawal_that_occurred_before_the_contact_corrects_the_profile():
    given_, sent, withdrawn = consent(0, True, "email"), campaign(2, "email"), consent(1, False, "email")
    live = fold([given_, sent], "CU-1")
    assert findings(given_, sent) == []
    apply(live, withdrawn)   # arrives last, occurred between the consent and the message
    replay = fold([given_, withdrawn, sent], "CU-1")
    assert [f["kind"] for f in view(live)["findings"]] == ["contact_without_consent"]
    assert fingerprint(live) == fingerprint(replay) and view(live) == view(replay)
    apply(live, consent(1.5, True, "email"))   # ... and a late re-consent before the message lifts it again
    assert view(live)["findings"] == []


def test_channel_and_all_scopes_both_apply_and_the_latest_statement_wins():
    assert len(findings(consent(0, False), campaign(1, "sms"))) == 1   # "no marketing at all" stops sms too
    # all withdrawn, then sms given again: sms is permitted, e-mail is not
    events = (consent(0, False), consent(1, True, "sms"), campaign(2, "sms"), campaign(2, "email", message_id="M2"))
    assert [f["subject"] for f in findings(*events)] == ["email:marketing"]
    # sms given, then all withdrawn: the later "all" statement wins
    assert len(findings(consent(0, True, "sms"), consent(1, False), campaign(2, "sms"))) == 1


def test_customer_initiated_contact_is_never_flagged():
    withdrawn = (consent(0, False), consent(0, False, purpose="service"))
    reply = ev("email.sent", 1, by="customer", content="promotion", campaign_id="CMP-1", message_id="R1")
    inbound = ev("email.received", 1, by="customer", content="inquiry")
    call = ev("phone.call_started", 2, by="customer", content="promotion", call_id="C1", direction="inbound")
    assert findings(*withdrawn, reply, inbound, call, config=Config(opt_in=("all:marketing", "all:service"))) == []


def test_a_service_message_needs_the_service_permission_not_the_marketing_one():
    shipped = ev("email.sent", 1, by="company", content="fulfilment", message_id="S1", event_id="s1")
    assert findings(consent(0, False, "email"), shipped, config=OPT_IN) == []
    (found,) = findings(consent(0, False, "email", purpose="service", event_id="w2"), shipped)
    assert found["subject"] == "email:service" and found["evidence"] == ["w2", "s1"]


def test_a_message_is_marketing_if_any_of_its_records_is_whatever_arrives_first():
    """The channel's record (no campaign id, content informing) and the campaign's record of one message."""
    channel = ev("email.sent", 1, by="company", content="informing", message_id="M1", event_id="e1")
    camp = campaign(1.01, "email", event_id="e2")
    withdrawn = consent(0, False, "email", event_id="w3")
    orders = [(withdrawn, channel, camp), (camp, channel, withdrawn), (channel, withdrawn, camp)]
    results = [findings(*events) for events in orders]
    assert results[0] == results[1] == results[2] and results[0][0]["evidence"] == ["w3", "e1"]
    assert findings(withdrawn, channel) == []   # the channel's record alone is a service message


def test_the_finding_is_published_as_a_contact_finding_record():
    profile = fold([consent(0, False, "sms"), campaign(1, "sms")], "CU-1")
    (record,) = finding_records("CU-1", view(profile))
    assert record["kind"] == "contact_without_consent" and record["finding_id"] == \
        "CU-1/contact_without_consent:sms:msg:M1" and record["subject"] == "sms:marketing"
    assert record["at"] == T0 + timedelta(hours=1)


STRICT = Config(last_n=5, window=timedelta(days=2), overload_cap=1,
                opt_in=("email:marketing", "all:service", "postal_mail:marketing"))



@st.composite
def consent_streams(draw) -> list[dict]:
    """Statements and company messages on few channels, ids and hours, so they meet: every permutation of
    a statement before, at or after a message, on its channel or "all", arriving before or after it."""
    out = []
    for n in range(draw(st.integers(1, 12))):
        hours, kind = draw(st.integers(0, 6)), draw(st.sampled_from(["statement", "campaign", "channel"]))
        eid = f"p{n:03d}"
        if kind == "statement":
            out.append(consent(hours, draw(st.booleans()), draw(st.sampled_from([None, "email", "sms"])),
                               draw(st.sampled_from(["marketing", "service"])), event_id=eid))
        elif kind == "campaign":
            out.append(campaign(hours, draw(st.sampled_from(["email", "sms"])), draw(st.sampled_from(["M1", "M2"])),
                                event_id=eid))
        else:
            channel = draw(st.sampled_from(["email", "sms"]))
            out.append(ev(f"{channel}.sent", hours, by=draw(st.sampled_from(["company", "customer"])),
                          content=draw(st.sampled_from(["fulfilment", "promotion", "informing"])),
                          message_id=draw(st.sampled_from(["M1", "M2"])), event_id=eid))
    return out


@FAST
@given(events=consent_streams(), data=st.data())
def test_any_arrival_order_gives_the_same_consent_findings(events, data):
    shuffled = data.draw(st.permutations(events))
    for config in (Config(), STRICT):
        a, b = fold(events, "CU-1", config), fold(shuffled, "CU-1", config)
        event(f"consent findings: {sum(f.kind == 'contact_without_consent' for f in a.findings.values())}")
        assert a == b and fingerprint(a) == fingerprint(b) and view(a) == view(b)


@FAST
@given(events=streams(), data=st.data())
def test_any_arrival_order_gives_the_same_consent_findings_under_an_opt_in_policy(events, data):
    shuffled = data.draw(st.permutations(events))
    a, b = fold(events, "CU-1", STRICT), fold(shuffled, "CU-1", STRICT)
    for finding in a.findings.values():
        event(f"finding: {finding.kind}")
    assert a == b and fingerprint(a) == fingerprint(b) and view(a) == view(b)


def test_the_pipeline_publishes_the_finding_and_lists_it_in_contact_findings(tmp_path):
    """Through identity and the 360 sink: a withdrawal arriving after the campaign message it precedes."""
    live = Live(tmp_path, CODEC)
    who = {"customer_id": "CU-7"}
    live.send(plain_event("campaign.message_sent", T0 + timedelta(hours=2), who, event_id="c7", channel="sms",
                          content="promotion", campaign_id="CMP-1", message_id="M7", purpose="promotion", template="t"))
    assert live.sink.db.query("SELECT count(*) FROM contact_findings").rows == [(0,)]
    live.send(plain_event("feedback.consent_withdrawn", T0, who, event_id="w7", channel="sms", purpose="marketing",
                          for_channel="sms"))
    rows = live.sink.db.query("SELECT finding_id, kind, subject, channels, evidence FROM contact_findings").rows
    assert [list(r) for r in rows] == [["CU-7/contact_without_consent:sms:msg:M7", "contact_without_consent",
                                        "sms:marketing", ["sms"], ["w7", "c7"]]]
    raised = [CODEC.decode(v).record for t, _k, v, _h in live.sink.output.records if t == FINDINGS_TOPIC]
    assert [(r["finding_id"], r["kind"]) for r in raised] == [("CU-7/contact_without_consent:sms:msg:M7",
                                                               "contact_without_consent")]
