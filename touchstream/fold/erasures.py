"""The erasure ledger in a fold worker: each ``SubjectErased`` forgets its customers in every partition store.

Why here: a worker's partition stores hold the 360 profiles, claims, fold states and event copies of
their customers, in clear, and serving's erasure reaches only its own DuckDB. So each worker reads the
ledger (``touchstream.privacy.erasures``, one partition) and forgets the erased customer ids in every
store it holds, with ``erase_customer`` and the replacing id serving uses (``tombstone_id``), so the
query tier's rows stay joinable to the workers' copies.

Why the ledger offset lives in each partition store, not in the worker: a store moves between workers
with its partition. Every store records the erasures applied to it (``erasures``, by erasure id)
and the ledger offset it has reached, in the transaction of the rows it forgot; a store the worker
opens (an assignment) first catches up from its own offset on the ledger the worker has read (kept in
memory: it is one record per request and one per erasure). The worker reads the whole ledger before its
fold starts, then follows it. Fold batches, assignments, revocations and erasures take one lock, so no
sink cache is mid-batch when a store forgets a customer; the sink's caches are then dropped.

What the worker publishes: a tombstone on the 360 topic for every erased customer id of the store's
partition, acknowledged before the store commits (a crash sends it again). Afterwards the sink skips
every record naming an erased id (``Customer360Sink.erased``), so a late event or membership cannot
bring the profile back; the anonymised profile under the replacing id is kept for counts, never sent.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

from touchstream.codec.avro_codec import DecodeError
from touchstream.processors.erasure_log import ensure_schema, record_erasure
from touchstream.processors.erasure_stage import tombstone_id
from touchstream.processors.erasure_store import erase_customer
from touchstream.processors.identity_erasures import ERASED
from touchstream.topics import CUSTOMER_360_TOPIC, ERASURES_TOPIC

log = logging.getLogger("touchstream.fold")
LEDGER = (ERASURES_TOPIC, 0)
SINK_NAME = "fold-erasures"


def subject_erased(codec, value: bytes) -> dict | None:
    """The ``SubjectErased`` a ledger record is, else None: a request is serving's to carry out, and a record
    that is neither is dead-lettered by serving (N workers need not repeat it). A registry outage raises (the
    source waits it out)."""
    try:
        decoded = codec.decode(value)
    except DecodeError:
        return None
    return decoded.record if decoded.event_type == ERASED else None


def ledger_group(name: str) -> str:
    """The worker's own consumer group on the ledger: every worker reads every erasure (its commits are for
    lag only; the stores hold the offsets). The ``fold`` principal's groups start with ``touchstream-fold``."""
    return f"touchstream-fold.erasures.{name}"


def erased_ids(db) -> set[str]:
    """Every customer id an erasure applied to this store forgot."""
    with db.transaction() as con:
        ensure_schema(con)
        return {c for (ids,) in con.execute("SELECT customer_ids FROM erasures").fetchall() for c in ids}


class ErasingSinks:
    """``PartitionSinks`` whose stores follow the erasure ledger; the fold's handler and hooks, and the
    ledger source's handler (``read``), serialised by one lock."""

    def __init__(self, sinks, codec, ring, output):
        self.sinks, self.codec, self.ring, self.output = sinks, codec, ring, output
        self.lock = threading.Lock()
        self.ledger: list[tuple[int, dict]] = []   # (offset, erasure), in ledger order
        self.end = 0   # the ledger offset after the last record read
        self.stats = {"erasures": 0, "customers": 0}

    # -- the fold's handler and hooks (BatchSource over customer-events) ---------------------------------
    def handle(self, records) -> None:
        with self.lock:
            self.sinks.handle(records)

    def committed(self, partition) -> int:
        return self.sinks.committed(partition)

    def assigned(self, partitions) -> None:
        with self.lock:
            self.sinks.assigned(partitions)
            for partition in partitions:
                self._catch_up(self.sinks.sinks[partition])

    def revoked(self, partitions) -> None:
        with self.lock:
            self.sinks.revoked(partitions)

    def close(self) -> None:
        with self.lock:
            self.sinks.close()

    # -- the ledger (replayed whole at start, then a BatchSource) -----------------------------------------
    def resume_at(self, partition) -> int:
        return self.end

    def read(self, records) -> None:
        """Ledger records: their erasures applied to every store held, in order (under the lock, so a store
        opened meanwhile never saves a ledger offset past an erasure it has not applied)."""
        with self.lock:
            for record in records:
                if record.offset < self.end:
                    continue   # read already (the start's replay, or a redelivery)
                if (erased := subject_erased(self.codec, record.value)) is not None:
                    self.ledger.append((record.offset, erased))
                self.end = record.offset + 1
            for part in self.sinks.sinks.values():
                self._catch_up(part)

    def _catch_up(self, part) -> None:
        """Apply to one partition's store every erasure past its own ledger offset, each in one transaction
        with the offset after it; then drop the sink's caches, which may hold the person."""
        db, sink = part.db, part.sink
        with db.transaction() as con:
            ensure_schema(con)
        start = db.committed_offsets(SINK_NAME).get(LEDGER, 0)
        pending = [(offset, erased) for offset, erased in self.ledger if offset >= start]
        for offset, erased in pending:
            self._apply(db, sink, offset, erased)
        if pending:
            sink.cache.clear()
            sink.claim_cache.clear()
        if start < self.end:
            with db.transaction() as con:
                db.save_offsets(con, SINK_NAME, {LEDGER: self.end}, datetime.now(timezone.utc))
        sink.erased = erased_ids(db)

    def _apply(self, db, sink, offset: int, erased: dict) -> None:
        erasure_id, customers = erased["erasure_id"], list(erased["customer_ids"])
        with db.transaction() as con:
            done = con.execute("SELECT customer_ids FROM erasures WHERE erasure_id = ?", [erasure_id]).fetchone()
            if done is not None and (done[0] or not customers):
                return   # applied before: a restart or a redelivery changes nothing
            rows = {}
            if customers:
                # their keys again, as serving's stage does on a replay: one this worker made meanwhile (a
                # refold on identity's empty membership, read before the ledger) seals nothing readable then
                self.ring.erase(erased["refs"])
                rows = erase_customer(con, customers[0], [("customer_id", c) for c in customers[1:]],
                                      registry=self.codec.registry, replacement=tombstone_id(self.ring, erasure_id))
            record_erasure(con, erasure_id, customers, erased["requested_at"], rows, erased["kids_deleted"],
                           refs=erased["refs"], erased_at=erased["erased_at"])
            db.save_offsets(con, SINK_NAME, {LEDGER: offset + 1}, datetime.now(timezone.utc))
            local = [c for c in customers if sink.local is None or sink.local(c)]
            for customer in local:
                self.output.send(CUSTOMER_360_TOPIC, customer, None)   # before the commit: a crash sends it again
            self.output.flush()
        self.stats["erasures"] += 1
        self.stats["customers"] += len(local)
        log.info("erasure %s: %d customer id(s) forgotten in %s (%s)", erasure_id, len(customers), sink.name, rows)
