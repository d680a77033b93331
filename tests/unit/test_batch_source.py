"""The batch source's pure parts: which consumed messages become records, and where a batch ends."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from touchstream.config import Settings
from touchstream.processors.batch_source import BatchSource, next_positions, to_records
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
    group = LosingGroup(source)
    source._consume(group)
    assert group.calls == group.rounds
    assert group.commits == [("t", 0, 3)], "only while ('t', 0) was owned (round 1), nothing after it was lost"
