"""Serving's raw topics are consumed once and decoded once for the interaction log and the complaint sink
(``processors/raw_fanout.py``), and the rows are those each sink writes when it reads the topics alone."""

from __future__ import annotations

import copy
import random
from datetime import timedelta

from hypothesis import given, settings, strategies as st

from tests.local_codec import LocalCodec
from tests.pipeline_harness import consume, raw_logs
from touchstream.demo.generator import DEFAULT_START, generate
from touchstream.events.catalogue import Catalogue
from touchstream.processors.complaint_resolution import ComplaintSink
from touchstream.processors.interaction_log import InteractionLogSink
from touchstream.processors.raw_fanout import RawFanout, RecentDecodes, SharingCodec, decoded_batch
from touchstream.processors.records import RawRecord
from touchstream.projections import complaint_resolution as cases
from touchstream.projections import customer_360 as c360
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.projections.interaction_log import Position, to_row
from touchstream.publishing.dead_letters import AlreadySentDeadLetters

CODEC = LocalCodec()
NOW = DEFAULT_START + timedelta(days=400)
EVENTS = [Catalogue().validate(e, now=NOW) for e in generate(12, 20, 3)]
LOGS = raw_logs(EVENTS, CODEC)
GARBAGE = RawRecord("touchstream.raw.web", 0, len(LOGS[("touchstream.raw.web", 0)]), b"k", b"\x00\x00\x00\x00\x63xx", [])
LOGS[("touchstream.raw.web", 0)].append(GARBAGE)


class CountingCodec:
    """The codec, counting decodes."""

    def __init__(self, codec):
        self.codec, self.decodes = codec, 0

    def decode(self, data):
        self.decodes += 1
        return self.codec.decode(data)

    def __getattr__(self, name):
        return getattr(self.codec, name)


def sinks(folder, codec):
    db = DuckDBStore(folder / "s.duckdb")
    return db, InteractionLogSink(db, codec, AlreadySentDeadLetters()), ComplaintSink(db, codec, AlreadySentDeadLetters())


def tables(db: DuckDBStore) -> dict[str, list]:
    cur = db.cursor()
    try:
        return {
            "interactions": cur.execute("SELECT * EXCLUDE (ingested_at) FROM interactions ORDER BY event_id").fetchall(),
            "cases": cur.execute("SELECT case_id, customer_id, state, fingerprint FROM complaint_cases "
                                 "ORDER BY case_id").fetchall(),
            "case_events": cur.execute("SELECT event_id, case_id FROM complaint_events ORDER BY 1").fetchall(),
            "dead": cur.execute("SELECT count(*) FROM dead_letters").fetchall() if _has(cur, "dead_letters") else [],
            "offsets": cur.execute("SELECT sink, topic, \"partition\", next_offset FROM sink_offsets "
                                   "ORDER BY ALL").fetchall(),
        }
    finally:
        cur.close()


def _has(cur, table: str) -> bool:
    return bool(cur.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?", [table]).fetchall())


def test_every_raw_record_is_decoded_once_for_both_sinks(tmp_path):
    codec = CountingCodec(CODEC)   # the shared decode's (the complaint sink decodes its stored cases to refold)
    _db, log, complaints = sinks(tmp_path, CODEC)
    fanout = RawFanout(codec, [log, complaints])
    records = [r for batch in consume(LOGS, random.Random(1), max_batch=50) for r in batch]
    for start in range(0, len(records), 40):
        fanout.handle(records[start:start + 40])
    assert codec.decodes == len(records)
    assert log.applied == len(EVENTS) and log.dead == 1


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000), rewinds=st.integers(0, 3), ahead=st.integers(0, 60))
def test_the_shared_decode_writes_what_each_sink_writes_alone_whatever_the_batching(tmp_path_factory, seed, rewinds,
                                                                                     ahead):
    """Including a sink ahead of the other (it committed a batch the other had not when the process stopped):
    the shared consumer resumes at the lower offset and the sink ahead skips what it has."""
    alone_db, alone_log, alone_cases = sinks(tmp_path_factory.mktemp("alone"), CODEC)
    for batch in consume(LOGS, random.Random(seed), max_batch=30):
        alone_log.handle(batch)
        alone_cases.handle(batch)
    shared_db, log, complaints = sinks(tmp_path_factory.mktemp("shared"), CODEC)
    batches = consume(LOGS, random.Random(seed + 1), max_batch=30, rewinds=rewinds)
    head = [r for batch in batches for r in batch][:ahead]
    log.handle(head)   # the interaction log alone committed these before a stop
    fanout = RawFanout(CODEC, [log, complaints])
    for batch in batches:
        fanout.handle(batch)
    assert tables(shared_db) == tables(alone_db)


def test_the_complaint_sink_holds_the_sla_watermark_before_the_shared_decode(tmp_path):
    """A decode can wait out a registry outage for minutes: the complaint sink's partitions must be held
    from before it starts, or idle-partition logic would let the SLA watermark pass the waiting records."""
    _db, log, complaints = sinks(tmp_path, CODEC)
    held_at_first_decode = []

    class Watching(CountingCodec):
        def decode(self, data):
            if not held_at_first_decode:
                held_at_first_decode.append(set(complaints.timer._held))
            return super().decode(data)

    batch = consume(LOGS, random.Random(2), max_batch=20)[0]
    RawFanout(Watching(CODEC), [log, complaints]).handle(batch)
    assert held_at_first_decode == [{(r.topic, r.partition) for r in batch}]
    assert not complaints.timer._held   # released once applied


def test_recent_decodes_serve_the_360_the_bytes_identity_forwarded_and_stay_bounded():
    counting = CountingCodec(CODEC)
    recent = RecentDecodes(size=10)
    records = [r for log in LOGS.values() for r in log if r is not GARBAGE]
    decoded_batch(counting, records[:25], recent=recent)
    sharing = SharingCodec(CountingCodec(CODEC), recent)
    for r in records[15:25]:
        assert sharing.decode(r.value).record == CODEC.decode(r.value).record
    assert sharing._codec.decodes == 0 and recent.hits == 10
    assert sharing.decode(records[0].value).record == CODEC.decode(records[0].value).record   # evicted: decoded
    assert sharing._codec.decodes == 1 and len(recent._by_value) == 10
    assert sharing.schema_id is not None   # everything else is the codec's own


def test_no_fold_mutates_a_decoded_record():
    """Decoded records are shared between the log, the complaint fold and the 360 fold: none may change one."""
    records = [CODEC.decode(r.value).record for log in LOGS.values() for r in log if r is not GARBAGE]
    before = copy.deepcopy(records)
    for n, record in enumerate(records):
        to_row(record["envelope"]["event_type"], record, 1, Position("t", 0, n), NOW)
    c360.view(c360.fold(records, "CU-1"))
    by_case: dict = {}
    for record in records:
        key = record.get("case_id") or record["envelope"].get("correlation_id")
        if key:
            by_case.setdefault(key, []).append(record)
    cases.views([cases.fold(rs, key) for key, rs in by_case.items()], NOW)
    assert records == before
