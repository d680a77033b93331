"""The analysts' KPI views and the 360 lookup at scale (1M customers, 10M interactions), in process.

Why replicate instead of replaying: pushing 10M events through the pipeline does not fit a bench
run, while copying a real bench store k times inside DuckDB takes minutes. Every row written by
the real sinks is kept, so the distributions (events per customer, channels, cases per customer,
SLA clocks per case, JSON shapes) are the pipeline's own; only the volume grows.

How: the serving process's DuckDB file is copied, then each projection table gets ``copies - 1``
more copies of its original rows, every identifier suffixed with ``~<k>`` (copy 0 keeps its ids).
Keys stay unique and every join stays inside one copy, so each KPI count is exactly ``copies``
times the original and each ratio, mean or median is unchanged (tests/unit/test_bench_kpi_scale.py
holds the views to that). The plan below says, per table, which columns carry identifiers; a table
or an id-like column the plan does not know stops the scale-up rather than being copied wrongly.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import time
from pathlib import Path

import duckdb

from touchstream.bench.base import percentile
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore

ID, IDS, JSON_IDS = "id", "ids", "json"   # a string id; a list of string ids; ids inside a JSON document
# Identifier-valued JSON keys: "<anything>_id" and "in_reply_to" (string values only). The views join on
# some of them (payload call_id, conversation_id, message_id / in_reply_to; case_view anomalies' event_id):
# left as they were, copies would join each other's calls and replies and the counts would not scale.
JSON_ID = r'"([A-Za-z0-9_]*_id|in_reply_to)":(\s*)"((?:[^"\\]|\\.)*)"'

# Per table (a versioned name without its _v<n>): column -> ID, IDS, JSON_IDS or a SQL expression of
# the copy's suffix {sfx}. From projections/sql/*.sql and the stores that write them. Left unchanged on
# purpose: fingerprints (hashes), Avro values (BLOB, unread by the views), the 360 profile JSON (no view
# reads it: journey.first_sale_at is the typed first_sale_at; lookups return it as stored), and complaint_sla.clock
# ("callback:<id>", "next_response:<event>"): complaint_sla_events.clock joins it together with the
# suffixed case_id, so the pair stays unique and inside one copy.
PLAN: dict[str, dict[str, str]] = {
    "interactions": {**{c: ID for c in ("event_id", "correlation_id", "causation_id", "customer_id", "email",
                                         "phone", "cookie_id", "device_id", "loyalty_card", "account_number",
                                         # the payload's ids as typed columns: suffixed as inside payload
                                         "call_id", "conversation_id", "in_reply_to", "received_message_id")},
                     "payload": JSON_IDS},
    "cem_calls": {"call_id": ID}, "cem_chats": {"conversation_id": ID},   # the interaction log's CEM rollups
    "cem_messages": {"message": ID},
    "c360_events": {"event_id": ID, "anchor": ID},                # anchor is "kind:value", as identifier below
    "c360_identity": {"identifier": ID, "customer_id": ID},
    "customer_360": {"customer_id": ID, "finding_rows": (
        "list_transform(finding_rows, lambda f: struct_update(f, finding_id := f.finding_id || {sfx}, "
        "evidence := list_transform(f.evidence, lambda e: e || {sfx})))")},
    "complaint_events": {"event_id": ID, "case_id": ID},          # case_id may be a correlation id
    "complaint_cases": {"case_id": ID, "customer_id": ID, "customer_anchor": ID, "case_view": JSON_IDS,
                        "contact_rows": "list_transform(contact_rows, lambda c: struct_update(c, "
                                        "contact_key := c.contact_key || {sfx}))"},
    "complaint_case_hints": {"case_id": ID, "identifier": ID},
    "complaint_sla": {"case_id": ID, "started_by": ID, "met_by": ID},
    "complaint_sla_events": {"event_id": ID, "case_id": ID, "withdrawal_id": ID},
    "complaint_sla_agenda": {"case_id": ID},
    "identity_decisions": {"decision_id": ID, "decided_by": ID, "customer_id": ID, "from_ids": IDS,
                           "into_ids": IDS, "evidence_event_id": ID, "identifiers": (
                               "list_transform(identifiers, lambda i: struct_update(i, value := i.value || {sfx}))")},
}
# Keyed by Kafka position or by sink, not by an entity: one row per partition or sink however large the
# store, so they are kept as they are (and a copied position would collide with its original).
# c360_state: the 360 sink's stored folds of evicted profiles, a cache no query reads.
NOT_REPLICATED = frozenset({"sink_offsets", "dead_letters", "complaint_sla_watermark", "complaint_sla_partitions",
                            "projection_versions", "c360_state",
                            "erasures", "exports"})   # privacy bookkeeping: no KPI view reads it
ROWS_PER_STATEMENT = 2_000_000   # copies are inserted in batches of about this many rows


def base_name(table: str) -> str:
    """``customer_360_v3`` -> ``customer_360``: the plan is per table, whatever its version."""
    return re.sub(r"_v\d+$", "", table)


def _expression(column: str, kind: str) -> str:
    sfx = "('~' || _copy)"
    q = f'"{column}"'
    if kind == ID:
        return f"{q} || {sfx}"
    if kind == IDS:
        return f"list_transform({q}, lambda x: x || {sfx})"
    if kind == JSON_IDS:   # the suffix goes inside the string value: "call_id":"CALL-1" -> "call_id":"CALL-1~2"
        return f"regexp_replace({q}, '{JSON_ID}', '\"\\1\":\\2\"\\3~' || _copy || '\"', 'g')"
    return kind.replace("{sfx}", sfx)


def copy_select(con, table: str) -> str:
    """The SELECT list of one copy of ``table`` (``_copy`` is the copy number), after checking the plan
    against the table: every planned column exists, every primary key or unique constraint has a suffixed
    column (so a copy cannot collide with its original), every ``*_id`` / ``*_ids`` text column is planned
    (so a copy cannot join another copy's rows)."""
    plan = PLAN[base_name(table)]
    columns = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
                          "AND schema_name = 'main' ORDER BY column_index", [table]).fetchall()
    names = {c for c, _ in columns}
    if missing := set(plan) - names:
        raise ValueError(f"{table}: planned id columns {sorted(missing)} are not in the table")
    for (key,) in con.execute(
            "SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = ? AND schema_name = 'main' "
            "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')", [table]).fetchall():
        if not any(plan.get(c) == ID for c in key):
            raise ValueError(f"{table}: key {key} has no suffixed id column; copies would conflict")
    unplanned = sorted(c for c, t in columns if c not in plan and re.search(r"_ids?$", c) and "VARCHAR" in t)
    if unplanned:
        raise ValueError(f"{table}: identifier columns {unplanned} are not in kpi_scale.PLAN; say how to copy them")
    return ", ".join(_expression(c, plan[c]) if c in plan else f'"{c}"' for c, _ in columns)


