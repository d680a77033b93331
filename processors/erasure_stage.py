"""Serving's erasure stage: ``touchstream.privacy.erasures`` -> keys deleted, DuckDB forgotten, ``SubjectErased``.

Why a request is an event first (``ErasureRequested``) and is carried out by the stage that reads it:
the request is durable before anything is deleted, so a crash half-way is finished after the restart
(every step is idempotent), and the erasure ledger on Kafka says who asked and when.

The order of one erasure, and why:
1. resolve the subject to the person's customer ids and identifiers, from the 360 in DuckDB (the
   identifiers are known only while the person still is);
2. delete the data keys of every identifier and of the customer (``KeyRing.erase``: tombstones with
   acks=all): from here nothing sealed of theirs can be read on any topic, copies included;
3. publish ``SubjectErased``, which identity, the fold workers and subscribers act on;
4. in one DuckDB transaction, with the 360 sink held still: anonymise every table, record the erasure
   and this stage's offset; then drop the in-memory caches that may still hold the person;
5. a tombstone for each customer id on the compacted 360 topic, and for each of their cases on the
   compacted case topic (DuckDB keeps the cases, anonymised, for the KPIs).
A ``SubjectErased`` read back without its DuckDB record (a DuckDB rebuilt from offset 0) repeats step 4
for its customer ids. The id that replaces the person is derived from the erasure id under the master
key (``tombstone_id``), so a repeat gives the rows the first run gave, and nobody without the key can
link it to the request.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone

from touchstream.codec.avro_codec import AvroCodec, DecodeError
from touchstream.privacy.keyring import KeyRing
from touchstream.processors.erasure_log import ensure_schema, erasure_status, record_erasure
from touchstream.processors.erasure_store import claims_of, erase_customer
from touchstream.processors.records import CommittedOffsets, RawRecord
from touchstream.projections.customer_360_store import candidates
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.projections.interaction_log import next_offsets
from touchstream.publishing.dead_letters import DeadLetter
from touchstream.schemas import load_derived
from touchstream.topics import COMPLAINT_CASES_TOPIC, CUSTOMER_360_TOPIC, ERASURES_TOPIC

log = logging.getLogger(__name__)
SINK_NAME = "erasures"
SWEEP_INTERVAL = 30.0   # seconds: how long a row written after an erasure may still name the erased customer id
REQUESTED, ERASED = "touchstream.derived.ErasureRequested", "touchstream.derived.SubjectErased"


def tombstone_id(ring: KeyRing, erasure_id: str) -> str:
    """The customer id that replaces the person: the same for every run of one erasure, unlinkable
    without the master key (a pseudonym of the erasure id, not of the person)."""
    return f"erased-{ring.ref(f'erasure:{erasure_id}')}"


def _has_erasures(con) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'erasures'").fetchone()[0] > 0


def reappeared_sql(con) -> str:
    """The erasures whose customer ids a table names again: the log, the live 360 and the cases."""
    tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                                        "AND list_contains(['interactions', 'customer_360', 'complaint_cases'], "
                                        "table_name) ORDER BY 1").fetchall()]
    named = " UNION ".join(f"SELECT customer_id FROM {t}" for t in tables) or "SELECT NULL AS customer_id"
    return (f"SELECT DISTINCT e.erasure_id FROM erasures e, unnest(e.customer_ids) AS u(customer_id) "
            f"WHERE u.customer_id IN ({named}) ORDER BY 1")


def owned_cases(con, replacement: str) -> list[str]:
    """The complaint cases the erased person owned: after ``erase_customer`` they name the replacing id."""
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'complaint_cases'").fetchone()[0]:
        return []
    return [c for (c,) in con.execute("SELECT case_id FROM complaint_cases WHERE customer_id = ? ORDER BY 1",
                                      [replacement]).fetchall()]


def sealing_subject(text: str) -> str:
    """Whose key seals the request's subject: the identifier it names, else the customer id it is."""
    found = candidates(text.strip())
    return found[0] if found and not found[0].startswith("customer_id:") else f"customer_id:{text.strip()}"


