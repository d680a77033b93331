"""Identity decisions into DuckDB: ``touchstream.identity.decisions`` -> ``identity_decisions``.

So that an analyst (or an auditor) can ask why two profiles were merged, which
event said so and what undid it, in SQL next to the 360. Rows and offsets are
written in one transaction; a redelivered decision is ignored by decision_id.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pyarrow as pa

from touchstream.codec.avro_codec import AvroCodec, DecodeError
from touchstream.processors.records import CommittedOffsets, RawRecord
from touchstream.projections.duckdb_store import DuckDBStore, insert_rows, load_sql
from touchstream.projections.interaction_log import first_per_event_id, next_offsets
from touchstream.publishing.dead_letters import DeadLetter

log = logging.getLogger(__name__)
SINK_NAME = "identity_decisions"
ROWS = pa.schema([
    ("decision_id", pa.string()), ("decision", pa.string()), ("seq", pa.uint64()), ("decided_by", pa.string()),
    ("decided_at", pa.timestamp("ms", tz="UTC")), ("customer_id", pa.string()), ("from_ids", pa.list_(pa.string())),
    ("into_ids", pa.list_(pa.string())),
    ("identifiers", pa.list_(pa.struct([("kind", pa.string()), ("value", pa.string())]))),
    ("trust", pa.string()), ("reason", pa.string()), ("rule", pa.string()), ("evidence_event_id", pa.string()),
    ("topic", pa.string()), ("partition", pa.int32()), ("offset", pa.int64()),
])


class IdentityDecisionSink:
    def __init__(self, db: DuckDBStore, codec: AvroCodec, dead_letters):
        self.db, self.codec, self.dead_letters = db, codec, dead_letters
        db.execute_script(load_sql(SINK_NAME))
        self._committed = CommittedOffsets(db.committed_offsets(SINK_NAME))
        self.applied = 0

    def committed(self, partition: tuple[str, int]) -> int:
        """The next offset this sink applies for (topic, partition): where its source resumes."""
        return self._committed.get(partition)

    def handle(self, records: list[RawRecord]) -> None:
        todo = self._committed.pending(records)
        if not todo:
            return
        rows, letters = [], []
        for record in todo:
            try:
                body = self.codec.decode(record.value).record
                rows.append({**{name: body.get(name) for name in ROWS.names[:13]}, "topic": record.topic, "partition": record.partition, "offset": record.offset})
            except (DecodeError, KeyError, TypeError, AttributeError) as exc:
                letters.append(DeadLetter(record, getattr(exc, "reason", f"not an IdentityDecided: {exc!r}")))
        if letters:
            self.dead_letters.send(letters)
        rows = first_per_event_id(rows, key="decision_id")
        offsets = next_offsets(r.position for r in todo)
        with self.db.transaction() as con:
            insert_rows(con, "identity_decisions", rows, ROWS, "ON CONFLICT DO NOTHING")
            self.db.save_offsets(con, SINK_NAME, offsets, datetime.now(timezone.utc))
        self._committed.advance(offsets)
        self.applied += len(rows)