def scale_up(source: Path, target: Path, copies: int) -> dict:
    """Copy the store at ``source`` (closed: DuckDB must not have it open) to ``target`` and replicate
    every projection table ``copies`` times; returns the customers (rows of the active customer_360),
    interactions, seconds and the file's bytes."""
    if copies < 1:
        raise ValueError("copies must be at least 1")
    started = time.perf_counter()
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    wal, target_wal = Path(f"{source}.wal"), Path(f"{target}.wal")
    if wal.exists():   # changes not yet checkpointed live there
        shutil.copyfile(wal, target_wal)
    else:
        target_wal.unlink(missing_ok=True)
    con = duckdb.connect(str(target))
    try:
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
                                            "AND NOT temporary ORDER BY table_name").fetchall()]
        unknown = [t for t in tables if base_name(t) not in PLAN and base_name(t) not in NOT_REPLICATED]
        if unknown:
            raise ValueError(f"tables {unknown} are neither in kpi_scale.PLAN nor NOT_REPLICATED")
        for table in (t for t in tables if base_name(t) not in NOT_REPLICATED):
            _replicate(con, table, copies)
        con.execute("CHECKPOINT")
        customers = con.execute("SELECT count(*) FROM customer_360").fetchone()[0]
        interactions = con.execute("SELECT count(*) FROM interactions").fetchone()[0]
    finally:
        con.close()
    return {"customers": customers, "interactions": interactions, "seconds": time.perf_counter() - started,
            "bytes": target.stat().st_size}


