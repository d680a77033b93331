"""SLA timers in the complaint sink: clocks and published SLA events on the event-time watermark.

Checked against the pure ``complaint_sla`` functions evaluated once, at the final watermark,
over every case's complete history: any interleaving, redelivery and restart of the raw
topics must leave the same clocks, publish each due event once, and withdraw what a late
event made undue.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import timedelta

import pytest

from tests.complaint_replay import Replayed
from tests.complaint_streams import T0, call, ev
from tests.local_codec import LocalCodec
from tests.pipeline_harness import consume, raw_logs, validated
from touchstream.demo.generator import generate
from touchstream.processors.complaint_resolution import ComplaintSink
from touchstream.processors.complaint_sla_timer import low_watermark
from touchstream.processors.topic_output import MemoryOutput
from touchstream.projections import complaint_sla as sla
from touchstream.projections.complaint_resolution_contract import SCHEMA as CASE_SCHEMA
from touchstream.projections.complaint_resolution_contract import to_record
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.publishing.dead_letters import AlreadySentDeadLetters
from touchstream.topics import COMPLAINT_CASES_TOPIC, COMPLAINT_SLA_TOPIC

CODEC = LocalCodec()
POLICIES = sla.load_policies()
EVENTS = validated(list(generate(60, 20, 11)))


def pure(records: list[dict]) -> tuple[dict, dict]:
    """(clock rows by (case, clock), due event ids by case) at the final watermark, from complete histories."""
    replayed = Replayed(records)
    return replayed.clocks, replayed.due


def table(db: DuckDBStore, sql: str) -> list[tuple]:
    cur = db.cursor()
    try:
        return cur.execute(sql).fetchall()
    finally:
        cur.close()


def published(output: MemoryOutput) -> list[dict]:
    return [CODEC.decode(value).record for topic, _, value, _ in output.records if topic == COMPLAINT_SLA_TOPIC]


class Wall:
    """The wall clock the timer reads to tell a caught-up (idle) partition from a delivering one."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sink_on(path, output: MemoryOutput, wall: Wall) -> ComplaintSink:
    return ComplaintSink(DuckDBStore(path), CODEC, AlreadySentDeadLetters(), output=output, policies=POLICIES,
                         idle_seconds=10, wall=wall)


def feed(tmp_path, batches, output: MemoryOutput, restart_at: int | None = None) -> DuckDBStore:
    """Every batch while all partitions deliver, then the timer once they have all gone idle."""
    wall = Wall()
    sink = sink_on(tmp_path / "sla.duckdb", output, wall)
    for n, batch in enumerate(batches):
        if n == restart_at:                      # a clean restart: a new sink on the same file
            sink.db.close()
            sink = sink_on(tmp_path / "sla.duckdb", output, wall)
            sink.expect({(r.topic, r.partition) for b in batches for r in b})   # its source's assignment
        sink.handle(batch)
        wall.now += 0.01
    wall.now += 11
    sink.tick()
    return sink.db


