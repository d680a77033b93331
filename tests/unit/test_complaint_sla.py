"""SLA policies, business hours, clocks and derived events: properties (hypothesis) and worked cases."""

from __future__ import annotations

import copy
import json
import tomllib
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.complaint_streams import CASE, NOW, T0, call, ev, lifecycles
from touchstream.events.catalogue import Catalogue
from touchstream.projections.complaint_resolution import apply, fold, view
from touchstream.projections.complaint_sla import (
    BREACHED, MET, RUNNING, WARNING, PolicyError, clocks, due_events, load_policies, parse_policies, pin_policy,
    policy_for,
)
from touchstream.projections.complaint_sla_calendar import Calendar, add_working, working_time
from touchstream.projections.complaint_sla_policy import CHANNELS, PRIORITIES

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UTC = timezone.utc
POLICY_FILE = Path(__file__).parents[2] / "projections" / "sla_policies.toml"
POLICIES = load_policies()
POLICY = POLICIES[0]
OFFICE = POLICY.calendars["office"]
CAT = Catalogue()
H = 60


# -- the policy file ------------------------------------------------------------------------------------------------
def test_the_shipped_policy_file_loads_and_targets_fall_back_key_by_key():
    assert [p.version for p in POLICIES] == ["2026.1"] and POLICY.warning_fraction == 0.8
    phone = POLICY.target("first_response", "normal", "phone")
    assert phone.span == timedelta(hours=1) and phone.calendar is OFFICE
    assert POLICY.target("resolution", "normal", "phone").span == timedelta(hours=45)
    assert POLICY.target("first_response", "high", "phone").span == timedelta(hours=1)   # priority row leaves it
    assert POLICY.target("next_response", "high", "email").span == timedelta(hours=4)
    urgent = POLICY.target("resolution", "urgent", "email")
    assert urgent == (timedelta(hours=24), None)                                         # around the clock
    assert POLICY.target("periodic_update", "unknown", "unknown").span == timedelta(hours=18)


def test_priorities_and_channels_match_the_schemas():
    fields = {f["name"]: f["type"] for f in CAT.schema("complaint.opened").schema["fields"]}
    assert tuple(fields["priority"]["symbols"]) == PRIORITIES
    channel = json.loads((POLICY_FILE.parents[1] / "schemas" / "common" / "touchstream.common.Channel.avsc")
                         .read_text())
    assert tuple(channel["symbols"]) == CHANNELS


def _doc() -> dict:
    return tomllib.loads(POLICY_FILE.read_text())


def _set(path: str, value):
    def change(doc: dict) -> None:
        *parents, last = path.split(".")
        node = doc["versions"][0]
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            del node[last]
        else:
            node[last] = value
    return change


@pytest.mark.parametrize("change, where", [
    (_set("targets.urgent.phone.first_response", "4x"), "versions[0].targets.urgent.phone.first_response: '4x'"),
    (_set("targets.default.phone.first_responce", "1h"), "versions[0].targets.default.phone.first_responce: unknown"),
    (_set("targets.vip", {"default": {"resolution": "1h"}}), "versions[0].targets.vip: unknown priority"),
    (_set("targets.high.fax", {"resolution": "1h"}), "versions[0].targets.high.fax: unknown channel"),
    (_set("targets.default.default.resolution", None), "versions[0].targets.default.default: must set resolution"),
    (_set("targets.low.default.calendar", "shop"), "versions[0].targets.low.default.calendar: 'shop'"),
    (_set("calendars.office.timezone", "Mars/Base"), "versions[0].calendars.office: unknown timezone"),
    (_set("calendars.office.hours", ["18:00", "08:00"]), "versions[0].calendars.office: calendar office"),
    (_set("calendars.office.hours", ["8:00", "18:00"]), "versions[0].calendars.office.hours[0]: '8:00'"),
    (_set("calendars.office.weekdays", ["monday"]), "versions[0].calendars.office.weekdays"),
    (_set("calendars.always", {}), "versions[0].calendars.always"),
    (_set("valid_from", datetime(2026, 1, 1)), "versions[0].valid_from: an offset date-time"),
    (_set("warning_fraction", 1.5), "versions[0].warning_fraction"),
    (_set("escalate_on_breach", ["everything"]), "versions[0].escalate_on_breach"),
    (lambda doc: doc["versions"].append(copy.deepcopy(doc["versions"][0])), "versions: version used twice: 2026.1"),
    (lambda doc: doc.update(format=2), "format: expected 1"),
])
def test_policy_problems_name_their_key_path(change, where):
    doc = _doc()
    change(doc)
    with pytest.raises(PolicyError) as err:
        parse_policies(doc)
    assert str(err.value).startswith(where), str(err.value)


