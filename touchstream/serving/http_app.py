"""HTTP side of the serving process: health, offsets and read-only SQL.

Runs in the same process as the sink because DuckDB lets one process hold the
file; queries use their own cursors, so analysts read while events flow.

During a broker or registry outage the API keeps answering from DuckDB, and says how
stale that is: ``/health`` gives each sink's last commit, each source's lag as of its
last contact with the broker, and since when the broker (or registry) is unreachable
(``status: degraded``, still 200: the answers are good, only old); every response
then carries ``X-Touchstream-Broker-Unreachable-Since``.
"""

from __future__ import annotations

import csv
import io
import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from touchstream.processors.customer_360_rebuild import RebuildError
from touchstream.processors.outages import BROKER, LAG, REGISTRY
from touchstream.projections.duckdb_store import DuckDBStore, QueryError
from touchstream.serving.access import Caller, require
from touchstream.serving.analyst_api import analyst_router, plain, read
from touchstream.serving.contracts_api import router as contracts_router
from touchstream.serving.dashboard import dashboard_router
from touchstream.serving.export_api import export_router

MAX_ROWS = 100_000            # rows as JSON or CSV
MAX_BINARY_ROWS = 5_000_000   # rows as Arrow or Parquet (typed and compact: large results go here)


class SqlRequest(BaseModel):
    sql: str = Field(..., description="One read-only statement (SELECT/EXPLAIN).")
    params: list = Field(default_factory=list)
    max_rows: int = Field(10_000, ge=1, le=MAX_BINARY_ROWS,
                          description=f"at most {MAX_ROWS:,} for json/csv, {MAX_BINARY_ROWS:,} for arrow/parquet")
    timeout: float = Field(30.0, gt=0, le=300)
    format: str = Field("json", pattern="^(json|csv|arrow|parquet)$",
                        description="json (rows), csv, arrow (IPC stream) or parquet (a file to download)")


def staleness(store: DuckDBStore) -> dict:
    """How old the answers may be: per sink its last commit (DuckDB), per source the records it was
    behind at its last contact with the broker, and the broker's and registry's outages as this
    process sees them."""
    cur = store.cursor()
    try:
        rows = cur.execute("SELECT sink, max(updated_at) FROM sink_offsets GROUP BY sink ORDER BY sink").fetchall()
    except duckdb.Error:
        rows = []
    finally:
        cur.close()
    return {"broker": BROKER.snapshot(), "registry": REGISTRY.snapshot(),
            "sinks": {sink: {"last_commit": at.isoformat() if at else None} for sink, at in rows},
            "sources": {name: dict(lag) for name, lag in sorted(LAG.items())}}


def _found(value: dict | None, missing: str) -> dict:
    if value is None:
        raise HTTPException(status_code=404, detail=missing)
    return value


