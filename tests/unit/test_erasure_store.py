"""Erasure in DuckDB (issue 17): a demo customer with complaints, merges, e-mail and phone, forgotten
in a store filled the way the serving process fills it, then looked for in every base table.

The store: demo events through the real identity stage and ``Customer360Sink`` (a small cache, so
fold states are stored), the interaction log, the real complaint sink over the same Avro records,
the identity decisions sink over the stage's decisions, SLA clocks and every analyst view, plus two
dead letters (one quoting the customer's address).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from datetime import datetime, timezone

import pytest

from tests.complaint_fill import CODEC, fold_cases, run_sink, write_log, write_sla
from tests.pipeline_harness import (NOW, CustomerEventsTopic, Sink, consume, identify, identity_stage, raw_logs,
                                    validated)
from touchstream.demo.generator import generate
from touchstream.processors.erasure_log import record_erasure
from touchstream.processors.erasure_store import base_tables, erase_customer, find_subject
from touchstream.processors.identity_decisions import IdentityDecisionSink
from touchstream.processors.records import RawRecord
from touchstream.processors.topic_output import MemoryOutput
from touchstream.projections import complaint_resolution as cases
from touchstream.projections.duckdb_store import load_sql
from touchstream.projections.erasure import SKIPPED, searchable
from touchstream.projections.identity_resolution import IdentityConfig
from touchstream.projections.interaction_log import Position
from touchstream.publishing.dead_letters import AlreadySentDeadLetters
from touchstream.topics import DECISIONS_TOPIC

REGISTRY = CODEC._client   # the registry the records were framed with (what AvroCodec holds)
TOMBSTONE = re.compile(r"erased-[0-9a-f]{20}")
CHOOSE = """
SELECT c.customer_id FROM customer_360 c
WHERE EXISTS (SELECT 1 FROM complaint_cases k WHERE k.customer_id = c.customer_id)
  AND EXISTS (SELECT 1 FROM identity_decisions d WHERE d.customer_id = c.customer_id AND d.decision = 'customer.merged')
  AND EXISTS (SELECT 1 FROM customer_identifiers i WHERE i.customer_id = c.customer_id AND i.kind = 'email')
  AND EXISTS (SELECT 1 FROM customer_identifiers i WHERE i.customer_id = c.customer_id AND i.kind = 'phone')
ORDER BY c.identifiers DESC, c.customer_id"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = filled_store(tmp_path_factory.mktemp("erasure"))
    yield db
    db.close()


def filled_store(folder):
    """A DuckDB filled from the demo as serving fills it (deterministic: the same rows every time)."""
    valid, rnd, produced = validated(list(generate(40, 30, 7))), random.Random(3), MemoryOutput()
    topic = CustomerEventsTopic(produced)
    identify(identity_stage(folder / "identity", IdentityConfig(), CODEC, produced),
             consume(raw_logs(valid, CODEC), rnd, max_batch=500), topic)
    sink = Sink(folder / "x.duckdb", CODEC, cache_size=10)
    sink.feed(consume(topic.logs, rnd, max_batch=500))
    db = sink.db
    write_log(db, valid, NOW)
    run_sink(db, valid)
    write_sla(db, fold_cases(valid), max(e.record["envelope"]["occurred_at"] for e in valid), NOW)
    decisions = [r for r in produced.records if r[0] == DECISIONS_TOPIC]
    IdentityDecisionSink(db, CODEC, AlreadySentDeadLetters()).handle(
        [RawRecord(t, 0, n, k, v, list(h)) for n, (t, k, v, h) in enumerate(decisions)])
    for name in ("complaint_customer_360", "analyst_views"):
        db.execute_script(load_sql(name))
    return db


def _person(con, offset: int = 0, stored_state: bool = False) -> tuple[str, list[tuple[str, str]]]:
    """A customer not erased yet with complaints, a merge, an e-mail address and a phone number (and with
    ``stored_state``, a fold state in c360_state), most identifiers first."""
    customers = [c for (c,) in con.execute(CHOOSE).fetchall() if not stored_state or con.execute(
        "SELECT count(*) FROM c360_state_v1 WHERE customer_id = ?", [c]).fetchone()[0]]
    customer = customers[offset]
    identifiers = con.execute("SELECT kind, value FROM customer_identifiers WHERE customer_id = ?",
                              [customer]).fetchall()
    return customer, [tuple(i) for i in identifiers]


