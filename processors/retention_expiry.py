"""Retention in DuckDB: delete expired dead letters and null expired free text, in one transaction.

Why offsets: "older than N days" is judged by the broker's append time of the record a row came
from (``projections.retention`` says why that time). DuckDB rows keep where they were read (topic,
partition, offset), and Kafka's time index answers which offset of a partition is the first one
appended at or after a moment (ListOffsets by timestamp), so every row below that offset is older:
no column to add, and a replay from offset 0 gets the same answer.

Why also on write (``ExpiringOnWrite``): a rebuild from offset 0 writes every old event again; the
periodic run would remove their free text minutes later, but until then an analyst could read it.
So the log's sink nulls it before the row is written, by the record's broker timestamp: a rebuilt
log equals the live one after expiry, row for row (tests/unit/test_retention.py).

Idempotent: a run selects only rows that still hold free text, and deletes only rows that exist.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Callable

import pyarrow as pa

from touchstream.kafka_access import KafkaAccess
from touchstream.privacy.subjects import expired_periods
from touchstream.processors.raw_fanout import DecodedBatch
from touchstream.projections.duckdb_store import DuckDBStore, insert_rows
from touchstream.projections.retention import (ExpiryReport, expired, free_text_paths, has_text_sql,
                                               payload_without_text, without_text)
from touchstream.topics import Retention

log = logging.getLogger(__name__)
Partition = tuple[str, int]
OffsetsBefore = Callable[[list[Partition], int], dict[Partition, int]]   # (partitions, epoch ms) -> first offset at/after
CUTOFFS = pa.schema([("topic", pa.string()), ("partition", pa.int32()), ("after", pa.int64()), ("before", pa.int64())])
STRIPPED = pa.schema([("event_id", pa.string()), ("payload", pa.string())])


class BrokerTime:
    """``offsets_before`` from the broker: per partition, the first offset appended at or after a moment
    (the end of the partition when every record is older)."""

    def __init__(self, access: KafkaAccess, timeout: float = 15.0):
        self.access, self.timeout = access, timeout

    def __call__(self, partitions: list[Partition], at_ms: int) -> dict[Partition, int]:
        from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

        if not partitions:
            return {}
        consumer = Consumer(self.access.confluent(**{"group.id": "touchstream-retention", "enable.auto.commit": False}))
        try:
            found = consumer.offsets_for_times([TopicPartition(t, p, at_ms) for t, p in partitions], timeout=self.timeout)
            out = {}
            for tp in found:
                if tp.error is not None and tp.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    log.warning("retention: %s[%d] is not on the broker; its rows are left", tp.topic, tp.partition)
                    continue
                if tp.error is not None:
                    raise KafkaException(tp.error)   # an outage to the timer (outages.outage_of), retried next run
                out[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=self.timeout, cached=False)[1]
            return out
        finally:
            consumer.close()


class RetentionExpiry:
    """Runs retention over DuckDB: ``run(apply=False)`` reports what is due, ``run(apply=True)`` removes it."""

    def __init__(self, store: DuckDBStore, retention: Retention, offsets_before: OffsetsBefore,
                 clock: Callable[[], float] = time.time, keys=None):
        self.store, self.retention, self.offsets_before, self.clock = store, retention, offsets_before, clock
        self.keys = keys   # the key ring: free text on Kafka expires with its month's key (privacy.subjects)
        # Per partition, the offset below which this process already expired free text: a run reads only the
        # rows that became old since (a row written below it later was already old then: ExpiringOnWrite).
        self._expired_below: dict[Partition, int] = {}

    def tick(self) -> None:
        """The serving timer: apply, and log what was removed."""
        report = self.run(apply=True)
        if report.dead_letters_deleted or report.payloads_stripped or report.text_keys:
            log.info("retention: %d dead letter(s) deleted, free text nulled in %d interaction(s), %d month key(s) "
                     "of free text deleted", report.dead_letters_deleted, report.payloads_stripped, report.text_keys)

    def run(self, *, apply: bool) -> ExpiryReport:
        now_ms = int(self.clock() * 1000)
        r = self.retention
        dead = self._cutoffs("dead_letters", now_ms - r.dead_letters_ms, {})
        text = [] if r.free_text_ms is None else self._cutoffs("interactions", now_ms - r.free_text_ms, self._expired_below)
        report = ExpiryReport(apply, r.dead_letters_days, r.free_text_days)
        with self.store.transaction() as con:   # asked of the broker first: no writer lock held on the network
            con.execute('CREATE OR REPLACE TEMP TABLE retention_cutoffs (topic VARCHAR, "partition" INTEGER, '
                        '"after" BIGINT, before BIGINT)')
            insert_rows(con, "retention_cutoffs", dead, CUTOFFS)
            report.dead_letters_deleted = self._dead_letters(con, apply)
            con.execute("DELETE FROM retention_cutoffs")
            insert_rows(con, "retention_cutoffs", text, CUTOFFS)
            report.by_event_type = self._free_text(con, apply)
            report.payloads_stripped = sum(report.by_event_type.values())
            con.execute("DROP TABLE retention_cutoffs")
        if apply:   # committed
            self._expired_below.update({(c["topic"], c["partition"]): c["before"] for c in text})
        report.text_keys = self._text_keys(now_ms, apply)
        return report

    def _text_keys(self, now_ms: int, apply: bool) -> int:
        """The months' free-text keys past retention: deleted (``apply``) or counted. With them the text
        sealed in those months opens nowhere, on any topic or in any copy of a record."""
        if self.keys is None or self.retention.free_text_ms is None:
            return 0
        refs = [self.keys.ref(p) for p in expired_periods(now_ms, self.retention.free_text_ms)]
        if apply:
            return len(self.keys.erase(refs))
        self.keys.refresh()
        return sum(len(self.keys.kids(r)) for r in refs)

    def _cutoffs(self, table: str, at_ms: int, done: dict[Partition, int]) -> list[dict]:
        """Per partition of ``table``'s rows, the offsets to expire: from ``done`` (0) to the first at ``at_ms``."""
        cur = self.store.cursor()
        try:
            partitions = cur.execute(f'SELECT DISTINCT topic, "partition" FROM {table}').fetchall()
        finally:
            cur.close()
        before = self.offsets_before(sorted(partitions), at_ms)
        return [{"topic": t, "partition": p, "after": min(done.get((t, p), 0), o), "before": o}
                for (t, p), o in before.items()]

    @staticmethod
    def _dead_letters(con, apply: bool) -> int:
        due = ('FROM dead_letters d WHERE EXISTS (SELECT 1 FROM retention_cutoffs c WHERE c.topic = d.topic '
               'AND c."partition" = d."partition" AND d."offset" < c.before)')
        count = con.execute(f"SELECT count(*) {due}").fetchone()[0]
        if apply and count:
            con.execute(f"DELETE {due}")
        return count

    @staticmethod
    def _free_text(con, apply: bool) -> dict[str, int]:
        paths = free_text_paths()
        rows = con.execute(
            'SELECT i.event_id, i.event_type, i.payload FROM interactions i JOIN retention_cutoffs c '
            f'ON c.topic = i.topic AND c."partition" = i."partition" AND i."offset" >= c."after" AND i."offset" < c.before '
            f'WHERE {has_text_sql(paths)}'
        ).fetchall()
        stripped, counts = [], {}
        for event_id, event_type, payload in rows:
            new = payload_without_text(payload, paths[event_type])
            if new is not None:
                stripped.append({"event_id": event_id, "payload": new})
                counts[event_type] = counts.get(event_type, 0) + 1
        if apply and stripped:
            con.register("_retention_stripped", pa.Table.from_pylist(stripped, schema=STRIPPED))
            try:
                con.execute("UPDATE interactions SET payload = s.payload FROM _retention_stripped s "
                            "WHERE interactions.event_id = s.event_id")
            finally:
                con.unregister("_retention_stripped")
        return counts


