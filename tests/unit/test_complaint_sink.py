"""The complaint sink in process: raw batches in any interleaving, redelivered, or across a restart
give the case rows of a replay (the pure fold of every case's events, compared by fingerprint)."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from tests.local_codec import LocalCodec
from tests.pipeline_harness import consume, raw_logs, validated
from touchstream.demo.generator import generate
from touchstream.processors.complaint_resolution import ComplaintSink, case_key
from touchstream.projections import complaint_resolution as cases
from touchstream.projections import complaint_sla as sla
from touchstream.projections.customer_360 import view_fingerprint, view_json
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.publishing.dead_letters import AlreadySentDeadLetters

CODEC = LocalCodec()
POLICIES = sla.load_policies()
EVENTS = validated(list(generate(60, 20, 11)))


def expected() -> dict[str, str]:
    by_case = defaultdict(list)
    for e in EVENTS:
        if case_key(e.record):
            by_case[case_key(e.record)].append(e.record)
    folded = [cases.fold(records, key) for key, records in by_case.items()]
    folded = [c for c in folded if c.steps]
    for c in folded:
        c.customer_id = cases.customer_hint(c)
        c.policy_version = sla.pin_policy(c, POLICIES).version
    return {v["case_id"]: view_fingerprint(view_json(v)) for v in cases.views(folded)}


def rows(db: DuckDBStore) -> dict[str, str]:
    cur = db.cursor()
    try:
        return dict(cur.execute("SELECT case_id, fingerprint FROM complaint_cases").fetchall())
    finally:
        cur.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_any_interleaving_with_redelivery_and_a_restart_gives_the_rows_of_a_replay(tmp_path, seed):
    rnd = random.Random(seed)
    batches = consume(raw_logs(EVENTS, CODEC), rnd, max_batch=400, rewinds=3)
    db = DuckDBStore(tmp_path / "c.duckdb")
    sink = ComplaintSink(db, CODEC, AlreadySentDeadLetters())
    cut = len(batches) // 2
    for batch in batches[:cut]:
        sink.handle(batch)
    db.close()                                      # a restart: a new sink on the same file, fed again from before
    db = DuckDBStore(tmp_path / "c.duckdb")
    sink = ComplaintSink(db, CODEC, AlreadySentDeadLetters())
    for batch in batches[max(0, cut - 3):]:
        sink.handle(batch)
    want = expected()
    assert len(want) > 5 and rows(db) == want
    opened = sum(1 for e in EVENTS if e.record["envelope"]["event_type"] == "complaint.opened")
    assert len(want) == opened


def test_a_phone_complaint_resolved_on_the_call_is_fcr_and_its_contacts_are_rows(tmp_path):
    db = DuckDBStore(tmp_path / "c.duckdb")
    sink = ComplaintSink(db, CODEC, AlreadySentDeadLetters())
    for batch in consume(raw_logs(EVENTS, CODEC), random.Random(3), max_batch=1000):
        sink.handle(batch)
    cur = db.cursor()
    fcr = cur.execute("SELECT count(*) FROM complaint_cases WHERE fcr AND origin_channel = 'phone'").fetchone()[0]
    contacts = cur.execute("SELECT count(*), count(DISTINCT case_id) FROM complaint_contacts").fetchone()
    assert fcr >= 1 and contacts[0] >= contacts[1] > 0
    some = cur.execute("SELECT case_id FROM complaint_cases ORDER BY case_id LIMIT 1").fetchone()[0]
    assert sink.case(some)["case_id"] == some
