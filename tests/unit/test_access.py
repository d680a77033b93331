"""Scopes, the operator key, the masked views and the guard, over the tables the serving process writes.

The database is the demo report's (``tests.demo_report_fill``: interaction log,
customer-360, complaint cases and SLA clocks) plus identity decisions naming the
360's own identifiers, in a hardened ``DuckDBStore``. The personal values the masked
views must hide are computed from the source tables and the contracts, never listed.
"""

from __future__ import annotations

import json
import stat
from datetime import datetime, timezone

import pyarrow as pa
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from tests.demo_report_fill import fill
from touchstream.config import Settings
from touchstream.processors.identity_decisions import ROWS as DECISION_ROWS
from touchstream.projections.duckdb_store import DuckDBStore, QueryError, load_sql
from touchstream.publishing import api_keys
from touchstream.publishing.api_keys import ApiKeyStore
from touchstream.serving import access, masked_views
from touchstream.serving.access import Caller, ensure_operator_key, local_key, pii_salt, require
from touchstream.serving.masked_views import MaskedSqlError, check_masked_sql, install_masked_schema, run_masked
from touchstream.serving.export_pii import blank, hint_columns, payload_paths

SALT = "5a17" * 16


@pytest.fixture()
def admin_scope():
    """The key store knows every scope the query service asks for."""
    assert set(access.ACCESS_SCOPES) <= set(api_keys.SCOPES)


# -- scopes -----------------------------------------------------------------------------------------
def _app(keys):
    app = FastAPI()

    @app.get("/read")
    def read(caller: Caller = Depends(require("analyst", keys))):
        return {"system": caller.system, "pii": caller.sees_pii}

    @app.post("/admin")
    def admin(caller: Caller = Depends(require("admin", keys))):
        return {"key": caller.key_id}

    return TestClient(app)


def test_keys_and_scopes_decide_401_403_200(tmp_path, admin_scope):
    keys = ApiKeyStore(tmp_path / "api_keys.json")
    analyst, _ = keys.create("notebook", [], ["analyst"])
    full, record = keys.create("ops", [], ["analyst", "pii", "admin"])
    publisher, _ = keys.create("web", ["web"], ["publish"])
    client = _app(keys)
    assert client.get("/read").status_code == 401
    assert client.get("/read", headers={"X-API-Key": "ts_not-a-key"}).status_code == 401
    assert client.get("/read", headers={"Authorization": f"Bearer {publisher}"}).status_code == 403
    ok = client.get("/read", headers={"Authorization": f"Bearer {analyst}"})
    assert ok.status_code == 200 and ok.json() == {"system": "notebook", "pii": False}
    assert client.get("/read", headers={"X-API-Key": full}).json() == {"system": "ops", "pii": True}
    refused = client.post("/admin", headers={"X-API-Key": analyst})
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert client.post("/admin", headers={"X-API-Key": full}).json() == {"key": record.key_id}
    assert _app(None).get("/read").json() == {"system": "unauthenticated", "pii": True}   # no key store: open
    with pytest.raises(ValueError, match="unknown scope"):
        require("superuser", keys)


def test_operator_key_is_created_once_0600_with_every_scope(tmp_path, monkeypatch):
    settings = Settings(home=tmp_path / "home")
    assert local_key(settings, env={}) is None
    monkeypatch.setattr(api_keys, "SCOPES", ("publish", "analyst", "pii"))   # a store that refuses 'admin':
    with pytest.raises(ValueError, match="admin"):                        # nothing is left behind
        ensure_operator_key(settings)
    assert list(settings.home.iterdir()) == [] and local_key(settings, env={}) is None
    monkeypatch.undo()
    secret = ensure_operator_key(settings)
    path = settings.home / access.OPERATOR_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_operator_key(settings) == secret and len(ApiKeyStore(settings.api_keys_path).all()) == 1
    key = ApiKeyStore(settings.api_keys_path).authenticate(secret)
    assert (key.system, set(key.scopes)) == ("operator", set(access.ACCESS_SCOPES))
    assert local_key(settings, env={}) == secret
    assert local_key(settings, env={access.API_KEY_ENV: "ts_explicit"}) == "ts_explicit"
    salt = pii_salt(settings)
    assert pii_salt(settings) == salt and salt != pii_salt(Settings(home=tmp_path / "other"))
    assert stat.S_IMODE((settings.home / access.SALT_FILE).stat().st_mode) == 0o600


