"""The complaint-resolution sink: raw topics -> ``complaint_cases`` in DuckDB.

Per batch, in one DuckDB transaction with the consumed offsets: every event that
names a case (complaint.* by case_id) or is threaded to one (a case_id field or
envelope.correlation_id) is stored once, and each touched case is refolded from
its stored events. The fold is order-free and ignores repeated event ids, so a
redelivery, a late event or a restart gives the rows a replay gives. Cases are
small (tens of events), so refolding per batch stays cheap. A correlation id
that never becomes a case costs one stored row and no case row.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pyarrow as pa

from touchstream.codec.avro_codec import AvroCodec
from touchstream.events.envelope import MAX_CLOCK_SKEW
from touchstream.processors.decoding import decode_event
from touchstream.processors.raw_fanout import DecodedBatch, decoded_batch
from touchstream.processors.records import CommittedOffsets, RawRecord
from touchstream.processors.complaint_sla_timer import SlaTimer
from touchstream.processors.topic_output import NullOutput
from touchstream.projections import complaint_resolution as cases
from touchstream.projections import complaint_sla as sla
from touchstream.projections.complaint_resolution_contract import SCHEMA as CASE_SCHEMA
from touchstream.projections.complaint_resolution_contract import to_record
from touchstream.projections.customer_360 import view_fingerprint, view_json
from touchstream.projections.duckdb_store import DuckDBStore, insert_rows, keyed, load_sql
from touchstream.projections.identity_normalise import normalise
from touchstream.projections.interaction_log import first_per_event_id, next_offsets
from touchstream.topics import COMPLAINT_CASES_TOPIC

log = logging.getLogger(__name__)
SINK_NAME = "complaint_resolution"
TS = pa.timestamp("ms", tz="UTC")
EVENTS = pa.schema([("event_id", pa.string()), ("case_id", pa.string()), ("occurred_at", TS), ("value", pa.binary()),
                    ("event_type", pa.string())])
HINTS = pa.schema([("case_id", pa.string()), ("identifier", pa.string()), ("strength", pa.int32())])
CONTACT = pa.struct([("contact_key", pa.string()), ("channel", pa.string()), ("direction", pa.string()),
                     ("started_at", TS), ("ended_at", TS), ("wait_seconds", pa.float64()),
                     ("talk_seconds", pa.float64()), ("handle_seconds", pa.float64())])
CASES = pa.schema([
    ("case_id", pa.string()), ("customer_id", pa.string()), ("state", pa.string()), ("is_open", pa.bool_()),
    ("origin_channel", pa.string()), ("channels_touched", pa.list_(pa.string())), ("product", pa.string()),
    ("category", pa.string()), ("cause", pa.string()), ("priority", pa.string()), ("assigned_team", pa.string()),
    ("opened_at", TS), ("resolved_at", TS), ("closed_at", TS), ("resolution_code", pa.string()),
    ("reopen_count", pa.int32()), ("escalation_level", pa.int32()), ("contacts", pa.int32()),
    ("callbacks_promised", pa.int32()), ("callbacks_missed", pa.int32()), ("first_response_seconds", pa.float64()),
    ("resolution_seconds", pa.float64()), ("handle_seconds", pa.float64()), ("fcr", pa.bool_()),
    ("fcr_reason", pa.string()), ("anomalies", pa.int32()), ("case_view", pa.string()), ("fingerprint", pa.string()),
    ("updated_at", TS), ("contact_rows", pa.list_(CONTACT)), ("customer_anchor", pa.string()),
])


def trusted_time(record: RawRecord, event: dict, max_skew: timedelta = MAX_CLOCK_SKEW) -> datetime:
    """The event time the SLA watermark may use: never past the broker's receipt plus the allowed skew,
    so no producer's clock (or forgery) can move SLA clocks into the future. ``decode_batch`` already
    dead-letters such records; this bound holds even for a record that slipped past it."""
    occurred, received = event["envelope"]["occurred_at"], record.received_at
    return occurred if received is None else min(occurred, received + max_skew)


def case_key(record: dict) -> str | None:
    """The case an event names or is threaded to (see ``complaint_resolution.belongs``)."""
    env = record["envelope"]
    if env["event_type"].startswith("complaint."):
        return record.get("case_id")
    return record.get("case_id") or env.get("correlation_id")


HINT_ORDER = ("customer_id", "loyalty_card", "account_number", "email", "phone", "device_id", "cookie_id")


def case_hints(records: list[dict], region: str | None = "NL") -> list[str]:
    """The identifiers a case's events carry ("kind:value", normalised as identity resolution does),
    strongest kind first: the first one the customer-360 knows names the case's customer."""
    found: dict[str, int] = {}
    for record in records:
        for kind, value in (record["envelope"].get("identity") or {}).items():
            if kind in HINT_ORDER and isinstance(value, str):
                node, _ = normalise(kind, value, region)
                if node is not None:
                    found.setdefault(str(node), HINT_ORDER.index(kind))
    return sorted(found, key=lambda node: (found[node], node))


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def case_row(view: dict, now: datetime, anchor: str | None = None) -> dict:
    """The ``complaint_cases`` row of one case view; ``anchor``: the identifier that named its customer."""
    metrics, text = view["metrics"], view_json(view)
    return {"customer_anchor": anchor,
        **{k: view[k] for k in ("case_id", "customer_id", "state", "origin_channel", "channels_touched", "product",
                                "category", "cause", "priority", "assigned_team", "resolution_code",
                                "reopen_count", "escalation_level")},
        "is_open": view["open"], "opened_at": _time(view["opened_at"]), "resolved_at": _time(view["resolved_at"]),
        "closed_at": _time(view["closed_at"]), "contacts": metrics["contacts"],
        "callbacks_promised": metrics["callbacks_promised"], "callbacks_missed": metrics["callbacks_missed"],
        "first_response_seconds": metrics["first_response_seconds"],
        "resolution_seconds": metrics["resolution_seconds"], "handle_seconds": metrics["handle_seconds"],
        "fcr": view["fcr"]["fcr"], "fcr_reason": view["fcr"]["reason"], "anomalies": len(view["anomalies"]),
        "case_view": text, "fingerprint": view_fingerprint(text), "updated_at": now,
        "contact_rows": [{"contact_key": c["key"], "channel": c["channel"], "direction": c["direction"],
                          "started_at": _time(c["started_at"]), "ended_at": _time(c["ended_at"]),
                          "wait_seconds": c["wait_seconds"], "talk_seconds": c["talk_seconds"],
                          "handle_seconds": c["handle_seconds"]} for c in view["contacts"]],
    }


