"""One sink per assigned partition, so partitions (and their state) can move between worker processes.

Why per partition: Kafka's consumer group moves partitions between the workers of a
group when one starts or stops. A worker can only take a partition over if the
partition's state travels with it, so each partition has its own store (its rows and
its consumed offset in one transaction, as every sink keeps them) that the worker opens
when the partition is assigned and closes when it is revoked; the next owner opens the
same store and resumes at its offset. The batch source calls both hooks between batches
(``batch_source.BatchSource``), so a store is never closed under a running batch.
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol

from touchstream.processors.records import RawRecord

log = logging.getLogger(__name__)
Partition = tuple[str, int]


class PartitionSink(Protocol):
    def handle(self, records: list[RawRecord]) -> None: ...
    def committed(self, partition: Partition) -> int: ...
    def close(self) -> None: ...


class PartitionSinks:
    """The batch source's handler over ``open_sink(partition)`` sinks (assigned -> open, revoked -> close)."""

    def __init__(self, open_sink: Callable[[Partition], PartitionSink]):
        self.open_sink = open_sink
        self.sinks: dict[Partition, PartitionSink] = {}

    def assigned(self, partitions: list[Partition]) -> None:
        for partition in partitions:
            if partition not in self.sinks:
                self.sinks[partition] = self.open_sink(partition)
        log.info("partitions now held: %s", sorted(self.sinks))

    def revoked(self, partitions: list[Partition]) -> None:
        for partition in partitions:
            sink = self.sinks.pop(partition, None)
            if sink is not None:
                sink.close()

    def committed(self, partition: Partition) -> int:
        return self.sinks[partition].committed(partition)

    def handle(self, records: list[RawRecord]) -> None:
        """Each partition's records to its sink, in order; a sink's failure stops the batch there (the
        sinks before it committed theirs, and skip them by their offsets when the batch comes again)."""
        by_partition: dict[Partition, list[RawRecord]] = {}
        for record in records:
            by_partition.setdefault((record.topic, record.partition), []).append(record)
        for partition, part in sorted(by_partition.items()):
            self.sinks[partition].handle(part)

    def close(self) -> None:
        self.revoked(list(self.sinks))
