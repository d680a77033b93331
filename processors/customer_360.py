"""The customer-360 fold stage: ``touchstream.customer-events`` -> profiles in DuckDB and on Kafka.

Per batch, in one DuckDB transaction with the consumed offsets:

1. every record claims "this identifier belongs to customer C" (an event for its
   anchor, a membership record for each identifier it lists); the newest claim
   wins (``customer_360_routing``), whatever partition it came from;
2. new events are stored (the fold's own event store) and folded into their
   customer's profile, from memory or from the fold state stored when the cache
   let it go (``customer_360_cache``): ``apply`` is order-free and ignores a
   repeated event_id, so incremental folding equals a refold;
3. customers whose history moved (merge, split, unlink, rename) are refolded
   from their stored events; a customer left without events was merged away and
   is deleted (a tombstone on the compacted topic);
4. the new 360s go to ``touchstream.customer-360`` (compacted, keyed by customer)
   and new findings to ``touchstream.contact-findings``; both are acknowledged
   before the transaction commits, so a crash re-sends rather than loses them.
"""

from __future__ import annotations

import gc
import logging
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timezone

from touchstream.codec.avro_codec import AvroCodec, DecodeError
from touchstream.codec.avro_writer import compile_writer, frame
from touchstream.processors.customer_360_cache import ClaimCache, ProfileCache
from touchstream.processors.customer_360_handover import Handover
from touchstream.processors.customer_360_rows import PROFILE_HEADER
from touchstream.processors.decoding import decode_event
from touchstream.processors.identity_resolution import ANCHOR, CUSTOMER, KIND, SEQ
from touchstream.processors.records import CommittedOffsets, RawRecord
from touchstream.projections import customer_360 as c360
from touchstream.projections.customer_360_contract import SCHEMA as PROFILE_SCHEMA
from touchstream.projections.customer_360_contract import finding_records, to_record
from touchstream.projections.customer_360_fold_states import FoldStates
from touchstream.projections.customer_360_routing import Claim, departures, route
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.customer_360_summary import summary_row
from touchstream.projections.interaction_log import next_offsets
from touchstream.publishing.dead_letters import DeadLetter
from touchstream.schemas import load_derived
from touchstream.topics import CUSTOMER_360_TOPIC, FINDINGS_TOPIC, key_partition

log = logging.getLogger(__name__)


def owned_by(claims: dict, customer: str):
    """``owns`` for ``customer_360.view``: the identifiers whose current claim names ``customer``."""
    return lambda key: (claim := claims.get(key)) is not None and claim.customer_id == customer


