"""The interaction-log processor: raw topics -> the ``interactions`` table in DuckDB.

Batches of raw records are decoded, mapped to rows, and applied with their
offsets in one DuckDB transaction. Records the sink has already applied (offset
below the committed one) are skipped, and duplicates by event_id are ignored,
so at-least-once delivery gives exactly-once rows. Undecodable records go to
the dead-letter topic first, then their offsets advance with the batch.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from touchstream.codec.avro_codec import AvroCodec, DecodeError, RegistryError
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.projections.interaction_log import pending, to_row
from touchstream.processors.records import RawRecord
from touchstream.publishing.dead_letters import DeadLetter, DeadLetterProducer

log = logging.getLogger(__name__)
SINK_NAME = "interaction_log"


class InteractionLogSink:
    def __init__(self, store: DuckDBStore, codec: AvroCodec, dead_letters: DeadLetterProducer, *, name: str = SINK_NAME):
        self.store = store
        self.codec = codec
        self.dead_letters = dead_letters
        self.name = name
        self._committed = store.committed_offsets(name)
        self.applied = 0
        self.dead = 0

    def handle(self, records: list[RawRecord]) -> int:
        """Apply one batch; returns the number of new rows."""
        todo = [r for r, keep in zip(records, pending((r.position for r in records), self._committed)) if keep]
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
        for record in todo:
            key = (record.topic, record.partition)
            self._committed[key] = max(self._committed.get(key, 0), record.offset + 1)
        self.applied += new
        self.dead += len(letters)
        return new

    def _decode(self, record: RawRecord, attempts: int = 8):
        """Decode; a registry outage is retried (it is not the record's fault), then raised."""
        for attempt in range(attempts):
            try:
                decoded = self.codec.decode(record.value)
                if not isinstance(decoded.record, dict) or "envelope" not in decoded.record:
                    raise DecodeError(f"schema id {decoded.schema_id} is not a Touchstream event (no envelope)")
                return decoded
            except RegistryError:
                if attempt == attempts - 1:
                    raise
                time.sleep(min(0.2 * 2**attempt, 5.0))


def register(app, sink: InteractionLogSink, topics: list[str], *, batch: int = 2000, within: float = 0.25):
    """Attach the sink to a faust app as an agent over ``topics``."""
    channel = app.topic(*topics, key_serializer="raw", value_serializer="raw", allow_empty=True)

    @app.agent(channel, name=f"touchstream.{sink.name}")
    async def interaction_log(stream):
        async for events in stream.take_events(batch, within):
            records = [
                RawRecord(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                          e.message.value, list(e.message.headers or []))
                for e in events
            ]
            await app.loop.run_in_executor(None, _handle_or_die, sink, records)

    return interaction_log


def _handle_or_die(sink: InteractionLogSink, records: list[RawRecord]) -> None:
    """Fail-stop: faust acks a take() batch even when its handler raises, so on a sink
    failure the process exits at once, before any offset past DuckDB's can be committed."""
    import os

    try:
        sink.handle(records)
    except BaseException:
        log.exception("interaction-log sink failed; exiting so no offset is committed past DuckDB's")
        logging.shutdown()
        os._exit(70)
