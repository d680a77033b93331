"""The analysts' endpoints, the /sql formats and touchstream.Client, over a DuckDB filled as serving fills it.

Expected answers come from the runs' own records (the customer's events, the case views and
SLA clocks computed by the pure folds), never from the endpoint under test.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.demo_report_fill import fill
from touchstream.client import Client
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.serving.analyst_api import KPI_VIEWS
from touchstream.serving.http_app import build_api


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = DuckDBStore(tmp_path_factory.mktemp("analyst") / "a.duckdb")
    _, customers, views, cases = fill(db)
    api = build_api(db, profiles=SimpleNamespace(store=Customer360Store(db)))
    http = TestClient(api)
    yield SimpleNamespace(db=db, http=http, client=Client("http://testserver", http=http), customers=customers,
                          views=views, cases=cases)
    db.close()


def test_the_timeline_is_every_interaction_of_the_customer_on_any_channel(served):
    customer = max(served.views, key=lambda c: (len(served.views[c]["channels"]), c))
    records = served.customers[customer]
    want = sorted(((r["envelope"]["occurred_at"], r["envelope"]["event_id"]) for r in records), reverse=True)
    found = served.client.timeline(customer, limit=10_000)
    got = [(i["occurred_at"], i["event_id"]) for i in found["interactions"]]
    assert [e for _, e in got] == [e for _, e in want] and not found["truncated"]
    assert len({i["channel"] for i in found["interactions"]}) == len(served.views[customer]["channels"]) > 1
    email = next(i["value"] for i in served.views[customer]["identifiers"] if i["kind"] == "email")
    by_email = served.client.timeline(email.upper(), limit=3, order="asc")
    assert by_email["customer_id"] == customer and by_email["truncated"]
    assert [i["event_id"] for i in by_email["interactions"]] == [e for _, e in reversed(want)][:3]
    assert served.client.timeline("nobody@example.com") is None


def test_complaint_lists_filter_by_open_breached_channel_and_customer(served):
    views = served.cases.views
    breached = {c["case_id"] for c in served.cases.clocks if c["breached"]}
    every = served.client.complaints(limit=10_000)
    assert {r["case_id"] for r in every} == set(views)
    assert [r["opened_at"] for r in every] == sorted((r["opened_at"] for r in every), reverse=True)
    assert {r["case_id"] for r in served.client.complaints(open=True, limit=10_000)} == \
        {k for k, v in views.items() if v["open"]}
    assert {r["case_id"] for r in served.client.complaints(breached=True, limit=10_000)} == breached
    assert {r["case_id"] for r in served.client.complaints(breached=False, limit=10_000)} == set(views) - breached
    channel = sorted({v["origin_channel"] for v in views.values()})[0]
    customer = sorted(v["customer_id"] for v in views.values() if v["customer_id"])[0]
    assert {r["case_id"] for r in served.client.complaints(channel=channel, limit=10_000)} == \
        {k for k, v in views.items() if v["origin_channel"] == channel}
    assert {r["case_id"] for r in served.client.complaints(customer=customer, limit=10_000)} == \
        {k for k, v in views.items() if v["customer_id"] == customer}
    assert len(served.client.complaints(limit=2)) == 2


def test_kpi_views_are_listed_and_served_by_name_only(served):
    assert [v["name"] for v in served.client.kpis()] == list(KPI_VIEWS)
    for name in KPI_VIEWS:
        direct = served.db.query(f"SELECT count(*) FROM {name}").rows[0][0]
        assert len(served.client.kpi(name, limit=100_000)) == direct
    assert served.http.get("/kpis/interactions").status_code == 404
    assert served.http.get("/kpis/complaint_kpis;drop table interactions").status_code == 404


def test_sql_as_arrow_and_parquet_keeps_exact_types_and_says_when_truncated(served):
    sql = "SELECT event_id, occurred_at, amount, channel FROM interactions ORDER BY event_id"
    con = duckdb.connect()
    want = served.db.query_arrow(sql, max_rows=10**9)[0]
    assert want.num_rows > 100 and pa.types.is_decimal(want.schema.field("amount").type)
    table = served.client.sql_arrow(sql)
    assert table.equals(want)
    response = served.http.post("/sql", json={"sql": sql, "format": "parquet", "max_rows": 50})
    assert response.status_code == 200 and response.headers["X-Touchstream-Truncated"] == "true"
    assert pq.read_table(io.BytesIO(response.content)).equals(want.slice(0, 50))
    csv = served.http.post("/sql", json={"sql": sql, "format": "csv", "max_rows": 5})
    assert csv.text.splitlines()[0] == "event_id,occurred_at,amount,channel" and len(csv.text.splitlines()) == 6
    refused = served.http.post("/sql", json={"sql": "DELETE FROM interactions", "format": "arrow"})
    assert refused.status_code == 400 and "read-only" in refused.json()["detail"]
    con.close()


def test_a_slow_arrow_query_is_cancelled_at_its_time_limit(served):
    response = served.http.post("/sql", json={"sql": "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b",
                                              "format": "arrow", "timeout": 0.5})
    assert response.status_code == 400 and "time limit" in response.json()["detail"]
