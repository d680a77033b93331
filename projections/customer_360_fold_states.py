"""The fold states of customers the 360 sink does not hold in memory: one DuckDB row per customer.

Why: the sink folds each batch onto its customers' profiles, kept in a bounded cache. A
customer whose profile had been evicted was refolded from every event it ever had (read,
Avro-decoded, folded again): at 100k customers a third of the profiles written, so the
cost per event grew with the customers. Now a profile leaving the cache is stored here
(``customer_360_codec.pack``) in the transaction of the batch that evicted it, and taken
back, its row deleted, when its customer has events again.

The invariant the sink keeps (``processors/customer_360_cache.py``): a row holds the fold
of every committed event its customer holds, and only customers out of the cache have a
row. A row is written after its batch's folds, by that batch's transaction; the batch
that changes the customer next takes the row (deletes it) in its own transaction; a
customer whose history moves has its row taken with the others. A rolled back batch
restores what it took and the sink clears its cache. A row of another state shape
(``state_shape``) is dropped unread, so a release that changes the state refolds.
Shares the 360's DuckDB file and version suffix (``Customer360Store.table``).
"""

from __future__ import annotations

from typing import Iterable

import pyarrow as pa

from touchstream.projections.customer_360_codec import pack, state_shape, unpack
from touchstream.projections.customer_360_state import Profile
from touchstream.projections.duckdb_store import insert_rows, keyed

TABLE = "c360_state"
ROWS = pa.schema([("customer_id", pa.string()), ("shape", pa.string()), ("state", pa.binary())])
# No primary key: rows are inserted for customers that have none and deleted by key (an index would
# only be kept up to date on every insert).
DDL = """CREATE TABLE IF NOT EXISTS {table} (
    customer_id  VARCHAR NOT NULL,
    shape        VARCHAR NOT NULL,   -- customer_360_codec.state_shape() of the writer
    state        BLOB NOT NULL       -- customer_360_codec.pack(profile)
)"""


class FoldStates:
    def __init__(self, store):
        """``store``: the ``Customer360Store`` whose version this table belongs to."""
        self.db, self.table = store.db, store.table(TABLE)
        store.db.execute_script(DDL.format(table=self.table))

    def take(self, con, customers: Iterable[str]) -> dict[str, Profile]:
        """Delete the rows of ``customers``; returns the profiles among them of this release's shape."""
        rows = keyed(con, f"DELETE FROM {self.table} USING _keys WHERE {self.table}.customer_id = _keys.k "
                          "RETURNING customer_id, shape, state", customers)
        shape = state_shape()
        return {customer: unpack(state) for customer, of_shape, state in rows if of_shape == shape}

    def put(self, con, profiles: dict[str, Profile]) -> None:
        """Store the profiles of customers that have no row (those the cache let go)."""
        shape = state_shape()
        insert_rows(con, self.table, [{"customer_id": c, "shape": shape, "state": pack(p)}
                                      for c, p in profiles.items()], ROWS)

    def count(self) -> int:
        cur = self.db.cursor()
        try:
            return cur.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]
        finally:
            cur.close()
