"""Retention in DuckDB (``projections/retention.py``, ``processors/retention_expiry.py``): free text and dead
letters older than the catalogue's retention leave DuckDB, judged by the broker's append time, and a
rebuild from offset 0 neither brings them back nor differs from the live log after expiry."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.local_codec import LocalCodec
from tests.pipeline_harness import consume, raw_logs
from touchstream.demo.generator import DEFAULT_START, generate
from touchstream.events.catalogue import Catalogue
from touchstream.processors.complaint_resolution import ComplaintSink
from touchstream.processors.interaction_log import InteractionLogSink
from touchstream.processors.raw_fanout import RawFanout
from touchstream.processors.records import RawRecord
from touchstream.processors.retention_expiry import ExpiringOnWrite, RetentionExpiry
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.projections.retention import free_text_paths, payload_without_text, without_text
from touchstream.publishing.dead_letters import AlreadySentDeadLetters
from touchstream.topics import DLQ_TOPIC, Retention, load_retention, load_topics

CODEC = LocalCodec()
DAY_MS = 86_400_000
START_MS = int(DEFAULT_START.timestamp() * 1000)
EVENTS = [Catalogue().validate(e, now=DEFAULT_START + timedelta(days=400)) for e in generate(40, 30, 7)]
RETENTION = Retention(dead_letters_days=12, free_text_days=15)
NOW_MS = START_MS + 30 * DAY_MS   # the demo's 30 days are over: its first ~15 days are past free-text retention
GARBAGE = b"\x00\x00\x00\x00\x63xx"


def broker_stamped(logs) -> dict:
    """The raw logs as the broker keeps them: each record stamped when appended (LogAppendTime: never before
    the event was recorded, never behind the partition's previous record), plus an undecodable record at the
    start (old) and at the end (recent) of the web partitions."""
    out = {}
    for (topic, partition), records in logs.items():
        stamped, last = [], 0
        for r in records:
            last = max(last, _recorded_ms(r))
            stamped.append(replace(r, timestamp=last))
        if topic == "touchstream.raw.web":
            stamped.insert(0, RawRecord(topic, partition, 0, b"k", GARBAGE, [], START_MS))
            stamped.append(RawRecord(topic, partition, 0, b"k", GARBAGE, [], last))
            stamped = [replace(r, offset=i) for i, r in enumerate(stamped)]
        out[(topic, partition)] = stamped
    return out


def _recorded_ms(record: RawRecord) -> int:
    return int(CODEC.decode(record.value).record["envelope"]["recorded_at"].timestamp() * 1000)


LOGS = broker_stamped(raw_logs(EVENTS, CODEC))


def offsets_before(partitions, at_ms):
    """The broker's time index over LOGS: per partition, the first offset appended at or after ``at_ms``."""
    return {tp: next((r.offset for r in LOGS[tp] if r.timestamp >= at_ms), len(LOGS[tp])) for tp in partitions}


def serving_store(folder, name: str, clock_ms: int):
    """Serving's raw side (interaction log behind the retention rule, complaints) fed every record of LOGS."""
    db = DuckDBStore(folder / f"{name}.duckdb")
    log = ExpiringOnWrite(InteractionLogSink(db, CODEC, AlreadySentDeadLetters()), RETENTION, clock=lambda: clock_ms / 1000)
    fanout = RawFanout(CODEC, [log, ComplaintSink(db, CODEC, AlreadySentDeadLetters())])
    for batch in consume(LOGS, random.Random(name), max_batch=60):
        fanout.handle(batch)
    return db


@pytest.fixture(scope="module")
def live_file(tmp_path_factory):
    """The serving store written live (nothing was old yet), once for the module: each test copies it."""
    folder = tmp_path_factory.mktemp("live")
    serving_store(folder, "live", START_MS).close()
    return folder / "live.duckdb"


@pytest.fixture()
def live(live_file, tmp_path):
    shutil.copy(live_file, tmp_path / "copy.duckdb")
    db = DuckDBStore(tmp_path / "copy.duckdb")
    yield db
    db.close()


def expiry(db, now_ms: int = NOW_MS) -> RetentionExpiry:
    return RetentionExpiry(db, RETENTION, offsets_before, clock=lambda: now_ms / 1000)


def rows(db: DuckDBStore) -> dict[str, list]:
    cur = db.cursor()
    try:
        return {"interactions": cur.execute("SELECT * EXCLUDE (ingested_at) FROM interactions ORDER BY event_id").fetchall(),
                "dead_letters": cur.execute('SELECT topic, "partition", "offset", reason FROM dead_letters ORDER BY ALL').fetchall(),
                "complaint_events": cur.execute("SELECT * FROM complaint_events ORDER BY event_id").fetchall(),
                "complaint_cases": cur.execute("SELECT case_id, fingerprint FROM complaint_cases ORDER BY 1").fetchall()}
    finally:
        cur.close()


def free_text(db: DuckDBStore) -> dict[str, dict]:
    """Per event id, the free text its payload still holds (fields not null)."""
    paths = free_text_paths()
    out = {}
    for event_id, event_type, payload in db.cursor().execute("SELECT event_id, event_type, payload FROM interactions").fetchall():
        value = json.loads(payload)
        out[event_id] = {p[0]: value[p[0]] for p in paths.get(event_type, ()) if value.get(p[0]) is not None}
    return out


def received_ms() -> dict[str, int]:
    return {CODEC.decode(r.value).record["envelope"]["event_id"]: r.timestamp
            for records in LOGS.values() for r in records if r.value != GARBAGE}


def test_free_text_is_every_pii_string_that_is_no_identifier():
    fields = {p[0] for paths in free_text_paths().values() for p in paths}
    assert fields == {"answer", "answers", "body_excerpt", "comment", "description", "diagnostic", "location", "note",
                      "notes", "reason", "subject", "summary", "text", "title"}
    assert free_text_paths()["complaint.opened"] == {("description",)}
    assert "identity.identifier_observed" not in free_text_paths()                      # identifiers: erasure's
    assert free_text_paths()["social.comment_posted"] == {("text",)}                    # not the author's handle


def test_expiry_removes_old_free_text_and_dead_letters_and_keeps_the_rest(live):
    db = live
    before, received = free_text(db), received_ms()
    assert {"complaint.opened", "email.received", "web.chat_message_sent"} <= {
        r[1] for r in db.cursor().execute("SELECT event_id, event_type FROM interactions").fetchall()}
    dry = expiry(db).run(apply=False)
    web = sorted(tp for tp in LOGS if tp[0] == "touchstream.raw.web")
    assert free_text(db) == before and len(rows(db)["dead_letters"]) == 2 * len(web)   # a dry run changes nothing
    report = expiry(db).run(apply=True)
    assert report.as_dict() | {"applied": False} == dry.as_dict()
    old = {e for e, text in before.items() if text and received[e] < NOW_MS - 15 * DAY_MS}
    young = {e for e, text in before.items() if text and e not in old}
    assert old and young and report.payloads_stripped == len(old)
    assert report.by_event_type["complaint.opened"] > 0
    after = free_text(db)
    assert all(after[e] == {} for e in old) and all(after[e] == before[e] for e in young)
    assert [d[:3] for d in rows(db)["dead_letters"]] == [(t, p, len(LOGS[(t, p)]) - 1) for t, p in web]   # the recent ones
    assert report.dead_letters_deleted == len(web)
    again = expiry(db).run(apply=True)   # idempotent
    assert (again.payloads_stripped, again.dead_letters_deleted) == (0, 0)


def test_a_rebuild_from_offset_0_equals_the_live_log_after_expiry(live, tmp_path):
    expiry(live).run(apply=True)
    rebuilt = serving_store(tmp_path, "rebuilt", NOW_MS)   # every old event written again, now past retention
    assert rows(rebuilt) == rows(live)   # expired on write: no old free text, no old dead letter came back
    report = expiry(rebuilt).run(apply=True)
    assert (report.payloads_stripped, report.dead_letters_deleted) == (0, 0)


def test_free_text_days_0_keeps_free_text(live):
    db = live
    before = free_text(db)
    report = RetentionExpiry(db, Retention(12, 0), offsets_before, clock=lambda: NOW_MS / 1000).run(apply=True)
    assert report.payloads_stripped == 0 and report.dead_letters_deleted == 3 and free_text(db) == before


def test_expiring_a_record_leaves_the_shared_decode_alone():
    record = {"envelope": {"event_type": "complaint.opened"}, "case_id": "c1", "description": "my neighbour's dog"}
    stripped = without_text(record, free_text_paths()["complaint.opened"])
    assert stripped == {"envelope": record["envelope"], "case_id": "c1", "description": None}
    assert record["description"] == "my neighbour's dog"
    assert payload_without_text('{"case_id":"c1","description":null}', frozenset({("description",)})) is None


def test_the_dlq_topic_retention_is_the_dead_letter_setting(tmp_path):
    assert load_retention() == Retention(dead_letters_days=30, free_text_days=365)
    assert {s.name: s.config for s in load_topics()}[DLQ_TOPIC]["retention.ms"] == str(30 * DAY_MS)
    old = tmp_path / "old.toml"   # an override written before [retention]: its DLQ retention.ms is the setting
    old.write_text('[topics."touchstream.dlq"]\nconfig = { "retention.ms" = "604800000" }\n')
    assert load_retention(old).dead_letters_days == 7 and load_retention(old).free_text_days == 365
    tiny = tmp_path / "tiny.toml"
    tiny.write_text('[retention]\ndead_letters_days = 0.0001\nfree_text_days = 0\n[topics."touchstream.dlq"]\n')
    assert {s.name: s.config for s in load_topics(tiny)}[DLQ_TOPIC]["retention.ms"] == "8640"
    assert load_retention(tiny).free_text_ms is None
    both = tmp_path / "both.toml"
    both.write_text('[retention]\ndead_letters_days = 30\n[topics."touchstream.dlq"]\nconfig = { "retention.ms" = "1000" }\n')
    with pytest.raises(ValueError, match="disagrees"):
        load_topics(both)


def test_the_admin_route_reports_then_removes_and_the_cli_prints_it(live):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from touchstream.cli.retention import report_text
    from touchstream.serving.retention_api import retention_router

    db = live
    api = FastAPI()
    api.include_router(retention_router(expiry(db)))
    with TestClient(api) as http:
        due = http.get("/admin/retention").json()
        done = http.post("/admin/retention").json()
        after = http.get("/admin/retention").json()
    assert due["payloads_stripped"] > 0 and due["dead_letters_deleted"] == 3 and not due["applied"]
    assert done | {"applied": False} == due and (after["payloads_stripped"], after["dead_letters_deleted"]) == (0, 0)
    text = report_text(done)
    assert f"interactions whose free text is removed: {due['payloads_stripped']}" in text
    assert "complaint_events.value" in text
