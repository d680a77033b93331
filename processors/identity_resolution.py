"""The identity stage: raw topics -> canonical customer ids, re-keyed events and decisions.

Identity is global (any event may join two customers), so one stage instance
sees every raw partition. Per batch it decodes each record, lets the pure
``IdentityResolver`` observe it, and publishes:

- the record itself, unchanged, to ``touchstream.customer-events`` keyed by the
  canonical customer id, with ``touchstream.*`` headers: the anchor (the hint that
  decides the customer), the customer id and a sequence number;
- after a merge, split or unlink, a ``CustomerMembershipChanged`` per affected
  customer on the same topic, keyed by each customer of the change (the fold stage
  re-assigns history by it, and the partition of a customer that lost an identifier
  learns who holds it now; the highest sequence number wins, so the order in which
  partitions are read does not matter);
- every decision as ``IdentityDecided`` on ``touchstream.identity.decisions``.

Offsets advance only after Kafka acknowledged the outputs. The state is saved
as the facts each batch changed (``identity_store``); records after the last
save that were already published are re-observed silently at start (``catch_up``).

Erasure (issue 17): ``forget`` is handed the erasure ledger's batches (its own source and consumer
group) and, under the lock the raw batches take, forgets the customers of each ``SubjectErased``
not applied yet (``projections/identity_forget``): it announces every customer whose identifiers
changed (a forgotten one with none: it no longer exists), makes the forgetting durable in one
store transaction, and only then returns, so the ledger's offset is committed after it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from datetime import timedelta
from typing import Callable

from touchstream.codec.avro_codec import AvroCodec, DecodeError
from touchstream.events.envelope import MAX_CLOCK_SKEW
from touchstream.processors.decoding import decode_batch, decode_checked
from touchstream.processors.identity_erasures import erasures_in
from touchstream.processors.identity_store import IdentityStateStore, Saved
from touchstream.processors.partition_merge import Item, PartitionMerge
from touchstream.processors.records import CommittedOffsets, RawRecord
from touchstream.projections.identity_forget import clear_caches, strip
from touchstream.projections.identity_journal import Facts
from touchstream.projections.identity_resolution import (
    CustomerMerged, CustomerSplit, IdentityFinding, IdentityResolver, IdentityUnlinked,
)
from touchstream.projections.interaction_log import next_offsets
from touchstream.schemas import load_derived
from touchstream.topics import CUSTOMER_EVENTS_TOPIC, DECISIONS_TOPIC

log = logging.getLogger(__name__)
STAGE_NAME = "identity"
KIND, CUSTOMER, ANCHOR, SEQ, ORIGIN = (f"touchstream.{h}" for h in ("kind", "customer_id", "anchor", "seq", "origin"))


def decision_record(decision, seq: int, decided_at) -> dict:
    """An identity decision as an ``IdentityDecided`` record (Avro-shaped); its id is stable across re-sends."""
    plain = decision.as_dict()
    record = {"decision": decision.event_type, "seq": seq, "decided_by": decision.decided_by,
              "decided_at": decided_at, "customer_id": None, "from_ids": [], "into_ids": [], "identifiers": [],
              "trust": plain.get("trust"), "reason": plain.get("reason"), "rule": None,
              "evidence_event_id": plain.get("event_id")}
    if isinstance(decision, CustomerMerged):
        record.update(customer_id=decision.into_id, from_ids=list(decision.from_ids), into_ids=[decision.into_id],
                      identifiers=plain["because"] or [])
    elif isinstance(decision, CustomerSplit):
        record.update(customer_id=decision.from_id, from_ids=[decision.from_id], into_ids=list(decision.into_ids),
                      identifiers=plain["because"] or [], evidence_event_id=None)
    elif isinstance(decision, IdentityFinding):
        customers = list(decision.customers)
        record.update(customer_id=customers[0] if customers else None, from_ids=customers, rule=decision.rule,
                      identifiers=plain["identifiers"], reason=decision.rule)
    else:   # IdentityLinked / IdentityUnlinked
        record.update(customer_id=decision.customer_id, identifiers=plain["identifiers"])
    digest = json.dumps([decision.decided_by, plain], sort_keys=True, default=str)
    record["decision_id"] = hashlib.sha1(digest.encode()).hexdigest()[:24]
    return record


def event_order(event: dict) -> tuple:
    """The order a batch is observed in: event time, then event id. Why: within a batch the order
    is then a function of the events, not of how the consumer interleaved the partitions."""
    env = event["envelope"]
    return env["occurred_at"], env["event_id"]


def _decodable(codec: AvroCodec, records: list[RawRecord], max_skew: timedelta):
    for record in records:
        try:
            yield record, decode_checked(codec, record, max_skew)
        except DecodeError:
            pass   # dead-lettered when it was first handled


def affected_customers(decisions: list) -> list[str]:
    """Customers whose identifiers moved: their membership must be re-announced."""
    out: set[str] = set()
    for d in decisions:
        if isinstance(d, CustomerMerged):
            out.update((d.into_id, *d.from_ids))
        elif isinstance(d, CustomerSplit):
            out.update((d.from_id, *d.into_ids))
        elif isinstance(d, IdentityUnlinked):
            out.add(d.customer_id)
    return sorted(out)


class ForgetFailed(RuntimeError):
    """An erasure forgotten in memory but not announced or not saved: only a restart may apply it again."""


class IdentityStage:
    """One instance per deployment (identity is global); ``handle`` is called with raw batches.

    A save is due after a batch once ``every_seconds`` or ``every_records`` passed. It costs what
    changed since the last one (about 14-20 µs per event at 300k events, a commit alone under 1 ms),
    so a save a second costs as much per event as one every ten while it keeps the catch-up after a
    crash to a second of records and bounds the commits when batches are tiny."""

    def __init__(self, resolver: IdentityResolver, codec: AvroCodec, output, dead_letters,
                 store: IdentityStateStore | None = None, saved: Saved | None = None,
                 *, every_seconds: float = 1.0, every_records: int = 50_000, max_skew: timedelta = MAX_CLOCK_SKEW,
                 settle: float = 0.5, keys=None):
        self.resolver, self.codec, self.output, self.dead_letters = resolver, codec, output, dead_letters
        self.keys = keys   # the codec's key ring: re-read at an erasure, so no deleted key opens a value again
        self.max_skew = max_skew   # how far event and recorded time may lead the broker's receipt
        self.settle = settle       # seconds a record waits after the broker appended it (``partition_merge``)
        self.store, self._unsaved = store, Facts()   # facts drained from the resolver whose save did not commit
        saved = saved or Saved(epoch=1)
        self.epoch, self.counter, self.offsets = saved.epoch, saved.counter, CommittedOffsets(saved.offsets)
        self.erasures = {erasure_id for _cid, erasure_id in saved.forgotten}   # applied: a repeat is skipped
        self.every_seconds, self.every_records = every_seconds, every_records
        self._since_save, self._saved_at = 0, time.monotonic()
        self._lock = threading.Lock()
        self.merge = PartitionMerge()
        self.caught_up = lambda _partition: True   # the source's view; unset: every batch is released whole
        self.ends_known_at: Callable[[], float | None] = time.time   # when the source's ends were given
        derived = load_derived()
        self._membership, self._decided = derived["customer_membership_changed"], derived["identity_decided"]
        self.stats = {"events": 0, "unattributed": 0, "decisions": 0, "memberships": 0, "dead": 0, "duplicates": 0,
                      "erasures": 0}

    @classmethod
    def restore(cls, store: IdentityStateStore, config, codec, output, dead_letters, **kw) -> "IdentityStage":
        """A stage as a start finds it: the store's facts re-derived, under a fresh epoch it already persisted."""
        saved = store.load()
        forgotten = [cid for cid, _erasure_id in saved.forgotten]
        resolver = IdentityResolver.from_facts(saved.facts, config, journal=True, forgotten=forgotten)
        return cls(resolver, codec, output, dead_letters, store, saved, **kw)

    def _seq(self) -> int:
        self.counter += 1
        return (self.epoch << 32) | self.counter

    def handle(self, records: list[RawRecord]) -> None:
        """Buffer the batch in the merge, then observe and publish what the merge releases, in its order.

        ``caught_up(partition)`` (the source's, or True for all when unset) says a partition has nothing
        more to deliver now; the offsets advance to the merge's positions (the first record it holds)."""
        with self._lock:
            todo = [r for r in self.offsets.pending(records) if self.merge.fresh(r)]
            decoded, letters = decode_batch(self.codec, todo, self.max_skew)
            self.merge.add([*(Item(event_order(e.record), r, e.record) for r, e in decoded),
                            *(Item(None, letter.record, None) for letter in letters)])
            if letters:
                self.dead_letters.send(letters)
                self.stats["dead"] += len(letters)
            released = self.merge.release(self.caught_up, self._settled)
            for item in released:
                if item.event is not None:
                    self._publish(item.record, item.event)
            self.output.flush()
            self.offsets.advance(self.merge.positions())
            self._since_save += len(released)
            due = self._since_save >= self.every_records or time.monotonic() - self._saved_at >= self.every_seconds
            if self._since_save and due:
                self._save()

    def _settled(self, item: Item) -> bool:
        """Appended by the broker ``settle`` seconds or more before the partitions' ends were last given
        (``partition_ends``: not before now, since an end older than the record says nothing of what was
        sent with it). A record without a broker time is settled."""
        stamp, known_at = item.record.timestamp, self.ends_known_at()
        if stamp is None or stamp < 0:
            return True
        return known_at is not None and stamp <= (known_at - self.settle) * 1000

    def positions(self) -> dict[tuple[str, int], int]:
        """Where a restart must resume per partition: what the source commits to the consumer group."""
        with self._lock:
            return self.offsets.as_dict()

    def expect(self, partitions) -> None:
        """Partitions assigned: each holds the merge until it delivers or is caught up."""
        with self._lock:
            self.merge.expect(partitions)

    def _publish(self, record: RawRecord, event: dict) -> None:
        resolution = self.resolver.observe(event)
        if resolution.duplicate:   # its first copy was forwarded (offsets move only after that was acked)
            self.stats["duplicates"] += 1
            return
        decided_at = event["envelope"]["occurred_at"]
        for decision in resolution.decisions:
            body = decision_record(decision, self._seq(), decided_at)
            key = body["customer_id"] or resolution.customer_id
            self.output.send(DECISIONS_TOPIC, key, self.codec.encode_sealed(self._decided, body))
        self.stats["decisions"] += len(resolution.decisions)
        group = sorted({*affected_customers(resolution.decisions), *resolution.moved})
        self._announce(group, self.resolver, event["envelope"]["event_id"])
        if resolution.customer_id is None:   # every hint blocked or absent: kept in the log, in no profile
            self.stats["unattributed"] += 1
            return
        anchor = str(resolution.anchor)   # an identifier: sealed under itself, as on the raw topic
        headers = [*record.headers, (KIND, b"event"), (CUSTOMER, resolution.customer_id.encode()),
                   (ANCHOR, self.codec.seal_text(anchor, anchor).encode()), (SEQ, str(self._seq()).encode()),
                   (ORIGIN, f"{record.topic}/{record.partition}/{record.offset}".encode())]
        self.output.send(CUSTOMER_EVENTS_TOPIC, resolution.customer_id, record.value, headers)
        self.stats["events"] += 1

    def _announce(self, group: list[str], resolver: IdentityResolver, decided_by: str) -> None:
        """A ``CustomerMembershipChanged`` per customer of ``group``: the identifiers ``resolver`` gives it now
        (none: it no longer exists). ``decided_by``: the event observed, or the erasure id."""
        for customer in group:
            members = [{"kind": n.kind, "value": n.value} for n in resolver.members_of(customer)]
            body = {"customer_id": customer, "identifiers": members, "seq": self._seq(), "decided_by": decided_by}
            value = self.codec.encode_sealed(self._membership, body)
            # Keyed by every customer of the change, not only its own: the partition of a customer that
            # lost an identifier learns who holds it now (a fold worker there hands its events over).
            for key in (customer, *(other for other in group if other != customer)):
                self.output.send(CUSTOMER_EVENTS_TOPIC, key, value, [(KIND, b"membership")])
            self.stats["memberships"] += 1

    def forget(self, records: list[RawRecord]) -> None:
        """The erasure ledger's batch: forget the customers of each ``SubjectErased`` (``forget_customers``)."""
        for erased in erasures_in(self.codec, records, self.dead_letters):
            self.forget_customers(erased.erasure_id, erased.customer_ids)

    def forget_customers(self, erasure_id: str, customer_ids) -> bool:
        """Forget ``customer_ids`` (``projections/identity_forget``) unless this erasure was applied; True if it
        was applied now. Order: the facts observed so far saved; the resolver forgets in place; the changed
        customers are announced and acked; the forgetting is saved in one transaction. A failure after the
        resolver forgot is ``ForgetFailed``, never an outage to wait out: the source stops the process, and
        the restart, from the store that still holds the person, applies the erasure again whole."""
        with self._lock:
            if erasure_id in self.erasures:
                return False
            if self.keys is not None:
                self.keys.refresh()   # serving deleted the keys before it published the erasure
            self._save()
            gone = self.resolver.forgetting(erasure_id, customer_ids)
            changed = self.resolver.forget(gone)
            try:
                self._announce(changed, self.resolver, erasure_id)
                self.output.flush()
                if self.store is not None:
                    self.store.forget(gone, self.counter)
            except Exception as exc:
                raise ForgetFailed(f"erasure {erasure_id}: {type(exc).__name__}: {exc}") from exc
            self.erasures.add(erasure_id)
            for item in self.merge.held_items():   # decoded before the keys were deleted: as if after
                if item.event is not None:
                    strip(item.event, gone.nodes, self.resolver.config.default_region)
            clear_caches()
            self.stats["erasures"] += 1
            log.info("identity forgot erasure %s: %d identifier(s), %d customer(s) announced",
                     erasure_id, len(gone.nodes), len(changed))
            return True

    def catch_up(self, records: list[RawRecord]) -> int:
        """Re-observe silently the records whose outputs were published before the last stop
        (``records``: all of them, up to the committed positions), in the merge's order."""
        with self._lock:
            todo = self.offsets.pending(records)
            merge = PartitionMerge()
            merge.add(Item(event_order(e.record), r, e.record) for r, e in _decodable(self.codec, todo, self.max_skew))
            for item in merge.release(lambda _tp: True):
                self.resolver.observe(item.event)
            self.offsets.advance(next_offsets(r.position for r in todo))
            return len(todo)

    def _save(self) -> None:
        """The facts observed since the last save, the positions and the counter, in one store transaction.
        Facts drained for a save that failed are kept and go with the next one."""
        if self.store is not None:
            self._unsaved = self._unsaved.plus(self.resolver.changes())
            self.store.save(Saved(self.epoch, self.counter, self.offsets.as_dict(), self._unsaved))
            self._unsaved = Facts()
        self._since_save, self._saved_at = 0, time.monotonic()

    def save(self) -> None:
        with self._lock:
            self._save()