def _kpis(con, ids: list[str]) -> dict[str, Counter]:
    """Every view's rows, the person's customer ids (before) or the tombstone (after) written as <person>;
    a profile and its fingerprint left out (the 360 row keeps its counts, not its identifiers)."""
    pattern = re.compile("|".join([*map(re.escape, ids), TOMBSTONE.pattern]))
    out = {}
    for (view,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main' "
                               "AND view_name <> 'customer_identifiers' ORDER BY 1").fetchall():
        cur = con.execute(f'SELECT * FROM "{view}"')
        keep = [n for n, d in enumerate(cur.description) if d[0] not in ("profile", "fingerprint")]
        out[view] = Counter(pattern.sub("<person>", repr([row[n] for n in keep])) for row in cur.fetchall())
    return out


def _rows_of(con, customer: str, identifiers: list[tuple[str, str]]) -> str:
    """A digest of every row of ``customer`` in the tables erasure changes."""
    anchors = [f"{k}:{v}" for k, v in identifiers]
    queries = [
        ("SELECT * FROM interactions WHERE customer_id = $c OR list_contains($v, lower(email)) ORDER BY event_id", {}),
        ("SELECT * FROM c360_events_v1 WHERE list_contains($a, anchor) ORDER BY event_id", {}),
        ("SELECT * FROM c360_identity_v1 WHERE customer_id = $c ORDER BY identifier", {}),
        ("SELECT * FROM customer_360_v1 WHERE customer_id = $c", {}),
        ("SELECT * FROM complaint_cases WHERE customer_id = $c ORDER BY case_id", {}),
        ("SELECT * FROM complaint_events WHERE case_id IN (SELECT case_id FROM complaint_cases WHERE customer_id = $c) "
         "ORDER BY event_id", {}),
        ("SELECT * FROM identity_decisions WHERE customer_id = $c ORDER BY decision_id", {}),
    ]
    params = {"c": customer, "v": [v.lower() for _, v in identifiers], "a": anchors}
    text = []
    for sql, _ in queries:
        used = {k: p for k, p in params.items() if f"${k}" in sql}
        text.append(repr(con.execute(sql, used).fetchall()))
    return hashlib.sha256("\n".join(text).encode()).hexdigest()


def _counts(con) -> dict[str, int]:
    return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in base_tables(con)}


def test_erasure_forgets_the_customer_everywhere_and_keeps_the_kpis(store):
    con = store.cursor()
    customer, identifiers = _person(con, stored_state=True)
    other, other_identifiers = next(p for n in range(2) if (p := _person(con, n))[0] != customer)
    email = next(v for k, v in identifiers if k == "email")
    store.apply_interactions("interaction_log", [], [], [
        (Position("touchstream.raw.email", 0, 10**6), f"email {email.upper()} is not valid for this channel"),
        (Position("touchstream.raw.email", 0, 10**6 + 1), "no schema id 99 in the registry")])
    spellings = [(k, v) for k in ("email", "phone") for (v,) in con.execute(
        f"SELECT DISTINCT {k} FROM interactions WHERE customer_id = ? AND {k} IS NOT NULL", [customer]).fetchall()]
    before = find_subject(con, customer, identifiers + spellings)
    assert {"interactions", "c360_events_v1", "c360_identity_v1", "customer_360_v1", "complaint_cases",
            "complaint_case_hints", "complaint_events", "identity_decisions", "dead_letters"} <= set(before)
    kpis, counts, theirs = _kpis(con, [customer]), _counts(con), _rows_of(con, other, other_identifiers)
    assert con.execute("SELECT count(*) FROM c360_state_v1 WHERE customer_id = ?", [customer]).fetchone()[0] == 1

    with store.transaction() as tx:
        changed = erase_customer(tx, customer, identifiers, registry=REGISTRY)
        record_erasure(tx, "er-1", [customer], datetime(2026, 12, 7, tzinfo=timezone.utc), changed, kids_deleted=5)

    assert find_subject(con, customer, identifiers + spellings) == {}
    assert set(before) <= set(changed) and changed["c360_state_v1"] == 1 and changed["dead_letters"] == 1
    assert _kpis(con, [customer]) == kpis
    after = _counts(con)
    for table in ("interactions", "c360_events_v1", "customer_360_v1", "complaint_cases", "complaint_events",
                  "complaint_sla", "complaint_sla_events", "cem_calls", "cem_messages"):
        assert after[table] == counts[table], table
    assert after["dead_letters"] == counts["dead_letters"] - 1
    assert _rows_of(con, other, other_identifiers) == theirs
    with store.transaction() as tx:
        assert erase_customer(tx, customer, identifiers, registry=REGISTRY) == {}
    report = con.execute("SELECT * FROM erasures").fetchall()
    assert len(report) == 1 and report[0][1] == [customer]
    assert not any(v.lower() in repr(report).lower() for _, v in identifiers if v != customer)


