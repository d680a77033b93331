"""Reading raw topics outside the live worker: rebuilds and catch-ups.

``replay`` feeds every record from offset 0 to the end offsets seen at the
start (rebuild a sink side by side, check replay equals live). ``replay_range``
feeds given offset ranges (the identity stage's silent catch-up between its
snapshot and the offsets its consumer group committed). Both read with a plain
assigned consumer: no consumer group, nothing committed to Kafka.
"""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition

from touchstream.config import Settings
from touchstream.kafka_access import kafka_access
from touchstream.processors.records import RawRecord

Ranges = dict[tuple[str, int], tuple[int, int]]   # (topic, partition) -> [start, end)


def _consumer(settings: Settings, batch: int, group: str | None = None) -> KafkaConsumer:
    return KafkaConsumer(**kafka_access(settings).kafka_python(
        group_id=group, enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=batch,
        fetch_max_bytes=64 * 1024 * 1024))


def _partitions(consumer: KafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]


def replay(settings: Settings, topics: list[str], handle, *, batch: int = 5000) -> int:
    """Feed every record of ``topics`` (offset 0 to the current end) to ``handle(records)``."""
    consumer = _consumer(settings, batch)
    try:
        ends = consumer.end_offsets(_partitions(consumer, topics))
        ranges = {(tp.topic, tp.partition): (0, end) for tp, end in ends.items() if end > 0}
    finally:
        consumer.close()
    return replay_range(settings, ranges, handle, batch=batch)


def replay_range(settings: Settings, ranges: Ranges, handle, *, batch: int = 5000) -> int:
    """Feed the records in ``ranges`` to ``handle(records)``, in batches; returns how many."""
    todo = {TopicPartition(t, p): (start, end) for (t, p), (start, end) in ranges.items() if end > start}
    if not todo:
        return 0
    consumer = _consumer(settings, batch)
    try:
        consumer.assign(list(todo))
        for tp, (start, _end) in todo.items():
            consumer.seek(tp, start)
        done = 0
        while any(consumer.position(tp) < end for tp, (_s, end) in todo.items()):
            polled = consumer.poll(timeout_ms=1000, max_records=batch)
            records = [
                RawRecord(m.topic, m.partition, m.offset, m.key, m.value, list(m.headers or []), m.timestamp)
                for tp, messages in polled.items() for m in messages if m.offset < todo[tp][1]
            ]
            if records:
                handle(records)
                done += len(records)
        return done
    finally:
        consumer.close()


def committed_offsets(settings: Settings, group: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """The offsets consumer group ``group`` committed for ``topics`` (partitions without one are left out)."""
    consumer = _consumer(settings, 1, group)
    try:
        out = {}
        for tp in _partitions(consumer, topics):
            offset = consumer.committed(tp)
            if offset is not None:
                out[(tp.topic, tp.partition)] = offset
        return out
    finally:
        consumer.close()
