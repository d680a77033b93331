"""Feeding a stage's handler batches of records with librdkafka (confluent-kafka), one thread per stage.

Why not faust agents: measured on this machine (``touchstream bench``, the bench's
notes in the README), a faust agent's ``take_events`` spends about 0.37 ms of CPU
per record before the handler sees it, i.e. at most ~2.7k records/s on one core, and
every agent over the same topics pays it again; confluent-kafka's ``consume()``
hands over a record for about 0.013 ms. So the stages read with confluent-kafka, and
faust's worker still runs the process: it starts and stops every source (each is a
``mode.Service``), handles the signals and runs the timers.

Where a stage resumes: a sink keeps its offsets in DuckDB, in the transaction of its
rows, so ``resume_at`` seeks every assigned partition there and the Kafka group's commits
are only for lag monitoring; a stage without ``resume_at`` (identity) resumes at its group's
commits, which are made after each batch it handled.
Fail-stop, as before: if the handler raises, the process exits before any offset past
the stage's durable state can be committed, and the supervisor restarts it.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable, Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition
from mode import Service

from touchstream.config import Settings
from touchstream.processors.records import RawRecord

log = logging.getLogger(__name__)
Partition = tuple[str, int]


def consumer_config(settings: Settings, group: str) -> dict:
    return {
        "bootstrap.servers": settings.bootstrap_servers, "group.id": group, "client.id": group,
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        # A crashed worker's partitions move to its restart after this long, not after a minute.
        "session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000,
        # librdkafka prefetches up to these limits per consumer; its defaults (64 MB, 100k messages per
        # partition) would hold most of a backlog in memory in each of serving's four consumers.
        "fetch.wait.max.ms": 100, "queued.max.messages.kbytes": 16 * 1024, "queued.min.messages": 20_000,
    }


def to_records(messages: Iterable) -> list[RawRecord]:
    """The records among ``messages``; a fatal client error raises, others are logged and skipped
    (they are not records: librdkafka reports transient broker trouble through the same call)."""
    records = []
    for m in messages:
        error = m.error()
        if error is not None:
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


class BatchSource(Service):
    """``handle(records)`` on batches of up to ``batch`` records from ``topics``, waiting at most
    ``within`` seconds to fill one. ``resume_at(partition)`` gives the offset to resume at (the sink's
    own); ``on_assigned(partitions)`` is told every assignment."""

    def __init__(self, settings: Settings, group: str, topics: list[str], handle: Callable[[list[RawRecord]], None],
                 *, name: str, batch: int = 5000, within: float = 0.25,
                 resume_at: Callable[[Partition], int] | None = None,
                 on_assigned: Callable[[list[Partition]], None] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.group, self.topics, self.handle = settings, group, topics, handle
        self.name, self.batch, self.within = name, batch, within
        self.resume_at, self.on_assigned = resume_at, on_assigned
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.handled = 0

    @property
    def label(self) -> str:
        return f"source {self.name}"

    async def on_start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"source-{self.name}", daemon=True)
        self._thread.start()

    async def on_stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await self.loop.run_in_executor(None, self._thread.join, 120.0)

    def _run(self) -> None:
        try:
            consumer = Consumer(consumer_config(self.settings, self.group))
            consumer.subscribe(self.topics, on_assign=self._assign)
            try:
                self._consume(consumer)
            finally:
                consumer.close()
        except BaseException:
            log.exception("%s failed; exiting so no offset is committed past its durable state", self.label)
            logging.shutdown()
            os._exit(70)

    def _consume(self, consumer: Consumer) -> None:
        positions: list[TopicPartition] = []
        while not self._stop.is_set():
            records = to_records(consumer.consume(self.batch, self.within))
            if not records:
                continue
            self.handle(records)
            self.handled += len(records)
            positions = next_positions(records)
            consumer.commit(offsets=positions, asynchronous=True)
        if positions:
            consumer.commit(offsets=positions, asynchronous=False)

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.resume_at is not None:
            for tp in partitions:
                tp.offset = self.resume_at((tp.topic, tp.partition))
        consumer.assign(partitions)
        if self.on_assigned is not None:
            self.on_assigned([(tp.topic, tp.partition) for tp in partitions])