def test_policy_versions_apply_from_their_date_and_a_case_keeps_the_version_it_opened_under():
    doc = _doc()
    newer = copy.deepcopy(doc["versions"][0])
    newer.update(version="2026.2", valid_from=T0 - timedelta(hours=1))   # added to the file after the case opened
    newer["targets"]["default"]["phone"]["first_response"] = "30m"
    policies = parse_policies({**doc, "versions": [newer, doc["versions"][0]]})
    assert [p.version for p in policies] == ["2026.1", "2026.2"]
    assert policy_for(policies, datetime(2019, 1, 1, tzinfo=UTC)) is None
    assert policy_for(policies, T0 - timedelta(hours=2)).version == "2026.1"
    assert policy_for(policies, T0).version == "2026.2"
    case = fold([ev("complaint.opened", 0, "o", "phone")], CASE)
    assert pin_policy(case, POLICIES).version == "2026.1" and case.policy_version == "2026.1"
    assert pin_policy(case, policies).version == "2026.1" and view(case)["policy_version"] == "2026.1"
    fresh = fold([ev("complaint.opened", 0, "o", "phone")], CASE)
    assert pin_policy(fresh, policies).target("first_response", "normal", "phone").span == timedelta(minutes=30)
    assert pin_policy(fold([ev("complaint.acknowledged", 0, "a")], CASE), POLICIES) is None   # no open: not pinned


# -- business hours -------------------------------------------------------------------------------------------------
MOMENTS = st.datetimes(datetime(2025, 1, 1), datetime(2027, 12, 31)).map(lambda d: d.replace(tzinfo=UTC))
SPANS = st.integers(0, 120 * 3600).map(lambda s: timedelta(seconds=s))
CALENDARS = st.sampled_from([OFFICE, None, Calendar("night", "America/New_York", frozenset({0, 2, 4, 5}),
                                                     time(20, 0), time(23, 30))])


@FAST
@given(CALENDARS, MOMENTS, SPANS)
def test_adding_working_time_then_measuring_it_gives_it_back(cal, start, span):
    due = add_working(cal, start, span)
    assert working_time(cal, start, due) == span
    assert due >= start + span if cal else due == start + span        # never faster than the wall clock
    if cal and span:
        before = due - timedelta(microseconds=1)
        assert cal.is_open(before) and working_time(cal, start, before) < span


@FAST
@given(CALENDARS, MOMENTS, SPANS, SPANS)
def test_working_time_adds_up_and_grows_with_the_span(cal, start, a, b):
    middle, end = add_working(cal, start, a), add_working(cal, start, a + b)
    assert add_working(cal, middle, b) == end or b == timedelta(0)
    assert working_time(cal, start, middle) + working_time(cal, middle, end) == working_time(cal, start, end)
    assert middle <= end


def test_business_hours_skip_evenings_weekends_holidays_and_follow_summer_time():
    friday = datetime(2026, 3, 27, 15, tzinfo=UTC)                    # 16:00 in Amsterdam (CET)
    assert add_working(OFFICE, friday, timedelta(hours=4)) == datetime(2026, 3, 30, 9, tzinfo=UTC)  # 11:00 CEST
    before_easter = datetime(2026, 4, 3, 14, tzinfo=UTC)              # Friday 16:00 CEST; Monday is a holiday
    assert add_working(OFFICE, before_easter, timedelta(hours=4)) == datetime(2026, 4, 7, 9, tzinfo=UTC)
    sunday = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert add_working(OFFICE, sunday, timedelta(minutes=30)) == datetime(2026, 3, 2, 8, tzinfo=UTC)
    assert working_time(OFFICE, sunday, datetime(2026, 3, 2, 8, 30, tzinfo=UTC)) == timedelta(hours=1)


# -- clocks ---------------------------------------------------------------------------------------------------------
def by_name(case, as_of, policy=POLICY) -> dict:
    return {c.name: c for c in clocks(case, policy, as_of)}


def test_an_email_complaint_runs_its_clocks_in_office_hours():
    opened = [ev("email.received", 0, "in", "email", message_id="M1"), ev("complaint.opened", 10, "o", "email")]
    case = fold(opened, CASE)
    first = by_name(case, T0 + timedelta(minutes=20))["first_response"]
    assert (first.started_at, first.due_at, first.state) == (T0 + timedelta(minutes=10),
                                                             datetime(2026, 3, 3, 8, 10, tzinfo=UTC), RUNNING)
    assert first.warning_at == add_working(OFFICE, first.started_at, timedelta(hours=8) * 0.8)
    assert by_name(case, first.warning_at)["first_response"].state == WARNING
    assert by_name(case, first.due_at)["first_response"].state == BREACHED
    apply(case, ev("complaint.acknowledged", 2 * H, "ack", "email"))
    first = by_name(case, T0 + timedelta(days=3))["first_response"]
    assert (first.state, first.met_by, first.met_at) == (MET, "ack", T0 + timedelta(hours=2))


