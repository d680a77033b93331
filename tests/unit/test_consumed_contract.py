"""Raw consumers check the envelope contract again: a record a foreign producer wrote straight to a
raw topic, bypassing the publisher, is dead-lettered with its field path and reason by every sink
and folded by none. Also: no record can move the SLA watermark past the broker's receipt + skew."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.event_builders import plain_event
from tests.local_codec import LocalCodec
from touchstream.events.catalogue import Catalogue
from touchstream.events.envelope import MAX_CLOCK_SKEW, check_consumed
from touchstream.processors.complaint_resolution import ComplaintSink, trusted_time
from touchstream.processors.decoding import decode_batch
from touchstream.processors.interaction_log import InteractionLogSink
from touchstream.processors.records import RawRecord
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.topics import raw_topic

CAT = Catalogue()
CODEC = LocalCodec()
AT = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
RECEIVED_MS = int(AT.timestamp() * 1000)


class Letters:
    def __init__(self):
        self.sent = []

    def send(self, letters, timeout: float = 30.0) -> None:
        self.sent.extend(letters)


def valid(event_type: str = "web.page_viewed", **fields) -> dict:
    """The Avro record of a valid event (as the publisher would have written it)."""
    event = plain_event(event_type, AT, {"email": "ann@example.com"}, **fields)
    return CAT.validate(event, now=AT).record


def raw(record: dict, *, as_type: str = "web.page_viewed", offset: int = 0, received_ms: int | None = RECEIVED_MS) -> RawRecord:
    """``record`` encoded with the schema of ``as_type``, skipping every check (a foreign producer)."""
    schema = CAT.schema(as_type)
    return RawRecord(raw_topic(schema.domain), 0, offset, b"k", CODEC.encode(schema, record), [], received_ms)


def broken(**envelope) -> dict:
    record = valid()
    record["envelope"] = {**record["envelope"], **envelope}
    return record


FORGED = {
    "event type disagrees with the schema": (broken(event_type="email.sent"), "envelope.event_type"),
    "channel not allowed for the type": (broken(channel="phone"), "envelope.channel"),
    "initiator not allowed for the type": (broken(initiated_by="company"), "envelope.initiated_by"),
    "no identity hint": (broken(identity={k: None for k in valid()["envelope"]["identity"]}), "envelope.identity"),
    "blank source": (broken(source="  "), "envelope.source"),
    "occurred far after recorded": (broken(occurred_at=AT + timedelta(days=3)), "envelope.occurred_at"),
    "both times in 2099": (broken(occurred_at=datetime(2099, 1, 1, tzinfo=timezone.utc),
                                  recorded_at=datetime(2099, 1, 1, tzinfo=timezone.utc)), "envelope.occurred_at"),
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_a_forged_record_is_dead_lettered_with_its_path_and_reason(name):
    record, path = FORGED[name]
    good, letters = decode_batch(CODEC, [raw(record)])
    assert good == []
    [letter] = letters
    assert path in letter.reason and "contract" in letter.reason


def test_a_valid_record_passes_and_keeps_its_broker_time():
    [(record, decoded)], letters = decode_batch(CODEC, [raw(valid())])
    assert letters == [] and decoded.record == valid() | {"envelope": decoded.record["envelope"]}
    assert record.received_at == AT


def test_times_ahead_of_the_brokers_receipt_are_refused_but_a_small_skew_is_not():
    env = valid()["envelope"]
    assert check_consumed(env, CAT.schema("web.page_viewed").meta, AT - MAX_CLOCK_SKEW + timedelta(seconds=1)) == []
    later = check_consumed(env, CAT.schema("web.page_viewed").meta, AT - MAX_CLOCK_SKEW - timedelta(seconds=1))
    assert {p.path for p in later} == {"envelope.occurred_at", "envelope.recorded_at"}


def test_a_schema_without_touchstream_metadata_is_not_an_event():
    assert [p.path for p in check_consumed(valid()["envelope"], None, AT)] == ["envelope.event_type"]


def test_the_interaction_log_stores_none_of_the_forged_records(tmp_path):
    store, letters = DuckDBStore(tmp_path / "s.duckdb"), Letters()
    sink = InteractionLogSink(store, CODEC, letters)
    records = [raw(r, offset=i) for i, (r, _) in enumerate(FORGED.values())] + [raw(valid(), offset=len(FORGED))]
    sink.handle(records)
    assert store.query("SELECT count(*) FROM interactions").rows == [(1,)]
    assert len(letters.sent) == len(FORGED)


def test_the_complaint_sink_folds_no_forged_case_event(tmp_path):
    opened = valid("complaint.opened", case_id="CASE-F1")
    y2099 = datetime(2099, 1, 1, tzinfo=timezone.utc)
    forged = {**opened, "envelope": {**opened["envelope"], "occurred_at": y2099, "recorded_at": y2099}}
    letters = Letters()
    sink = ComplaintSink(DuckDBStore(tmp_path / "c.duckdb"), CODEC, letters)
    sink.handle([raw(forged, as_type="complaint.opened")])
    assert sink.case("CASE-F1") is None and len(letters.sent) == 1


def test_the_sla_watermark_never_passes_the_brokers_receipt_plus_skew():
    future = broken(occurred_at=datetime(2099, 1, 1, tzinfo=timezone.utc))
    assert trusted_time(raw(future), future) == AT + MAX_CLOCK_SKEW
    assert trusted_time(raw(valid()), valid()) == AT
    assert trusted_time(raw(future, received_ms=None), future) == future["envelope"]["occurred_at"]


def test_the_consumers_allow_the_skew_the_publishers_were_configured_with(tmp_path):
    """One setting (TOUCHSTREAM_MAX_CLOCK_SKEW_SECONDS) for both sides: what a publisher with a wider
    skew accepted, a consumer with the same setting folds instead of dead-lettering."""
    ahead = AT + timedelta(seconds=400)
    record = broken(occurred_at=ahead, recorded_at=ahead)
    for skew, stored in ((MAX_CLOCK_SKEW, 0), (timedelta(seconds=600), 1)):
        store, letters = DuckDBStore(tmp_path / f"{skew.seconds}.duckdb"), Letters()
        InteractionLogSink(store, CODEC, letters, max_skew=skew).handle([raw(record)])
        assert store.query("SELECT count(*) FROM interactions").rows == [(stored,)]
        assert len(letters.sent) == 1 - stored
