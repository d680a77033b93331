"""The sink's short cut through the 360 write path gives what the long way gave.

The sink builds one ``typed_view`` per changed profile and uses it as the Avro record
(written by ``avro_writer``, compiled from the schema) and as the summary row's input,
without ``view``'s strings or ``to_record``'s conversion. These tests hold it to the
long way: the same bytes on the wire as fastavro writes for ``to_record(view)``, the
same canonical JSON text (so the same fingerprint), the same summary row, for any
generated event stream and for the demo's customers; and the compiled writer to
fastavro's bytes for any record of the published schemas.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from decimal import Decimal, localcontext

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.avro_strategies import json_for
from tests.local_codec import LocalCodec
from tests.unit.test_customer_360 import FAST, SMALL, demo, ev, streams  # noqa: F401  (demo: a fixture)
from touchstream.codec.avro_writer import compile_writer, frame
from touchstream.events.validation import to_avro
from touchstream.projections.customer_360 import fold, typed_view, view, view_json
from touchstream.projections.customer_360_contract import FINDING_SCHEMA, SCHEMA, to_record
from touchstream.projections.customer_360_summary import summary_row

NOW = datetime(2100, 1, 1, tzinfo=timezone.utc)
WRITE = compile_writer(SCHEMA.schema)
CODEC = LocalCodec()


def _bytes(record: dict, schema: dict = SCHEMA.schema) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def _same_both_ways(profile) -> None:
    typed, plain = typed_view(profile), view(profile)
    assert WRITE(typed) == _bytes(typed) == _bytes(to_record(plain))
    assert WRITE(typed, frame(CODEC.schema_id(SCHEMA))) == CODEC.encode(SCHEMA, to_record(plain))
    assert view_json(typed) == view_json(plain)
    assert json.loads(view_json(typed)) == plain
    assert summary_row(profile.customer_id, typed, NOW) == summary_row(profile.customer_id, plain, NOW)


@FAST
@given(events=streams())
def test_any_stream_gives_the_same_record_text_and_row_both_ways(events):
    _same_both_ways(fold(events, "CU-1", SMALL))


def test_every_demo_customer_gives_the_same_record_text_and_row_both_ways(demo):
    assert len(demo) >= 30
    for key, events in demo.items():
        _same_both_ways(fold(events, key))


def test_the_canonical_text_is_compact_sorted_json_that_keeps_non_ascii_as_written():
    profile = fold([ev("feedback.golden_question_answered", 0, question_key="roast", answer="mild, ñ ü 日本")],
                   "CU-1")
    text = view_json(typed_view(profile))
    assert "mild, ñ ü 日本" in text and ": " not in text and ", " not in text.replace("mild, ", "")
    assert list(json.loads(text)) == sorted(view(profile))


@FAST
@given(data=st.data())
def test_the_compiled_writer_writes_fastavros_bytes_for_any_record_of_the_schemas(data):
    for schema in (SCHEMA.schema, FINDING_SCHEMA.schema):
        with localcontext() as wide:   # decimal(38, 2) sums: to_avro's quantize needs more than 28 digits
            wide.prec = 60
            record = to_avro(schema, data.draw(json_for(schema)))
        assert compile_writer(schema)(record) == _bytes(record, schema)


def test_the_compiled_writer_refuses_what_it_cannot_write_exactly():
    with pytest.raises(ValueError, match="decimal places"):
        WRITE(to_record(view(fold([], "CU-1"))) | {"commerce": {**typed_view(fold([], "CU-1"))["commerce"],
                                                               "balance_due": {"EUR": Decimal("0.001")}}})
    with pytest.raises(ValueError, match="unions"):
        compile_writer({"type": "record", "name": "U", "fields": [{"name": "u", "type": ["int", "string"]}]})