# -- the masked views -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def secret(db) -> set[str]:
    return _pii_values(db[0].cursor())


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    store = DuckDBStore(tmp_path_factory.mktemp("access") / "serving.duckdb")
    fill(store)
    store.execute_script(load_sql("identity_decisions"))
    store.execute_script(load_sql("complaint_customer_360"))
    with store.transaction() as con:   # one decision per identifier the 360 holds (kind, value as stored)
        claims = con.execute("SELECT identifier, customer_id, seq FROM c360_identity_v1 ORDER BY ALL").fetchall()
        rows = [{"decision_id": f"d{n}", "decision": "identity.linked", "seq": seq, "decided_by": "e",
                 "decided_at": datetime(2026, 1, 1, tzinfo=timezone.utc), "customer_id": customer,
                 "from_ids": [], "into_ids": [], "identifiers": [dict(zip(("kind", "value"), ident.split(":", 1)))],
                 "trust": "verified", "reason": "test", "rule": None, "evidence_event_id": None,
                 "topic": "t", "partition": 0, "offset": n} for n, (ident, customer, seq) in enumerate(claims)]
        con.register("_d", pa.Table.from_pylist(rows, schema=DECISION_ROWS))
        con.execute("INSERT INTO identity_decisions BY NAME SELECT * FROM _d")
        con.unregister("_d")
        names = install_masked_schema(con, SALT)
    yield store, names
    store.close()


