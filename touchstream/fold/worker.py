"""One fold worker: the customer-360 fold over the partitions of ``customer-events`` it is assigned.

Why a store per partition: the workers of the ``touchstream-fold`` consumer group share the
partitions, and Kafka moves a partition to another worker when one starts or stops
(cooperatively: only the partitions that change owner move). The fold state of a partition
(its events, claims, profile rows and consumed offset, in one DuckDB transaction) is its own
file, ``data/fold/customer-360-p<N>.duckdb``, which the next owner opens and resumes at its
offset. Customers of other partitions are handed to them through the topic
(``processors/customer_360_handover.py``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import duckdb

from touchstream.processors.customer_360 import Customer360Sink
from touchstream.projections import customer_360 as c360
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore

APP_ID = "touchstream-fold"
log = logging.getLogger("touchstream.fold")


def store_path(data_dir: Path, partition: int) -> Path:
    return data_dir / "fold" / f"customer-360-p{partition}.duckdb"


def open_store(path: Path, wait: float = 30.0) -> DuckDBStore:
    """The partition's store; a worker that just lost the partition may still hold the file for a moment
    (it closes it between batches), so a lock conflict is retried for ``wait`` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        try:
            return DuckDBStore(path)
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class FoldPartition:
    """A partition's sink and the store it owns (``PartitionSinks`` opens one per assigned partition)."""

    def __init__(self, db: DuckDBStore, sink: Customer360Sink):
        self.db, self.sink = db, sink

    def handle(self, records) -> None:
        self.sink.handle(records)

    def committed(self, partition) -> int:
        return self.sink.committed(partition)

    def close(self) -> None:
        log.info("partition store closed: %s", self.sink.stats)
        self.db.close()


def partition_opener(data_dir: Path, partitions: int, codec, output, dead_letters, config: c360.Config):
    """``open_sink(partition)`` for ``PartitionSinks``: the fold of partition p of ``partitions``."""
    def open_sink(tp: tuple[str, int]) -> FoldPartition:
        db = open_store(store_path(data_dir, tp[1]))
        sink = Customer360Sink(Customer360Store(db), codec, output, dead_letters, config, partition=(tp[1], partitions))
        return FoldPartition(db, sink)
    return open_sink
