"""``GET /export``: one consistent Parquet snapshot of the analysts' tables, as a zip with a manifest.

Why here and not ``COPY TO``: the serving process owns the DuckDB file and has
external file access switched off, so DuckDB cannot write files; it hands Arrow
batches to pyarrow instead. Every relation and the sink offsets are read on one
cursor inside one transaction, so all files describe the same instant and the
manifest's offsets say exactly which events they contain (writers go on meanwhile:
MVCC). The sink's writer lock is never taken.

What is exported (``RELATIONS``): the base tables analysts query and the documented
views, materialised (the customer-360 under its stable view names, so a rebuild's
version suffix never leaks into a reader's paths). Left out on purpose
(``EXCLUDED``): bookkeeping that goes into the manifest instead (offsets, the active
360 version, the SLA watermark), the SLA timer's agenda, and the versioned 360
tables (the fold's own stores, published through the views).

PII: without ``pii=true`` every value a contract marks personal is nulled
(``export_pii`` says why null and not a hash): identifier columns, identifier values
inside structs and the raw Avro of complaint events in SQL; the ``pii`` fields of the
JSON columns (``interactions.payload``, ``customer_360.profile``) in Python, per row.
The manifest lists the masked columns of each table.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
import zipfile
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse

from touchstream.processors.erasure_log import record_export
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.serving.access import require
from touchstream.serving.export_pii import hint_columns, mask_json, payload_rows, profile_rows

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
DEFAULT_PARTITION_ROWS = 1_000_000
BATCH_ROWS = 65_536
CHUNK = 1 << 20
NULL_IDENTIFIERS = "list_transform(identifiers, lambda i: struct_pack(kind := i.kind, value := NULL::VARCHAR))"
EXCLUDED = ("sink_offsets", "projection_versions", "complaint_sla_watermark", "complaint_sla_partitions",
            "complaint_sla_agenda", "complaint_case_hints",   # hints: the sink's own index of identifiers
            "erasures", "exports",   # privacy bookkeeping: who was forgotten (customer ids), which snapshots were taken
            # the KPI views' shortcuts, whose rows the exported relations hold: customer_360 with its channel
            # and finding lists, complaint_loyalty_cases without its later interactions
            "customer_360_lists", "complaint_case_paths",
            "cem_calls", "cem_chats", "cem_messages")   # rollups of the interactions rows, which are exported
VERSIONED = re.compile(r"^(customer_360|c360_identity|c360_events)_v\d+$")   # exported through the 360 views


@dataclass(frozen=True)
class Relation:
    """One exported table or view: how to read it in order, and what hides its PII."""

    name: str
    order: str = ""
    masks: dict[str, str] = field(default_factory=dict)   # column -> SQL that replaces it without PII
    json_column: str = ""                                  # a JSON column whose pii fields are nulled in Python
    json_paths: Callable | None = None                     # batch -> pii paths per row of that column


RELATIONS = (
    Relation("interactions", "occurred_at, event_id", {c: "NULL::VARCHAR" for c in hint_columns()}, "payload",
             payload_rows),
    Relation("dead_letters", 'topic, "partition", "offset"'),
    Relation("identity_decisions", "seq, decision_id", {"identifiers": NULL_IDENTIFIERS}),
    Relation("complaint_cases", "case_id", {"customer_anchor": "NULL::VARCHAR"}),
    Relation("complaint_events", "case_id, occurred_at, event_id", {"value": "NULL::BLOB"}),
    Relation("complaint_sla", "case_id, clock"),
    Relation("complaint_sla_events", "event_id"),
    Relation("customer_360", "customer_id", json_column="profile", json_paths=profile_rows),
    Relation("customer_channels"),
    Relation("contact_findings"),
    Relation("customer_identifiers", masks={"value": "NULL::VARCHAR"}),
    Relation("customer_timeline"),
    Relation("interaction_counts"),
    *(Relation(name) for name in (
        "complaint_contacts", "complaint_case_facts", "complaint_kpis", "complaint_causes",
        "complaint_sla_compliance", "complaint_breaches", "complaint_customer_interactions",
        "complaint_loyalty_cases", "complaint_loyalty", "complaint_discovery",
        # projections/sql/analyst_views.sql: aggregates, codes and customer ids, no personal values
        "channel_reference", "channel_mix", "pmp_distribution", "contact_pressure", "contact_pressure_distribution",
        "journey_funnel", "complaint_funnel", "sla_breaches_daily", "fcr_by_channel", "fcr_by_dimension",
        "callback_cost", "satisfaction_by_path", "revenue_around_contact", "cem_touchpoints")),
)
BY_NAME = {r.name: r for r in RELATIONS}


# -- the snapshot ---------------------------------------------------------------------------------
def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _select(relation: Relation, pii: bool) -> str:
    replace = "" if pii or not relation.masks else " REPLACE (" + ", ".join(
        f"{sql} AS {_quote(col)}" for col, sql in relation.masks.items()) + ")"
    order = f" ORDER BY {relation.order}" if relation.order else ""
    return f"SELECT *{replace} FROM {_quote(relation.name)}{order}"


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks (the manifest's and the CLI's check)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Parts:
    """Rolling Parquet writer: a new ``part-NNNNN.parquet`` whenever one holds ``limit`` rows."""

    def __init__(self, folder: Path, name: str, limit: int):
        self.folder, self.name, self.limit = folder, name, limit
        self.files: list[dict] = []
        self.writer, self.rows = None, 0
        (folder / name).mkdir()

    def _open(self, schema: pa.Schema) -> None:
        self.close()
        self.files.append({"path": f"{self.name}/part-{len(self.files):05d}.parquet"})
        self.writer, self.rows = pq.ParquetWriter(self.folder / self.files[-1]["path"], schema, compression="zstd"), 0

    def write(self, batch: pa.RecordBatch) -> None:
        start = 0
        while start < batch.num_rows:
            if self.writer is None or self.rows == self.limit:
                self._open(batch.schema)
            take = min(self.limit - self.rows, batch.num_rows - start)
            self.writer.write_batch(batch.slice(start, take))
            start, self.rows = start + take, self.rows + take

    def close(self, schema: pa.Schema | None = None) -> list[dict]:
        """Finish the open file; with ``schema``, an empty relation still gets one (empty) file."""
        if self.writer is None and schema is not None and not self.files:
            self._open(schema)
        if self.writer is not None:
            self.writer.close()
            path = self.folder / self.files[-1]["path"]
            self.files[-1].update(rows=self.rows, bytes=path.stat().st_size, sha256=sha256_file(path))
            self.writer = None
        return self.files


def write_parts(reader, folder: Path, relation: Relation, partition_rows: int, pii: bool) -> list[dict]:
    """Write the reader's batches under ``folder/<name>/``, masking JSON pii fields unless ``pii``."""
    parts = _Parts(folder, relation.name, partition_rows)
    for batch in reader:
        parts.write(batch if pii or not relation.json_column else mask_json(batch, relation.json_column,
                                                                             relation.json_paths))
    return parts.close(reader.schema)


