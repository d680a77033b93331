"""The query service behind API keys: analysts read, only the pii scope sees personal data, admins
rebuild and export. Over a DuckDB filled as serving fills it, with the masked views installed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from tests.demo_report_fill import fill
from touchstream.client import Client
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore, load_sql
from touchstream.publishing.api_keys import ApiKeyStore
from touchstream.serving.http_app import build_api
from touchstream.serving.masked_views import install_masked_schema


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home = tmp_path_factory.mktemp("access")
    db = DuckDBStore(home / "q.duckdb")
    _, customers, views, _ = fill(db)
    db.execute_script(load_sql("complaint_customer_360"))
    with db.transaction() as con:
        install_masked_schema(con, "9f" * 32)
    keys = ApiKeyStore(home / "keys.json")
    secret = {name: keys.create(name, [], scopes)[0] for name, scopes in
              (("analyst", ["analyst"]), ("pii", ["analyst", "pii"]), ("admin", ["admin"]), ("publisher", ["publish"]))}
    store = Customer360Store(db)
    http = TestClient(build_api(db, profiles=SimpleNamespace(store=store, lookup=store.lookup), keys=keys))
    emails = {i["value"] for v in views.values() for i in v["identifiers"] if i["kind"] == "email"}
    yield SimpleNamespace(db=db, http=http, secret=secret, views=views, emails=emails,
                          client=lambda who: Client("http://testserver", api_key=secret[who], http=http))
    db.close()


def test_every_read_needs_an_analyst_key(service):
    for method, path, body in (("GET", "/offsets", None), ("GET", "/kpis", None), ("GET", "/complaints", None),
                               ("POST", "/sql", {"sql": "SELECT 1"}), ("GET", "/customers/x", None)):
        assert service.http.request(method, path, json=body).status_code == 401, path
        wrong = service.http.request(method, path, json=body,
                                     headers={"Authorization": f"Bearer {service.secret['publisher']}"})
        assert wrong.status_code == 403, path
    assert service.http.get("/health").status_code == 200


def test_without_the_pii_scope_sql_sees_pseudonyms_and_cannot_reach_the_tables(service):
    analyst, pii = service.client("analyst"), service.client("pii")
    sql = "SELECT email FROM interactions WHERE email IS NOT NULL"
    clear = {r["email"] for r in pii.sql(sql, max_rows=100_000)}
    masked = {r["email"] for r in analyst.sql(sql, max_rows=100_000)}
    assert clear and len(masked) == len(clear)
    assert not masked & clear and all(m.startswith("pii:") for m in masked)
    for sneaky in ("SELECT email FROM main.interactions", "SELECT * FROM query_table('interactions')"):
        response = service.http.post("/sql", json={"sql": sneaky},
                                     headers={"Authorization": f"Bearer {service.secret['analyst']}"})
        assert response.status_code == 400, sneaky
    table = analyst.sql_arrow("SELECT email FROM interactions WHERE email IS NOT NULL")
    assert set(table.column("email").to_pylist()) == masked


def test_a_customer_is_found_by_e_mail_only_with_the_pii_scope(service):
    customer = max(service.views, key=lambda c: (len(service.views[c]["identifiers"]), c))
    email = next(i["value"] for i in service.views[customer]["identifiers"] if i["kind"] == "email")
    analyst, pii = service.client("analyst"), service.client("pii")
    assert pii.customer(email)["customer_id"] == customer
    assert analyst.customer(email) is None and analyst.timeline(email) is None
    masked = analyst.customer(customer)
    assert masked["customer_id"] == customer
    assert not {i["value"] for i in masked["identifiers"] if i["kind"] == "email"} & service.emails
    assert [i["event_id"] for i in analyst.timeline(customer)["interactions"]] == \
        [i["event_id"] for i in pii.timeline(customer)["interactions"]]


def test_rebuild_and_export_need_the_admin_scope_and_pii_exports_the_pii_scope(service):
    def get(path: str, who: str):
        return service.http.get(path, headers={"Authorization": f"Bearer {service.secret[who]}"})
    assert get("/admin/rebuild/customer-360", "pii").status_code == 403
    assert get("/export?tables=complaint_cases", "analyst").status_code == 403
    assert get("/export?tables=complaint_cases", "admin").status_code == 200
    assert get("/export?tables=complaint_cases&pii=true", "admin").status_code == 403
