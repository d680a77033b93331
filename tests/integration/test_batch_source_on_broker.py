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