@pytest.mark.parametrize("seed", [3, 4])
def test_clocks_and_published_events_equal_the_pure_evaluation_at_the_final_watermark(tmp_path, seed):
    rnd = random.Random(seed)
    batches = consume(raw_logs(EVENTS, CODEC), rnd, max_batch=300, rewinds=3)
    output = MemoryOutput()
    db = feed(tmp_path, batches, output, restart_at=len(batches) // 2)
    want_clocks, want_due = pure([e.record for e in EVENTS])
    got = {(case, clock): (state, due, met) for case, clock, state, due, met in
           table(db, "SELECT case_id, clock, state, due_at, met_at FROM complaint_sla")}
    assert len(want_clocks) > 50 and got == want_clocks
    events = published(output)
    ids = Counter(e["envelope"]["event_id"] for e in events)
    assert ids and max(ids.values()) == 1, "an SLA event was published twice"
    withdrawn = {e["withdraws"] for e in events if e["envelope"]["event_type"] == "complaint.sla_withdrawn"}
    live = {i for i in ids if i not in withdrawn} - {e["envelope"]["event_id"] for e in events if e["withdraws"]}
    assert live == set().union(*want_due.values())
    kinds = Counter(e["envelope"]["event_type"] for e in events)
    assert kinds["complaint.sla_breached"] > 0
    assert kinds["complaint.sla_withdrawn"] == 0, "the watermark ran ahead of a partition still delivering"
    stored = {r[0] for r in table(db, "SELECT event_id FROM complaint_sla_events WHERE withdrawn_at IS NULL")}
    assert stored == live


def test_the_compacted_case_topic_ends_with_each_case_row(tmp_path):
    output = MemoryOutput()
    db = feed(tmp_path, consume(raw_logs(EVENTS, CODEC), random.Random(5), max_batch=200), output)
    last = {key.decode(): value for topic, key, value, _ in output.records if topic == COMPLAINT_CASES_TOPIC}
    rows = dict(table(db, "SELECT case_id, case_view FROM complaint_cases"))
    assert last.keys() == rows.keys()
    assert all(last[k] == CODEC.encode(CASE_SCHEMA, to_record(json.loads(v))) for k, v in rows.items())


def _breach_and_withdrawal_stream() -> tuple[list, list, list]:
    """A callback promised for +4h; later, an unrelated call (the watermark passes the deadline); and
    then, arriving last, the callback the agent logged late: it was made in time."""
    case = [ev("complaint.opened", 0, "o1", "phone"), ev("complaint.acknowledged", 2, "a1", "phone"),
            ev("complaint.callback_promised", 10, "p1", "phone", promised_by=(T0 + timedelta(hours=4)).isoformat())]
    later = call("OTHER", 600, "x", corr=None)
    late = [ev("phone.callback_made", 100, "cb1", "phone", case_id="K1", callback_id="CB1", reached=True)]
    return case, later, late


def _records(log, start: dict) -> list:
    out = [r for records in log.values() for r in records if r.offset >= start.get((r.topic, r.partition), 0)]
    start.update({(r.topic, r.partition): r.offset + 1 for r in out})
    return out


def test_a_missed_callback_breaches_once_time_passes_and_a_late_callback_withdraws_the_breach(tmp_path):
    case, later, late = _breach_and_withdrawal_stream()
    output, seen, wall = MemoryOutput(), {}, Wall()
    sink = sink_on(tmp_path / "sla.duckdb", output, wall)

    def breaches() -> list[dict]:
        return [e for e in published(output) if e["envelope"]["event_type"] == "complaint.sla_breached"]

    log = raw_logs(validated_records(case), CODEC)
    sink.handle(_records(log, seen))
    sink.handle(_records(raw_logs(validated_records(later), CODEC, log), seen))   # no event of the case
    assert not breaches(), "the complaint partition still delivers: its clock may not be judged yet"
    wall.now += 5
    assert sink.tick() == 0 and not breaches()
    wall.now += 6                                  # both partitions idle: event time moves to the latest event
    assert sink.tick() == 1
    assert [e["clock"] for e in breaches() if e["clock"].startswith("callback:")] == ["callback:CB1"]
    assert sink.tick() == 0 and len(published(output)) == len(breaches()) + len(
        [e for e in published(output) if e["envelope"]["event_type"] != "complaint.sla_breached"])
    sink.handle(_records(raw_logs(validated_records(late), CODEC, log), seen))
    withdrawals = [e for e in published(output) if e["envelope"]["event_type"] == "complaint.sla_withdrawn"]
    callback_breach = next(e for e in breaches() if e["clock"] == "callback:CB1")["envelope"]["event_id"]
    assert callback_breach in {e["withdraws"] for e in withdrawals}
    assert table(sink.db, "SELECT state, met_by FROM complaint_sla WHERE clock = 'callback:CB1'") == [("met", "cb1")]
    _, due = pure(case + later + late)
    live = {r[0] for r in table(sink.db, "SELECT event_id FROM complaint_sla_events WHERE withdrawn_at IS NULL")}
    assert live == due["K1"]


def validated_records(records: list[dict]):
    """``ev`` gives validated records; the raw log wants them with their topic and schema again."""
    return validated([_plain(r) for r in records])


def _plain(record: dict) -> dict:
    env = record["envelope"]
    out = {**record, "envelope": {**env, "occurred_at": env["occurred_at"].isoformat(),
                                  "recorded_at": env["recorded_at"].isoformat()}}
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in out.items()}