def _strings(value):
    """Every string inside a value: list, dict, struct, JSON text, bytes."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (bytes, bytearray)):
        yield value.decode("latin-1")
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _pii_values(con) -> set[str]:
    """Personal values of the source: identity hints, the 360's identifiers, the payloads' pii fields.

    Left out: what the source also shows in a field no contract marks personal (an order id typed
    into a complaint form, a survey answer "phone" that is also a channel, a customer id in an
    identifier record, a channel label of the reference table), and words under four characters ("yes", "2")."""
    found, clear = set(), set()
    for column in hint_columns():
        found |= {v for (v,) in con.execute(f"SELECT DISTINCT {column} FROM interactions WHERE {column} IS NOT NULL").fetchall()}
    found |= {i.split(":", 1)[1] for (i,) in con.execute("SELECT identifier FROM c360_identity_v1").fetchall()
              if not i.startswith("customer_id:")}
    by_type = payload_paths()
    for event_type, payload in con.execute("SELECT event_type, payload FROM interactions").fetchall():
        for path in by_type[event_type]:
            node = [json.loads(payload)]
            for part in path:
                node = [n.get(part) for n in node if isinstance(n, dict)]
            found |= {s for s in _strings(node) if len(s) >= 4}
        scrubbed = json.loads(payload)
        for path in by_type[event_type]:
            blank(scrubbed, path)
        clear |= set(_strings(scrubbed))
    others = ", ".join(hint_columns())
    clear |= set(_strings(con.execute(f"SELECT * EXCLUDE ({others}, payload) FROM interactions").fetchall()))
    clear |= set(_strings(con.execute("SELECT * FROM channel_reference").fetchall()))   # constants ("e-mail")
    return found - clear


def test_no_personal_value_of_the_source_appears_in_any_masked_view(db, secret):
    store, names = db
    con = store.cursor()
    assert {"interactions", "customer_360", "customer_identifiers", "identity_decisions", "complaint_cases",
            "customer_timeline", "contact_findings", "complaint_kpis"} <= set(names)
    assert not [n for n in names if masked_views.VERSIONED.search(n) or n in masked_views.INTERNAL]
    assert any("@" in v for v in secret) and any(v.startswith("+") for v in secret)
    source = "\n".join(_strings(con.execute("SELECT * FROM main.interactions").fetchall()))
    assert sum(v in source for v in secret) > len(secret) // 2   # the scan finds them where they are
    for name in names:
        text = "\n".join(_strings(con.execute(f'SELECT * FROM masked."{name}"').fetchall()))
        leaked = sorted(v for v in secret if v in text)
        assert not leaked, f"masked.{name} shows {leaked[:5]}"
        assert [d[0] for d in con.execute(f'DESCRIBE masked."{name}"').fetchall()] == \
               [d[0] for d in con.execute(f'DESCRIBE main."{name}"').fetchall()]


def test_pseudonyms_keep_distinct_counts_and_joins(db):
    con = db[0].cursor()

    def both(sql: str) -> tuple:
        return tuple(con.execute(sql.format(s=s)).fetchall() for s in ("main", "masked"))

    for column in hint_columns():
        raw, masked = both(f"SELECT count(DISTINCT {column}), count({column}) FROM {{s}}.interactions")
        assert raw == masked
    raw, masked = both("SELECT kind, count(DISTINCT value) FROM {s}.customer_identifiers GROUP BY kind ORDER BY kind")
    assert raw == masked and len(raw) > 3
    joins = ("SELECT count(*) FROM {s}.interactions i JOIN {s}.customer_identifiers c "
             "ON c.kind = 'email' AND c.value = lower(i.email)",
             "SELECT count(*) FROM {s}.complaint_cases k JOIN {s}.customer_identifiers c "
             "ON c.kind || ':' || c.value = k.customer_anchor",
             "SELECT count(*) FROM {s}.identity_decisions d, unnest(d.identifiers) u(i) JOIN {s}.customer_identifiers c "
             "ON c.kind = i.kind AND c.value = i.value",
             "SELECT count(*) FROM {s}.customer_360 p, unnest(CAST(p.profile->'identifiers' AS JSON[])) u(i) "
             "JOIN {s}.customer_identifiers c ON c.kind = i->>'kind' AND c.value = i->>'value'")
    for sql in joins:
        raw, masked = both(sql)
        assert raw == masked and raw[0][0] > 0, sql
    raw, masked = both("SELECT count(*), sum(contacts) FROM {s}.customer_timeline t JOIN {s}.complaint_cases k "
                       "USING (customer_id)")
    assert raw == masked


def test_payloads_keep_every_field_the_contract_does_not_mark_pii(db):
    con = db[0].cursor()
    rows = con.execute("SELECT m.event_type, i.payload, m.payload FROM masked.interactions m "
                       "JOIN main.interactions i USING (event_id)").fetchall()
    by_type, pseudonyms = payload_paths(), 0

    def scrubbed(text: str, paths) -> dict:
        value = json.loads(text)
        for path in paths:
            blank(value, path)
        return _without_nulls(value)

    for event_type, raw, masked in rows:
        assert scrubbed(raw, by_type[event_type]) == scrubbed(masked, by_type[event_type])
        for path in by_type[event_type]:   # payload paths run through records only (no "*")
            before, after = _at(json.loads(raw), path), _at(json.loads(masked), path)
            if before is None or _at(json.loads(raw), path[:-1] + ("kind",)) == "customer_id":
                assert after == before
            else:
                assert after.startswith("pii:") and after != before
                pseudonyms += 1
    assert pseudonyms >= len({t for t, _, _ in rows if by_type[t]})


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _at(value, path):
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def test_unknown_json_and_blobs_fail_closed_reinstall_drops_stale_views_and_the_salt_keys(tmp_path):
    store = DuckDBStore(tmp_path / "x.duckdb")
    with store.transaction() as con:
        con.execute("CREATE TABLE notes (id INTEGER, extra JSON, raw BLOB, email VARCHAR)")
        con.execute("""INSERT INTO notes VALUES (1, '{"who": "ann@x.example"}', 'ann@x.example', 'ann@x.example')""")
        con.execute("""INSERT INTO interactions (event_id, event_type, domain, occurred_at, recorded_at, channel,
            content, initiated_by, source, payload, schema_id, topic, "partition", "offset", ingested_at) VALUES
            ('e1', 'future.thing_happened', 'future', now(), now(), 'web', 'x', 'customer', 's',
             '{"note": "ann@x.example"}', 1, 't', 0, 0, now())""")
        install_masked_schema(con, SALT)
    cur = store.cursor()
    assert cur.execute("SELECT payload FROM masked.interactions").fetchall() == [(None,)]   # not in the catalogue
    ((id_, extra, raw, email),) = cur.execute("SELECT * FROM masked.notes").fetchall()
    assert (id_, extra, raw) == (1, None, None) and email.startswith("pii:") and "ann" not in email
    unsalted, other = cur.execute("SELECT left(sha256('ann@x.example'), 16), "
                                  + masked_views._pseudo("'ann@x.example'", "0123" * 16)).fetchone()
    assert email[4:] != unsalted and email != other   # a dictionary of hashed addresses finds nothing
    with store.transaction() as con:
        con.execute("DROP TABLE notes")
        assert "notes" not in install_masked_schema(con, SALT)
    views = {v for (v,) in cur.execute("SELECT view_name FROM duckdb_views() WHERE schema_name = 'masked'").fetchall()}
    assert "notes" not in views and "interactions" in views
    with pytest.raises(ValueError, match="hex"):
        install_masked_schema(cur, "'; DROP TABLE interactions; --")
    store.close()


# -- the guard --------------------------------------------------------------------------------------
REJECTED = {
    "SELECT * FROM main.interactions": "main.interactions",
    "SELECT email FROM memory.main.interactions": "memory.main.interactions",
    "SELECT * FROM query_table('interactions')": "query_table",
    "SELECT * FROM query('SELECT email FROM interactions')": "query",
    "SELECT * FROM read_csv('/etc/passwd')": "read_csv",
    "SELECT * FROM no_such_table": "no_such_table",
    "SELECT * FROM c360_identity_v1": "c360_identity_v1",
    "SELECT * FROM sink_offsets": "sink_offsets",
    "SELECT * FROM duckdb_tables()": "duckdb_tables",
    "SELECT * FROM information_schema.tables": "information_schema.tables",
    "SELECT * FROM 'data.csv'": "data.csv",
    "SUMMARIZE main.interactions": "main.interactions",
    "SHOW TABLES": "SHOW",
    "SELECT (SELECT max(email) FROM main.interactions)": "main.interactions",
    "SELECT * FROM masked.interactions WHERE email IN (SELECT email FROM main.interactions)": "main.interactions",
    "SELECT * FROM customer_360, unnest((SELECT list(anchor) FROM c360_events_v1))": "c360_events_v1",
    "WITH c360_identity_v1 AS (SELECT * FROM c360_identity_v1) SELECT * FROM c360_identity_v1": "c360_identity_v1",
    "SELECT * FROM (WITH sink_offsets AS (SELECT 1) SELECT * FROM sink_offsets), sink_offsets": "sink_offsets",
    "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a": "b",
    "SELECT 1; SELECT 2": "exactly one",
    "SELECT pg_get_viewdef(x) FROM range(1000) t(x)": "pg_get_viewdef",
    "SELECT pg_catalog.pg_get_constraintdef(1)": "pg_get_constraintdef",
    "EXPLAIN SELECT * FROM interactions": "SELECT",
    "INSERT INTO interactions SELECT * FROM interactions": "SELECT",
}
ACCEPTED = (
    "SELECT count(*) FROM interactions",
    "SELECT email, count(*) FROM masked.interactions GROUP BY ALL",
    "FROM customer_360 SELECT customer_id, profile->'identifiers' LIMIT 3",
    "SELECT c.kind, count(*) FROM customer_identifiers c JOIN interactions i ON i.customer_id = c.customer_id GROUP BY 1",
    "WITH e AS (SELECT DISTINCT email FROM interactions), n AS (SELECT count(*) AS k FROM e) SELECT k FROM n",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT sum(n) FROM r",
    "SELECT * FROM complaint_cases WHERE customer_id IN (SELECT customer_id FROM customer_timeline)",
    "SELECT (SELECT count(*) FROM identity_decisions) AS d, x FROM range(3) t(x), unnest([1, 2]) u(y)",
    "SELECT * FROM (WITH interactions AS (SELECT 1 AS one) SELECT * FROM interactions), interactions LIMIT 1",
    "DESCRIBE masked.interactions",
    "SELECT count(*) FROM complaint_kpis UNION ALL SELECT count(*) FROM contact_findings",
)


@pytest.mark.parametrize("sql", sorted(REJECTED))
def test_the_guard_rejects_what_masked_views_do_not_cover(db, sql):
    with pytest.raises(MaskedSqlError, match=REJECTED[sql].replace("(", r"\(")) as refused:
        run_masked(db[0], sql)
    assert isinstance(refused.value, (ValueError, QueryError))


@pytest.mark.parametrize("sql", ACCEPTED)
def test_the_guard_accepts_joins_ctes_subqueries_and_the_views(db, secret, sql):
    check_masked_sql(db[0].cursor(), sql)
    rows = run_masked(db[0], sql, max_rows=50).rows
    assert not [v for v in secret if v in "\n".join(_strings(rows))]


def test_unqualified_names_read_the_masked_views(db):
    store = db[0]
    raw = store.query("SELECT count(*), count(DISTINCT email) FROM interactions").rows
    assert run_masked(store, "SELECT count(*), count(DISTINCT email) FROM interactions").rows == raw
    emails = run_masked(store, "SELECT DISTINCT email FROM interactions WHERE email IS NOT NULL").rows
    assert emails and all(e.startswith("pii:") for (e,) in emails)
    assert run_masked(store, "SELECT count(*) FROM interactions WHERE email = ?",
                      [emails[0][0]]).rows[0][0] > 0
    with pytest.raises(QueryError, match="time limit"):
        run_masked(store, "SELECT count(*) FROM range(10000000000) a", timeout=0.2)
    assert run_masked(store, "SELECT * FROM interactions", max_rows=2).truncated


SAFE = ["interactions", "masked.customer_360", "customer_identifiers", "complaint_cases", "identity_decisions",
        "MASKED.Interactions", "customer_timeline"]
FORBIDDEN = ["main.interactions", "c360_identity_v1", "sink_offsets", "query_table('interactions')",
             "read_parquet('x.parquet')", "system.main.duckdb_tables", "pg_catalog.pg_class", "temp.main.t"]
LEAF = "\x00"


def _template():
    """A query shape with ``LEAF`` where a table goes: joins, CTEs, set operations, subqueries, nesting."""
    base = st.just(f"SELECT count(*) AS n FROM {LEAF}")
    return st.recursive(base, lambda q: st.one_of(
        st.tuples(q, q).map(lambda p: f"SELECT count(*) AS n FROM ({p[0]}) a JOIN ({p[1]}) b ON a.n >= b.n"),
        st.tuples(q, q).map(lambda p: f"WITH c AS ({p[0]}) SELECT count(*) AS n FROM c WHERE n <= (SELECT max(n) FROM ({p[1]}))"),
        st.tuples(q, q).map(lambda p: f"SELECT n FROM ({p[0]}) UNION ALL SELECT n FROM ({p[1]})"),
        q.map(lambda s: f"SELECT count(*) AS n FROM range(2) r WHERE EXISTS ({s})"),
        q.map(lambda s: f"SELECT count(*) AS n FROM {LEAF} x WHERE (SELECT max(n) FROM ({s})) IS NOT NULL"),
    ), max_leaves=5)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(template=_template(), data=st.data())
def test_any_query_is_accepted_exactly_when_every_table_is_a_masked_view(db, template, data):
    leaves = template.count(LEAF)
    names = data.draw(st.lists(st.sampled_from(SAFE), min_size=leaves, max_size=leaves))
    bad = data.draw(st.one_of(st.none(), st.tuples(st.integers(0, leaves - 1), st.sampled_from(FORBIDDEN))))
    if bad is not None:
        names[bad[0]] = bad[1]
    sql = template.replace(LEAF, "{}").format(*names)
    if bad is None:
        assert run_masked(db[0], sql).rows
    else:
        with pytest.raises(MaskedSqlError):
            check_masked_sql(db[0].cursor(), sql)