class ComplaintSink:
    """Raw batches -> complaint_events, complaint_cases, complaint_sla (+ the case and SLA topics), one transaction.

    ``customers`` (a ``complaint_customers.Customer360Directory``, wired by the bootstrap) names each
    case's canonical customer from the customer-360's claims; without it a case shows its events'
    customer_id hint. ``reconcile`` refolds the cases whose customer moved since (the 360 calls it).
    A lock keeps the agent's batches and the 360's reconcile calls, on executor threads, apart.
    """

    def __init__(self, db: DuckDBStore, codec: AvroCodec, dead_letters, config: cases.Config | None = None, *,
                 output=None, policies: tuple[sla.Policy, ...] | None = None, customers=None, region: str = "NL",
                 idle_seconds: float = 10.0, wall=time.monotonic, max_skew: timedelta = MAX_CLOCK_SKEW):
        self.db, self.codec, self.dead_letters, self.max_skew = db, codec, dead_letters, max_skew
        self.config = config or cases.Config()
        self.output = output if output is not None else NullOutput()
        self.timer = SlaTimer(codec, self.output, policies, SINK_NAME, idle_seconds=idle_seconds, wall=wall)
        self.customers, self.region = customers, region
        self._lock, self._anchors, self._times = threading.Lock(), {}, {}
        for script in (SINK_NAME, "complaint_sla", "complaint_kpis"):
            db.execute_script(load_sql(script))
        self._committed = CommittedOffsets(db.committed_offsets(SINK_NAME))
        with db.transaction() as con:
            self.timer.load(con)
        self.stats = {"events": 0, "cases": 0, "dead": 0}

    def handle(self, records: list[RawRecord]) -> None:
        """Decode and apply one batch on its own (serving shares one decode: ``raw_fanout``)."""
        todo = self._committed.pending(records)
        if todo:
            self.arriving(todo)
            self.apply(decoded_batch(self.codec, todo, self.max_skew))

    def arriving(self, records: list[RawRecord]) -> None:
        """Records about to be decoded: their partitions hold the SLA watermark until they are applied (a
        registry outage can keep them decoding for minutes, and the watermark must not pass them)."""
        self.timer.hold({(r.topic, r.partition) for r in self._committed.pending(records)})

    def apply(self, batch: DecodedBatch) -> None:
        """Apply the records of a decoded batch this sink has not applied yet."""
        batch = batch.after(self._committed.get)
        if not batch.records:
            return
        parts = {(r.topic, r.partition) for r in batch.records}
        self.timer.hold(parts)   # no tick may judge clocks while these records wait (an outage, a retry)
        rows = []
        for record, event in batch.good:
            key = case_key(event.record)
            if key:
                env = event.record["envelope"]
                rows.append({"event_id": env["event_id"], "case_id": key, "occurred_at": env["occurred_at"],
                             "value": record.value, "event_type": env["event_type"]})
        if batch.letters:   # the interaction-log sink dead-letters the same records; this says which sink met them
            self.dead_letters.send(batch.letters)
            self.stats["dead"] += len(batch.letters)
        offsets, now = next_offsets(r.position for r in batch.records), datetime.now(timezone.utc)
        try:
            self._apply(rows, batch.good, parts, offsets, now)
        except BaseException:
            self.timer.hold(parts)   # rolled back: still waiting to be applied
            raise
        self._committed.advance(offsets)

    def _apply(self, rows: list[dict], decoded, parts: set, offsets: dict, now: datetime) -> None:
        with self._lock, self.db.transaction() as con:
            touched = self._store(con, first_per_event_id(rows))
            self.timer.observe(con, ((r.topic, r.partition, trusted_time(r, e.record, self.max_skew)) for r, e in decoded))
            self.timer.release(parts)   # applied in this transaction; held again if it fails (next attempt)
            old, watermark = self.timer.advance(con)
            due = self.timer.due(con, watermark) if watermark != old else set()
            self._update(con, touched | due | set(self._moved(con)), watermark, now)
            self.db.save_offsets(con, SINK_NAME, offsets, now)

    def committed(self, partition: tuple[str, int]) -> int:
        """The next offset this sink applies for (topic, partition): where its source resumes."""
        return self._committed.get(partition)

    def tick(self) -> int:
        """The SLA timer without new records: move the watermark on (idle partitions stop holding it)
        and re-evaluate the cases whose agenda it passed; returns how many."""
        with self._lock, self.db.transaction() as con:
            old, watermark = self.timer.advance(con)
            due = self.timer.due(con, watermark) if watermark != old else set()
            if due:
                self._update(con, due, watermark, datetime.now(timezone.utc))
        return len(due)

    def expect(self, partitions) -> None:
        """Raw partitions assigned to this sink (the bootstrap's rebalance hook)."""
        self.timer.expect(partitions)

    def reconcile(self, *_ignored) -> int:
        """Refold the cases whose customer the 360 moved; returns how many (a 360 ``listen`` callback)."""
        with self._lock, self.db.transaction() as con:
            moved = set(self._moved(con))
            if moved:
                self._update(con, moved, self.timer.watermark(con), datetime.now(timezone.utc))
        return len(moved)

    def _moved(self, con) -> list[str]:
        return self.customers.moved_cases(con) if self.customers else []

    def _update(self, con, keys: set[str], watermark, now: datetime) -> None:
        folded = self._refold(con, keys)
        self._write(con, folded, watermark, now)
        self.timer.evaluate(con, folded, watermark, now, self._times)
        self._times = {}
        self.output.flush()                     # Kafka has the case and SLA records before the offsets move

    def _store(self, con, rows: list[dict]) -> set[str]:
        new = insert_rows(con, "complaint_events", rows, EVENTS, "ON CONFLICT DO NOTHING RETURNING case_id")
        self.stats["events"] += len(new)
        return {r[0] for r in new}

    def _refold(self, con, keys: set[str]) -> list[cases.Case]:
        """The cases of ``keys`` folded from their stored events, plus their customers' other cases (FCR
        is judged across a customer's cases), each with its canonical customer id and pinned policy."""
        folded = self._fold(con, keys)
        customers = {c.customer_id for c in folded if c.customer_id}
        siblings = {r[0] for r in keyed(con, "SELECT c.case_id FROM complaint_cases c JOIN _keys "
                                             "ON c.customer_id = _keys.k", customers)} - keys
        return folded + self._fold(con, siblings)

    def _fold(self, con, keys: set[str]) -> list[cases.Case]:
        by_case: dict[str, list[dict]] = defaultdict(list)
        for key, value, at in keyed(con, "SELECT e.case_id, e.value, e.occurred_at FROM complaint_events e "
                                         "JOIN _keys ON e.case_id = _keys.k ORDER BY e.occurred_at, e.event_id", keys):
            by_case[key].append(decode_event(self.codec, value))
            self._times.setdefault(key, []).append(at)
        folded = [cases.fold(records, key, self.config) for key, records in sorted(by_case.items())]
        folded = [case for case in folded if case.steps]   # contacts alone make no case
        hints = {case.case_id: case_hints(by_case[case.case_id], self.region) for case in folded}
        self._store_hints(con, hints)
        owners = self.customers.owners(con, {h for hs in hints.values() for h in hs}) if self.customers else {}
        for case in folded:
            known = hints[case.case_id]
            anchor = next((h for h in known if h in owners), known[0] if known else None)
            case.customer_id = owners.get(anchor) or cases.customer_hint(case)
            self._anchors[case.case_id] = anchor
            self.timer.pin(case)
        return folded

    def _store_hints(self, con, hints: dict[str, list[str]]) -> None:
        rows = [{"case_id": case_id, "identifier": h, "strength": HINT_ORDER.index(h.split(":", 1)[0])}
                for case_id, known in hints.items() for h in known]
        insert_rows(con, "complaint_case_hints", rows, HINTS, "ON CONFLICT DO NOTHING")

    def _write(self, con, folded: list[cases.Case], watermark: datetime | None, now: datetime) -> None:
        """Upsert the cases whose view changed, and publish those to the compacted case topic. Callbacks
        are judged at the SLA watermark (``cases.views``): the agenda brings a case back here when the
        watermark reaches a promise's due time, and the row then says missed."""
        if not folded:
            return
        before = {k: (f, a) for k, f, a in keyed(con, "SELECT c.case_id, c.fingerprint, c.customer_anchor FROM "
                                                     "complaint_cases c JOIN _keys ON c.case_id = _keys.k",
                                                 [c.case_id for c in folded])}
        anchors, self._anchors = self._anchors, {}
        changed = [(row, v) for row, v in ((case_row(v, now, anchors.get(v["case_id"])), v)
                                           for v in cases.views(folded, watermark))
                   if before.get(row["case_id"]) != (row["fingerprint"], row["customer_anchor"])]
        if not changed:
            return
        rows = [row for row, _view in changed]
        insert_rows(con, "complaint_cases", rows, CASES,
                    "ON CONFLICT DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in CASES.names[1:]))
        for row, view in changed:
            self.output.send(COMPLAINT_CASES_TOPIC, row["case_id"], self.codec.encode(CASE_SCHEMA, to_record(view)))
        self.stats["cases"] += len(rows)

    def case(self, case_id: str) -> dict | None:
        """The case view, with its SLA clocks as of the sink's watermark (``sla``)."""
        cur = self.db.cursor()
        try:
            row = cur.execute("SELECT case_view FROM complaint_cases WHERE case_id = ?", [case_id]).fetchall()
            if not row:
                return None
            clocks = cur.execute("SELECT clock, clock_kind, state, started_at, warning_at, due_at, met_at, "
                                 "policy_version FROM complaint_sla WHERE case_id = ? ORDER BY started_at, clock",
                                 [case_id]).fetchall()
            watermark = self.timer.watermark(cur)
        finally:
            cur.close()
        names = ("clock", "kind", "state", "started_at", "warning_at", "due_at", "met_at", "policy_version")
        sla_rows = [{n: v.isoformat() if isinstance(v, datetime) else v for n, v in zip(names, r)} for r in clocks]
        return {**json.loads(row[0][0]), "sla": sla_rows, "sla_as_of": watermark and watermark.isoformat()}
