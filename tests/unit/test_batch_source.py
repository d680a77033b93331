"""The batch source's pure parts: which consumed messages become records, and where a batch ends."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from touchstream.config import Settings
from touchstream.processors.batch_source import BatchSource
from touchstream.processors.consumer_io import next_positions, to_records
from touchstream.processors.records import RawRecord


class Message:
    """The parts of confluent_kafka.Message the source reads."""

    def __init__(self, topic="t", partition=0, offset=0, error=None):
        self._t, self._p, self._o, self._e = topic, partition, offset, error

    def error(self):
        return self._e

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def key(self):
        return b"k"

    def value(self):
        return b"v"

    def headers(self):
        return [("event_type", b"x")]

    def timestamp(self):
        return (2, 1_700_000_000_000)   # TIMESTAMP_LOG_APPEND_TIME


def test_records_keep_position_key_value_headers_and_the_brokers_time():
    [record] = to_records([Message("a", 2, 41)])
    assert record == RawRecord("a", 2, 41, b"k", b"v", [("event_type", b"x")], 1_700_000_000_000)


def test_a_transient_client_error_is_no_record_and_no_failure():
    transient = KafkaError(KafkaError._TRANSPORT, "broker went away", fatal=False)
    assert [r.offset for r in to_records([Message(offset=1), Message(error=transient), Message(offset=2)])] == [1, 2]


def test_a_fatal_client_error_stops_the_stage():
    fatal = KafkaError(KafkaError._FENCED, "fenced", fatal=True)
    with pytest.raises(KafkaException):
        to_records([Message(offset=1), Message(error=fatal)])


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 2), st.integers(0, 10_000)), min_size=1))
def test_next_positions_are_one_past_the_highest_offset_of_each_partition(triples):
    records = [RawRecord(t, p, o, None, None, []) for t, p, o in triples]
    got = {(tp.topic, tp.partition): tp.offset for tp in next_positions(records)}
    want = {}
    for t, p, o in triples:
        want[(t, p)] = max(want.get((t, p), -1), o + 1)
    assert got == want


class Ends:
    """The parts of a consumer ``PartitionEnds`` asks: the broker's end of each partition (ListOffsets)."""

    def __init__(self, high: dict):
        self.high = high

    def offsets_for_times(self, partitions, timeout):
        assert all(tp.offset == -1 for tp in partitions), "timestamp -1 asks for the latest offset"
        return [TopicPartition(tp.topic, tp.partition, self.high[(tp.topic, tp.partition)]) for tp in partitions]


def test_a_holding_source_knows_which_partitions_are_caught_up_and_commits_the_handlers_positions():
    """Identity's merge holds records back until every partition delivered or is caught up: consumed up to
    the end the broker gave when last asked (records fetched but still queued in librdkafka are not
    consumed); an end-of-partition event gives the position of a partition nothing was consumed from. The
    source skips those events as records and commits the positions the handler gives, not those it consumed."""
    source = BatchSource(Settings(home=Path("/nonexistent")), "g", ["t"], lambda records: None, name="x",
                         holds=lambda: {("t", 0): 3})
    source._consumer = Ends({("t", 0): 6, ("t", 1): 10, ("t", 2): 4, ("t", 3): 0})
    owned = [("t", 0), ("t", 1), ("t", 2), ("t", 3)]
    eof = KafkaError(KafkaError._PARTITION_EOF)
    assert not source.caught_up(("t", 0)) and source.ends_known_at() is None
    assert source.ends.refresh(owned) and source.ends_known_at() is not None
    assert source._note_ends([Message("t", 0, 4), Message("t", 0, 5), Message("t", 1, 9), Message("t", 2, 4, eof)])
    assert source.caught_up(("t", 0)) and source.caught_up(("t", 1)) and source.caught_up(("t", 2))
    source._consumer.high[("t", 2)] = 5        # appended since: the broker's end says so at the next ask
    assert source.caught_up(("t", 2))
    assert source.ends.refresh(owned)
    assert not source.caught_up(("t", 2)) and not source.caught_up(("t", 3))
    assert [r.offset for r in to_records([Message("t", 0, 4), Message("t", 0, 5, error=eof)])] == [4]
    assert [(tp.topic, tp.partition, tp.offset) for tp in source._positions([])] == [("t", 0, 3)]


class LosingGroup:
    """A consumer whose group assigns ("t", 0) in the first ``consume``, delivers nothing, and takes the
    assignment away as lost (librdkafka's session timeout) in the second; records the commits asked."""

    def __init__(self, source: BatchSource, rounds: int = 4):
        self.source, self.rounds, self.calls = source, rounds, 0
        self.commits: list[tuple[str, int, int]] = []
        self.assigned: list = []

    def consume(self, _n, _timeout):
        self.calls += 1
        if self.calls == 1:
            self.source._assign(self, [TopicPartition("t", 0)])
        elif self.calls == 2:
            self.source._lose(self, [TopicPartition("t", 0)])
        if self.calls >= self.rounds:
            self.source._stop.set()
        return []

    def assign(self, partitions):
        self.assigned = list(partitions)

    def unassign(self):
        self.assigned = []

    def commit(self, offsets, asynchronous):
        self.commits += [(tp.topic, tp.partition, tp.offset) for tp in offsets]