def relations_present(cur) -> dict[str, str]:
    """Every table and view of the main schema, name -> ``table`` or ``view``."""
    return dict(cur.execute(
        "SELECT table_name, 'table' FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' UNION ALL SELECT view_name, 'view' FROM duckdb_views() "
        "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal").fetchall())


def _bookkeeping(cur, present: dict[str, str]) -> dict:
    """Offsets per sink, the active customer-360 version and the SLA watermark, from the same transaction."""
    offsets: dict[str, list] = {}
    for sink, topic, partition, nxt in cur.execute(
            'SELECT sink, topic, "partition", next_offset FROM sink_offsets ORDER BY ALL').fetchall():
        offsets.setdefault(sink, []).append({"topic": topic, "partition": partition, "next_offset": nxt})
    version = (cur.execute("SELECT max(version) FROM projection_versions WHERE name = 'customer_360'").fetchone()[0]
               if "projection_versions" in present else None)
    watermarks = ({s: w.isoformat() for s, w in cur.execute("SELECT * FROM complaint_sla_watermark").fetchall()}
                  if "complaint_sla_watermark" in present else {})
    return {"offsets": offsets, "customer_360_version": version, "sla_watermarks": watermarks}


def write_snapshot(store: DuckDBStore, folder: Path, *, tables: list[str] | None = None, pii: bool = False,
                   partition_rows: int = DEFAULT_PARTITION_ROWS) -> dict:
    """Write the relations (all, or ``tables``) as Parquet under ``folder`` plus ``manifest.json``; return it.

    Raises ValueError for a name that is not exported. A known relation missing from this
    database (its sink never ran) is listed under ``absent``.
    """
    unknown = sorted(set(tables or ()) - set(BY_NAME))
    if unknown:
        raise ValueError(f"not exported: {', '.join(unknown)}; exported: {', '.join(BY_NAME)}")
    if partition_rows < 1:
        raise ValueError("partition_rows must be at least 1")
    wanted = [r for r in RELATIONS if tables is None or r.name in tables]
    cur = store.cursor()
    try:
        cur.execute("BEGIN TRANSACTION")
        snapshot_at: datetime = cur.execute("SELECT now()").fetchone()[0]   # the transaction's start
        present = relations_present(cur)
        manifest = {"format": "parquet", "format_version": FORMAT_VERSION, "snapshot_at": snapshot_at.isoformat(),
                    "pii": pii, "partition_rows": partition_rows, **_bookkeeping(cur, present), "tables": {},
                    "absent": [r.name for r in wanted if r.name not in present]}
        for relation in (r for r in wanted if r.name in present):
            result = cur.sql(_select(relation, pii))
            columns = [{"name": n, "type": str(t)} for n, t in zip(result.columns, result.types)]
            files = write_parts(result.to_arrow_reader(BATCH_ROWS), folder, relation, partition_rows, pii)
            masked = [] if pii else sorted({*relation.masks, relation.json_column} - {""})
            manifest["tables"][relation.name] = {"kind": present[relation.name],
                                                 "rows": sum(f["rows"] for f in files), "columns": columns,
                                                 "masked": masked, "files": files}
        cur.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):
            cur.execute("ROLLBACK")
        raise
    finally:
        cur.close()
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def zip_folder(folder: Path, target: Path) -> None:
    """Move the snapshot into one zip, manifest first; stored, not deflated (Parquet is compressed already).

    Each file is removed once it is in the zip, so the export needs about one snapshot of disk, not two.
    """
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.write(folder / MANIFEST, MANIFEST)
        for path in sorted(folder.rglob("*.parquet")):
            archive.write(path, path.relative_to(folder).as_posix())
            path.unlink()


