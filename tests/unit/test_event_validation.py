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
from touchstream.events.validation import EventValidationError, to_avro, to_json
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
    future = (NOW + timedelta(hours=1)).isoformat()
    assert "future" in problems_of(call_ended(occurred_at=future))["envelope.occurred_at"]
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
