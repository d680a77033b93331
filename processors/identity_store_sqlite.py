"""The identity stage's state in an embedded SQLite file (``identity.sqlite``, WAL mode).

Why SQLite: keyed rows written in one transaction per save, from the standard library,
in one owner-only file beside today's checkpoint. Each save costs what the batch
changed (``projections/identity_journal``), not what was ever seen.

Durability: a save commits in WAL mode with ``synchronous=NORMAL``: a process crash
keeps every committed save; a power cut may lose the last few, which is safe, because
an older save is consistent (its facts and its positions go together) and the silent
catch-up re-observes what followed it. The epoch alone is committed with
``synchronous=FULL``, because a run must never publish under an epoch that a power
cut could hand out again.

The file holds every identifier seen (personal data): the folder is 0700 and the
database 0600 whatever the umask (``touchstream.private_files``); SQLite gives its
``-wal`` and ``-shm`` files the database's mode.

An erasure (``forget``) deletes the rows naming the person's identifiers with ``secure_delete``
on (SQLite overwrites the deleted content instead of leaving it in free pages), then checkpoints
the WAL and truncates it (older page images in the WAL still held them). Between erasures
``secure_delete=FAST`` zeroes what a save frees inside the pages it writes anyway (a node row
rewritten leaves no old copy behind) at no extra I/O. The erasure also removes a migrated
version-1 checkpoint kept beside the store (``identity_store_migration.drop_migrated``): it is
the old state whole, person included, and the store has been in use since. Only the
``forgotten`` table (the suppression list) keeps the erased customer ids.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from touchstream.private_files import FILE_MODE, private_dir
from touchstream.processors.identity_store import IdentityStateStore, Saved
from touchstream.processors.identity_store_migration import drop_migrated, migrate_json_checkpoint
from touchstream.projections.identity_forget import Forgetting
from touchstream.projections.identity_journal import FACT_KINDS, Facts

LINK = "kind_a TEXT, value_a TEXT, kind_b TEXT, value_b TEXT, at INTEGER, event_id TEXT, trust TEXT, reason TEXT"
LINK_KEY = "PRIMARY KEY (event_id, kind_a, value_a, kind_b, value_b, at, trust, reason)"   # a row is kept once
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS offsets (topic TEXT, partition INTEGER, next INTEGER NOT NULL,
                                    PRIMARY KEY (topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nodes (kind TEXT, value TEXT, first_seen INTEGER NOT NULL, trust TEXT NOT NULL, note TEXT,
                                  PRIMARY KEY (kind, value)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS evidence ({LINK}, {LINK_KEY}) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS separations ({LINK}, {LINK_KEY}) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reported (rule TEXT, kind TEXT, value TEXT, PRIMARY KEY (rule, kind, value)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forgotten (customer_id TEXT, erasure_id TEXT, PRIMARY KEY (customer_id, erasure_id))
    WITHOUT ROWID;
"""
WRITE = {
    "events": "INSERT OR IGNORE INTO events VALUES (?)",
    "nodes": "INSERT INTO nodes VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, value) DO UPDATE"
             " SET first_seen = excluded.first_seen, trust = excluded.trust, note = excluded.note",
    "evidence": "INSERT OR IGNORE INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "separations": "INSERT OR IGNORE INTO separations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "reported": "INSERT OR IGNORE INTO reported VALUES (?, ?, ?)",
}
READ = {kind: f"SELECT * FROM {kind}" for kind in FACT_KINDS}
SET_META = "INSERT OR REPLACE INTO meta VALUES (?, ?)"
# The identifiers to forget come as one JSON parameter ([[kind, value], ...]): no temporary table holds them.
GONE = "WITH gone(kind, value) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))"
IN_GONE = "IN (SELECT kind, value FROM gone)"
FORGET = [f"{GONE} DELETE FROM nodes WHERE (kind, value) {IN_GONE}",
          *(f"{GONE} DELETE FROM {t} WHERE (kind_a, value_a) {IN_GONE} OR (kind_b, value_b) {IN_GONE}"
            for t in ("evidence", "separations")),
          f"{GONE} DELETE FROM reported WHERE (kind, value) {IN_GONE}"]
