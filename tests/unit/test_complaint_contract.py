"""The complaint-case contract: ``ComplaintCaseView`` mirrors ``complaint_resolution.view`` and
``ComplaintSlaEvent`` mirrors ``complaint_sla.due_events``, and both survive the wire.

What they protect: the schemas name exactly the keys the view and the SLA events have (a new
key, a None where the schema has none, is refused with its field path), every demo case and
every SLA event the demo makes due round-trips through fastavro unchanged, and no generated
complaint stream (legal or chaotic) gives a view the contract cannot carry.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings

from tests.complaint_streams import CASE, call, chaos, ev, lifecycles
from tests.unit.test_complaint_resolution import demo_cases  # noqa: F401  (the fixture: the demo's cases, folded)
from tests.unit.test_derived_schemas import _wire
from touchstream.events.validation import EventValidationError
from touchstream.projections.complaint_resolution import fold, new_case, view
from touchstream.projections.complaint_resolution_contract import SCHEMA, SLA_SCHEMA, sla_record, to_record
from touchstream.projections.complaint_sla import due_events, load_policies, pin_policy

FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
POLICIES = load_policies()
SLA_TYPES = {"complaint.sla_warning", "complaint.sla_breached", "complaint.escalated"}


def _at(value: str | None) -> datetime | None:
    """What the wire keeps of an ISO time: UTC, truncated to the millisecond."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# --------------------------------------------------------------------------- the schemas


def test_topics_keys_and_fields_mirror_the_view():
    assert (SCHEMA.topic, SCHEMA.record_name) == ("touchstream.complaint-cases", "touchstream.derived.ComplaintCaseView")
    assert "case_id" in SCHEMA.key
    assert [f["name"] for f in SCHEMA.schema["fields"]] == list(view(new_case(CASE)))
    assert (SLA_SCHEMA.topic, SLA_SCHEMA.record_name) == ("touchstream.complaint-sla",
                                                          "touchstream.derived.ComplaintSlaEvent")
    assert SLA_SCHEMA.schema["fields"][0]["type"]["name"] == "Envelope", "the common envelope is inlined"


def test_an_empty_case_fits_the_contract():
    record = to_record(view(new_case(CASE)))
    assert record["state"] == "new" and record["opened_at"] is None and record["satisfaction"]["csat"] is None
    assert _wire(SCHEMA.schema, record) == record


def test_a_worked_case_keeps_every_part_through_the_wire():
    events = [ev("complaint.opened", 0, "o", "phone"), *call("C1", 1, "c1"),
              ev("complaint.callback_promised", 10, "p", "phone"),
              ev("phone.callback_made", 60, "m", "phone", case_id=CASE, callback_id="CB1", reached=True),
              ev("complaint.escalated", 70, "x", "phone", level=2, to_team="tier2"),
              ev("complaint.resolved", 90, "r", "phone", resolution_code="refund"),
              ev("complaint.closed", 100, "z", "email"), ev("complaint.resolved", 110, "r2", "phone"),
              ev("complaint.satisfaction_given", 120, "s", "email"),
              ev("feedback.csat_given", 130, "f", "email", score=5)]
    v = view(fold(events, CASE))
    record = to_record(v)
    assert _wire(SCHEMA.schema, record) == record
    assert record["satisfaction"]["csat"]["score"] == 5 and record["satisfaction"]["csat"]["after_resolution"]
    assert record["callbacks"][0]["kept_at"] == _at(v["callbacks"][0]["kept_at"])
    assert record["escalations"][0]["to_team"] == "tier2" and record["anomalies"][0]["event_id"] == "r2"
    assert record["contacts"][0]["talk_seconds"] == 300 and record["fcr"]["fcr"] is False


def test_a_view_that_drifted_from_the_schema_is_refused_with_its_path():
    drifted = view(new_case(CASE))
    drifted["metrics"]["new_key"] = 1
    drifted["state"] = None
    drifted["fcr"]["window_ends"] = "next week"
    with pytest.raises(EventValidationError) as exc:
        to_record(drifted)
    assert {p.path for p in exc.value.problems} == {"metrics.new_key", "state", "fcr.window_ends"}


def test_an_sla_event_that_drifted_is_refused_with_its_path():
    with pytest.raises(EventValidationError) as exc:
        sla_record({"envelope": {}, "case_id": CASE, "clock": "first_response", "overdue": True})
    paths = {p.path for p in exc.value.problems}
    assert "overdue" in paths and "envelope.event_id" in paths


# --------------------------------------------------------------------------- the demo's cases


def _last(case) -> datetime:
    """Event time of the case's latest fact."""
    marks = [s.mark for s in case.steps] + [a.mark for a in case.attempts] + [r.mark for r in case.ratings]
    marks += [f.mark for f in case.facts] + [t.mark for touches in case.contacts.values() for t in touches]
    return max(marks).at


def test_every_demo_case_survives_the_wire(demo_cases):
    assert len(demo_cases) > 20
    views = []
    for case in demo_cases.values():
        v = view(case)
        record = to_record(v)
        assert _wire(SCHEMA.schema, record) == record, v["case_id"]
        assert record["case_id"] == v["case_id"] and record["opened_at"] == _at(v["opened_at"])
        assert [c["started_at"] for c in record["contacts"]] == [_at(c["started_at"]) for c in v["contacts"]]
        views.append(v)
    # The round trip meant something: the optional parts the schema describes were filled somewhere.
    assert any(v["callbacks"] for v in views) and any(v["escalations"] for v in views)
    assert any(v["anomalies"] for v in views) and any(v["closed_at"] for v in views)
    assert any(v["satisfaction"]["complaint_satisfaction"] for v in views)
    assert any(c["wait_seconds"] is not None for v in views for c in v["contacts"])
    assert {v["fcr"]["fcr"] for v in views} >= {True, False}


def test_every_sla_event_of_the_demo_survives_the_wire(demo_cases):
    seen = set()
    for case in demo_cases.values():
        policy = pin_policy(case, POLICIES)
        for event in due_events(case, policy, _last(case) + timedelta(days=10)):
            record = sla_record(event)
            assert _wire(SLA_SCHEMA.schema, record) == record
            assert record["envelope"]["occurred_at"] == _at(event["envelope"]["occurred_at"])
            kind = event["envelope"]["event_type"]
            seen.add(kind)
            if kind == "complaint.escalated":
                assert record["clock"] is None and record["reason"] == "sla_breach" and record["level"] >= 1
            else:
                assert record["level"] is None and record["due_at"] == _at(event["due_at"])
                assert (record["warning_at"] is not None) == (kind == "complaint.sla_warning")
    assert seen == SLA_TYPES


# --------------------------------------------------------------------------- generated streams


@FEW
@given(chaos())
def test_any_complaint_stream_gives_a_view_that_fits_the_contract(events):
    record = to_record(view(fold(events, CASE)))
    assert _wire(SCHEMA.schema, record) == record


@FEW
@given(lifecycles())
def test_any_legal_lifecycle_and_its_sla_events_fit_the_contract(events):
    case = fold(events, CASE)
    policy = pin_policy(case, POLICIES)
    record = to_record(view(case))
    assert _wire(SCHEMA.schema, record) == record and record["policy_version"] == policy.version
    last = max(e["envelope"]["occurred_at"] for e in events)
    for event in due_events(case, policy, last + timedelta(days=3)):
        sla = sla_record(event)
        assert _wire(SLA_SCHEMA.schema, sla) == sla