class ExpiringOnWrite:
    """The interaction-log sink behind the retention rule: an event already past its free-text retention
    when it is written (a rebuild from offset 0, a consumer far behind) is written without its free text,
    and a dead letter already past the dead-letter retention is neither sent again nor recorded."""

    def __init__(self, sink, retention: Retention, clock: Callable[[], float] = time.time):
        self.sink, self.retention, self.clock = sink, retention, clock

    def __getattr__(self, name: str):
        return getattr(self.sink, name)

    def arriving(self, records) -> None:
        self.sink.arriving(records)

    def committed(self, partition: Partition) -> int:
        return self.sink.committed(partition)

    def apply(self, batch: DecodedBatch) -> int:
        return self.sink.apply(self.expire(batch))

    def expire(self, batch: DecodedBatch) -> DecodedBatch:
        now_ms, r, paths = int(self.clock() * 1000), self.retention, free_text_paths()
        good = [(rec, replace(d, record=without_text(d.record, paths[d.event_type]))
                 if d.event_type in paths and expired(rec.timestamp, now_ms, r.free_text_ms) else d)
                for rec, d in batch.good]
        letters = [x for x in batch.letters if not expired(x.record.timestamp, now_ms, r.dead_letters_ms)]
        return DecodedBatch(batch.records, good, letters)