def test_the_watermark_waits_for_partitions_still_delivering_and_skips_idle_ones():
    t = T0
    latest = {("a", 0): t + timedelta(hours=5), ("b", 0): t + timedelta(hours=1), ("c", 0): t + timedelta(days=9)}
    heard = {("a", 0): 100.0, ("b", 0): 100.0, ("c", 0): 50.0}
    assert low_watermark(latest, heard, idle_before=90.0) == t + timedelta(hours=1)   # c is idle, b lags
    assert low_watermark(latest, heard, idle_before=200.0) == t + timedelta(days=9)   # all idle: the latest
    assert low_watermark(latest, {**heard, ("d", 0): 100.0}, idle_before=90.0) is None   # d assigned, silent
    assert low_watermark({}, {}, idle_before=0.0) is None


def _opened_and_answer_pending(tmp_path):
    """A sink that applied a case with a promised callback and later events; the batch holding the
    callback's answer (``backlog``) is read but not handed to it yet."""
    case, later, late = _breach_and_withdrawal_stream()
    output, seen, wall = MemoryOutput(), {}, Wall()
    sink = sink_on(tmp_path / "sla.duckdb", output, wall)
    log = raw_logs(validated_records(case), CODEC)
    sink.handle(_records(log, seen))
    sink.handle(_records(raw_logs(validated_records(later), CODEC, log), seen))
    return sink, output, wall, log, _records(raw_logs(validated_records(late), CODEC, log), seen)


def test_after_a_restart_the_timer_holds_the_stored_watermark_until_the_partitions_deliver_again(tmp_path):
    """Killed, then restarted: until its source has the partitions again nothing delivers, and a tick then
    must not count every partition idle and judge the callback whose answer waits, unread, in the backlog."""
    sink, output, wall, log, backlog = _opened_and_answer_pending(tmp_path)
    case, later, late = _breach_and_withdrawal_stream()
    sink.db.close()                                # the process dies; the late callback is published meanwhile
    partitions = {(r.topic, r.partition) for records in log.values() for r in records}

    sink = sink_on(tmp_path / "sla.duckdb", output, wall)
    assert not sink.timer.rebuilt
    wall.now += 30                                 # no assignment yet: the dead member's session has not expired
    assert sink.tick() == 0
    judged = [e for e in published(output) if e["envelope"]["event_type"] != "complaint.sla_withdrawn"
              and e.get("clock") == "callback:CB1"]
    assert not judged, "the timer fired before the watermark was rebuilt from the partitions"

    sink.expect(partitions)                        # the source's assignment, then the backlog
    sink.handle(backlog)
    wall.now += 11                                 # the partitions with nothing more to deliver go idle
    sink.tick()
    assert sink.timer.rebuilt
    events = published(output)
    assert not [e for e in events if e["envelope"]["event_type"] == "complaint.sla_withdrawn"]
    assert table(sink.db, "SELECT state, met_by FROM complaint_sla WHERE clock = 'callback:CB1'") == [("met", "cb1")]
    _, due = pure(case + later + late)
    assert {e["envelope"]["event_id"] for e in events} == due["K1"]


