"""DuckDB storage for projections: idempotent batch writes with offsets, and read-only SQL.

DuckDB allows one process per file to hold it, so the serving process owns the
file: the sink writes through one guarded cursor, analysts read through fresh
cursors (MVCC gives them a consistent snapshot while events flow). Offsets are
written in the same transaction as the rows, which is what makes a crash or a
redelivery harmless.

Hardening is applied once the schema exists: external file and network access
off, extension auto-install/auto-load off, configuration locked. Analyst SQL must
pass ``sql_guard`` (one read, checked on DuckDB's parse tree), runs in a
transaction that is always rolled back (a write the guard missed cannot persist;
DuckDB's DDL is transactional too) and is interrupted after a time limit.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from touchstream.private_files import FILE_MODE, private_dir
from touchstream.projections.interaction_log import COLUMNS, Position, first_per_event_id, next_offsets
# QueryError is defined with the guard; its callers import it from here
from touchstream.projections.sql_guard import READ_ONLY, QueryError, Rules, check_read_only  # noqa: F401
ARROW_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()), ("event_type", pa.string()), ("domain", pa.string()),
        ("occurred_at", pa.timestamp("ms", tz="UTC")), ("recorded_at", pa.timestamp("ms", tz="UTC")),
        ("channel", pa.string()), ("content", pa.string()), ("initiated_by", pa.string()),
        ("source", pa.string()), ("correlation_id", pa.string()), ("causation_id", pa.string()),
        ("customer_id", pa.string()), ("email", pa.string()), ("phone", pa.string()),
        ("cookie_id", pa.string()), ("device_id", pa.string()), ("loyalty_card", pa.string()),
        ("account_number", pa.string()), ("amount", pa.decimal128(18, 2)), ("currency", pa.string()),
        ("payload", pa.string()), ("schema_id", pa.int32()), ("topic", pa.string()),
        ("partition", pa.int32()), ("offset", pa.int64()), ("ingested_at", pa.timestamp("ms", tz="UTC")),
        ("call_id", pa.string()), ("conversation_id", pa.string()), ("in_reply_to", pa.string()),
        ("direction", pa.string()), ("sender", pa.string()), ("wait_seconds", pa.float64()),
        ("response_seconds", pa.float64()), ("received_message_id", pa.string()),
    ]
)
assert tuple(ARROW_SCHEMA.names) == COLUMNS


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool


def insert_rows(con, table: str, rows: list[dict], schema: pa.Schema, conflict: str = "") -> list[tuple]:
    """One INSERT of many rows through Arrow, columns matched by name (per-statement cost dominates row by
    row); ``conflict`` may end in ``RETURNING ...``, whose rows are returned."""
    if not rows:
        return []
    name = f"_{table}_rows"
    con.register(name, pa.Table.from_pylist(rows, schema=schema))
    with _registered(con, name):
        return con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {name} {conflict}").fetchall()


def keyed(con, sql: str, keys: Iterable[str]) -> list[tuple]:
    """Run ``sql`` whose ``_keys(k)`` relation holds ``keys``: one statement for a whole batch of keys."""
    keys = sorted(set(keys))
    if not keys:
        return []
    con.register("_keys", pa.table({"k": pa.array(keys, pa.string())}))
    with _registered(con, "_keys"):
        return con.execute(sql).fetchall()


@contextmanager
def _registered(con, name: str):
    """Unregister ``name`` afterwards; after a failed statement the transaction is aborted and refuses
    even that, so the statement's own error is the one that propagates."""
    try:
        yield
    except BaseException:
        with suppress(duckdb.Error):
            con.unregister(name)
        raise
    con.unregister(name)


def load_sql(name: str) -> str:
    return resources.files("touchstream.projections").joinpath("sql", f"{name}.sql").read_text()