def _stream(handle) -> Iterator[bytes]:
    """The zip in chunks from its open handle: the file is already unlinked, so closing it frees the disk
    even when the client goes away mid-download and no clean-up task would run."""
    try:
        while chunk := handle.read(CHUNK):
            yield chunk
    finally:
        handle.close()


def export_router(store: DuckDBStore, keys=None) -> APIRouter:
    """``keys``: the API key store; exporting needs the admin scope, and ``pii=true`` the pii scope too."""
    admin = require("admin", keys)
    """``GET /export`` over ``store``; include with ``api.include_router(export_router(store))``."""
    router = APIRouter()

    @router.get("/export")
    def export(tables: str | None = Query(None, description="comma-separated names; all exported ones if absent"),
               partition_rows: int = Query(DEFAULT_PARTITION_ROWS, ge=1, description="most rows per Parquet file"),
               pii: bool = Query(False, description="include personal data (otherwise nulled)"),
               caller=Depends(admin)):
        if pii and not caller.sees_pii:
            raise HTTPException(403, f"key {caller.key_id} ({caller.system}) lacks the 'pii' scope for pii=true")
        """A zip: ``manifest.json`` and ``<table>/part-NNNNN.parquet``, all from one transaction."""
        names = [t.strip() for t in tables.split(",") if t.strip()] if tables else None
        work = Path(tempfile.mkdtemp(prefix=".export-", dir=store.path.parent))   # beside the data, not in /tmp
        try:
            (work / "snapshot").mkdir()
            manifest = write_snapshot(store, work / "snapshot", tables=names, pii=pii, partition_rows=partition_rows)
            zip_folder(work / "snapshot", work / "export.zip")
            handle = (work / "export.zip").open("rb")
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)   # the open zip lives on until the stream closes it
        with store.transaction() as con:   # the erasure report lists the snapshots taken before it
            record_export(con, uuid.uuid4().hex, datetime.fromisoformat(manifest["snapshot_at"]), caller.system, pii,
                          list(manifest["tables"]))
        stamp = manifest["snapshot_at"][:19].replace(":", "").replace("-", "")
        return StreamingResponse(_stream(handle), media_type="application/zip", headers={
            "Content-Length": str(os.fstat(handle.fileno()).st_size),
            "Content-Disposition": f'attachment; filename="touchstream-export-{stamp}.zip"'})

    return router
