"""JSON <-> Avro conversion and the envelope rules, on every event schema."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.avro_strategies import json_for
from touchstream.events.catalogue import Catalogue
from touchstream.events.envelope import partition_key
from touchstream.events.time_rules import DEFAULT_MAX_SKEW, EARLIEST, check_skew, check_time_range, check_times
from touchstream.events.validation import EventValidationError, text_problems, to_avro, to_json
from touchstream.schemas import load_latest

SCHEMAS = sorted(load_latest().values(), key=lambda s: s.event_type)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.event_type)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_json_avro_round_trip(schema, data):
    """Any JSON value of the schema's shape survives JSON -> Avro -> bytes -> Avro -> JSON."""
    value = data.draw(json_for(schema.schema))
    record = to_avro(schema.schema, value)
    parsed = fastavro.parse_schema(schema.schema)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    back = fastavro.schemaless_reader(io.BytesIO(buf.getvalue()), parsed, None)
    assert back == record
    assert to_avro(schema.schema, to_json(back)) == record


def call_ended(**envelope):
    env = {
        "event_type": "phone.call_ended", "occurred_at": "2026-06-01T11:00:00Z", "channel": "phone",
        "content": "complaint", "initiated_by": "customer", "identity": {"phone": "+31 20 123 4567"},
    }
    env.update(envelope)
    return {"envelope": env, "call_id": "c1", "direction": "inbound", "wait_seconds": 42,
            "talk_seconds": 300, "outcome": "completed"}


def problems_of(event, **kw):
    with pytest.raises(EventValidationError) as info:
        Catalogue().validate(event, now=NOW, **({"source": "pbx"} | kw))
    return {p.path: p.reason for p in info.value.problems}


def test_valid_event_gets_defaults_and_key():
    valid = Catalogue().validate(call_ended(), now=NOW, source="pbx")
    env = valid.record["envelope"]
    assert env["source"] == "pbx" and env["recorded_at"] == NOW and env["event_id"]
    assert valid.topic == "touchstream.raw.phone"
    assert valid.key == b"phone:+31201234567"


def test_every_problem_is_named_with_its_path():
    event = call_ended(channel="store", occurred_at="2026-06-01T11:00:00")
    event["wait_seconds"] = "long"
    event["colour"] = "red"
    del event["call_id"]
    found = problems_of(event)
    assert "no time zone" in found["envelope.occurred_at"]
    assert found["wait_seconds"] == "expected int, got str"
    assert found["colour"] == "unknown field"
    assert found["call_id"] == "required field is missing"


def test_catalogue_rules_on_the_envelope():
    found = problems_of(call_ended(channel="web", content="promotion"))
    assert "not allowed for phone.call_ended" in found["envelope.channel"]
    found = problems_of(call_ended(identity={"email": "   "}))
    assert "needs at least one" in found["envelope.identity"]
    assert "before 2000-01-01" in problems_of(call_ended(occurred_at="0001-01-01T00:00:00Z"))["envelope.occurred_at"]
    assert "before 2000-01-01" in problems_of(call_ended(recorded_at="1999-12-31T23:59:59Z"))["envelope.recorded_at"]
    assert "unknown event type" in problems_of({"envelope": {"event_type": "phone.call_exploded"}})["envelope.event_type"]


def test_batch_problems_carry_the_index():
    good, bad = call_ended(), call_ended(content="nonsense")
    with pytest.raises(EventValidationError) as info:
        Catalogue().validate_batch([good, bad], now=NOW, source="pbx")
    assert [p.path for p in info.value.problems] == ["[1].envelope.content"]


def test_source_comes_from_the_publisher_not_the_payload():
    event = call_ended(source="someone-else")
    assert Catalogue().validate(event, now=NOW, source="pbx").record["envelope"]["source"] == "pbx"


@given(st.emails())
def test_partition_key_normalises_email_case(email):
    assert partition_key({"email": email.upper()}) == partition_key({"email": email.lower()})


def test_partition_key_prefers_the_strongest_hint():
    assert partition_key({"cookie_id": "c", "customer_id": "42"}) == b"customer_id:42"
    with pytest.raises(ValueError):
        partition_key({"email": None})


@pytest.mark.parametrize("amount,ok", [("12.50", True), (12.5, True), ("1.005", False), ("abc", False), (True, False)])
def test_money_is_exact_decimal(amount, ok):
    schema = {"type": "record", "name": "M", "fields": [
        {"name": "a", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}}]}
    if ok:
        assert str(to_avro(schema, {"a": amount})["a"]) == "12.50"
    else:
        with pytest.raises(EventValidationError):
            to_avro(schema, {"a": amount})


