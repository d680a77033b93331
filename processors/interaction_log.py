"""The interaction-log processor: raw topics -> the ``interactions`` table in DuckDB.

Batches of raw records are decoded, mapped to rows, and applied with their
offsets in one DuckDB transaction. Records the sink has already applied (offset
below the committed one) are skipped, and duplicates by event_id are ignored,
so at-least-once delivery gives exactly-once rows. Undecodable records go to
the dead-letter topic first, then their offsets advance with the batch.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from touchstream.codec.avro_codec import AvroCodec
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.projections.interaction_log import next_offsets, to_row
from touchstream.events.envelope import MAX_CLOCK_SKEW
from touchstream.processors.raw_fanout import DecodedBatch, decoded_batch
from touchstream.processors.records import CommittedOffsets, RawRecord
from touchstream.publishing.dead_letters import DeadLetterProducer

log = logging.getLogger(__name__)
SINK_NAME = "interaction_log"


class InteractionLogSink:
    def __init__(self, store: DuckDBStore, codec: AvroCodec, dead_letters: DeadLetterProducer, *, name: str = SINK_NAME,
                 max_skew: timedelta = MAX_CLOCK_SKEW):
        self.store, self.max_skew = store, max_skew
        self.codec = codec
        self.dead_letters = dead_letters
        self.name = name
        self._committed = CommittedOffsets(store.committed_offsets(name))
        self.applied = 0
        self.dead = 0

    def handle(self, records: list[RawRecord]) -> int:
        """Decode and apply one batch on its own (serving shares one decode: ``raw_fanout``)."""
        todo = self._committed.pending(records)
        return self.apply(decoded_batch(self.codec, todo, self.max_skew)) if todo else 0

    def arriving(self, records: list[RawRecord]) -> None:
        """Nothing to prepare before a shared decode (``raw_fanout``): the log has no clock."""

    def apply(self, batch: DecodedBatch) -> int:
        """Apply the records of a decoded batch this sink has not applied yet; returns the number of new rows."""
        batch = batch.after(self._committed.get)
        if not batch.records:
            return 0
        now = datetime.now(timezone.utc)
        rows = [to_row(d.event_type, d.record, d.schema_id, r.position, now) for r, d in batch.good]
        if batch.letters:
            self.dead_letters.send(batch.letters)
            log.warning("%d undecodable record(s) sent to the dead-letter topic", len(batch.letters))
        dead = [(d.record.position, d.reason) for d in batch.letters]
        new = self.store.apply_interactions(self.name, rows, [r.position for r in batch.records], dead)
        self._committed.advance(next_offsets(r.position for r in batch.records))
        self.applied += new
        self.dead += len(batch.letters)
        return new

    def committed(self, partition: tuple[str, int]) -> int:
        """The next offset this sink applies for (topic, partition): where its source resumes."""
        return self._committed.get(partition)
