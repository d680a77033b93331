"""The typed columns the KPI views read instead of JSON, written by the sinks and filled in an older file.

Why: the views must answer at 10M interactions and 1M customers, so the interaction log carries the
payload fields they read (call_id, wait_seconds, in_reply_to, ...) and the customer_360 row its
first_sale_at and known flag (projections/interaction_log.py, customer_360_summary.py). Those columns
must say what the JSON says, and a DuckDB file from before them must get them, filled from the JSON
it holds, the first time serving opens it: its views must then answer exactly as on a file written
by the new sinks. An older file is made here from a new one by dropping the columns (and the view)
that release did not have.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.demo_report_fill import fill_file
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore, load_sql
from touchstream.projections.interaction_log import RECEIVED_MESSAGES, TYPED_COLUMNS
from touchstream.serving.analyst_api import KPI_VIEWS

SUMMARY_COLUMNS = ("first_sale_at", "known", "company_contacts", "customer_contacts", "company_channels",
                   "overload_findings")


def serve(db: DuckDBStore) -> None:
    """Serving's start after the interaction log's DDL (DuckDBStore): the 360's, the complaint sink's, the views."""
    Customer360Store(db)
    for name in ("complaint_resolution", "complaint_sla", "complaint_kpis", "complaint_customer_360",
                 "analyst_views"):
        db.execute_script(load_sql(name))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A store written by the sinks, and an older copy of it opened as serving opens it."""
    base = tmp_path_factory.mktemp("typed")
    new_path, old_path = base / "new.duckdb", base / "old.duckdb"
    fill_file(new_path)
    shutil.copy(new_path, old_path)
    old = DuckDBStore(old_path, ddl=())
    with old.transaction() as con:   # what the release before the typed columns wrote
        for column in TYPED_COLUMNS:
            con.execute(f"ALTER TABLE interactions DROP COLUMN {column}")
        con.execute("ALTER TABLE complaint_events DROP COLUMN event_type")
        for rollup in ("cem_calls", "cem_chats", "cem_messages"):
            con.execute(f"DROP TABLE {rollup}")
        con.execute("DROP VIEW customer_360_lists")
        con.execute("DROP VIEW complaint_case_paths CASCADE")
        con.execute("CREATE OR REPLACE VIEW customer_360 AS SELECT * EXCLUDE (channel_rows, finding_rows) "
                    "FROM customer_360_v1")
        for column in SUMMARY_COLUMNS:
            con.execute(f"ALTER TABLE customer_360_v1 DROP COLUMN {column}")
    old.close()
    new, old = DuckDBStore(new_path), DuckDBStore(old_path)
    for db in (new, old):
        serve(db)
    yield new, old
    new.close()
    old.close()


def rows(db: DuckDBStore, sql: str) -> list[tuple]:
    cur = db.cursor()
    try:
        return cur.execute(sql).fetchall()
    finally:
        cur.close()


def test_the_typed_interaction_columns_say_what_the_payload_says(stores):
    new = stores[0]
    got = rows(new, f"SELECT event_type, payload, {', '.join(TYPED_COLUMNS)} FROM interactions")
    seen = {c: 0 for c in TYPED_COLUMNS}
    for event_type, payload, *typed in got:
        fields = json.loads(payload)
        for column, value in zip(TYPED_COLUMNS, typed):
            if column == "received_message_id":
                want = next((fields[k] for k in ("message_id", "mail_id", "comment_id", "review_id")
                             if fields.get(k) is not None), None) if event_type in RECEIVED_MESSAGES else None
            else:
                want = fields.get(column)
            assert value == (None if want is None else float(want) if column.endswith("_seconds") else want), \
                (event_type, column)
            seen[column] += value is not None
    assert all(seen.values()), seen   # the demo has calls, chats, replies and received messages


def test_the_summary_columns_say_what_the_profile_says(stores):
    for customer, profile, first_sale_at, known in rows(stores[0], "SELECT customer_id, profile, first_sale_at, "
                                                                  "known FROM customer_360"):
        sale = json.loads(profile)["journey"]["first_sale_at"]
        assert (first_sale_at and first_sale_at.isoformat()) == sale, customer
        assert known == (not customer.startswith("anon-")), customer
    assert {r[0] for r in rows(stores[0], "SELECT known FROM customer_360")} == {True, False}
    assert rows(stores[0], "SELECT count(first_sale_at) FROM customer_360")[0][0] > 0


def test_an_older_file_gets_the_columns_filled_as_the_sinks_fill_them(stores):
    new, old = stores
    for table, columns in (("interactions", TYPED_COLUMNS), ("customer_360_v1", SUMMARY_COLUMNS),
                           ("complaint_events", ("event_type",))):
        key = "customer_id" if table == "customer_360_v1" else "event_id"
        sql = f"SELECT {key}, {', '.join(columns)} FROM {table} ORDER BY {key}"
        assert rows(old, sql) == rows(new, sql), table
    described = "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'interactions' ORDER BY column_index"
    assert rows(old, described) == rows(new, described)   # the same order: new columns last in both


def test_complaint_events_carry_the_event_type_the_interaction_log_has(stores):
    """complaint_funnel reads a case's complaint.* steps from complaint_events alone (no join to the log)."""
    got = rows(stores[0], "SELECT e.event_type, i.event_type FROM complaint_events e "
                          "LEFT JOIN interactions i USING (event_id)")
    assert got and all(mine == logged for mine, logged in got)
    assert any(t.startswith("complaint.") for t, _ in got) and any(not t.startswith("complaint.") for t, _ in got)


@pytest.mark.parametrize("view", sorted(KPI_VIEWS))
def test_every_kpi_view_answers_the_same_on_an_older_file(stores, view):
    new, old = stores
    sql = f"SELECT * FROM {view} ORDER BY ALL"
    assert rows(old, sql) == rows(new, sql)


def test_the_fill_runs_once(stores):
    """A later start fills nothing again: a value the sinks wrote (here: changed by hand) stays."""
    old = stores[1]
    with old.transaction() as con:
        con.execute("UPDATE interactions SET call_id = 'kept' WHERE call_id IS NOT NULL")
        con.execute("UPDATE customer_360_v1 SET first_sale_at = NULL")
        con.execute("UPDATE complaint_events SET event_type = NULL WHERE event_type LIKE 'complaint.%'")
    for name in ("interaction_log", "complaint_resolution"):
        old.execute_script(load_sql(name))
    Customer360Store(old)
    assert rows(old, "SELECT DISTINCT call_id FROM interactions WHERE call_id IS NOT NULL") == [("kept",)]
    assert rows(old, "SELECT count(first_sale_at) FROM customer_360_v1") == [(0,)]
    assert rows(old, "SELECT count(*) FROM complaint_events WHERE event_type LIKE 'complaint.%'") == [(0,)]