class DuckDBStore:
    """One DuckDB file, owned by this process."""

    def __init__(self, path: Path | str, *, ddl: tuple[str, ...] = ("interaction_log",), harden: bool = True):
        self.path = Path(path)
        private_dir(self.path.parent)
        self._con = duckdb.connect(str(self.path))
        os.chmod(self.path, FILE_MODE)   # personal data: owner-only whatever the umask (its WAL: in the 0700 folder)
        self._write_lock = threading.Lock()
        for name in ddl:
            self._con.execute(load_sql(name))
        if harden:
            for statement in (
                "SET enable_external_access = false",
                "SET autoinstall_known_extensions = false",
                "SET autoload_known_extensions = false",
                "SET python_enable_replacements = false",   # SQL must not reach the caller's Python variables
                "SET lock_configuration = true",
            ):
                self._con.execute(statement)

    def close(self) -> None:
        self._con.close()

    @contextmanager
    def transaction(self):
        """The write connection inside one transaction (committed on success, rolled back on error).

        For the other projections' stores: every sink writes its rows and its
        offsets through here, so they share the one file and the one writer lock.
        """
        with self._write_lock:
            self._con.execute("BEGIN TRANSACTION")
            try:
                yield self._con
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise

    def cursor(self):
        """A read cursor of its own (a consistent snapshot; safe beside the writer)."""
        return self._con.cursor()

    def execute_script(self, sql: str) -> None:
        with self._write_lock:
            self._con.execute(sql)

    @staticmethod
    def save_offsets(con, sink: str, offsets: dict[tuple[str, int], int], now: datetime) -> None:
        """Advance a sink's offsets (never backwards), all partitions in one statement."""
        if not offsets:
            return
        keys = sorted(offsets)
        con.register("_offsets", pa.table({
            "sink": [sink] * len(keys), "topic": [t for t, _ in keys],
            "partition": pa.array([p for _, p in keys], pa.int32()), "next_offset": [offsets[k] for k in keys],
            "updated_at": pa.array([now] * len(keys), pa.timestamp("ms", tz="UTC")),
        }))
        try:
            con.execute(
                "INSERT INTO sink_offsets SELECT * FROM _offsets ON CONFLICT DO UPDATE SET "
                "next_offset = greatest(sink_offsets.next_offset, excluded.next_offset), "
                "updated_at = excluded.updated_at")
        finally:
            con.unregister("_offsets")

    # -- the sink side --------------------------------------------------------
    def committed_offsets(self, sink: str) -> dict[tuple[str, int], int]:
        with self._write_lock:
            rows = self._con.execute(
                'SELECT topic, "partition", next_offset FROM sink_offsets WHERE sink = ?', [sink]
            ).fetchall()  # fetchall: DuckDB 2 refuses new work while a result is unfinished
        return {(t, p): o for t, p, o in rows}

    def apply_interactions(
        self,
        sink: str,
        rows: list[dict[str, Any]],
        positions: list[Position],
        dead: list[tuple[Position, str]] = (),
    ) -> int:
        """Insert new rows, record dead letters and advance offsets, all in one transaction.

        Returns how many rows were new (duplicates by event_id are ignored).
        """
        now = datetime.now(timezone.utc)
        rows = first_per_event_id(rows)
        offsets = next_offsets(positions)
        with self._write_lock:
            con = self._con
            con.execute("BEGIN TRANSACTION")
            try:
                new = 0
                if rows:
                    batch = pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)
                    con.register("_batch", batch)
                    added = con.execute("INSERT INTO interactions BY NAME SELECT * FROM _batch "
                                        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id").fetchall()
                    new = len(added)
                    if added:   # the CEM rollups merge the rows new to the log (interaction_rollups.sql)
                        ids = pa.array([r[0] for r in added], pa.string())
                        con.register("_new_rows", batch.filter(pc.is_in(batch["event_id"], value_set=ids)))
                        con.execute(load_sql("interaction_rollups"))
                        con.unregister("_new_rows")
                    con.unregister("_batch")
                for pos, reason in dead:
                    con.execute(
                        "INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        [pos.topic, pos.partition, pos.offset, reason, now],
                    )
                self.save_offsets(con, sink, offsets, now)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return new

    # -- the analyst side -----------------------------------------------------
    def query(self, sql: str, params: list | None = None, *, max_rows: int = 10_000, timeout: float = 30.0,
              search_path: str | None = None, rules: Rules = READ_ONLY) -> QueryResult:
        """Run one read-only statement on a fresh cursor, interrupted after ``timeout`` seconds;
        ``search_path``: the schema its names resolve in first (the masked views for some callers);
        ``rules``: the caller's checks on top of read-only (``sql_guard.Rules``)."""
        def fetch(cur):
            cur.execute(sql, params or [])
            columns = [d[0] for d in cur.description]
            rows = cur.fetchmany(max_rows + 1)
            return QueryResult(columns, rows[:max_rows], len(rows) > max_rows)
        return self._read_only(sql, params, timeout, fetch, search_path, rules)

    def query_arrow(self, sql: str, params: list | None = None, *, max_rows: int = 10_000, timeout: float = 30.0,
                    search_path: str | None = None, rules: Rules = READ_ONLY) -> tuple[pa.Table, bool]:
        """The same, as an Arrow table (exact types for Arrow and Parquet downloads); (table, truncated)."""
        def fetch(cur):   # a relation streams batches; a DB-API result would copy every row first
            reader = cur.sql(sql, params=params or None).to_arrow_reader(min(max_rows + 1, 100_000))
            batches, count = [], 0
            for batch in reader:
                batches.append(batch)
                count += batch.num_rows
                if count > max_rows:
                    break
            table = pa.Table.from_batches(batches, schema=reader.schema)
            return table.slice(0, max_rows), count > max_rows
        return self._read_only(sql, params, timeout, fetch, search_path, rules)

    def _read_only(self, sql: str, params: list | None, timeout: float, fetch, search_path: str | None,
                   rules: Rules):
        """The guard, then ``fetch(cursor)`` inside a transaction that is rolled back whatever happens
        (``fetch`` reads every row it returns before that), with the time limit as an interrupt."""
        cur = self._con.cursor()
        try:
            if search_path:
                cur.execute("SET search_path = ?", [search_path])
            check_read_only(cur, sql, rules)
            cur.execute("BEGIN TRANSACTION")
            timer = threading.Timer(timeout, cur.interrupt)
            timer.start()
            try:
                return fetch(cur)
            except duckdb.InterruptException:
                raise QueryError(f"query cancelled after the {timeout:g}s time limit") from None
            except duckdb.Error as exc:
                raise QueryError(str(exc).splitlines()[0]) from None
            finally:
                timer.cancel()
                with suppress(duckdb.Error):   # after an error or an interrupt the transaction may be gone
                    cur.execute("ROLLBACK")
        finally:
            cur.close()   # closing also ends a transaction the ROLLBACK could not
