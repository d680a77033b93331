"""The batch source against the real broker: it resumes where its sink says, hands over every
record once, in offset order per partition, and leaves its position in its consumer group."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.conftest import unique_name
from touchstream.kafka_access import KafkaAccess
from touchstream.processors.batch_source import BatchSource
from touchstream.stack.topic_admin import ensure_topics
from touchstream.topics import TopicSpec

pytestmark = pytest.mark.integration
RECORDS = 90


def as_admin(settings):
    """The source reads a test topic outside the touchstream namespace: as admin, not as the operator."""
    return replace(settings, kafka_user="admin")


def _topic(broker: KafkaAccess) -> str:
    topic = unique_name("source")
    ensure_topics(broker, [TopicSpec(topic, 3, 1)])
    producer = Producer(broker.confluent(acks="all"))
    for i in range(RECORDS):
        producer.produce(topic, key=str(i).encode(), value=str(i).encode(), partition=i % 3)
    assert producer.flush(30) == 0
    return topic


def _run_until(source: BatchSource, done, timeout: float = 60.0) -> None:
    async def main() -> None:
        await source.start()
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await source.stop()

    asyncio.run(main())


def test_resumes_at_the_sinks_offsets_and_hands_over_the_rest_once(settings, broker):
    topic, group = _topic(broker), unique_name("source-group")
    resume = {(topic, 0): 10, (topic, 1): 0, (topic, 2): 25}   # what a sink committed in its own store
    batches, assigned = [], []
    source = BatchSource(as_admin(settings), group, [topic], batches.append, name="t", batch=7, within=0.1,
                         resume_at=lambda tp: resume[tp], on_assigned=assigned.extend)
    expected = RECORDS - 10 - 25
    _run_until(source, lambda: sum(map(len, batches)) >= expected)
    records = [r for b in batches for r in b]
    assert sorted(assigned) == sorted(resume)
    assert len(records) == expected and max(map(len, batches)) <= 7
    for partition, start in ((0, 10), (1, 0), (2, 25)):
        offsets = [r.offset for r in records if r.partition == partition]
        assert offsets == list(range(start, RECORDS // 3))
    consumer = Consumer(broker.confluent(**{"group.id": group}))
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    finally:
        consumer.close()
    assert [tp.offset for tp in committed] == [RECORDS // 3] * 3


def test_without_a_resume_offset_it_starts_at_the_groups_commits(settings, broker):
    topic, group = _topic(broker), unique_name("source-group")
    first: list = []
    _run_until(BatchSource(as_admin(settings), group, [topic], first.append, name="a", batch=1000, within=0.1),
               lambda: sum(map(len, first)) >= RECORDS)
    producer = Producer(broker.confluent(acks="all"))
    producer.produce(topic, value=b"late", partition=1)
    assert producer.flush(30) == 0
    second: list = []
    _run_until(BatchSource(as_admin(settings), group, [topic], second.append, name="b", batch=1000, within=0.1),
               lambda: sum(map(len, second)) >= 1)
    assert sum(map(len, first)) == RECORDS
    assert [r.value for b in second for r in b] == [b"late"]


class Store:
    """A partition's durable state as a sink keeps it: the values applied and the next offset."""

    def __init__(self):
        self.values: list[bytes] = []
        self.next = 0
        self.opened = 0


class StoreSink:
    def __init__(self, store: Store):
        self.store = store
        store.opened += 1

    def handle(self, records):
        for r in records:
            if r.offset >= self.store.next:
                self.store.values.append(r.value)
                self.store.next = r.offset + 1

    def committed(self, partition):
        return self.store.next

    def close(self):
        pass


def test_two_cooperative_sources_hand_partitions_over_with_their_state(settings, broker):
    """A worker joins and later leaves the group while records flow: every partition is applied once,
    in order, by whichever worker holds it, resuming at its store's offset after each move."""
    from touchstream.processors.partition_sinks import PartitionSinks

    topic, group = _topic(broker), unique_name("source-group")
    stores = {(topic, p): Store() for p in range(3)}

    def worker(name: str) -> tuple[BatchSource, PartitionSinks]:
        sinks = PartitionSinks(lambda tp: StoreSink(stores[tp]))
        return BatchSource(as_admin(settings), group, [topic], sinks.handle, name=name, batch=5, within=0.05,
                           resume_at=sinks.committed, on_assigned=sinks.assigned, on_revoked=sinks.revoked,
                           cooperative=True), sinks

    (first, first_sinks), (second, second_sinks) = worker("one"), worker("two")
    producer = Producer(broker.confluent(acks="all"))

    async def main() -> None:
        await first.start()
        await _until(lambda: len(first_sinks.sinks) == 3)
        await second.start()
        await _until(lambda: second_sinks.sinks and len(first_sinks.sinks) + len(second_sinks.sinks) == 3)
        for i in range(RECORDS, 2 * RECORDS):
            producer.produce(topic, value=str(i).encode(), partition=i % 3)
        assert producer.flush(30) == 0
        await second.stop()   # leaves the group: its partitions go back to the first
        await _until(lambda: len(first_sinks.sinks) == 3)
        for i in range(2 * RECORDS, 3 * RECORDS):
            producer.produce(topic, value=str(i).encode(), partition=i % 3)
        assert producer.flush(30) == 0
        await _until(lambda: all(s.next == RECORDS for s in stores.values()))
        await first.stop()

    asyncio.run(main())
    for (_t, p), store in sorted(stores.items()):
        assert store.values == [str(i).encode() for i in range(3 * RECORDS) if i % 3 == p]
    assert sum(s.opened for s in stores.values()) > 3   # some partition did move


async def _until(done, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_a_holding_source_asks_the_broker_where_each_partition_ends(settings, broker):
    """Identity's merge trusts an end only as of the moment the broker gave it (``partition_ends``): the
    source asks for every partition's latest offset (ListOffsets, timestamp -1) and knows when it asked;
    a record produced later moves that partition's end at a later ask."""
    topic, group = _topic(broker), unique_name("source-group")
    got: list = []
    source = BatchSource(as_admin(settings), group, [topic], got.extend, name="h", batch=1000, within=0.1,
                         holds=lambda: {})
    partitions = [(topic, p) for p in range(3)]
    producer = Producer(broker.confluent(acks="all"))
    ends = {}

    async def main() -> None:
        await source.start()
        await _until(lambda: len(got) == RECORDS and all(source.caught_up(tp) for tp in partitions))
        ends["first"], ends["at"] = {tp: source.ends._ends[tp] for tp in partitions}, source.ends_known_at()
        producer.produce(topic, value=b"after", partition=1)
        assert producer.flush(30) == 0
        await _until(lambda: len(got) == RECORDS + 1 and all(source.caught_up(tp) for tp in partitions))
        ends["then"] = {tp: source.ends._ends[tp] for tp in partitions}
        assert source.ends_known_at() > ends["at"]
        await source.stop()

    started = time.time()
    asyncio.run(main())
    assert started <= ends["at"] <= time.time()
    assert ends["first"] == dict.fromkeys(partitions, RECORDS // 3)
    assert ends["then"] == {**ends["first"], (topic, 1): RECORDS // 3 + 1}
