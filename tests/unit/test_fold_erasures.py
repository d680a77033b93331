"""Fold workers and erasure (issue 17): each worker reads the erasure ledger and forgets the erased customers
in its partition stores (``touchstream/fold/erasures.py``). Driven in process as the worker runs: identity
and one sink per partition over the demo, the person's keys deleted, ``SubjectErased`` read by the workers
and by identity (whose empty membership then reaches the fold). Afterwards no store holds a value of the
person, the last 360 record of each of their customer ids is a tombstone, the replacing id is serving's, and
a redelivery or a restart on the same stores changes no row."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timezone

import pytest

from tests.local_codec import LocalCodec
from tests.pipeline_harness import (EVENT_PARTITIONS, CustomerEventsTopic, append, consume, identify, identity_stage, raw_logs,
                                    validated)
from touchstream.demo.generator import generate
from touchstream.fold.erasures import ErasingSinks
from touchstream.fold.worker import FoldPartition
from touchstream.privacy.keyring import MemoryKeyRing
from touchstream.processors.customer_360 import Customer360Sink
from touchstream.processors.erasure_stage import tombstone_id
from touchstream.processors.erasure_store import base_tables, claims_of, find_subject
from touchstream.processors.identity_resolution import CUSTOMER
from touchstream.processors.partition_sinks import PartitionSinks
from touchstream.processors.records import RawRecord
from touchstream.processors.topic_output import MemoryOutput
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.projections.identity_resolution import IdentityConfig
from touchstream.publishing.dead_letters import AlreadySentDeadLetters
from touchstream.schemas import load_derived
from touchstream.topics import CUSTOMER_360_TOPIC, CUSTOMER_EVENTS_TOPIC, ERASURES_TOPIC

RING = MemoryKeyRing()
CODEC = LocalCodec(keys=RING)
NOW = datetime(2026, 12, 7, tzinfo=timezone.utc)


class Worker:
    """One fold worker holding every partition, each on its own store, as ``python -m touchstream.fold`` runs."""

    def __init__(self, folder, topic: CustomerEventsTopic, output: MemoryOutput, ledger: tuple = ()):
        """``ledger``: records read before any partition is assigned (as the worker's start replays it)."""
        self.folder, self.topic, self.output = folder, topic, output
        self.sent = CustomerEventsTopic(output)   # hand-overs land on the same partitions
        self.sent.logs = topic.logs
        self.sinks = ErasingSinks(PartitionSinks(self.open), CODEC, RING, output)
        self.sinks.read(list(ledger))
        self.sinks.assigned([(CUSTOMER_EVENTS_TOPIC, p) for p in range(EVENT_PARTITIONS)])

    def open(self, tp) -> FoldPartition:
        db = DuckDBStore(self.folder / f"customer-360-p{tp[1]}.duckdb")
        sink = Customer360Sink(Customer360Store(db), CODEC, self.output, AlreadySentDeadLetters(),
                               partition=(tp[1], EVENT_PARTITIONS))
        return FoldPartition(db, sink)

    def run(self) -> None:
        """Every partition to its end, hand-overs included."""
        while True:
            behind = [(tp, n) for tp in sorted(self.sinks.sinks.sinks)
                      if (n := self.sinks.committed(tp)) < len(self.topic.logs.get(tp, []))]
            if not behind:
                return
            for tp, n in behind:
                self.sinks.handle(self.topic.logs[tp][n:n + 500])
                self.sent.collect()

    def dbs(self) -> list[DuckDBStore]:
        return [part.db for part in self.sinks.sinks.sinks.values()]

    def digest(self) -> str:
        """Every row of every store, hashed (the erasure log and offsets aside: their clocks)."""
        h = hashlib.sha256()
        for db in self.dbs():
            con = db.cursor()
            for table in base_tables(con):
                if table in ("erasures", "sink_offsets"):
                    continue
                h.update(repr(sorted(map(repr, con.execute(f"SELECT * FROM {table}").fetchall()))).encode())
            con.close()
        return h.hexdigest()


@pytest.fixture()
def stack(tmp_path):
    """Identity and a worker over the demo, every record folded."""
    rnd, output = random.Random(3), MemoryOutput()
    topic = CustomerEventsTopic(MemoryOutput())
    identity = identity_stage(tmp_path / "identity", IdentityConfig(), CODEC, topic.output)
    identify(identity, consume(raw_logs(validated(list(generate(40, 30, 7))), CODEC), rnd, max_batch=500), topic)
    worker = Worker(tmp_path, topic, output)
    worker.run()
    return identity, topic, worker


def a_person(worker: Worker) -> tuple[str, list[tuple[str, str]]]:
    """The customer with the most identifiers, an e-mail address among them, and those identifiers."""
    best = None
    for db in worker.dbs():
        con = db.cursor()
        for (customer,) in con.execute("SELECT DISTINCT customer_id FROM c360_identity_v1 ORDER BY 1").fetchall():
            ids = claims_of(con, [customer])
            if any(k == "email" for k, _ in ids) and (best is None or len(ids) > len(best[1])):
                best = (customer, ids)
        con.close()
    assert best is not None
    return best


def erase(customer: str, identifiers, erasure_id: str = "e1") -> RawRecord:
    """What serving does before the workers read it: the person's keys deleted, ``SubjectErased`` on the ledger."""
    refs = {RING.ref(f"{k}:{v}") for k, v in identifiers} | {RING.ref(f"customer:{customer}"),
                                                           RING.ref(f"customer_id:{customer}")}
    RING.erase(refs)
    record = {"erasure_id": erasure_id, "customer_ids": [customer], "requested_at": NOW, "erased_at": NOW,
              "kids_deleted": len(refs), "refs": sorted(refs)}
    return RawRecord(ERASURES_TOPIC, 0, 0, erasure_id.encode(), CODEC.encode(load_derived()["subject_erased"], record), [])


def late(topic: CustomerEventsTopic, customer: str) -> None:
    """A record of the customer's on customer-events again, after the erasure (identity published it before)."""
    tp, record = next((tp, r) for tp, log in sorted(topic.logs.items()) for r in log
                      if dict(r.headers).get(CUSTOMER) == customer.encode())
    append(topic.logs, *tp, record.key, record.value, record.headers)


def last_360(output: MemoryOutput, customer: str):
    last = [v for t, k, v, _h in output.records if t == CUSTOMER_360_TOPIC and k == customer.encode()]
    assert last, "the worker published their 360 before"
    return last[-1]


def test_a_worker_forgets_an_erased_customer_in_its_stores_and_publishes_them_no_more(stack, tmp_path):
    identity, topic, worker = stack
    customer, identifiers = a_person(worker)
    assert sum(sum(find_subject(db.cursor(), customer, identifiers).values()) for db in worker.dbs()) > 0
    assert last_360(worker.output, customer) is not None
    ledger = erase(customer, identifiers)

    worker.sinks.read([ledger])
    identity.forget([ledger])             # identity forgets them: an empty membership for the customer
    topic.collect()
    late(topic, customer)                 # and an event of theirs still in flight, in clear by customer id
    worker.run()

    for db in worker.dbs():
        assert find_subject(db.cursor(), customer, identifiers) == {}
    assert last_360(worker.output, customer) is None, "the last record for the customer id is a tombstone"
    replacement = tombstone_id(RING, "e1")
    assert any(db.cursor().execute("SELECT count(*) FROM customer_360_v1 WHERE customer_id = ?",
                                   [replacement]).fetchone()[0] for db in worker.dbs()), "serving's replacing id"
    published = [v for t, k, v, _h in worker.output.records if t == CUSTOMER_360_TOPIC and v is not None]
    assert all(CODEC.decode(v).record["customer_id"] != replacement for v in published)

    before, sent = worker.digest(), len(worker.output.records)
    worker.sinks.read([ledger])           # redelivered: skipped by its offset
    worker.sinks.close()
    again = Worker(tmp_path, topic, worker.output)   # a restart on the same stores reads the ledger whole
    again.sinks.read([ledger])
    again.run()
    assert again.digest() == before
    assert len(again.output.records) == sent, "nothing published again"
    for db in again.dbs():
        assert find_subject(db.cursor(), customer, identifiers) == {}
    again.sinks.close()


def test_identitys_membership_before_the_ledger_leaves_nothing_readable(stack):
    """Identity forgets first and its empty membership makes the worker refold the customer from its store and
    publish them (under a key made anew); the ledger read afterwards deletes that key and sends a tombstone."""
    identity, topic, worker = stack
    customer, identifiers = a_person(worker)
    ledger = erase(customer, identifiers, "e2")
    sent = len(worker.output.records)
    identity.forget([ledger])
    topic.collect()
    worker.run()
    [republished] = [v for t, k, v, _h in worker.output.records[sent:] if t == CUSTOMER_360_TOPIC
                     and k == customer.encode()]
    assert republished is not None and CODEC.decode(republished).record["identifiers"], "what the gap was"

    worker.sinks.read([ledger])
    worker.run()
    assert not any(i["value"] for i in CODEC.decode(republished).record["identifiers"]), "its key is gone"
    assert last_360(worker.output, customer) is None
    for db in worker.dbs():
        assert find_subject(db.cursor(), customer, identifiers) == {}


def test_a_store_opened_after_the_ledger_was_read_catches_up_on_assignment(stack, tmp_path):
    """The partitions move to a worker that read the erasure while another held them: each store is
    erased when it is assigned, from its own ledger offset."""
    _identity, topic, worker = stack
    customer, identifiers = a_person(worker)
    ledger = erase(customer, identifiers, "e3")
    worker.sinks.close()
    sent = len(worker.output.records)
    taker = Worker(tmp_path, topic, worker.output, ledger=[ledger])
    for db in taker.dbs():
        assert find_subject(db.cursor(), customer, identifiers) == {}
    assert last_360(taker.output, customer) is None and len(taker.output.records) > sent
    taker.sinks.close()