def test_a_call_logged_late_corrects_the_clock_to_the_one_computed_on_time():
    base = [ev("email.received", 0, "in", "email", message_id="M1"), ev("complaint.opened", 10, "o", "email"),
            ev("complaint.updated", 60 * H, "u", "email")]
    late_call = call("C1", 5 * H, "cb", direction="outbound")      # made on Monday afternoon, logged days later
    as_of = T0 + timedelta(days=4)
    without = fold(base, CASE)
    assert by_name(without, as_of)["first_response"].state == BREACHED
    assert any(e["envelope"]["event_type"] == "complaint.sla_breached" for e in due_events(without, POLICY, as_of))
    corrected = fold(late_call, CASE, case=without)
    on_time = fold(sorted(base + late_call, key=lambda e: e["envelope"]["occurred_at"]), CASE)
    assert clocks(corrected, POLICY, as_of) == clocks(on_time, POLICY, as_of)
    first = by_name(corrected, as_of)["first_response"]
    assert (first.state, first.met_by) == (MET, "cb-a")
    assert not any(e["clock"] == "first_response" for e in due_events(corrected, POLICY, as_of))


def test_a_missed_callback_breaches_and_escalates_with_stable_ids():
    events = [ev("complaint.opened", 0, "o", "email"), ev("complaint.acknowledged", 5, "a", "email"),
              ev("complaint.callback_promised", 10, "p", "email", callback_id="CB1",
                 promised_by=(T0 + timedelta(hours=24)).isoformat()),
              ev("phone.callback_made", 30 * H, "try", "phone", case_id=CASE, callback_id="CB1", reached=False)]
    case = fold(events, CASE)
    as_of = T0 + timedelta(hours=31)
    cb = by_name(case, as_of)["callback:CB1"]
    assert (cb.state, cb.due_at, cb.breached_at) == (BREACHED, T0 + timedelta(hours=24), T0 + timedelta(hours=24))
    assert view(case)["callbacks"][0]["status"] == "missed"
    due = due_events(case, POLICY, as_of)
    kinds = [(e["envelope"]["event_type"], e.get("clock")) for e in due]
    assert ("complaint.sla_warning", "callback:CB1") in kinds and ("complaint.sla_breached", "callback:CB1") in kinds
    escalation = next(e for e in due if e["envelope"]["event_type"] == "complaint.escalated")
    record = CAT.validate(escalation, now=NOW).record              # a schema-valid complaint.escalated
    assert (record["level"], record["reason"], record["envelope"]["occurred_at"]) == (1, "sla_breach", cb.due_at)
    assert due_events(case, POLICY, as_of) == due                   # a timer re-fire: the same events, the same ids
    again = due_events(fold([record], CASE, case=fold(events, CASE)), POLICY, as_of)
    assert [e["envelope"]["event_id"] for e in again] == [e["envelope"]["event_id"] for e in due]
    assert fold([record], CASE, case=fold(events, CASE)).level == 1


def test_a_finished_case_stops_its_clocks_and_urgent_cases_run_around_the_clock():
    case = fold([ev("complaint.opened", 0, "o", "email", priority="urgent"),
                 ev("complaint.closed", 30, "c", "email", reason="withdrawn")], CASE)
    clock = by_name(case, T0 + timedelta(days=30))
    assert clock["resolution"].state == MET and clock["resolution"].met_by == "c"
    assert clock["first_response"].met_by == "c"
    assert clock["resolution"].due_at == T0 + timedelta(hours=24)
    reopened = fold([ev("complaint.reopened", 2 * 24 * H, "re", "phone")], CASE, case=case)
    names = by_name(reopened, T0 + timedelta(days=2, hours=1))
    assert names["resolution:re"].state == RUNNING and names["resolution"].state == MET


@FAST
@given(lifecycles(), st.data())
def test_a_late_event_gives_the_clock_it_would_have_had_on_time(events, data):
    late = data.draw(st.sampled_from(events))
    on_time = fold(events, CASE)
    delayed = fold([e for e in events if e is not late] + [late], CASE)
    last = max(e["envelope"]["occurred_at"] for e in events)
    for as_of in (late["envelope"]["occurred_at"], last, last + timedelta(days=9)):
        assert clocks(delayed, POLICY, as_of) == clocks(on_time, POLICY, as_of)
        known_then = fold([e for e in events if e["envelope"]["occurred_at"] <= as_of], CASE)
        assert clocks(known_then, POLICY, as_of) == clocks(on_time, POLICY, as_of)   # only facts by as_of count


@FAST
@given(lifecycles(), st.randoms(use_true_random=False), st.integers(0, 30 * 24))
def test_derived_events_are_deterministic_and_only_accumulate(events, rnd, hours):
    as_of = T0 + timedelta(hours=hours)
    due = due_events(fold(events, CASE), POLICY, as_of)
    assert due == due_events(fold(rnd.sample(events, len(events)), CASE), POLICY, as_of)
    ids = [e["envelope"]["event_id"] for e in due]
    assert len(ids) == len(set(ids))
    assert all(datetime.fromisoformat(e["envelope"]["occurred_at"]) <= as_of for e in due)
    later = due_events(fold(events, CASE), POLICY, as_of + timedelta(days=3))
    assert all(e in later for e in due)       # what was due stays due, unchanged, whatever happened after as_of