def test_a_validated_timestamp_is_what_the_wire_keeps_and_far_out_millis_are_refused():
    schema = load_latest()["web.page_viewed"]
    event = {"envelope": {"event_id": "e1", "event_type": "web.page_viewed", "occurred_at": "2026-03-01T09:00:00.123456Z",
                          "recorded_at": 1772355600123, "channel": "web", "content": "inquiry",
                          "initiated_by": "customer", "source": "t", "identity": {"cookie_id": "c"}},
             "url": "https://x.example"}
    record = to_avro(schema.schema, event)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema.schema), record)
    buf.seek(0)
    assert fastavro.schemaless_reader(buf, fastavro.parse_schema(schema.schema)) == record
    assert record["envelope"]["occurred_at"].microsecond == 123000
    assert record["envelope"]["recorded_at"] == datetime(2026, 3, 1, 9, 0, 0, 123000, tzinfo=timezone.utc)
    event["envelope"]["occurred_at"] = 10**15
    with pytest.raises(EventValidationError, match="envelope.occurred_at: epoch milliseconds outside"):
        to_avro(schema.schema, event)


# --- time rules (events/time_rules.py): what the publishers and the raw-topic consumers check ----

def envelope_at(occurred: datetime, recorded: datetime) -> dict:
    return {"occurred_at": occurred, "recorded_at": recorded}


def test_occurred_at_may_lead_recorded_at_by_the_skew_and_no_more():
    assert check_times(envelope_at(NOW + DEFAULT_MAX_SKEW, NOW)) == []
    [problem] = check_times(envelope_at(NOW + DEFAULT_MAX_SKEW + timedelta(milliseconds=1), NOW))
    assert problem.path == "envelope.occurred_at" and "is in the future" in problem.reason
    assert "more than 300 s after recorded_at" in problem.reason
    assert check_times(envelope_at(NOW + timedelta(seconds=500), NOW), 600) == []       # seconds, from Settings
    assert check_times(envelope_at(NOW + timedelta(seconds=61), NOW), timedelta(seconds=60)) != []


def test_the_2099_pair_is_refused_against_the_checkers_clock():
    y2099 = datetime(2099, 1, 1, tzinfo=timezone.utc)
    assert check_times(envelope_at(y2099, y2099)) == []   # consistent with each other: only a clock tells
    found = {p.path: p.reason for p in check_times(envelope_at(y2099, y2099), now=NOW)}
    assert set(found) == {"envelope.occurred_at", "envelope.recorded_at"}
    assert all("receiving clock 2026-06-01T12:00:00Z" in r for r in found.values())


def test_check_times_takes_a_record_or_an_envelope_in_json_or_avro_values():
    record = {"envelope": {"occurred_at": "2099-01-01T00:00:00Z", "recorded_at": 1780315200000}, "url": "u"}
    assert [p.path for p in check_times(record)] == ["envelope.occurred_at"]
    assert [p.path for p in check_times(record["envelope"])] == ["envelope.occurred_at"]
    found = {p.path: p.reason for p in check_times({"occurred_at": "yesterday"})}
    assert "not an ISO-8601 timestamp" in found["envelope.occurred_at"]
    assert found["envelope.recorded_at"] == "required field is missing"


def test_the_range_and_skew_rules_split_as_the_catalogue_and_the_publishers_use_them():
    early = envelope_at(EARLIEST - timedelta(milliseconds=1), NOW)
    assert [p.path for p in check_time_range(early)] == ["envelope.occurred_at"] and check_skew(early) == []
    late = envelope_at(NOW + timedelta(hours=1), NOW)
    assert check_time_range(late) == [] and [p.path for p in check_skew(late)] == ["envelope.occurred_at"]
    assert check_time_range(envelope_at(EARLIEST, EARLIEST)) == []


def test_text_that_cannot_be_stored_is_found_with_its_path_at_any_depth():
    event = call_ended(correlation_id="a\x00b")
    event["answers"] = {"ok": "fine", "k\ud800": "v", "list": ["x", "y\x00"]}
    assert [(p.path, p.reason) for p in text_problems(event)] == [
        ("envelope.correlation_id", "contains a NUL character (\\u0000)"),
        ("answers.<key>", "a key contains a lone UTF-16 surrogate"),
        ("answers.list[1]", "contains a NUL character (\\u0000)"),
    ]
    nested: list = ["\x00"]
    for _ in range(10_000):   # no recursion: a deep value cannot overflow the walk
        nested = [nested]
    assert [p.path for p in text_problems(nested)] == ["[0]" * 10_000 + "[0]"]