def _replicate(con, table: str, copies: int) -> None:
    """Copies 1..copies-1 of the table's original rows, a batch of copies per INSERT ... SELECT."""
    select = copy_select(con, table)
    con.execute(f'CREATE OR REPLACE TEMP TABLE _original AS SELECT * FROM main."{table}"')
    rows = con.execute("SELECT count(*) FROM _original").fetchone()[0]
    batch = max(1, ROWS_PER_STATEMENT // max(rows, 1))   # an empty table still binds its SELECT: plan checked
    for first in range(1, copies, batch):
        con.execute(f'INSERT INTO main."{table}" SELECT {select} FROM _original, '
                    f"range({first}, {min(copies, first + batch)}) AS _copies(_copy)")
    con.execute("DROP TABLE _original")


def time_kpis(path: Path, views: list[str], runs: int = 3) -> list[dict]:
    """Each view fully materialised (Arrow) ``runs`` times after one warm-up, on a read-only connection:
    what ``GET /kpis/{name}`` costs in DuckDB before masking, row limit and JSON. Rows, median and worst time."""
    con = duckdb.connect(str(path), read_only=True)
    out = []
    try:
        for view in views:
            con.sql(f"SELECT * FROM {view}").to_arrow_table()   # warm-up: buffer pool, catalog
            times, rows = [], 0
            for _ in range(runs):
                t0 = time.perf_counter()
                rows = con.sql(f"SELECT * FROM {view}").to_arrow_table().num_rows
                times.append((time.perf_counter() - t0) * 1000)
            out.append({"view": view, "rows": rows, "p50_ms": percentile(times, 50), "max_ms": max(times)})
    finally:
        con.close()
    return out


def time_lookups(path: Path, samples: int = 1000, seed: int = 1) -> dict:
    """360 lookups by customer id through ``Customer360Store.lookup``, the code behind ``GET /customers/{x}``
    on a cache miss (LiveCustomer360 caches profiles; a miss resolves by primary key, then loads and parses
    the profile JSON). The store is opened as serving opens it (read-write, no DDL of its own), so nothing
    in DuckDBStore changes for the bench; Customer360Store's DDL is IF NOT EXISTS, its one-time column fill
    finds nothing left to fill and its views are replaced by the same text: no row changes."""
    db = DuckDBStore(path, ddl=())
    try:
        store = Customer360Store(db)
        cur = db.cursor()
        try:
            ids = [r[0] for r in cur.execute("SELECT customer_id FROM customer_360 ORDER BY 1").fetchall()]
        finally:
            cur.close()
        rng = random.Random(seed)
        picked = rng.sample(ids, samples) if samples <= len(ids) else rng.choices(ids, k=samples)
        times = []
        for customer in picked:
            t0 = time.perf_counter()
            profile = store.lookup(customer)
            times.append((time.perf_counter() - t0) * 1000)
            if profile is None:
                raise LookupError(f"customer {customer} has no 360")
    finally:
        db.close()
    return {"samples": len(times), "p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}


if __name__ == "__main__":   # python -m touchstream.bench.kpi_scale SOURCE TARGET COPIES
    import sys

    from touchstream.serving.analyst_api import KPI_VIEWS
    src, dst, k = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(scale_up(src, dst, k)))
    for line in time_kpis(dst, list(KPI_VIEWS)):
        print(json.dumps(line))
    print(json.dumps(time_lookups(dst)))