def test_a_restarted_timer_moves_on_once_its_assigned_partitions_go_idle(tmp_path):
    """The hold ends: stored partitions that have nothing new count as rebuilt once assigned and idle."""
    case, later, _ = _breach_and_withdrawal_stream()
    output, seen, wall = MemoryOutput(), {}, Wall()
    sink = sink_on(tmp_path / "sla.duckdb", output, wall)
    log = raw_logs(validated_records(case + later), CODEC)
    sink.handle(_records(log, seen))
    sink.db.close()
    sink = sink_on(tmp_path / "sla.duckdb", output, wall)
    sink.expect({(r.topic, r.partition) for records in log.values() for r in records})
    wall.now += 5
    assert sink.tick() == 0 and not sink.timer.rebuilt
    wall.now += 6
    assert sink.tick() == 1 and sink.timer.rebuilt   # the missed callback breaches now, as it would have live
    assert [e["clock"] for e in published(output) if e["envelope"]["event_type"] == "complaint.sla_breached"
            and e["clock"].startswith("callback:")] == ["callback:CB1"]


def fails_in_an_outage(sink: ComplaintSink, records: list, monkeypatch) -> None:
    """One attempt at ``records`` whose transaction fails, as it does while the registry is away; the
    sink's own store is back afterwards, for the retry."""
    def outage(*_args):
        raise ConnectionError("registry unreachable")
    with monkeypatch.context() as patch:
        patch.setattr(sink, "_store", outage)
        with pytest.raises(ConnectionError):
            sink.handle(records)


def test_no_tick_judges_clocks_while_a_batch_waits_to_be_applied(tmp_path, monkeypatch):
    """A batch that cannot be applied yet (here its transaction fails, as in a registry outage it
    waits) holds the watermark: the fault suite's 30 s registry outage published two breaches a clean
    run never sends, because every partition looked idle to the 2 s tick while the batch waited."""
    sink, output, wall, _log, backlog = _opened_and_answer_pending(tmp_path)
    fails_in_an_outage(sink, backlog, monkeypatch)
    wall.now += 30                                 # every partition silent past the idle limit
    assert sink.tick() == 0
    assert not [e for e in published(output) if e.get("clock") == "callback:CB1"
                and e["envelope"]["event_type"] != "complaint.sla_withdrawn"], "judged while the answer waited"
    sink.handle(backlog)                           # the retry after the outage
    wall.now += 11
    sink.tick()
    assert not [e for e in published(output) if e["envelope"]["event_type"] == "complaint.sla_withdrawn"]
    assert table(sink.db, "SELECT state, met_by FROM complaint_sla WHERE clock = 'callback:CB1'") == [("met", "cb1")]


def test_partitions_waiting_behind_a_held_batch_are_not_idle_when_it_goes_through(tmp_path, monkeypatch):
    """A 30 s registry outage holds a batch of one partition (an e-mail days ahead); the callback's
    answer waits, unread, on the phone partition behind it. When the held batch goes through, the
    phone partition has not been silent: the source could not read it. Counting the outage as
    silence let the watermark jump past the answer (CI's registry-outage fault: 2 false SLA events)."""
    case, _, late = _breach_and_withdrawal_stream()
    ahead = [ev("email.received", 600, "m1", "email", corr=None, message_id="M-OTHER")]
    output, seen, wall = MemoryOutput(), {}, Wall()
    sink = sink_on(tmp_path / "sla.duckdb", output, wall)
    log = raw_logs(validated_records(case), CODEC)
    sink.handle(_records(log, seen))
    phone = _records(raw_logs(validated_records(call("C0", 1, "c0", corr=None)), CODEC, log), seen)
    sink.handle(phone)                             # the phone partition delivers, then its source stalls
    held = _records(raw_logs(validated_records(ahead), CODEC, log), seen)
    assert {r.topic for r in held}.isdisjoint({r.topic for r in phone})
    fails_in_an_outage(sink, held, monkeypatch)
    wall.now += 30
    sink.handle(held)                              # the retry goes through; the answer is next in line
    assert sink.tick() == 0
    sink.handle(_records(raw_logs(validated_records(late), CODEC, log), seen))
    wall.now += 11
    sink.tick()
    events = published(output)
    assert not [e for e in events if e["envelope"]["event_type"] == "complaint.sla_withdrawn"], \
        "the watermark passed the answer that waited behind the held batch"
    assert table(sink.db, "SELECT state, met_by FROM complaint_sla WHERE clock = 'callback:CB1'") == [("met", "cb1")]
