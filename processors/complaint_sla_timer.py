"""SLA timers of the complaint sink: clocks into ``complaint_sla``, due events onto ``touchstream.complaint-sla``.

Why the timer runs on an event-time watermark and not on the wall clock: the
brief wants SLAs on event time, so a replay from offset 0, a slow consumer and
the live run all see the same clocks. Each case is re-evaluated when one of its
events arrives or when the watermark passes the next instant on its agenda (a
warning or a due time), so a missed callback breaches as soon as the stream
shows that its deadline has passed.

The watermark is the least, over the raw partitions still delivering, of the
latest ``occurred_at`` each has delivered (and it never goes back). While one
topic's backlog is still being read, another topic running days ahead cannot
breach a case whose answering call is still in that backlog; a partition that
delivered nothing for ``idle_seconds`` (wall clock, not counting time the
source was held up by a batch it could not apply yet: it is caught up) stops
holding the watermark back, and a tick (``ComplaintSink.tick``, every few
seconds) lets the clocks move on without new records. At rest the watermark is
the latest event time consumed, whatever the timing, so replay equals live.

After a restart the watermark is the stored one, and it stays there until it has been
rebuilt from the partitions: every partition stored before the restart has, since,
delivered again (past its committed position, where its source resumed) or, once
assigned, gone idle. Why: until the source has its partitions (a killed consumer's
group membership takes a session timeout to expire) nothing is delivering, so the
idle rule alone would count every partition caught up and move the watermark to the
latest event time of all of them, past a backlog that has not been read yet: false
warnings and breaches, withdrawn later.

Side effects happen once: SLA event ids are deterministic (``complaint_sla.event_id``)
and every published id is kept in ``complaint_sla_events`` in the same transaction
as the offsets, so redelivery, a restart or a rebuild re-sends nothing a subscriber
already has. If an event arriving late shows that a published warning or breach
was not due after all, a ``complaint.sla_withdrawn`` naming it is published.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Callable, Iterable

import pyarrow as pa

from touchstream.codec.avro_codec import AvroCodec
from touchstream.privacy.subjects import primary_subject
from touchstream.projections import complaint_sla as sla
from touchstream.projections.complaint_case_metrics import opening
from touchstream.projections.complaint_case_state import Case
from touchstream.projections.complaint_resolution_contract import SLA_SCHEMA, sla_record
from touchstream.projections.duckdb_store import insert_rows, keyed
from touchstream.topics import COMPLAINT_SLA_TOPIC

TS = pa.timestamp("ms", tz="UTC")
CLOCKS = pa.schema([
    ("case_id", pa.string()), ("clock", pa.string()), ("clock_kind", pa.string()), ("policy_version", pa.string()),
    ("priority", pa.string()), ("channel", pa.string()), ("started_at", TS), ("warning_at", TS), ("due_at", TS),
    ("met_at", TS), ("state", pa.string()), ("breached", pa.bool_()), ("breached_at", TS),
    ("started_by", pa.string()), ("met_by", pa.string()),
])
SENT = pa.schema([("event_id", pa.string()), ("case_id", pa.string()), ("event_type", pa.string()),
                  ("clock", pa.string()), ("occurred_at", TS), ("published_at", TS)])
AGENDA = pa.schema([("case_id", pa.string()), ("next_at", TS)])
PARTITIONS = pa.schema([("topic", pa.string()), ("partition", pa.int32()), ("latest", TS)])
Partition = tuple[str, int]


class SlaTimer:
    """Evaluates cases' clocks at the watermark and publishes the SLA events that fell due, once each."""

    def __init__(self, codec: AvroCodec, output, policies: tuple[sla.Policy, ...] | None = None,
                 sink: str = "complaint_resolution", *, idle_seconds: float = 10.0,
                 wall: Callable[[], float] = time.monotonic):
        self.codec, self.output, self.sink = codec, output, sink
        self.policies = policies if policies is not None else sla.load_policies()
        self.idle_seconds, self.wall = idle_seconds, wall
        self._latest: dict[Partition, datetime] = {}    # latest occurred_at per raw partition (persisted)
        self._heard: dict[Partition, float] = {}        # wall time each partition last delivered or was assigned
        self._rebuilding: set[Partition] = set()         # stored before a restart, not delivering again yet
        self._held: set[Partition] = set()               # records read but not applied yet (a batch in flight)
        self._held_since: float | None = None            # wall time the source last stopped reading (a hold began)
        self.stats = {"published": 0, "withdrawn": 0}

    def load(self, con) -> None:
        """After a start: the partitions' latest event times; they hold the watermark where it was stored
        until each delivers again or, once assigned, goes idle (see the module's docstring)."""
        for topic, partition, latest in con.execute(
                'SELECT topic, "partition", latest FROM complaint_sla_partitions').fetchall():
            self._latest[(topic, partition)] = latest
            self._rebuilding.add((topic, partition))

    def expect(self, partitions: Iterable[Partition]) -> None:
        """Partitions just assigned: they hold the watermark until they deliver or go idle. A stored
        partition not in the assignment is not this sink's any more (assignments come whole)."""
        now, assigned = self.wall(), set(partitions)
        for tp in assigned:
            self._heard[tp] = now
        self._rebuilding &= assigned

    @property
    def rebuilt(self) -> bool:
        """False after a restart until the watermark has been rebuilt from the partitions."""
        return not self._rebuilding

    def watermark(self, con) -> datetime | None:
        rows = con.execute("SELECT watermark FROM complaint_sla_watermark WHERE sink = ?", [self.sink]).fetchall()
        return rows[0][0] if rows else None

    def observe(self, con, seen: Iterable[tuple[str, int, datetime]]) -> None:
        """A batch's event times by partition (stored in the caller's transaction)."""
        now, changed = self.wall(), {}
        for topic, partition, at in seen:
            tp = (topic, partition)
            self._heard[tp] = now
            self._rebuilding.discard(tp)
            if tp not in self._latest or at > self._latest[tp]:
                self._latest[tp] = changed[tp] = at
        insert_rows(con, "complaint_sla_partitions",
                    [{"topic": t, "partition": p, "latest": at} for (t, p), at in changed.items()], PARTITIONS,
                    "ON CONFLICT DO UPDATE SET latest = excluded.latest")

    def hold(self, partitions: Iterable[Partition]) -> None:
        """Partitions with records read but not applied (a batch decoding, waiting out a registry or
        broker outage, or failed and to be retried): they are not idle, whatever the wall clock says,
        so the watermark stays put until they are applied (``release``)."""
        if not self._held and self._held_since is None:
            self._held_since = self.wall()
        self._held |= set(partitions)

    def release(self, partitions: Iterable[Partition]) -> None:
        """Applied. Time the source spent held was not silence: it could not read any partition
        meanwhile, so every partition's idle clock is moved on by the hold's length. Without that, a
        30 s registry outage made every other partition look idle the moment the held batch went
        through, and the watermark passed records still waiting behind it (false breaches)."""
        self._held -= set(partitions)
        if not self._held and self._held_since is not None:
            now = self.wall()
            paused, self._held_since = now - self._held_since, None
            for tp in list(self._heard):
                self._heard[tp] = min(self._heard[tp] + paused, now)

    def advance(self, con) -> tuple[datetime | None, datetime | None]:
        """(old, new) watermark now; the new one is stored in the caller's transaction. While the
        watermark is not rebuilt after a restart, it stays where it was stored: (old, old)."""
        old = self.watermark(con)
        idle_before = self.wall() - self.idle_seconds
        self._rebuilding -= {tp for tp in self._rebuilding if self._heard.get(tp, idle_before) < idle_before}
        if self._rebuilding or self._held:
            return old, old
        low = low_watermark(self._latest, self._heard, idle_before)
        new = max([t for t in (old, low) if t is not None], default=None)
        if new is not None and new != old:
            con.execute("INSERT INTO complaint_sla_watermark VALUES (?, ?) ON CONFLICT DO UPDATE SET "
                        "watermark = excluded.watermark", [self.sink, new])
        return old, new

    def due(self, con, watermark: datetime | None) -> set[str]:
        """Cases with an agenda instant the watermark has reached."""
        if watermark is None:
            return set()
        return {r[0] for r in con.execute("SELECT case_id FROM complaint_sla_agenda WHERE next_at <= ?",
                                          [watermark]).fetchall()}

    def pin(self, case: Case) -> sla.Policy | None:
        return sla.pin_policy(case, self.policies)

    def evaluate(self, con, folded: list[Case], watermark: datetime | None, now: datetime,
                 times: dict[str, list[datetime]]) -> None:
        """Rewrite the clocks and agenda of these cases, and send what fell due (flushed by the caller).

        ``times``: each case's event times. The agenda holds the next instant the case's clocks can
        change at: a warning or due time, or the time of an event of the case the watermark has not
        reached yet (the clocks see only what had happened by the watermark)."""
        if not folded:
            return
        clock_rows, agenda, due = [], [], {}
        for case in folded:
            policy = self.pin(case)
            if policy is None:
                continue
            ahead = [t for t in times.get(case.case_id, ()) if watermark is None or t > watermark]
            clocks = sla.clocks(case, policy, watermark) if watermark is not None else []
            opened = opening(case) or case.steps[0]
            clock_rows += [_clock_row(case, policy, c, opened) for c in clocks]
            upcoming = ahead + [t for c in clocks if c.met_at is None for t in (c.warning_at, c.due_at)
                                if t > watermark]
            if upcoming:
                agenda.append({"case_id": case.case_id, "next_at": min(upcoming)})
            if watermark is not None:
                due[case.case_id] = (case, sla.due_events(case, policy, watermark))
        ids = [c.case_id for c in folded]
        keyed(con, "DELETE FROM complaint_sla WHERE case_id IN (SELECT k FROM _keys)", ids)
        keyed(con, "DELETE FROM complaint_sla_agenda WHERE case_id IN (SELECT k FROM _keys)", ids)
        insert_rows(con, "complaint_sla", clock_rows, CLOCKS)
        insert_rows(con, "complaint_sla_agenda", agenda, AGENDA)
        self._publish(con, due, now)

    def _publish(self, con, due: dict[str, tuple[Case, list[dict]]], now: datetime) -> None:
        sent = {}
        for event_id, case_id, event_type, clock, at, withdrawn in keyed(
                con, "SELECT e.event_id, e.case_id, e.event_type, e.clock, e.occurred_at, e.withdrawn_at "
                     "FROM complaint_sla_events e JOIN _keys ON e.case_id = _keys.k", due):
            sent[event_id] = (case_id, event_type, clock, at, withdrawn)
        fresh, withdrawals = [], []
        for case_id, (case, events) in sorted(due.items()):
            ids = {e["envelope"]["event_id"] for e in events}
            for event in events:
                if event["envelope"]["event_id"] not in sent:
                    self._send(case_id, event)
                    fresh.append(_sent_row(event, now))
            for event_id, (_, event_type, clock, at, withdrawn) in sorted(sent.items()):
                if sent[event_id][0] == case_id and event_id not in ids and withdrawn is None:
                    undo = sla.withdrawal(case, {"event_id": event_id, "event_type": event_type, "clock": clock,
                                                 "occurred_at": at})
                    self._send(case_id, undo)
                    withdrawals.append((event_id, undo["envelope"]["event_id"]))
        insert_rows(con, "complaint_sla_events", fresh, SENT, "ON CONFLICT DO NOTHING")
        for event_id, undo_id in withdrawals:
            con.execute("UPDATE complaint_sla_events SET withdrawn_at = ?, withdrawal_id = ? WHERE event_id = ?",
                        [now, undo_id, event_id])
        self.stats["published"] += len(fresh)
        self.stats["withdrawn"] += len(withdrawals)

    def _send(self, case_id: str, event: dict) -> None:
        record = sla_record(event)   # its envelope's identity hints are sealed like a raw event's
        primary = primary_subject(record["envelope"]["identity"])
        self.output.send(COMPLAINT_SLA_TOPIC, case_id, self.codec.encode_sealed(SLA_SCHEMA, record, primary),
                         [("touchstream.event_type", event["envelope"]["event_type"].encode())])


