"""Has the serving process applied everything on the raw topics? (demo, tests, bench)

Compares the end offsets of the raw topics with the offsets the interaction-log
sink committed in DuckDB (``GET /offsets``). Equal means every record published
so far is in the log (or in the dead-letter table).
"""

from __future__ import annotations

import time

import httpx
from kafka import KafkaConsumer, TopicPartition

from touchstream.config import Settings
from touchstream.topics import load_topics, raw_topics


def end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    try:
        parts = []
        for topic in raw_topics(load_topics(settings.topic_config)):
            for partition in consumer.partitions_for_topic(topic) or ():
                parts.append(TopicPartition(topic, partition))
        return {(tp.topic, tp.partition): off for tp, off in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def applied_offsets(settings: Settings, sink: str = "interaction_log") -> dict[tuple[str, int], int]:
    response = httpx.get(f"{settings.query_url}/offsets", timeout=10)
    response.raise_for_status()
    return {(r["topic"], r["partition"]): r["next_offset"] for r in response.json().get(sink, [])}


def lag(settings: Settings, sink: str = "interaction_log") -> int:
    ends = end_offsets(settings)
    applied = applied_offsets(settings, sink)
    return sum(max(0, end - applied.get(tp, 0)) for tp, end in ends.items())


def wait_caught_up(settings: Settings, timeout: float = 300.0, sink: str = "interaction_log") -> float:
    """Block until the sink's lag is zero; returns the seconds waited."""
    start = time.monotonic()
    ends = end_offsets(settings)
    while True:
        applied = applied_offsets(settings, sink)
        remaining = sum(max(0, end - applied.get(tp, 0)) for tp, end in ends.items())
        if remaining == 0:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{sink} still {remaining} record(s) behind after {timeout:.0f}s")
        time.sleep(0.2)
