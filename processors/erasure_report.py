"""The erasure report (``touchstream erase --report ID``): every copy Touchstream holds, searched for the
person an erasure forgot.

What it searches, and for what:
- every topic of the catalogue (raw, derived, the dead letters, the key topic and the erasure ledger),
  each record's key, headers, bytes and decoded value, sealed values opened with the keys that remain:
  for the person's values (recognised by their pseudonyms, ``projections.erasure_audit``);
- every DuckDB base table: for their values and their customer ids (the erasure replaced those);
- identity's checkpoint (its SQLite rows, and the file's bytes, where freed pages may keep old text):
  for their values and customer ids, the suppression list aside;
- the Parquet exports taken before the erasure: listed, as copies outside Touchstream's reach.
Customer ids are not searched on the topics: records kept forever are keyed by them, and they stay
(README, Privacy); after the erasure they lead to nothing readable.

Why the key ring is refreshed first: this process may still hold a key another process deleted.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from touchstream.processors.erasure_audit_scan import scan_duckdb, scan_files, scan_sqlite, scan_topics
from touchstream.processors.erasure_log import exports_before
from touchstream.projections.erasure import SKIPPED
from touchstream.projections.erasure_audit import Recogniser
from touchstream.topics import ERASURES_TOPIC, SCHEMAS_TOPIC, load_topics

NOT_REACHED = (
    "exports already downloaded (listed under exports), and copies a subscriber keeps of what it read",
    "backups of the broker's disks or of TOUCHSTREAM_HOME taken while the keys existed",
    "the fold workers' own stores while they run (each forgets on SubjectErased)",
    f"{SCHEMAS_TOPIC}: the schema registry's storage (schemas, no events)",
    "customer ids in the keys and headers of topics kept forever (pseudonymous; nothing readable is left behind them)",
)


class ErasureReport:
    def __init__(self, settings, store, codec, ring, identity_folder: Path):
        self.settings, self.store, self.codec, self.ring = settings, store, codec, ring
        self.identity_folder = identity_folder

    def __call__(self, row: dict) -> dict:
        self.ring.refresh()
        ids = set(row["customer_ids"])
        # The customer's own subjects are refs too (what was sealed under them): they would recognise a customer
        # id as a value, where the topics and the suppression list keep those on purpose; ``person`` finds
        # the ids themselves, as text.
        own = {self.ring.ref(s) for c in ids for s in (f"customer:{c}", f"customer_id:{c}")}
        values = Recogniser(set(row["refs"]) - own, set(), self.ring.ref, opener=self.codec.open_text)
        person = Recogniser(set(row["refs"]) - own, ids, self.ring.ref, opener=self.codec.open_text)
        topics = [s.name for s in load_topics(self.settings.topic_config) if s.name != SCHEMAS_TOPIC]
        scanned = scan_topics(self.settings, self.codec, values, topics, ignore_customer_ids={ERASURES_TOPIC},
                              timeout=600.0, group="touchstream-serving.erasure-audit")
        cur = self.store.cursor()
        try:
            tables = {t: 0 for t in _tables(cur)}
            table_hits = scan_duckdb(cur, person, SKIPPED)
            exports = exports_before(cur, row["erased_at"])
        finally:
            cur.close()
        files = self._identity_files()
        file_hits = {**_sqlite_hits(files, person), **scan_files(files, values)}   # its bytes hold the suppression list
        report = {
            "erasure_id": row["erasure_id"],
            "tables": {"scanned": sorted(tables), "found": table_hits},
            "topics": {"scanned": scanned.scanned, "found": scanned.hits, "missing": scanned.missing},
            "files": {"scanned": [str(f) for f in files], "found": {k: v for k, v in file_hits.items() if v}},
            "exports": [_export(e) for e in exports],
            "not_reached": list(NOT_REACHED),
        }
        report["clean"] = not (table_hits or scanned.hits or report["files"]["found"])
        return report

    def _identity_files(self) -> list[Path]:
        folder = self.identity_folder
        return sorted(p for p in folder.glob("*") if p.is_file() and not p.name.endswith((".lock", ".ready"))) \
            if folder.is_dir() else []


def _sqlite_hits(files: list[Path], person: Recogniser) -> dict[str, int]:
    out = {}
    for path in files:
        if path.suffix == ".sqlite":
            for table, n in scan_sqlite(path, person, allowed_tables={"forgotten"}).items():
                out[f"{path.name}:{table}"] = n
    return out


def _tables(cur) -> list[str]:
    return [r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables WHERE table_type = "
                                      "'BASE TABLE' AND table_schema = 'main'").fetchall()]


def _export(row: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