def low_watermark(latest: dict[Partition, datetime], heard: dict[Partition, float],
                  idle_before: float) -> datetime | None:
    """The least latest event time over the partitions heard from since ``idle_before``; with none of
    them delivering, the latest of all. A partition heard from but without an event time yet (just
    assigned) holds it at None: nothing is known about what it will deliver."""
    active = [tp for tp, at in list(heard.items()) if at >= idle_before]   # list(): one atomic copy
    if not active:
        return max(latest.values(), default=None)
    if any(tp not in latest for tp in active):
        return None
    return min(latest[tp] for tp in active)


def _clock_row(case: Case, policy: sla.Policy, c: sla.Clock, opened) -> dict:
    return {"case_id": case.case_id, "clock": c.name, "clock_kind": c.kind, "policy_version": policy.version,
            "priority": opened.info.get("priority"), "channel": opened.channel,
            "started_at": c.started_at, "warning_at": c.warning_at, "due_at": c.due_at, "met_at": c.met_at,
            "state": c.state, "breached": c.state == sla.BREACHED, "breached_at": c.breached_at,
            "started_by": c.started_by, "met_by": c.met_by}


def _sent_row(event: dict, now: datetime) -> dict:
    env = event["envelope"]
    return {"event_id": env["event_id"], "case_id": event["case_id"], "event_type": env["event_type"],
            "clock": event.get("clock"), "occurred_at": datetime.fromisoformat(env["occurred_at"]),
            "published_at": now}
