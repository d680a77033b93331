"""The confluent-kafka calls every ``BatchSource`` makes: its consumer's configuration, records out of
consumed messages, the group commit, and closing a consumer given up on.

Why apart from ``batch_source``: these are the plain I/O around a consumer; the source's module is
about the order of consuming, handling, committing and rebalancing.
"""

from __future__ import annotations

import logging
import threading
from typing import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from touchstream.config import Settings
from touchstream.kafka_access import kafka_access
from touchstream.processors.outages import BROKER, BrokerWatch, kafka_transient
from touchstream.processors.records import RawRecord

log = logging.getLogger(__name__)
Partition = tuple[str, int]


def consumer_config(settings: Settings, group: str, watch: BrokerWatch | None = None) -> dict:
    watch = watch or BrokerWatch(group)
    return {
        **kafka_access(settings).confluent(), "group.id": group, "client.id": group,
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        # A crashed worker's partitions move to its restart after this long, not after a minute.
        "session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000,
        # librdkafka prefetches up to these limits per consumer; its defaults (64 MB, 100k messages per
        # partition) would hold most of a backlog in memory in each of serving's four consumers.
        "fetch.wait.max.ms": 100, "queued.max.messages.kbytes": 16 * 1024, "queued.min.messages": 20_000,
        # A fetch answers once 64 kB are there or 100 ms passed: many tiny fetches over ~60 partitions cost
        # the broker more CPU per record than anything else it does (measured: touchstream bench).
        "fetch.min.bytes": 64 * 1024,
        # Broker trouble reaches ``watch`` (the process's broker outage, and the lag /health reports).
        "error_cb": watch.on_error, "stats_cb": watch.on_stats, "statistics.interval.ms": 5_000,
    }


def to_records(messages: Iterable) -> list[RawRecord]:
    """The records among ``messages``; a fatal client error raises, others are logged and skipped
    (they are not records: librdkafka reports transient broker trouble through the same call)."""
    records = []
    for m in messages:
        error = m.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                continue   # the end of a partition's log for now (``BatchSource._note_ends``), not trouble
            if error.fatal():
                raise KafkaException(error)
            log.warning("consumer: %s", error)
            continue
        records.append(RawRecord(m.topic(), m.partition(), m.offset(), m.key(), m.value(), list(m.headers() or []),
                                 m.timestamp()[1]))
    return records


def next_positions(records: list[RawRecord]) -> list[TopicPartition]:
    last: dict[Partition, int] = {}
    for r in records:
        last[(r.topic, r.partition)] = max(last.get((r.topic, r.partition), -1), r.offset)
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


def commit(consumer: Consumer, positions: list[TopicPartition], *, asynchronous: bool) -> None:
    """The group's commit. A sink resumes at its DuckDB offsets (the group's are for lag monitoring);
    identity resumes here, and a lost commit only means its last batch is handled again, which its
    snapshot offsets skip. So a failed commit is logged, never worth stopping the stage for."""
    try:
        consumer.commit(offsets=positions, asynchronous=asynchronous)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        if isinstance(error, KafkaError) and kafka_transient(error):
            BROKER.failed(f"commit: {error.str()}")
        else:
            log.warning("commit of consumed positions failed: %s", error)


def close_in_background(consumer: Consumer, label: str, wait: float = 30.0) -> None:
    """Close a consumer given up on; its group is stuck, so closing it may hang: left behind after ``wait``."""
    closer = threading.Thread(target=consumer.close, name=f"close-{label}", daemon=True)
    closer.start()
    closer.join(wait)
    if closer.is_alive():
        log.warning("%s: the consumer given up on did not close within %.0fs; left behind", label, wait)
