"""Fold workers on the real broker: one worker and two workers (one of them stopped and started while
records flow) end with the same customer-360 rows, by hash, as a replay from offset 0, and so does
a query tier that reads the workers' 360s from the broker.

The identity stage runs in process (``tests.pipeline_harness``) and its outputs are produced through
``TopicOutput`` onto a topic of this test's own, with 4 partitions, so librdkafka's partitioner
decides where each customer lands and the workers' ``key_partition`` must agree with it. The workers
are the real ``touchstream.fold`` pieces: a cooperative ``BatchSource`` in the group, a
``PartitionSinks`` opening each assigned partition's DuckDB store, and their hand-overs produced
onto the same topic.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import unique_name
from tests.event_builders import linked, plain_event
from tests.local_codec import LocalCodec
from tests.pipeline_harness import expected_fingerprints, identity_stage, raw_logs, validated
from touchstream.fold.worker import partition_opener, store_path
from touchstream.processors.batch_source import BatchSource
from touchstream.processors.customer_360_rows import ProfileRowsSink
from touchstream.processors.partition_sinks import PartitionSinks
from touchstream.processors.topic_output import MemoryOutput, TopicOutput
from touchstream.projections import customer_360 as c360
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.stack.topic_admin import ensure_topics
from touchstream.topics import CUSTOMER_360_TOPIC, CUSTOMER_EVENTS_TOPIC, TopicSpec, key_partition

pytestmark = pytest.mark.integration
PARTITIONS = 4
T0 = datetime(2026, 5, 4, 9, tzinfo=timezone.utc)
CODEC = LocalCodec()


def traffic(tag: str) -> list[dict]:
    """Customers seen on web, then merged in pairs by verified logins (across partitions, mostly), one
    merge undone, and more traffic after each step."""
    rnd = random.Random(tag)
    emails = [f"{tag}-{n}@example.com" for n in range(24)]
    at = iter(T0 + timedelta(minutes=n) for n in range(10_000))
    events = [plain_event("web.page_viewed", next(at), {"email": e}) for e in emails for _ in range(2)]
    pairs = list(zip(emails[::2], emails[1::2]))
    events += [linked(next(at), ("email", a), ("email", b)) for a, b in pairs]
    events += [plain_event("web.page_viewed", next(at), {"email": rnd.choice(emails)}) for _ in range(30)]
    events.append(linked(next(at), ("email", pairs[0][0]), ("email", pairs[0][1]), unlink=True, reason="wrong_match"))
    events += [plain_event("web.page_viewed", next(at), {"email": rnd.choice(emails)}) for _ in range(10)]
    return events


class TestTopics:
    """The workers' output: customer-events records (the hand-overs) and 360s go to this test's topics on
    the broker, findings are kept in memory, as no test reads them here."""

    def __init__(self, settings, topics: dict[str, str]):
        self.kafka, self.topics = TopicOutput(settings, client_id=unique_name("fold")), topics
        self.kept = MemoryOutput()

    def send(self, topic, key, value, headers=()) -> None:
        if topic in self.topics:
            self.kafka.send(self.topics[topic], key, value, headers)
        else:
            self.kept.send(topic, key, value, headers)

    def flush(self, timeout: float = 60.0) -> None:
        self.kafka.flush(timeout)
        self.kept.flush(timeout)


class Worker:
    def __init__(self, settings, topic: str, group: str, folder, name: str):
        topics = {CUSTOMER_EVENTS_TOPIC: topic, CUSTOMER_360_TOPIC: topic + "-360"}
        self.sinks = PartitionSinks(partition_opener(folder, PARTITIONS, CODEC, TestTopics(settings, topics),
                                                     Letters(), c360.Config()))
        self.source = BatchSource(settings, group, [topic], self.sinks.handle, name=name, batch=20, within=0.05,
                                  resume_at=self.sinks.committed, on_assigned=self.sinks.assigned,
                                  on_revoked=self.sinks.revoked, cooperative=True)


class Letters:
    def send(self, letters, timeout: float = 30.0) -> None:
        raise AssertionError(f"dead letters: {[letter.reason for letter in letters]}")


def produce(settings, topic: str, records: list) -> None:
    output = TopicOutput(settings, client_id=unique_name("identity"))
    for _topic, key, value, headers in records:
        output.send(topic, key, value, headers)
    output.flush()


def end_offsets(broker, topic: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer(broker.confluent(**{"group.id": unique_name("peek")}))
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTITIONS)}
    finally:
        consumer.close()


async def until(done, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def caught_up(broker, topic: str, workers: list[Worker]) -> bool:
    """Every partition held by a worker whose store has applied the topic to its end (hand-overs included)."""
    held = {tp[1]: sinks for w in workers for sinks in [w.sinks] for tp in sinks.sinks}
    ends = end_offsets(broker, topic)
    return len(held) == PARTITIONS and all(held[p].committed((topic, p)) >= end for p, end in ends.items())


def rows(folder) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in range(PARTITIONS):
        db = DuckDBStore(store_path(folder, p))
        try:
            mine = Customer360Store(db).fingerprints()
        finally:
            db.close()
        assert all(key_partition(c, PARTITIONS) == p for c in mine), f"partition {p} holds another's customer"
        out.update(mine)
    return out


def digest(fingerprints: dict[str, str]) -> str:
    return hashlib.sha256(repr(sorted(fingerprints.items())).encode()).hexdigest()


def test_one_and_two_workers_with_a_rebalance_give_the_rows_of_a_replay(settings, broker, tmp_path):
    admin = replace(settings, kafka_user="admin")   # a topic of the test's own, outside the namespace
    topic = unique_name("customer-events")
    ensure_topics(broker, [TopicSpec(topic, PARTITIONS, 1), TopicSpec(topic + "-360", PARTITIONS, 1)])
    events = traffic(unique_name("fold"))
    identity = MemoryOutput()
    stage = identity_stage(tmp_path / "identity", None, CODEC, identity)
    for log in sorted(raw_logs(validated(events), CODEC).items()):
        stage.handle(log[1])
    records = [r for r in identity.records if r[0] == CUSTOMER_EVENTS_TOPIC]
    half = len(records) // 2
    produce(admin, topic, records[:half])

    two = tmp_path / "two"
    first, second, again = (Worker(admin, topic, "fold-two-" + topic, two, name) for name in ("one", "two", "again"))

    async def two_workers() -> None:
        await first.source.start()
        await until(lambda: len(first.sinks.sinks) == PARTITIONS)
        await second.source.start()   # joins: some partitions move to it, with their stores
        await until(lambda: second.sinks.sinks and len(first.sinks.sinks) + len(second.sinks.sinks) == PARTITIONS)
        produce(admin, topic, records[half:])
        await second.source.stop()    # leaves mid-stream: its partitions go back to the first
        await until(lambda: len(first.sinks.sinks) == PARTITIONS)
        await again.source.start()    # and a worker joins again
        await until(lambda: again.sinks.sinks and caught_up(broker, topic, [first, again]))
        await again.source.stop()
        await first.source.stop()

    asyncio.run(two_workers())
    moved = sum(end_offsets(broker, topic).values()) - len(records)   # records the workers handed on

    one = tmp_path / "one"
    alone = Worker(admin, topic, "fold-one-" + topic, one, "alone")

    async def one_worker() -> None:
        await alone.source.start()
        await until(lambda: caught_up(broker, topic, [alone]))
        await alone.source.stop()

    asyncio.run(one_worker())
    expected = expected_fingerprints(events)
    assert digest(rows(two)) == digest(rows(one)) == digest(expected)
    assert moved > 0, "no event was handed between partitions: the test did not exercise a move"
    assert digest(query_tier(admin, broker, topic + "-360", tmp_path / "query.duckdb")) == digest(expected)


def query_tier(settings, broker, topic: str, path) -> dict[str, str]:
    """Serving beside the workers: the customer_360 rows it reads from the workers' 360s on the broker."""
    db = DuckDBStore(path)
    sink = ProfileRowsSink(Customer360Store(db), CODEC, Letters())
    source = BatchSource(settings, unique_name("query"), [topic], sink.handle, name="rows", batch=50, within=0.05,
                         resume_at=sink.committed)

    async def read() -> None:
        await source.start()
        ends = end_offsets(broker, topic)
        await until(lambda: all(sink.committed((topic, p)) >= end for p, end in ends.items()))
        await source.stop()

    asyncio.run(read())
    try:
        return sink.store.fingerprints()
    finally:
        db.close()
