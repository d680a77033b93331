"""The query tier's ``customer_360`` rows, read from the compacted ``touchstream.customer-360`` topic.

Why: when fold workers own the 360 fold (``python -m touchstream.fold``), serving no longer folds or
encodes a profile; it follows the workers' published 360s like any subscriber, so several query
replicas can each keep their own DuckDB file from the same topic. A 360 record is the typed view
the worker wrote its row from (``customer_360_contract.to_record``), so ``summary_row`` over the
decoded record gives the worker's row; a worker also sends the profile's JSON text in a header, which
the row is made from (the worker's text and fingerprint exactly, and no Avro decode). A tombstone deletes the row (the
customer was merged away). Rows and consumed offsets commit in one transaction; within a batch
only the last record per customer counts, as compaction would keep it.
"""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from touchstream.codec.avro_codec import DecodeError
from touchstream.processors.records import CommittedOffsets, RawRecord
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.customer_360_summary import summary_row
from touchstream.projections.interaction_log import next_offsets
from touchstream.publishing.dead_letters import DeadLetter

# The fold's canonical JSON of the profile, sent beside a worker's 360: Avro's double cannot say whether a
# score was 3 or 3.0, so text re-derived from the decoded record could differ from the worker's.
PROFILE_HEADER = "touchstream.profile_json"


class ProfileRowsSink:
    def __init__(self, store: Customer360Store, codec, dead_letters):
        self.store, self.codec, self.dead_letters = store, codec, dead_letters
        self.name = f"{store.sink}_rows"
        self._committed = CommittedOffsets(store.db.committed_offsets(self.name))
        self.stats = {"rows": 0, "deleted": 0, "dead": 0}
        self.on_commit = lambda changed: None   # the lookup cache listens

    def committed(self, partition: tuple[str, int]) -> int:
        return self._committed.get(partition)

    def handle(self, records: list[RawRecord]) -> None:
        todo = self._committed.pending(records)
        if not todo:
            return
        latest: dict[str, RawRecord] = {}
        letters = []
        for record in todo:
            if record.key is None:
                letters.append(DeadLetter(record, "a customer-360 record without a key (the customer id)"))
            else:
                latest[record.key.decode()] = record
        now = datetime.now(timezone.utc)
        summaries, gone = [], []
        for customer, record in sorted(latest.items()):
            if record.value is None:
                gone.append(customer)
                continue
            try:
                summaries.append(self._row(customer, record, now))
            except (DecodeError, KeyError, TypeError, ValueError) as exc:
                letters.append(DeadLetter(record, getattr(exc, "reason", f"{type(exc).__name__}: {exc}")))
        if letters:
            self.dead_letters.send(letters)
            self.stats["dead"] += len(letters)
        with self.store.db.transaction() as con:
            self.store.put_profiles(con, summaries, gone)
            self.store.db.save_offsets(con, self.name, next_offsets(r.position for r in todo), now)
        self._committed.advance(next_offsets(r.position for r in todo))
        self.stats["rows"] += len(summaries)
        self.stats["deleted"] += len(gone)
        self.on_commit(set(latest))

    def _row(self, customer: str, record: RawRecord, now: datetime) -> dict:
        """The worker's row, from the profile text it sent beside its 360 (parsing that JSON costs a tenth
        of decoding the Avro); a 360 without it (serving's own fold published it) from the decoded record."""
        sealed = dict(record.headers).get(PROFILE_HEADER)
        text = None if sealed is None else self.codec.open_text(sealed.decode())   # the worker sealed it
        if text is None:   # none sent, or its key erased since: the decoded record (opened as far as keys remain)
            return summary_row(customer, self.codec.decode(record.value).record, now)
        return summary_row(customer, orjson.loads(text), now, text)
