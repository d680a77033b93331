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

from touchstream.codec.avro_codec import AvroCodec, DecodeError
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.projections.interaction_log import next_offsets, to_row
from touchstream.events.envelope import MAX_CLOCK_SKEW
from touchstream.processors.decoding import decode_checked
from touchstream.processors.records import CommittedOffsets, RawRecord
from touchstream.publishing.dead_letters import DeadLetter, DeadLetterProducer

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
        """Apply one batch; returns the number of new rows."""
        todo = self._committed.pending(records)
        if not todo:
            return 0
        now = datetime.now(timezone.utc)
        rows, letters = [], []
        for record in todo:
            try:
                decoded = self._decode(record)
                rows.append(to_row(decoded.event_type, decoded.record, decoded.schema_id, record.position, now))
            except DecodeError as exc:
                letters.append(DeadLetter(record, exc.reason))
        if letters:
            self.dead_letters.send(letters)
            log.warning("%d undecodable record(s) sent to the dead-letter topic", len(letters))
        dead = [(d.record.position, d.reason) for d in letters]
        new = self.store.apply_interactions(self.name, rows, [r.position for r in todo], dead)
        self._committed.advance(next_offsets(r.position for r in todo))
        self.applied += new
        self.dead += len(letters)
        return new

    def committed(self, partition: tuple[str, int]) -> int:
        """The next offset this sink applies for (topic, partition): where its source resumes."""
        return self._committed.get(partition)

    def _decode(self, record: RawRecord):
        return decode_checked(self.codec, record, self.max_skew)

