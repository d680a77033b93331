"""The DuckDB store: idempotent batches with offsets in one transaction, and read-only SQL."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from touchstream.projections.duckdb_store import DuckDBStore, QueryError
from touchstream.projections.interaction_log import Position, to_row

AT = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def record(event_id: str, total: str | None = None) -> dict:
    env = {
        "event_id": event_id, "event_type": "commerce.order_placed", "occurred_at": AT, "recorded_at": AT,
        "channel": "web", "content": "order_payment", "initiated_by": "customer", "source": "web-shop",
        "identity": {"customer_id": "C1", "email": None, "phone": None, "cookie_id": None, "device_id": None,
                     "loyalty_card": None, "account_number": None},
        "correlation_id": None, "causation_id": None,
    }
    body = {"envelope": env, "order_id": "o-" + event_id}
    if total:
        body["total"] = {"amount": Decimal(total), "currency": "EUR"}
    return body


def rows_for(ids, offset0=0, topic="touchstream.raw.commerce"):
    positions = [Position(topic, 0, offset0 + i) for i in range(len(ids))]
    rows = [to_row("commerce.order_placed", record(e, "10.50"), 1, p, AT) for e, p in zip(ids, positions)]
    return rows, positions


@pytest.fixture()
def store(tmp_path):
    s = DuckDBStore(tmp_path / "t.duckdb")
    yield s
    s.close()


def test_batches_are_idempotent_and_offsets_advance(store):
    rows, positions = rows_for(["a", "b", "a"])  # a duplicate inside the batch
    assert store.apply_interactions("log", rows, positions) == 2
    assert store.committed_offsets("log") == {("touchstream.raw.commerce", 0): 3}
    again, more = rows_for(["b", "c"], offset0=3)  # a redelivered duplicate across batches
    assert store.apply_interactions("log", again, more) == 1
    result = store.query("SELECT event_id, amount, currency FROM interactions ORDER BY event_id")
    assert result.rows == [("a", Decimal("10.50"), "EUR"), ("b", Decimal("10.50"), "EUR"), ("c", Decimal("10.50"), "EUR")]
    assert store.committed_offsets("log") == {("touchstream.raw.commerce", 0): 5}


def test_offsets_never_go_backwards(store):
    rows, positions = rows_for(["x"], offset0=10)
    store.apply_interactions("log", rows, positions)
    old, old_positions = rows_for(["y"], offset0=2)
    store.apply_interactions("log", old, old_positions)
    assert store.committed_offsets("log")[("touchstream.raw.commerce", 0)] == 11


def test_dead_letters_are_recorded_with_the_offsets(store):
    store.apply_interactions("log", [], [Position("t", 1, 7)], [(Position("t", 1, 7), "bad magic")])
    assert store.query('SELECT topic, "partition", "offset", reason FROM dead_letters').rows == [("t", 1, 7, "bad magic")]
    assert store.committed_offsets("log") == {("t", 1): 8}


def test_a_failed_batch_leaves_nothing_behind(store):
    rows, positions = rows_for(["ok"])
    broken = dict(rows[0], event_id="broken", occurred_at="not a time")
    with pytest.raises(Exception):
        store.apply_interactions("log", [rows[0], broken], positions)
    assert store.query("SELECT count(*) FROM interactions").rows == [(0,)]
    assert store.committed_offsets("log") == {}


@pytest.mark.parametrize("statement", [
    "DELETE FROM interactions", "DROP TABLE interactions", "INSERT INTO dead_letters VALUES ('t',0,0,'r',now())",
    "COPY interactions TO 'x.csv'", "ATTACH 'other.db'", "SET enable_external_access = true",
    "INSTALL httpfs", "SELECT 1; SELECT 2", "SELECT * FROM read_csv('/etc/passwd')",
])
def test_analyst_sql_cannot_write_or_reach_outside(store, statement):
    with pytest.raises(QueryError):
        store.query(statement)


def test_long_queries_are_cancelled_at_the_time_limit(store):
    with pytest.raises(QueryError, match="time limit"):
        store.query("SELECT count(*) FROM range(1000000000000) a", timeout=0.5)


def test_row_limit_marks_truncation(store):
    result = store.query("SELECT * FROM range(50)", max_rows=10)
    assert len(result.rows) == 10 and result.truncated