def _refolded(con, case_ids: list[str]) -> dict[str, dict]:
    """Each case folded again from its Avro copies in complaint_events, as the sink refolds a case."""
    out = {}
    for case in case_ids:
        records = [CODEC.decode(v).record for (v,) in con.execute(
            "SELECT value FROM complaint_events WHERE case_id = ? ORDER BY occurred_at, event_id", [case]).fetchall()]
        view = cases.view(cases.fold(records, case))
        out[case] = {k: view[k] for k in ("state", "metrics", "fcr", "opened_at", "resolved_at", "priority")}
    return out


def test_rewritten_event_copies_still_decode_and_refold_without_the_person(store):
    """The folds refold from their Avro copies: each decodes, names the tombstone, carries no pii, and a
    case refolded from them has the state and metrics it had."""
    con = store.cursor()
    customer, identifiers = _person(con)
    owned = [r[0] for r in con.execute("SELECT case_id FROM complaint_cases WHERE customer_id = ?",
                                       [customer]).fetchall()]
    refolded = _refolded(con, owned)
    with store.transaction() as tx:
        erase_customer(tx, customer, identifiers, registry=REGISTRY)
    assert _refolded(con, owned) == refolded
    tomb = con.execute("SELECT customer_id FROM complaint_cases WHERE case_id = ?", [owned[0]]).fetchone()[0]
    assert TOMBSTONE.fullmatch(tomb)
    values = con.execute("SELECT value FROM c360_events_v1 WHERE anchor = ? UNION ALL SELECT value FROM "
                         "complaint_events WHERE list_contains(?, case_id)", [f"customer_id:{tomb}", owned]).fetchall()
    assert values
    for (value,) in values:
        record = CODEC.decode(value).record
        hints = record["envelope"]["identity"]
        assert hints.get("customer_id") in (None, tomb)
        assert all(hints.get(k) is None for k in ("email", "phone", "cookie_id", "loyalty_card", "account_number"))
        assert not any(v.lower() in repr(record).lower() for _, v in identifiers)


def test_find_subject_searches_every_base_table_with_text(store):
    """A table added later that copies a personal value is found: the audit lists tables from the catalogue."""
    con = store.cursor()
    customer, identifiers = _person(con)
    phone = next(v for k, v in identifiers if k == "phone")
    with store.transaction() as tx:
        tx.execute("CREATE TABLE someone_elses_copy (note JSON, raw BLOB)")
        tx.execute("INSERT INTO someone_elses_copy VALUES (?, ?)",
                   [f'{{"to": "{phone}"}}', b"\x00" + customer.encode()])
    try:
        assert find_subject(con, customer, identifiers)["someone_elses_copy"] == 1
        with store.transaction() as tx:
            erase_customer(tx, customer, identifiers, registry=REGISTRY)
        assert find_subject(con, customer, identifiers) == {"someone_elses_copy": 1}   # erasure does not know it
    finally:
        with store.transaction() as tx:
            tx.execute("DROP TABLE someone_elses_copy")


def test_find_subject_reads_every_text_column_of_every_base_table(store):
    """Each base table's text, JSON, byte and list columns, from the catalogue: a value sampled from any
    of them is found there (so a table left out of erasure cannot hide from the audit)."""
    con = store.cursor()
    columns = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                          "WHERE table_schema = 'main' ORDER BY ALL").fetchall()
    tables, sampled = set(base_tables(con)) - set(SKIPPED), set()
    for table, column, dtype in columns:
        if table not in tables or not searchable(dtype):
            continue
        row = con.execute(f'SELECT substr(CAST("{column}" AS VARCHAR), 1, 60) AS v FROM "{table}" '
                          "WHERE length(trim(v)) >= 8 LIMIT 1").fetchone()
        if row:
            assert table in find_subject(con, row[0], []), (table, column)
            sampled.add(table)
    assert {"interactions", "dead_letters", "c360_state_v1", "c360_events_v1", "complaint_events",
            "identity_decisions", "customer_360_v1", "complaint_case_hints"} <= sampled