class ErasureStage:
    """Requests erasures (``request``, from the API) and carries them out (``handle``, from the topic)."""

    def __init__(self, store: DuckDBStore, codec: AvroCodec, ring: KeyRing, output, dead_letters, live, *,
                 clock=lambda: datetime.now(timezone.utc)):
        self.store, self.codec, self.ring, self.output = store, codec, ring, output
        self.dead_letters, self.live, self.clock = dead_letters, live, clock
        derived = load_derived()
        self.request_schema, self.erased_schema = derived["erasure_requested"], derived["subject_erased"]
        with store.transaction() as con:
            ensure_schema(con)
        self._committed = CommittedOffsets(store.committed_offsets(SINK_NAME))
        self.listeners: list = []   # called with the erased customer ids after each erasure (caches to drop)
        self._requested: set[str] = set()

    def committed(self, partition: tuple[str, int]) -> int:
        return self._committed.get(partition)

    # -- the request -------------------------------------------------------------------------------
    def request(self, subject: str, requested_by: str) -> str:
        """Publish an ``ErasureRequested`` (acknowledged before this returns); its erasure id."""
        if not subject.strip():
            raise ValueError("subject: empty; give an identifier (kind:value or as written) or a customer id")
        erasure_id = uuid.uuid4().hex
        record = {"erasure_id": erasure_id, "subject": subject.strip(), "requested_at": self.clock(),
                  "requested_by": requested_by}
        value = self.codec.encode_sealed(self.request_schema, record, primary=sealing_subject(subject))
        self.output.send(ERASURES_TOPIC, erasure_id, value)
        self.output.flush()
        self._requested.add(erasure_id)
        return erasure_id

    def status(self, erasure_id: str) -> dict | None:
        """The erasure's record once carried out (``erasures`` table), else None."""
        return erasure_status(self.store, erasure_id)

    def pending(self, erasure_id: str) -> bool:
        """Requested through this process and not carried out yet."""
        return erasure_id in self._requested and self.status(erasure_id) is None

    # -- carrying it out ----------------------------------------------------------------------------
    def handle(self, records: list[RawRecord]) -> None:
        for record in self._committed.pending(records):   # one erasure per transaction
            try:
                decoded = self.codec.decode(record.value)
            except DecodeError as exc:
                self.dead_letters.send([DeadLetter(record, exc.reason)])
                self._done(record)
                continue
            if decoded.event_type == REQUESTED:
                self._erase(record, decoded.record)
            elif decoded.event_type == ERASED:
                self._again(record, decoded.record)
            else:
                self.dead_letters.send([DeadLetter(record, f"not an erasure record: {decoded.event_type}")])
                self._done(record)

    def _erase(self, record: RawRecord, request: dict) -> None:
        erasure_id = request["erasure_id"]
        text = request["subject"] or None   # "" once its key is gone: carried out before, or erased by another request
        if text is None or erasure_status(self.store, erasure_id) is not None:
            if text is None:   # its SubjectErased, if any, follows in the ledger and applies itself (_again)
                self._forget(record, {**request, "customer_ids": [], "erased_at": self.clock(), "kids_deleted": 0,
                                      "refs": []}, [])
            else:
                self._done(record)
            return
        customers, identifiers = self._resolve(text)
        refs = {self.ring.ref(f"{k}:{v}") for k, v in identifiers}
        refs |= {self.ring.ref(s) for c in customers for s in (f"customer:{c}", f"customer_id:{c}")}
        refs.add(self.ring.ref(sealing_subject(text)))
        self.ring.refresh()
        erased = {"erasure_id": erasure_id, "customer_ids": customers, "requested_at": request["requested_at"],
                  "erased_at": self.clock(), "kids_deleted": sum(len(self.ring.kids(r)) for r in refs),
                  "refs": sorted(refs)}
        # Published before a key is deleted: a crash after the deletion would leave a request nobody can read
        # any more; this way the ledger already says whom it was about, and _again finishes it.
        self.output.send(ERASURES_TOPIC, erasure_id, self.codec.encode(self.erased_schema, erased))
        self.output.flush()
        kids = self.ring.erase(refs)
        self._forget(record, erased, identifiers)
        log.info("erasure %s: %d customer id(s), %d data key(s) deleted", erasure_id, len(customers), len(kids))

    def _again(self, record: RawRecord, erased: dict) -> None:
        """A ``SubjectErased`` this DuckDB has no record of with its customers (rebuilt from offset 0, or a
        crash between publishing it and carrying it out): its keys deleted (again) and the customers forgotten."""
        row = erasure_status(self.store, erased["erasure_id"])
        if row is None or (erased["customer_ids"] and not row["customer_ids"]):
            self.ring.erase(erased["refs"])
            self._forget(record, erased, [])
        else:
            self._done(record)

    def _resolve(self, text: str) -> tuple[list[str], list[tuple[str, str]]]:
        """The person's customer ids (the canonical one, and any merged into it) and identifiers."""
        store = self.live.store
        customer = store.resolve(text)
        if customer is None:
            found = candidates(text.strip())
            return [], [tuple(found[0].split(":", 1))] if found else []
        cur = self.store.cursor()
        try:
            identifiers = claims_of(cur, [customer])
        finally:
            cur.close()
        customers = sorted({customer, *(v for k, v in identifiers if k == "customer_id")})
        return customers, identifiers

    def _forget(self, record: RawRecord, erased: dict, identifiers: list[tuple[str, str]]) -> None:
        customers = erased["customer_ids"]
        replacement = tombstone_id(self.ring, erased["erasure_id"])
        with self.live.lock:   # the 360 sink between batches: none of its caches is mid-write
            with self.store.transaction() as con:
                rows: dict[str, int] = {}
                cases: list[str] = []
                if customers:
                    rest = [("customer_id", c) for c in customers[1:]]
                    rows = erase_customer(con, customers[0], [*identifiers, *rest], registry=self.codec.registry,
                                          replacement=replacement)
                    cases = owned_cases(con, replacement)
                record_erasure(con, erased["erasure_id"], customers, erased["requested_at"], rows,
                               erased["kids_deleted"], refs=erased["refs"], erased_at=erased["erased_at"])
                self.store.save_offsets(con, SINK_NAME, next_offsets([record.position]), self.clock())
            self.live.forget(set(customers))
        self._committed.advance(next_offsets([record.position]))
        for customer in customers:
            self.output.send(CUSTOMER_360_TOPIC, customer, None)   # compaction removes the last profile
        for case in cases:   # and the person's cases: their views named them (DuckDB keeps them, anonymised)
            self.output.send(COMPLAINT_CASES_TOPIC, case, None)
        self.output.flush()
        for listener in self.listeners:
            listener(set(customers))

    # -- keeping them forgotten ----------------------------------------------------------------------
    def sweep(self) -> int:
        """Forget again every erased customer id that a table names once more: an event read after the
        erasure that still carries it in clear (a late one, or one a sink had decoded before the keys
        went). The serving timer runs it; returns how many erasures were applied again."""
        cur = self.store.cursor()
        try:
            due = [r[0] for r in cur.execute(reappeared_sql(cur)).fetchall()] if _has_erasures(cur) else []
        finally:
            cur.close()
        if due:
            with self.live.lock:
                with self.store.transaction() as con:
                    self.reapply(con, due)
                self.live.forget(set())
            log.info("erasure sweep: %d erasure(s) applied again to rows that named them", len(due))
        return len(due)

    def reapply(self, con, erasure_ids: list[str] | None = None) -> None:
        """Apply recorded erasures again in the caller's transaction (all of them by default): a 360
        rebuilt from customer-events before it is switched in, or rows written after an erasure."""
        if not _has_erasures(con):
            return
        rows = con.execute("SELECT erasure_id, customer_ids FROM erasures WHERE len(customer_ids) > 0 "
                           "AND (? IS NULL OR list_contains(?, erasure_id)) ORDER BY erasure_id",
                           [erasure_ids, erasure_ids or []]).fetchall()
        for erasure_id, customers in rows:
            erase_customer(con, customers[0], [("customer_id", c) for c in customers[1:]],
                           registry=self.codec.registry, replacement=tombstone_id(self.ring, erasure_id))

    def _done(self, record: RawRecord) -> None:
        with self.store.transaction() as con:
            self.store.save_offsets(con, SINK_NAME, next_offsets([record.position]), self.clock())
        self._committed.advance(next_offsets([record.position]))
