"""The erasure ledger as the identity stage reads it: which customers each ``SubjectErased`` forgets.

Why a module of its own: the ledger (``touchstream.privacy.erasures``, one partition) carries two
records, and identity acts on one of them only. ``ErasureRequested`` is serving's to carry out (it
resolves the person and deletes their keys); ``SubjectErased`` says it is done and which canonical
customer ids the person had, and that is when identity forgets them (``IdentityStage.forget``).
They are told apart by the decoded record's schema name. A record that is neither, or does not
decode, is dead-lettered and skipped: it can name nobody to forget.
"""

from __future__ import annotations

import logging
from typing import Iterator, NamedTuple

from touchstream.codec.avro_codec import AvroCodec, DecodeError
from touchstream.processors.records import RawRecord
from touchstream.publishing.dead_letters import DeadLetter
from touchstream.schemas import load_derived

log = logging.getLogger(__name__)
ERASURES_GROUP = "touchstream-identity.erasures"   # its own consumer group: the ledger's commits are its own
_DERIVED = load_derived()
REQUESTED, ERASED = (_DERIVED[name].record_name for name in ("erasure_requested", "subject_erased"))


class Erased(NamedTuple):
    erasure_id: str
    customer_ids: tuple[str, ...]


def erasures_in(codec: AvroCodec, records: list[RawRecord], dead_letters) -> Iterator[Erased]:
    """Every ``SubjectErased`` in ``records``, in their order. A registry outage is raised (the source
    waits it out and hands the batch over again); a record that cannot be one is dead-lettered."""
    letters = []
    for record in records:
        try:
            decoded = codec.decode(record.value)
        except DecodeError as exc:
            letters.append(DeadLetter(record, exc.reason))
            continue
        if decoded.event_type == ERASED:
            body = decoded.record
            yield Erased(body["erasure_id"], tuple(body["customer_ids"]))
        elif decoded.event_type != REQUESTED:
            letters.append(DeadLetter(record, f"not an erasure record: {decoded.event_type}"))
    if letters:
        log.warning("identity: %d record(s) on the erasure ledger are no erasure record; dead-lettered", len(letters))
        dead_letters.send(letters)
