"""Hostile SQL against ``POST /sql``: nothing an analyst sends may change the database, whatever the key.

Through the real HTTP app with real API keys (an analyst without pii reads the masked
views; analyst+pii and the operator's every-scope key read ``main``), over the tables
the serving process writes (``tests.demo_report_fill``) plus a sequence, a macro, a
type and an index to aim at. Every statement below must be refused (400) with a
message naming why, as JSON rows and as Arrow; after the whole list, under
every key, every table's rows (count and a hash of every row), the catalogue, the
sequences' values, the settings and the files next to the database are as before.
``{tmp}`` in a statement is that folder.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from tests.demo_report_fill import fill
from touchstream.projections import duckdb_store
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore, QueryError, load_sql
from touchstream.publishing.api_keys import ApiKeyStore
from touchstream.serving.http_app import build_api
from touchstream.serving.masked_views import install_masked_schema

SCOPES = {"analyst": ["analyst"], "pii": ["analyst", "pii"], "operator": ["analyst", "pii", "admin"]}
ONLY = r"is not allowed, only SELECT or EXPLAIN"
CTE = r"inside a CTE is not allowed"
EXPLAIN_ANALYZE = r"EXPLAIN ANALYZE runs the statement: not allowed"
ONE = r"send exactly one statement, got [2-9]"
FILES = r"Permission Error|disabled|does not exist|not readable without the pii scope"   # file readers: off for everyone
DELETE_SOME = "DELETE FROM interactions WHERE event_id IN (SELECT event_id FROM interactions LIMIT 5)"

# statement -> what the refusal must say (under every key)
HOSTILE = {
    # writes
    "DELETE FROM interactions": rf"DELETE {ONLY}",
    DELETE_SOME: rf"DELETE {ONLY}",
    "UPDATE complaint_cases SET state = 'closed'": rf"UPDATE {ONLY}",
    "INSERT INTO dead_letters VALUES ('t', 0, 0, 'r', now())": rf"INSERT {ONLY}",
    "INSERT INTO dead_letters SELECT * FROM dead_letters": rf"INSERT {ONLY}",
    "INSERT OR REPLACE INTO sink_offsets SELECT * FROM sink_offsets": rf"INSERT {ONLY}",
    "INSERT INTO sink_offsets SELECT * FROM sink_offsets ON CONFLICT DO UPDATE SET next_offset = 0": rf"INSERT {ONLY}",
    "MERGE INTO complaint_cases USING complaint_cases s ON complaint_cases.case_id = s.case_id "
    "WHEN MATCHED THEN DELETE": rf"MERGE {ONLY}",
    "TRUNCATE interactions": rf"TRUNCATE \(parsed as DELETE\) {ONLY}",
    "TRUNCATE TABLE dead_letters": rf"TRUNCATE \(parsed as DELETE\) {ONLY}",
    # DDL
    "CREATE TABLE probe_new (a INTEGER)": rf"CREATE {ONLY}",
    "CREATE TABLE probe_copy AS SELECT * FROM interactions": rf"CREATE {ONLY}",
    "CREATE OR REPLACE TABLE interactions AS SELECT * FROM interactions LIMIT 0": rf"CREATE {ONLY}",
    "CREATE TEMP TABLE probe_tmp (a INTEGER)": rf"CREATE {ONLY}",
    "CREATE VIEW probe_view AS SELECT 1 AS one": rf"CREATE {ONLY}",
    "CREATE OR REPLACE VIEW masked.interactions AS SELECT * FROM main.interactions": rf"CREATE {ONLY}",
    "CREATE MACRO probe_m(x) AS x + 1": rf"CREATE {ONLY}",
    "CREATE OR REPLACE MACRO probe_macro(x) AS TABLE SELECT * FROM main.interactions": rf"CREATE {ONLY}",
    "CREATE FUNCTION probe_f(x) AS x": rf"CREATE {ONLY}",
    "CREATE SEQUENCE probe_seq2": rf"CREATE {ONLY}",
    "CREATE INDEX probe_idx2 ON dead_letters (reason)": rf"CREATE {ONLY}",
    "CREATE SCHEMA probe_schema": rf"CREATE {ONLY}",
    "CREATE TYPE probe_type AS ENUM ('a', 'b')": rf"CREATE {ONLY}",
    "CREATE SECRET probe_secret2 (TYPE s3, KEY_ID 'k', SECRET 's')": rf"CREATE {ONLY}",
    "DROP TABLE interactions": rf"DROP {ONLY}",
    "DROP TABLE IF EXISTS dead_letters CASCADE": rf"DROP {ONLY}",
    "DROP VIEW masked.interactions": rf"DROP {ONLY}",
    "DROP SCHEMA masked CASCADE": rf"DROP {ONLY}",
    "DROP SEQUENCE probe_seq": rf"DROP {ONLY}",
    "DROP MACRO probe_macro": rf"DROP {ONLY}",
    "DROP INDEX probe_idx": rf"DROP {ONLY}",
    "DROP TYPE probe_mood": rf"DROP {ONLY}",
    "DROP SECRET probe_secret": rf"DROP {ONLY}",
    "ALTER TABLE interactions RENAME TO interactions_old": rf"ALTER {ONLY}",
    "ALTER TABLE complaint_cases ADD COLUMN probe INTEGER": rf"ALTER {ONLY}",
    "ALTER TABLE complaint_cases DROP COLUMN state": rf"ALTER {ONLY}",
    "ALTER VIEW masked.interactions RENAME TO probe": rf"ALTER {ONLY}",
    "ALTER SEQUENCE probe_seq RESTART WITH 5": r"Parser Error",   # DuckDB cannot parse it at all
    "COMMENT ON TABLE interactions IS 'x'": rf"COMMENT \(parsed as ALTER\) {ONLY}",
    "COMMENT ON COLUMN interactions.email IS 'x'": rf"COMMENT \(parsed as ALTER\) {ONLY}",
    # files, databases
    "COPY interactions TO '{tmp}/out.csv'": rf"COPY {ONLY}",
    "COPY (SELECT * FROM interactions) TO '{tmp}/out.parquet' (FORMAT parquet)": rf"COPY {ONLY}",
    "COPY dead_letters FROM '{tmp}/in.csv'": rf"COPY {ONLY}",
    "COPY FROM DATABASE memory TO probe": rf"COPY \(parsed as PRAGMA\) {ONLY}",
    "EXPORT DATABASE '{tmp}/export'": rf"EXPORT {ONLY}",
    "IMPORT DATABASE '{tmp}/export'": rf"IMPORT \(parsed as PRAGMA\) {ONLY}",
    "ATTACH '{tmp}/other.duckdb' AS other": rf"ATTACH {ONLY}",
    "ATTACH ':memory:' AS scratch": rf"ATTACH {ONLY}",
    "DETACH probe": rf"DETACH {ONLY}",
    "USE memory": rf"USE \(parsed as SET\) {ONLY}",
    # settings
    "SET enable_external_access = true": rf"SET {ONLY}",
    "SET lock_configuration = false": rf"SET {ONLY}",
    "RESET lock_configuration": rf"RESET \(parsed as SET\) {ONLY}",
    "SET search_path = 'main'": rf"SET {ONLY}",
    "SET SESSION search_path = 'main'": rf"SET {ONLY}",
    "SET GLOBAL threads = 1": rf"SET {ONLY}",
    "SET VARIABLE probe = 1": rf"SET {ONLY}",
    "SELECT set_config('search_path', 'main', false)": r"set_config does not exist",
    # everything else DuckDB parses
    "PRAGMA enable_profiling": rf"PRAGMA {ONLY}",
    "PRAGMA database_size": rf"PRAGMA {ONLY}",
    "PRAGMA disable_checkpoint_on_shutdown": rf"PRAGMA {ONLY}",
    "CALL checkpoint()": rf"CALL {ONLY}",
    "CALL pragma_version()": rf"CALL {ONLY}",
    "CHECKPOINT": rf"CHECKPOINT {ONLY}",
    "FORCE CHECKPOINT": rf"FORCE \(parsed as CALL/CHECKPOINT\) {ONLY}",
    "VACUUM": rf"VACUUM {ONLY}",
    "VACUUM ANALYZE interactions": rf"VACUUM {ONLY}",
    "ANALYZE": rf"ANALYZE {ONLY}",
    "INSTALL httpfs": rf"INSTALL {ONLY}",
    "FORCE INSTALL httpfs": rf"FORCE \(parsed as INSTALL/LOAD\) {ONLY}",
    "LOAD httpfs": rf"LOAD {ONLY}",
    "LOAD '{tmp}/evil.duckdb_extension'": rf"LOAD {ONLY}",
    "UPDATE EXTENSIONS": rf"UPDATE EXTENSIONS {ONLY}",
    "PREPARE probe AS DELETE FROM interactions": rf"PREPARE {ONLY}",
    "EXECUTE probe": rf"EXECUTE {ONLY}",
    "DEALLOCATE probe": rf"DEALLOCATE \(parsed as DROP\) {ONLY}",
    "BEGIN TRANSACTION": rf"BEGIN \(parsed as TRANSACTION\) {ONLY}",
    "COMMIT": rf"COMMIT \(parsed as TRANSACTION\) {ONLY}",
    "ROLLBACK": rf"ROLLBACK \(parsed as TRANSACTION\) {ONLY}",
    "ABORT": rf"ABORT \(parsed as TRANSACTION\) {ONLY}",
    "PIVOT complaint_cases ON state USING count(*)": rf"PIVOT {ONLY}",
    # EXPLAIN ANALYZE runs what it explains; EXPLAIN explains only a plain SELECT
    f"EXPLAIN ANALYZE {DELETE_SOME}": EXPLAIN_ANALYZE,
    "EXPLAIN ANALYZE UPDATE complaint_cases SET state = 'closed'": EXPLAIN_ANALYZE,
    "EXPLAIN ANALYZE INSERT INTO dead_letters VALUES ('t', 0, 0, 'r', now())": EXPLAIN_ANALYZE,
    "EXPLAIN ANALYZE CREATE TABLE probe_new AS SELECT 1": EXPLAIN_ANALYZE,
    "EXPLAIN ANALYZE DROP TABLE interactions": EXPLAIN_ANALYZE,
    "EXPLAIN ANALYZE SELECT nextval('probe_seq')": EXPLAIN_ANALYZE,
    "EXPLAIN ANALYZE SELECT 1": EXPLAIN_ANALYZE,
    "EXPLAIN ANALYZE WITH x AS (DELETE FROM interactions RETURNING *) SELECT count(*) FROM x": EXPLAIN_ANALYZE,
    "explain analyse delete from interactions": EXPLAIN_ANALYZE,
    "EXPLAIN /* x */ ANALYZE DELETE FROM interactions": EXPLAIN_ANALYZE,
    "/* a comment */ EXPLAIN ANALYZE DELETE FROM interactions": EXPLAIN_ANALYZE,
    "EXPLAIN (ANALYZE) DELETE FROM interactions": r"EXPLAIN options are not allowed",
    "EXPLAIN (FORMAT json, ANALYZE) SELECT 1": r"EXPLAIN options are not allowed",
    "EXPLAIN DELETE FROM interactions": r"only one plain SELECT is allowed",
    "EXPLAIN UPDATE complaint_cases SET state = 'closed'": r"only one plain SELECT is allowed",
    "EXPLAIN DROP TABLE interactions": r"only one plain SELECT is allowed",
    "EXPLAIN EXPLAIN ANALYZE DELETE FROM interactions": r"Parser Error",   # DuckDB cannot parse it at all
    "EXPLAIN WITH x AS (DELETE FROM interactions RETURNING *) SELECT count(*) FROM x": rf"DELETE {CTE}",
    "EXPLAIN SELECT 1; DELETE FROM interactions": ONE,
    # writable CTEs: SELECT statements that write
    "WITH x AS (DELETE FROM interactions RETURNING *) SELECT count(*) FROM x": rf"DELETE {CTE}",
    "WITH x AS (UPDATE complaint_cases SET state = 'closed' RETURNING *) SELECT count(*) FROM x": rf"UPDATE {CTE}",
    "WITH x AS (INSERT INTO dead_letters VALUES ('t', 0, 0, 'r', now()) RETURNING *) SELECT * FROM x": rf"INSERT {CTE}",
    "WITH x AS (COPY interactions TO '{tmp}/cte.csv') SELECT 1": rf"COPY {CTE}",
    "WITH a AS (SELECT 1), b AS (DELETE FROM dead_letters RETURNING *) SELECT * FROM a": rf"DELETE {CTE}",
    "WITH x AS MATERIALIZED (DELETE FROM interactions RETURNING *) SELECT count(*) FROM x": rf"DELETE {CTE}",
    "SELECT (SELECT count(*) FROM (WITH x AS (DELETE FROM interactions RETURNING *) SELECT * FROM x))": rf"DELETE {CTE}",
    "SELECT 1 WHERE EXISTS (WITH x AS (UPDATE complaint_cases SET state = 'closed' RETURNING 1) SELECT * FROM x)":
        rf"UPDATE {CTE}",
    "SELECT 1 UNION ALL (WITH x AS (DELETE FROM interactions RETURNING 1) SELECT * FROM x)": rf"DELETE {CTE}",
    "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3), "
    "d AS (DELETE FROM interactions RETURNING 1) SELECT * FROM r": r"Parser Error: Recursive CTEs with DML",
    "WITH x AS (DELETE FROM interactions RETURNING *) INSERT INTO dead_letters SELECT 't', 0, 0, 'r', now()":
        rf"WITH \(parsed as INSERT\) {ONLY}",
    # a second statement behind a comment, or just behind the first
    "SELECT 1; DROP TABLE interactions": ONE,
    "SELECT 1 -- hidden\n; DELETE FROM interactions": ONE,
    "SELECT 1 /* a comment */; DELETE FROM interactions": ONE,
    "SELECT 1 /* ; DELETE FROM interactions */; DELETE FROM interactions": ONE,
    "SELECT '; DROP TABLE x'; DROP TABLE interactions": ONE,
    "SELECT 1;;DROP TABLE dead_letters": ONE,
    "SELECT 1; SELECT 2": ONE,
    "/* SELECT */ DELETE FROM interactions": rf"DELETE {ONLY}",
    "-- SELECT 1\nDELETE FROM interactions": rf"DELETE {ONLY}",
    # table functions: files, SQL in a string, effects, raw memory
    "SELECT * FROM read_csv('/etc/passwd')": FILES,
    "SELECT * FROM read_csv_auto('/etc/passwd')": FILES,
    "SELECT * FROM read_parquet('{tmp}/x.parquet')": FILES,
    "SELECT * FROM read_text('/etc/passwd')": FILES,
    "SELECT * FROM glob('/etc/*')": FILES,
    "SELECT * FROM query('SELECT 1')": r"query\(\) runs SQL .* not allowed",
    "SELECT * FROM query('WITH x AS (DELETE FROM interactions RETURNING *) SELECT * FROM x')":
        r"query\(\) runs SQL .* not allowed",
    "SELECT * FROM query_table('interactions')": r"query_table\(\) runs SQL .* not allowed",
    "SELECT * FROM checkpoint()": r"checkpoint\(\) writes the database file: not allowed",
    "SELECT * FROM force_checkpoint()": r"force_checkpoint\(\) writes the database file: not allowed",
    "SELECT * FROM system.main.checkpoint()": r"checkpoint\(\) writes the database file: not allowed",
    "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))":
        r"json_execute_serialized_sql\(\) runs SQL .* not allowed",
    "SELECT * FROM enable_logging()": r"enable_logging\(\) changes the server's logging",
    "SELECT * FROM truncate_duckdb_logs()": r"truncate_duckdb_logs\(\) changes the server's logging",
    "SELECT write_log('x')": r"write_log\(\) changes the server's logging",
    "SELECT * FROM arrow_scan(0, 0, 0)": r"arrow_scan\(\) reads process memory",
    # replacement scans: a file named as a table
    "SELECT * FROM '/etc/passwd'": FILES,
    "FROM '{tmp}/x.parquet'": FILES,
    "SELECT * FROM '/etc/hosts.csv'": FILES,
    "SELECT * FROM 'https://example.com/x.csv'": FILES,
    # sequences move even when the transaction is rolled back
    "SELECT nextval('probe_seq')": r"nextval\(\) advances a sequence",
    "SELECT NEXTVAL('probe_seq')": r"nextval\(\) advances a sequence",
    "SELECT 'probe_seq'.nextval()": r"nextval\(\) advances a sequence",
    "SELECT setval('probe_seq', 1000)": r"setval\(\) advances a sequence",
    "SELECT system.main.nextval('probe_seq')": r"nextval\(\) advances a sequence",
    "SELECT count(*) FROM interactions WHERE nextval('probe_seq') > 0": r"nextval\(\) advances a sequence",
    "SELECT (SELECT nextval('probe_seq'))": r"nextval\(\) advances a sequence",
    "SELECT list_transform([1, 2], lambda x: nextval('probe_seq'))": r"nextval\(\) advances a sequence",
}
# reads every key may run, and reads only the pii scope may (the masked layer refuses the others:
# EXPLAIN would print the masked views' text; SHOW TABLES and the catalogue functions reach main)
READS = ("SELECT count(*) FROM interactions",
         "WITH c AS (SELECT DISTINCT channel FROM interactions) SELECT count(*) FROM c",
         "FROM complaint_cases SELECT case_id, state LIMIT 3",
         "SELECT current_setting('enable_external_access')",
         "VALUES (1), (2)",
         "SUMMARIZE complaint_cases",
         "DESCRIBE interactions",
         "SELECT * FROM complaint_cases WHERE state = ? LIMIT 2")
PII_READS = ("EXPLAIN SELECT count(*) FROM interactions",
             "explain /* plan */ SELECT * FROM interactions WHERE channel = ?",
             "SHOW TABLES",
             "SELECT table_name FROM duckdb_tables()")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile")
    db = DuckDBStore(home / "q.duckdb")
    fill(db)
    db.execute_script(load_sql("complaint_customer_360"))
    with db.transaction() as con:   # targets for DROP, nextval and setval beside the serving tables
        con.execute("CREATE SEQUENCE probe_seq START 7")
        con.execute("SELECT nextval('probe_seq')").fetchall()
        con.execute("CREATE MACRO probe_macro(x) AS x + 1")
        con.execute("CREATE TYPE probe_mood AS ENUM ('calm', 'cross')")
        con.execute("CREATE INDEX probe_idx ON dead_letters (reason)")
        install_masked_schema(con, "9f" * 32)
    keys = ApiKeyStore(home / "keys.json")
    secret = {name: keys.create(name, [], scopes)[0] for name, scopes in SCOPES.items()}
    api = build_api(db, profiles=SimpleNamespace(store=Customer360Store(db)), keys=keys)
    http = TestClient(api, raise_server_exceptions=False)   # a crash is an answer too: 500, not a pass
    before = snapshot(db, home)
    yield SimpleNamespace(db=db, home=home, http=http, secret=secret, before=before)
    db.close()


def snapshot(db: DuckDBStore, home) -> dict:
    """Everything a statement could change: rows (count and a hash of every row) of every table, the
    catalogue, sequence values, settings, and the files beside the database."""
    cur = db.cursor()
    try:
        tables = cur.execute("SELECT database_name, schema_name, table_name FROM duckdb_tables() "
                             "ORDER BY ALL").fetchall()
        rows = {t: cur.execute(f'SELECT count(*), bit_xor(hash(r)) FROM "{t[0]}"."{t[1]}"."{t[2]}" r').fetchone()
                for t in tables}
        catalogue = {name: cur.execute(sql).fetchall() for name, sql in {
            "tables": "SELECT database_name, schema_name, table_name, sql FROM duckdb_tables()",
            "views": "SELECT database_name, schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal",
            "columns": "SELECT database_name, schema_name, table_name, column_name, data_type, column_default "
                       "FROM duckdb_columns()",
            "sequences": "SELECT schema_name, sequence_name, start_value, increment_by, last_value "
                         "FROM duckdb_sequences()",
            "indexes": "SELECT schema_name, index_name, table_name, sql FROM duckdb_indexes()",
            "schemas": "SELECT database_name, schema_name FROM duckdb_schemas()",
            "types": "SELECT schema_name, type_name, logical_type FROM duckdb_types() WHERE NOT internal",
            "macros": "SELECT schema_name, function_name, macro_definition FROM duckdb_functions() WHERE NOT internal",
            "databases": "SELECT database_name, path FROM duckdb_databases()",
            "settings": "SELECT name, value FROM duckdb_settings()",
        }.items()}
    finally:
        cur.close()
    files = sorted(p.name for p in home.iterdir() if not p.name.endswith(".wal"))
    return {"rows": rows, **{k: sorted(v, key=repr) for k, v in catalogue.items()}, "files": files}


def post(service, who: str, sql: str, fmt: str = "json", params: list | None = None):
    return service.http.post("/sql", json={"sql": sql.replace("{tmp}", str(service.home)), "format": fmt,
                                           "params": params or []},
                             headers={"Authorization": f"Bearer {service.secret[who]}"})


def test_the_list_is_long_enough_and_every_statement_is_hostile():
    assert len(HOSTILE) >= 60
    assert not set(HOSTILE) & set(READS + PII_READS)


@pytest.mark.parametrize("who", sorted(SCOPES))
@pytest.mark.parametrize("sql", list(HOSTILE))
def test_every_hostile_statement_is_refused_with_its_reason(service, who, sql):
    for fmt in ("json", "arrow"):
        answer = post(service, who, sql, fmt)
        assert answer.status_code == 400, (who, fmt, answer.status_code, answer.text[:300])
        assert re.search(HOSTILE[sql], answer.json()["detail"]), (who, fmt, answer.json()["detail"])


@pytest.mark.parametrize("who", sorted(SCOPES))
def test_reads_still_work_and_pii_reads_need_the_pii_scope(service, who):
    params = {"SELECT * FROM complaint_cases WHERE state = ? LIMIT 2": ["open"],
              "explain /* plan */ SELECT * FROM interactions WHERE channel = ?": ["email"]}
    for sql in READS + PII_READS:
        for fmt in ("json", "arrow"):
            answer = post(service, who, sql, fmt, params.get(sql))
            if who == "analyst" and sql in PII_READS:
                assert answer.status_code == 400, (sql, answer.text[:300])
                assert "without the pii scope" in answer.json()["detail"], (sql, answer.json()["detail"])
            else:
                assert answer.status_code == 200, (who, sql, fmt, answer.text[:300])
    plan = post(service, "pii", "EXPLAIN SELECT count(*) FROM interactions").json()
    assert plan["columns"] == ["explain_key", "explain_value"] and plan["rows"]


@pytest.mark.parametrize("who", sorted(SCOPES))
def test_after_every_hostile_statement_the_database_is_as_it_was(service, who):
    for sql in HOSTILE:
        post(service, who, sql)
        post(service, who, sql, "arrow")
    after = snapshot(service.db, service.home)
    for part, value in service.before.items():
        assert after[part] == value, part
    assert service.db.query("SELECT count(*) FROM interactions").rows[0][0] > 0


def test_a_write_the_guard_missed_is_rolled_back_and_the_time_limit_still_holds(tmp_path, monkeypatch):
    """Defence in depth: with the guard switched off, writes and DDL run but are rolled back."""
    db = DuckDBStore(tmp_path / "x.duckdb")
    with db.transaction() as con:
        con.execute("CREATE TABLE notes AS SELECT range AS n FROM range(5)")
    monkeypatch.setattr(duckdb_store, "check_read_only", lambda *_: None)
    for sql in ("DELETE FROM notes", "UPDATE notes SET n = 0", "DROP TABLE notes", "CREATE TABLE probe AS SELECT 1",
                "INSERT INTO notes VALUES (9)", "ALTER TABLE notes ADD COLUMN m INTEGER",
                "WITH x AS (DELETE FROM notes RETURNING *) SELECT count(*) FROM x"):
        db.query(sql)
        db.query_arrow(sql)
    monkeypatch.undo()
    assert db.query("SELECT sum(n), count(*) FROM notes").rows == [(10, 5)]
    assert db.query("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'probe'").rows == [(0,)]
    assert [c for (c,) in db.query("SELECT column_name FROM duckdb_columns() WHERE table_name = 'notes'").rows] == ["n"]
    for run in (db.query, db.query_arrow):
        with pytest.raises(QueryError, match="time limit"):
            run("SELECT count(*) FROM range(1000000000000) a", timeout=0.3)
        assert db.query("SELECT count(*) FROM notes").rows == [(5,)]
    db.close()
