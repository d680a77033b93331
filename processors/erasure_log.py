"""The erasure log in DuckDB: what was erased (``erasures``) and which Parquet snapshots were handed out
(``exports``), for the erasure report; projections/sql/erasure.sql.

Why beside the rows and not only on the ledger topic: an erasure's record is written in the transaction
that anonymised the rows, with the stage's offset, so DuckDB says exactly which erasures it holds.
No personal value is written: customer ids (as a suppression list keeps them) and pseudonyms.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Iterable

import pyarrow as pa

from touchstream.projections.duckdb_store import insert_rows, load_sql

ERASURES = pa.schema([("erasure_id", pa.string()), ("customer_ids", pa.list_(pa.string())),
                      ("requested_at", pa.timestamp("ms", tz="UTC")), ("erased_at", pa.timestamp("ms", tz="UTC")),
                      ("rows_by_table", pa.string()), ("kids_deleted", pa.int32()), ("refs", pa.list_(pa.string()))])


def ensure_schema(con) -> None:
    """The ``erasures`` table (projections/sql/erasure.sql); idempotent."""
    con.execute(load_sql("erasure"))


def record_erasure(con, erasure_id: str, customer_ids: list[str], requested_at: datetime, rows: dict[str, int],
                   kids_deleted: int, *, refs: Iterable[str] = (), erased_at: datetime | None = None) -> None:
    """The erasure report's row: when, how many rows per table and how many data keys; no personal value
    (``refs``: the pseudonyms of the subjects whose keys were deleted, by which the audit knows them)."""
    ensure_schema(con)
    insert_rows(con, "erasures", [{
        "erasure_id": erasure_id, "customer_ids": sorted(customer_ids), "requested_at": requested_at,
        "erased_at": erased_at or datetime.now(timezone.utc), "rows_by_table": json.dumps(dict(sorted(rows.items()))),
        "kids_deleted": kids_deleted, "refs": sorted(refs)}], ERASURES,
        # a request found unreadable first (recorded with no customer) is completed by its SubjectErased
        "ON CONFLICT (erasure_id) DO UPDATE SET customer_ids = excluded.customer_ids, erased_at = excluded.erased_at, "
        "rows_by_table = excluded.rows_by_table, kids_deleted = excluded.kids_deleted, refs = excluded.refs "
        "WHERE len(erasures.customer_ids) = 0")


def record_export(con, export_id: str, snapshot_at: datetime, taken_by: str, pii: bool, relations: list[str]) -> None:
    """A Parquet snapshot was handed out: the erasure report lists the ones taken before an erasure."""
    ensure_schema(con)
    con.execute("INSERT INTO exports VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [export_id, snapshot_at, taken_by, pii, sorted(relations)])


def exports_before(con, moment: datetime) -> list[dict]:
    """The snapshots taken before ``moment`` (oldest first), as the erasure report lists them."""
    if not _exists(con, "exports"):
        return []
    cur = con.execute("SELECT export_id, snapshot_at, taken_by, pii, relations FROM exports WHERE snapshot_at < ? "
                      "ORDER BY snapshot_at, export_id", [moment])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def erasure_status(db, erasure_id: str) -> dict | None:
    """The erasure's recorded row as a dict, or None if it has not been carried out here."""
    cur = db.cursor()
    try:
        if not _exists(cur, "erasures"):
            return None
        cur.execute("SELECT * FROM erasures WHERE erasure_id = ?", [erasure_id])
        row = cur.fetchone()
        return None if row is None else dict(zip([d[0] for d in cur.description], row))
    finally:
        cur.close()


def _exists(con, table: str) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchone()[0] > 0