def test_a_holding_source_commits_nothing_of_a_lost_assignment():
    """After a broker restart the session expires and librdkafka gives the assignment up as lost; it rejoins
    the group only once no commit is in flight, and a commit made while no coordinator answers waits for
    one up to session.timeout.ms. Identity's handler gives positions for every partition it ever held, so
    the source must commit those of owned partitions only: committing them all every 5 s kept a commit
    in flight and identity did not rejoin (the broker-restart fault case then timed out in settle)."""
    source = BatchSource(Settings(home=Path("/nonexistent")), "g", ["t"], lambda records: None, name="x",
                         holds=lambda: {("t", 0): 3})
    group = source._consumer = LosingGroup(source)
    source._consume(group)
    assert group.calls == group.rounds
    assert group.commits == [("t", 0, 3)], "only while ('t', 0) was owned (round 1), nothing after it was lost"


class StuckGroup:
    """A consumer whose group is assigned ("t", 0), then stays out of the steady join state (librdkafka's
    statistics say so); ``closed`` records that the source closed it."""

    def __init__(self, source: BatchSource):
        self.source, self.closed, self.assigned, self.calls = source, False, [], 0

    def consume(self, _n, _timeout):
        self.calls += 1
        if self.calls > 3:
            self.source._stop.set()   # never given up on: the source would wait here for good
        if not self.assigned:
            self.source._assign(self, [TopicPartition("t", 0)])
            self.source.group_watch.on_stats('{"cgrp": {"state": "up", "join_state": "wait-unassign-to-complete"}}')
        return []

    def assign(self, partitions):
        self.assigned = list(partitions)

    def close(self):
        self.closed = True


class HealthyGroup(StuckGroup):
    """The consumer that takes over: assigned ("t", 0) again, it delivers offset 7 and the source stops."""

    def consume(self, _n, _timeout):
        if not self.assigned:
            self.source._assign(self, [TopicPartition("t", 0)])
            self.source.group_watch.on_stats('{"cgrp": {"state": "up", "join_state": "steady"}}')
            return [Message("t", 0, 7)]
        self.source._stop.set()
        return []

    def commit(self, offsets, asynchronous):
        pass


def test_a_consumer_stuck_out_of_its_groups_steady_state_is_replaced(monkeypatch):
    """Serving's 360 consumer lost its session just after a broker restart and never joined its group
    again (the broker logged the member removed and the group empty for ten minutes; the 200-customer
    broker-restart fault case). The source gives such a consumer up, forgets its partitions uncommitted,
    tells the handler they are gone, and a new consumer takes over where the handler resumes."""
    from touchstream.processors.group_watch import GroupWatch

    handled, revoked, assigned = [], [], []
    source = BatchSource(Settings(home=Path("/nonexistent")), "g", ["t"], handled.extend, name="x",
                         resume_at=lambda tp: 7, on_assigned=assigned.extend, on_revoked=revoked.extend)
    source.group_watch = GroupWatch(lambda: True, stuck_after=0.0)
    consumers = iter([StuckGroup(source), HealthyGroup(source)])
    made = []
    monkeypatch.setattr(source, "_subscribed", lambda: made.append(next(consumers)) or made[-1])
    monkeypatch.setattr("os._exit", lambda code: pytest.fail(f"the source exited with {code}"))
    source._run()
    stuck, healthy = made
    assert stuck.closed and healthy.closed
    assert revoked == [("t", 0)] and assigned == [("t", 0), ("t", 0)]
    assert [r.offset for r in handled] == [7]
    assert source._owned == {("t", 0)} and source._done == {("t", 0): 8}


def test_a_group_out_of_steady_state_during_a_broker_outage_is_not_stuck():
    from touchstream.processors.group_watch import GroupWatch

    now, reachable = [0.0], [False]
    watch = GroupWatch(lambda: reachable[0], stuck_after=120.0, clock=lambda: now[0])
    unsteady = '{"cgrp": {"state": "wait-coord", "join_state": "init"}}'
    watch.on_stats(unsteady)
    now[0] = 500.0
    watch.on_stats(unsteady)
    assert not watch.stuck(), "a rejoin waiting for the broker is not stuck"
    reachable[0] = True
    watch.on_stats(unsteady)
    now[0] = 619.0
    assert not watch.stuck()
    now[0] = 620.0
    assert watch.stuck() and watch.last["join_state"] == "init"
    watch.on_stats('{"cgrp": {"state": "up", "join_state": "steady"}}')
    assert not watch.stuck()