ADD_FORGOTTEN = "INSERT OR IGNORE INTO forgotten VALUES (?, ?)"
SET_OFFSET = "INSERT OR REPLACE INTO offsets VALUES (?, ?, ?)"
FILE_NAME = "identity.sqlite"
log = logging.getLogger(__name__)


def _private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 before SQLite opens it (SQLite would create it under the umask)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    os.chmod(path, FILE_MODE)


class SqliteIdentityStore(IdentityStateStore):
    def __init__(self, folder: Path):
        self.folder = private_dir(Path(folder))
        self.path = self.folder / FILE_NAME
        _private_file(self.path)
        # autocommit mode: every transaction is an explicit BEGIN ... COMMIT; the stage serialises its calls
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=FAST")
        self._db.executescript(SCHEMA)

    def save(self, delta: Saved) -> None:
        with self._transaction() as db:
            for kind in FACT_KINDS:
                rows = getattr(delta.facts, kind)
                db.executemany(WRITE[kind], [(e,) for e in rows] if kind == "events" else rows)
            db.executemany(SET_OFFSET, [(t, p, o) for (t, p), o in delta.offsets.items()])
            db.executemany(SET_META, [("epoch", delta.epoch), ("counter", delta.counter)])

    def forget(self, gone: Forgetting, counter: int) -> None:
        nodes = json.dumps(sorted([n.kind, n.value] for n in gone.nodes))
        self._db.execute("PRAGMA secure_delete=ON")
        try:
            with self._transaction() as db:
                for sql in FORGET:
                    db.execute(sql, (nodes,))
                db.executemany(ADD_FORGOTTEN, gone.rows())
                db.execute(SET_META, ("counter", counter))
        finally:
            self._db.execute("PRAGMA secure_delete=FAST")
        busy, _frames, _done = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:   # a reader held the WAL: its old frames go at the next checkpoint that completes
            log.warning("identity store: the WAL could not be truncated after erasure %s (a reader held it)",
                        gone.erasure_id)
        drop_migrated(self.folder)

    def _read(self) -> Saved:
        """The facts as open cursors: a restore reads each row once and never holds them all
        (at 300k events the peak RSS of a restore was 362 MB with the rows fetched first, 283 MB streamed)."""
        db = self._db
        meta = dict(db.execute("SELECT key, value FROM meta"))
        offsets = {(t, p): o for t, p, o in db.execute("SELECT topic, partition, next FROM offsets")}
        facts = Facts(*(db.execute(READ[kind]) for kind in FACT_KINDS))
        facts.events = (row[0] for row in facts.events)
        forgotten = db.execute("SELECT customer_id, erasure_id FROM forgotten").fetchall()
        return Saved(meta.get("epoch", 0), meta.get("counter", 0), offsets, facts, forgotten)

    def _last_epoch(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        return row[0] if row else 0

    def _write_epoch(self, epoch: int) -> None:
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            with self._transaction() as db:
                db.execute(SET_META, ("epoch", epoch))
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")

    def empty(self) -> bool:
        return not any(self._db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
                       for table in ("meta", "offsets", "forgotten", *FACT_KINDS))

    def close(self) -> None:
        self._db.close()

    def _transaction(self):
        return _transaction(self._db)


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raised: a save lands whole or not at all."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def open_identity_store(folder: Path) -> SqliteIdentityStore:
    """The service's store under ``folder``, a version-1 JSON checkpoint found there migrated into it first
    (kept as ``checkpoint.json.migrated``)."""
    store = SqliteIdentityStore(folder)
    migrate_json_checkpoint(store.folder, store)
    return store
