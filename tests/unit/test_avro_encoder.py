"""``AvroCodec.encode`` (the compiled writers of ``avro_writer``) writes fastavro's bytes, and refuses wrong types.

The raw-event path (SDK, ``touchstream publish``, the collector) encodes with a writer
compiled per schema; these tests hold it to fastavro for any valid event of every
event schema and every derived record, to the round trip through ``AvroCodec.decode``,
and to raising, never writing, when a value has the wrong type.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timezone
from decimal import Decimal, localcontext
from pathlib import Path

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.avro_strategies import json_for
from tests.local_codec import LocalCodec
from touchstream.codec.avro_writer import UnsupportedSchema, compile_writer, frame
from touchstream.events.catalogue import Catalogue
from touchstream.events.validation import to_avro
from touchstream.schemas import EventSchema, load_all, load_derived_versions

CODEC = LocalCodec()
SCHEMAS = [*load_all(), *load_derived_versions()]
LATEST = {s.record_name: s for s in SCHEMAS}   # versions are sorted: the last one of a name wins
EXAMPLES = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NOW = datetime(2026, 12, 7, 9, 30, 15, 123000, tzinfo=timezone.utc)


def _fastavro(schema, record: dict) -> bytes:
    buf = io.BytesIO()
    buf.write(frame(CODEC.schema_id(schema)))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema.schema), record)
    return buf.getvalue()


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: f"{s.record_name}.v{s.version}")
def test_every_schema_compiles(schema):
    compile_writer(schema.schema)


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: f"{s.record_name}.v{s.version}")
@EXAMPLES
@given(data=st.data())
def test_any_valid_record_encodes_to_fastavros_bytes_and_decodes_back(schema, data):
    with localcontext() as wide:   # decimal(38, 2) sums: to_avro's quantize needs more than 28 digits
        wide.prec = 60
        record = to_avro(schema.schema, data.draw(json_for(schema.schema)))
        if LATEST[schema.record_name] is not schema:   # the codec writes a subject's newest version only
            assert compile_writer(schema.schema)(record) == _fastavro(schema, record)[5:]
            return
        encoded = CODEC.encode(schema, record)
    assert encoded == _fastavro(schema, record)
    assert CODEC.decode(encoded).record == record


def _valid(event_type: str, **fields) -> tuple[EventSchema, dict]:
    """A validated event of ``event_type`` (the catalogue's own path: defaults filled)."""
    channel = {"web": "web", "commerce": "web", "complaint": "phone"}[event_type.split(".")[0]]
    initiated = "company" if event_type in ("commerce.invoice_issued", "complaint.resolved") else "customer"
    content = {"web.page_viewed": "inquiry", "commerce.order_placed": "order_payment",
               "commerce.invoice_issued": "invoicing", "complaint.resolved": "complaint"}[event_type]
    event = {"envelope": {"event_id": "e-1", "event_type": event_type, "occurred_at": "2026-12-07T09:00:00Z",
                          "channel": channel, "content": content, "initiated_by": initiated,
                          "identity": {"customer_id": "CU-1"}}, **fields}
    valid = Catalogue().validate(event, now=NOW, default_source="test")
    return valid.schema, valid.record


ORDER = _valid("commerce.order_placed", order_id="O-1", total={"amount": "12.50", "currency": "EUR"},
               lines=[{"sku": "S", "quantity": 2, "unit_price": {"amount": "6.25", "currency": "EUR"}}])
INVOICE = _valid("commerce.invoice_issued", invoice_id="I-1", due_date="2027-01-31",
                 amount={"amount": "12.50", "currency": "EUR"})
RESOLVED = _valid("complaint.resolved", case_id="C-1", resolution_code="refund", resolved_on_first_contact=True)


def _with(base: tuple[EventSchema, dict], path: str, value) -> tuple[EventSchema, dict]:
    """A deep copy of the record with the field at dotted ``path`` (list indexes as numbers) set to ``value``."""
    schema, record = base
    out = _deep(record)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = out
    for part in parents:
        node = node[part]
    node[last] = value
    return schema, out


def _deep(value):
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value


@pytest.mark.parametrize("base", [ORDER, INVOICE, RESOLVED], ids=["order", "invoice", "resolved"])
def test_the_valid_bases_encode_as_fastavro_does(base):
    assert CODEC.encode(*base) == _fastavro(*base)


WRONG = [
    (ORDER, "order_id", 5), (ORDER, "order_id", b"O-1"), (ORDER, "order_id", None),
    (ORDER, "lines.0.quantity", True), (ORDER, "lines.0.quantity", "2"), (ORDER, "lines.0.quantity", 2.0),
    (ORDER, "lines.0.quantity", 2**31), (ORDER, "lines", "SKU"), (ORDER, "lines", {"sku": "S"}),
    (ORDER, "lines.0", "S"), (ORDER, "total.amount", 12.5), (ORDER, "total.amount", Decimal("12.505")),
    (ORDER, "total.amount", "12.50"), (ORDER, "envelope.occurred_at", datetime(2026, 12, 7, 9)),
    (ORDER, "envelope.occurred_at", 1.5e12), (ORDER, "envelope.occurred_at", "2026-12-07T09:00:00Z"),
    (ORDER, "envelope.occurred_at", 2**63), (ORDER, "envelope.channel", "telepathy"),
    (ORDER, "envelope.channel", None), (ORDER, "envelope.identity", "CU-1"),
    (ORDER, "envelope.identity.email", 42), (ORDER, "campaign_id", ["c"]),
    (INVOICE, "due_date", datetime(2027, 1, 31, tzinfo=timezone.utc)), (INVOICE, "due_date", "2027-01-31"),
    (INVOICE, "due_date", True), (RESOLVED, "resolved_on_first_contact", 1),
    (RESOLVED, "resolved_on_first_contact", "true"),
]


@pytest.mark.parametrize("base,path,value", WRONG, ids=[f"{p}={v!r}" for _, p, v in WRONG])
def test_a_value_of_the_wrong_type_raises(base, path, value):
    with pytest.raises((TypeError, ValueError)):
        CODEC.encode(*_with(base, path, value))


def test_a_missing_field_takes_its_default_as_in_fastavro_and_a_missing_required_one_raises():
    schema, record = ORDER
    partial = _deep(record)
    del partial["campaign_id"], partial["envelope"]["correlation_id"], partial["envelope"]["identity"]["email"]
    assert CODEC.encode(schema, partial) == CODEC.encode(schema, record) == _fastavro(schema, partial)
    with pytest.raises(ValueError, match="order_id"):
        CODEC.encode(schema, {k: v for k, v in record.items() if k != "order_id"})
    without_id = _deep(record)
    del without_id["envelope"]["event_id"]
    with pytest.raises(ValueError, match="event_id"):
        CODEC.encode(schema, without_id)


def test_a_date_and_epoch_days_and_millis_write_the_same_bytes():
    schema, record = INVOICE
    days = (date(2027, 1, 31) - date(1970, 1, 1)).days
    assert CODEC.encode(*_with(INVOICE, "due_date", days)) == CODEC.encode(schema, record)
    millis = int(record["envelope"]["occurred_at"].timestamp() * 1000)
    assert CODEC.encode(*_with(INVOICE, "envelope.occurred_at", millis)) == CODEC.encode(schema, record)


def test_a_schema_the_writer_cannot_compile_is_encoded_by_fastavro():
    body = {"type": "record", "name": "Odd", "namespace": "touchstream.test",
            "fields": [{"name": "u", "type": ["null", "int", "string"]}, {"name": "f", "type": {
                "type": "fixed", "name": "F", "size": 2}}]}
    with pytest.raises(UnsupportedSchema):
        compile_writer(body)
    odd = EventSchema("test.odd", "test", 1, Path("odd.v1.avsc"), body)
    for record in ({"u": 7, "f": b"ab"}, {"u": "x", "f": b"cd"}, {"u": None, "f": b"ef"}):
        assert CODEC.encode(odd, record) == _fastavro(odd, record)
        assert CODEC.decode(CODEC.encode(odd, record)).record == record