@contextmanager
def gc_paused():
    """The cyclic garbage collector off while a batch is folded, as it was before afterwards.

    Why: a batch allocates millions of short-lived, acyclic objects (decoded events, views, rows),
    freed by reference counting, yet each 700 allocations start a collection, and the older
    generations' collections walk every object alive, the cached profiles included, so the cost per
    event grew with the customers (at 100k customers about 90 µs per event of 560 in the
    micro-bench, ``tests/c360_bench.py``). Between batches the collector runs as usual and
    finds any cycles then."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Customer360Sink:
    """Folds a batch per transaction. Profiles live in a bounded in-memory cache, and those it
    evicts as fold states in DuckDB (``ProfileCache``); a customer found in neither (new, moved,
    or cached when the process stopped) is refolded from its stored events, which is
    deterministic, so the cached profiles need no writing per batch."""

    def __init__(self, store: Customer360Store, codec: AvroCodec, output, dead_letters,
                 config: c360.Config | None = None, *, cache_size: int = 20_000, partition: tuple[int, int] | None = None,
                 folds: bool = True):
        self.store, self.codec, self.output, self.dead_letters = store, codec, output, dead_letters
        # A fold worker's sink owns one partition (its number, of how many): it folds only that partition's
        # customers and sends the others' events on (``customer_360_handover``); serving's owns them all.
        self.local = None if partition is None else lambda customer: key_partition(customer, partition[1]) == partition[0]
        self.handover = None if partition is None else Handover(output, partition[0], lambda a: codec.seal_text(a, a))
        # A query tier beside fold workers keeps only the index (claims and events, for lookups,
        # timelines and the complaint directory); its rows come from the workers' 360s (customer_360_rows).
        self.folds = folds
        self.config = config or c360.Config()
        self.name = store.sink
        self._committed = CommittedOffsets(store.db.committed_offsets(self.name))
        self.cache = ProfileCache(FoldStates(store), self.config, cache_size)
        self.claim_cache = ClaimCache(store)
        self.cache_size = cache_size
        self.finding_schema = load_derived()["contact_finding_raised"]
        self._write_360 = compile_writer(PROFILE_SCHEMA.schema)
        self.stats = {"events": 0, "first": 0, "refolds": 0, "profiles": 0, "deleted": 0, "dead": 0}
        self.on_commit = lambda changed, moved: None   # told after each commit (the lookup cache listens)
        # Customer ids a fold worker's erasure ledger forgot (touchstream/fold/erasures.py): records naming
        # one are skipped, so a late event or membership cannot fold or publish the person again.
        self.erased: set[str] = set()

    def handle(self, records: list[RawRecord]) -> None:
        with gc_paused():
            self._handle(records)

    def _handle(self, records: list[RawRecord]) -> None:
        todo = self._committed.pending(records)
        if not todo:
            return
        events, claims, vanished, letters = self._parse(todo)
        if letters:
            self.dead_letters.send(letters)
            self.stats["dead"] += len(letters)
        now = datetime.now(timezone.utc)
        try:
            with self.store.db.transaction() as con:
                stored = self.claim_cache.get(con, (c.identifier for c in claims))
                routing = route(claims, stored)
                self.claim_cache.put(con, routing.updates.values())
                moved = routing.moved | vanished
                if self.local is not None:
                    events, moved = self._send_on(con, events, routing, stored), {c for c in moved if self.local(c)}
                new = self.store.add_events(con, [row for row, _record in events.values()])
                fresh = [(row, record) for row, record in events.values() if row["event_id"] in new]
                profiles, gone = {}, []
                if self.folds:
                    profiles = self._fold(con, fresh, routing.owner, moved)
                    gone = sorted(moved - profiles.keys())
                    self._write(con, profiles, gone, now)
                self.store.db.save_offsets(con, self.name, next_offsets(r.position for r in todo), now)
        except BaseException:
            self.cache.clear()   # they may hold folds and claims of a batch that was rolled back
            self.claim_cache.clear()
            raise
        self._committed.advance(next_offsets(r.position for r in todo))
        self.stats["events"] += len(fresh)
        self.on_commit(set(profiles) | set(gone), moved)

    def _send_on(self, con, events: dict, routing, stored: dict) -> dict:
        """This partition's events of ``events``; the others' sent on, with the stored events of
        identifiers whose customer is on another partition now."""
        mine, theirs = {}, []
        for event_id, (row, record) in events.items():
            if self.local(routing.owner[row["anchor"]]):
                mine[event_id] = (row, record)
            else:
                theirs.append((event_id, row["anchor"], row["value"]))
        self.handover.forward(theirs, lambda anchor: routing.updates.get(anchor) or stored[anchor])
        self.handover.hand_over(self.store, con, departures(routing, stored, self.local))
        return mine

    def committed(self, partition: tuple[str, int]) -> int:
        """The next offset this sink will apply for (topic, partition)."""
        return self._committed.get(partition)

    def _parse(self, todo: list[RawRecord]):
        """(event id -> (its c360_events row, the decoded event), first copy of each; the claims;
        customers left without identifiers; dead letters)."""
        events, claims, vanished, letters = {}, [], set(), []
        for record in todo:
            head = dict(record.headers)
            try:
                if head.get(KIND) == b"membership":
                    body = self.codec.decode(record.value).record
                    if body["customer_id"] in self.erased:
                        continue
                    claims += [Claim(f"{i['kind']}:{i['value']}", body["customer_id"], body["seq"])
                               for i in body["identifiers"]]
                    if not body["identifiers"]:
                        vanished.add(body["customer_id"])
                    continue
                if head.get(ANCHOR) is None or head.get(CUSTOMER) is None or head.get(SEQ) is None:
                    raise DecodeError("record on the customer-events topic without touchstream.anchor/customer_id/seq")
                customer = head[CUSTOMER].decode()
                if customer in self.erased:
                    continue
                # sealed by identity; an erased identifier's events stay with their customer, under no identifier
                anchor = self.codec.open_text(head[ANCHOR].decode()) or f"erased:{customer}"
                claim = Claim(anchor, customer, int(head[SEQ]))
                event = decode_event(self.codec, record.value)
            except (DecodeError, KeyError, TypeError, ValueError) as exc:
                letters.append(DeadLetter(record, getattr(exc, "reason", f"{type(exc).__name__}: {exc}")))
                continue
            env = event["envelope"]
            row = {"event_id": env["event_id"], "anchor": claim.identifier, "occurred_at": env["occurred_at"],
                   "value": record.value}
            events.setdefault(env["event_id"], (row, event))
            claims.append(claim)
        return events, claims, vanished, letters

    def _fold(self, con, fresh: list[tuple[dict, dict]], owner: dict[str, str], moved: set[str]) -> dict:
        """The new profile of every customer this batch touched: cached or stored ones fold the new
        events, new ones start a profile; moved ones, and those found nowhere (cached when the process
        stopped, or a stored state of another release), are refolded from their stored events (which
        include the new ones)."""
        news: dict[str, list[dict]] = defaultdict(list)
        for row, record in fresh:
            news[owner[row["anchor"]]].append(record)
        bases, refold = self.cache.bases(con, set(news), moved)
        first = refold - moved - self.store.existing(con, refold - moved)   # no history: their first events
        refold -= first
        self.stats["first"] += len(first)
        profiles = {c: c360.fold(rs, c, self.config, bases.get(c)) for c, rs in news.items() if c not in refold}
        if refold:
            decoded = {row["event_id"]: record for row, record in fresh}   # this batch's: decoded already
            by_customer: dict[str, list[dict]] = defaultdict(list)
            for customer, event_id, value in self.store.history(con, refold):
                record = decoded.get(event_id)
                by_customer[customer].append(record if record is not None else decode_event(self.codec, value))
            profiles.update({c: c360.fold(rs, c, self.config) for c, rs in by_customer.items()})
            self.stats["refolds"] += len(refold)
        self.cache.keep(con, profiles, refold - profiles.keys())
        return profiles

    def _write(self, con, profiles: dict, gone: list[str], now: datetime) -> None:
        """Each changed 360 once: one typed view per profile, which is the summary row's input and,
        as it is, the Avro record (``to_record`` checks the batch's first one against the contract)."""
        summaries, raised, sealed = [], [], []
        announced = self.store.finding_ids(con, profiles)
        claims = self.claim_cache.get(con, {key for p in profiles.values() for key in p.identifiers})
        for n, (customer, profile) in enumerate(sorted(profiles.items())):
            view = c360.typed_view(profile, owned_by(claims, customer))
            if n == 0:
                to_record(view)   # raises, naming the field paths, if the view drifted from the schema
            summaries.append(summary := summary_row(customer, view, now))
            # a worker's text travels with its 360, so a query tier stores the same text (customer_360_rows)
            subject = f"customer:{customer}"   # the 360's free text (answers) and its profile text seal under it
            text = None if self.local is None else self.codec.seal_text(subject, summary["profile"], commit=False)
            sealed.append((customer, self._encode_360(view, subject), [] if text is None else [(PROFILE_HEADER, text.encode())]))
            raised += finding_records(customer, view, announced)
        self.codec.commit_keys()   # the keys of the batch's new customers, stored once, before any 360 is sent
        for customer, value, headers in sealed:
            self.output.send(CUSTOMER_360_TOPIC, customer, value, headers)
        for record in raised:
            self.output.send(FINDINGS_TOPIC, record["customer_id"], self.codec.encode(self.finding_schema, record))
        for customer in gone:
            self.output.send(CUSTOMER_360_TOPIC, customer, None)
        self.store.put_profiles(con, summaries, gone)
        self.output.flush()
        self.stats["profiles"] += len(profiles)
        self.stats["deleted"] += len(gone)

    def _encode_360(self, view: dict, subject: str) -> bytes:
        """The framed Avro of a typed view, its personal values sealed: the compiled writer, the bytes
        ``codec.encode_sealed`` would give."""
        record = self.codec.sealed(PROFILE_SCHEMA, view, subject, commit=False)
        return self._write_360(record, frame(self.codec.schema_id(PROFILE_SCHEMA)))
