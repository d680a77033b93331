"""Rebuild a sink from offset 0 of the raw topics, outside the live worker.

Used to check that replay equals live, and to rebuild into a fresh DuckDB file
side by side with the live one. Reads with a plain assigned consumer (no
consumer group, nothing committed to Kafka) up to the end offsets seen at the
start, in the same batches the live sink gets.
"""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition

from touchstream.config import Settings
from touchstream.processors.records import RawRecord


def replay(settings: Settings, topics: list[str], handle, *, batch: int = 5000) -> int:
    """Feed every record of ``topics`` (offset 0 to the current end) to ``handle(records)``."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    try:
        parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = {tp: off for tp, off in consumer.end_offsets(parts).items() if off > 0}
        done = 0
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            polled = consumer.poll(timeout_ms=1000, max_records=batch)
            records = [
                RawRecord(m.topic, m.partition, m.offset, m.key, m.value, list(m.headers or []))
                for tp, messages in polled.items() for m in messages if m.offset < ends.get(tp, 0)
            ]
            if records:
                handle(records)
                done += len(records)
        return done
    finally:
        consumer.close()