def build_api(store: DuckDBStore, ready=None, profiles=None, rebuild=None, complaints=None, keys=None) -> FastAPI:
    """``ready`` (a threading.Event) is set once the stream worker has its partitions;
    ``profiles`` (a LiveCustomer360) serves the 360 lookups; ``rebuild`` rebuilds it side by side;
    ``keys`` (the ApiKeyStore): reading needs the analyst scope, personal data the pii scope, rebuilds
    and exports the admin scope (None switches authentication off: an API a test builds in process)."""
    api = FastAPI(title="Touchstream query service", version="0.1.0")
    analyst, admin = require("analyst", keys), require("admin", keys)
    api.include_router(analyst_router(store, profiles, keys))
    api.include_router(contracts_router)
    api.include_router(export_router(store, keys))
    api.include_router(dashboard_router())   # the page and its scripts; its data requests carry a key

    @api.middleware("http")
    async def broker_outage_header(request, call_next):
        response = await call_next(request)
        since = BROKER.snapshot()["unreachable_since"]
        if since is not None:
            response.headers["X-Touchstream-Broker-Unreachable-Since"] = since
        return response

    @api.get("/health")
    def health():
        fresh = staleness(store)
        if ready is not None and not ready.is_set():
            return JSONResponse({"status": "starting", **fresh}, status_code=503)
        reachable = fresh["broker"]["reachable"] and fresh["registry"]["reachable"]
        return {"status": "ok" if reachable else "degraded", **fresh}

    @api.get("/offsets", dependencies=[Depends(analyst)])
    def offsets() -> dict:
        """Per sink, the next offset applied for each partition it reads (for catch-up checks).

        ``customer_360`` is the active version's sink, whatever its version."""
        names = {"interaction_log": "interaction_log", "identity_decisions": "identity_decisions",
                 "complaint_resolution": "complaint_resolution"}
        if profiles is not None:
            names["customer_360"] = profiles.store.sink
            if not profiles.sink.folds:   # fold workers fold; serving reads their 360s (customer_360_rows)
                names["customer_360_rows"] = profiles.store.sink + "_rows"
        return {
            alias: [{"topic": t, "partition": p, "next_offset": o}
                    for (t, p), o in sorted(store.committed_offsets(name).items())]
            for alias, name in names.items()
        }

    @api.get("/customers/{identifier}")
    def customer(identifier: str, caller: Caller = Depends(analyst)) -> dict:
        """The 360 of a customer, found by customer id or by any identifier (e-mail, phone, card, cookie, ...).
        Without the pii scope: by customer id only, with identifiers and answers pseudonymised."""
        if caller.sees_pii or profiles is None:
            return _found(profiles and profiles.lookup(identifier), "no customer with that id or identifier")
        found = read(store, "SELECT profile FROM customer_360 WHERE customer_id = ?", [identifier.strip()],
                     caller=caller)
        return _found(json.loads(found.rows[0][0]) if found.rows else None, "no customer with that id")

    @api.get("/complaints/{case_id}", dependencies=[Depends(analyst)])
    def complaint(case_id: str) -> dict:
        """One complaint case: state, contacts on every channel, callbacks, escalations, metrics, FCR."""
        return _found(complaints and complaints.case(case_id), "no complaint case with that id")

    @api.post("/admin/rebuild/customer-360", status_code=202, dependencies=[Depends(admin)])
    def start_rebuild() -> dict:
        """Replay the customer-events topic into a fresh version, then switch; the live one serves meanwhile."""
        if rebuild is None:
            raise HTTPException(status_code=404, detail="this service has no customer-360 to rebuild")
        try:
            return rebuild.start()
        except RebuildError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None

    @api.get("/admin/rebuild/customer-360", dependencies=[Depends(admin)])
    def rebuild_status() -> dict:
        if rebuild is None:
            raise HTTPException(status_code=404, detail="this service has no customer-360 to rebuild")
        return {**rebuild.status(), "active_version": profiles.store.version}

    @api.post("/sql")
    def sql(request: SqlRequest, caller: Caller = Depends(analyst)):
        """One read-only statement; rows as JSON or CSV, or the exact types as Arrow or Parquet.
        Without the pii scope it reads the masked views (personal values pseudonymised)."""
        if request.format in ("arrow", "parquet"):
            return _binary(store, request, caller)
        if request.max_rows > MAX_ROWS:
            raise HTTPException(status_code=422, detail=f"max_rows is at most {MAX_ROWS:,} for {request.format}; "
                                                        "ask for arrow or parquet for more")
        try:
            result = read(store, request.sql, request.params, caller=caller, max_rows=request.max_rows,
                          timeout=request.timeout)
        except QueryError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        rows = [[plain(v) for v in row] for row in result.rows]
        if request.format == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(result.columns)
            writer.writerows(rows)
            return PlainTextResponse(buf.getvalue(), media_type="text/csv",
                                     headers={"X-Touchstream-Truncated": str(result.truncated).lower()})
        return {"columns": result.columns, "rows": rows, "truncated": result.truncated}

    return api


def _binary(store: DuckDBStore, request: SqlRequest, caller: Caller) -> Response:
    try:
        table, truncated = read(store, request.sql, request.params, caller=caller, max_rows=request.max_rows,
                                timeout=request.timeout, arrow=True)
    except QueryError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    sink = pa.BufferOutputStream()
    if request.format == "arrow":
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        media, headers = "application/vnd.apache.arrow.stream", {}
    else:
        pq.write_table(table, sink)
        media, headers = "application/vnd.apache.parquet", {"Content-Disposition": 'attachment; filename="result.parquet"'}
    return Response(sink.getvalue().to_pybytes(), media_type=media,
                    headers={**headers, "X-Touchstream-Truncated": str(truncated).lower()})
