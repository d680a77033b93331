"""Identity's merge trusts a partition's end only as of the moment the broker gave it.

Why: the broker-restart fault case failed in CI (identity decisions in another order than the
clean run's). After the restart, a partition not fetched again yet kept its end from before the
outage: it looked caught up, and records appended to the other partitions seconds ago looked
settled by the wall clock, so the merge released them ahead of earlier events still waiting on
the broker. Here the real ``BatchSource`` (its consumer's ListOffsets answered by a fake) feeds
the real ``IdentityStage``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from confluent_kafka import KafkaException, TopicPartition

from tests.local_codec import LocalCodec
from tests.pipeline_harness import identity_stage, raw_logs, validated
from touchstream.config import Settings
from touchstream.demo.generator import generate
from touchstream.processors.batch_source import BatchSource
from touchstream.processors.partition_ends import PartitionEnds
from touchstream.processors.topic_output import MemoryOutput
from touchstream.projections.identity_resolution import IdentityConfig
from touchstream.topics import CUSTOMER_EVENTS_TOPIC

CODEC = LocalCodec()


class Broker:
    """Answers ListOffsets with ``high``; ``down`` makes the request fail as in an outage."""

    def __init__(self, high: dict):
        self.high, self.down = high, False

    def offsets_for_times(self, partitions, timeout):
        if self.down:
            raise KafkaException("broker unreachable")
        return [TopicPartition(tp.topic, tp.partition, self.high[(tp.topic, tp.partition)]) for tp in partitions]


def two_partitions() -> tuple:
    """The first event of two raw partitions: ``early`` happened before ``late``."""
    logs = raw_logs(validated(list(generate(30, 7, 7))), CODEC)
    heads = sorted((CODEC.decode(log[0].value).record["envelope"]["occurred_at"], tp) for tp, log in logs.items())
    (_, a), (_, b) = heads[0], heads[1]
    return logs[a][0], logs[b][0]


def forwarded(output: MemoryOutput) -> list[bytes]:
    return [value for topic, _key, value, headers in output.records
            if topic == CUSTOMER_EVENTS_TOPIC and dict(headers).get("touchstream.kind") == b"event"]


def test_a_stale_end_holds_the_merge_and_a_fresh_one_releases_in_event_order(tmp_path: Path):
    early, late = two_partitions()
    now = time.time()
    late = replace(late, timestamp=int((now - 5) * 1000))    # appended 5 s ago: settled by the wall clock
    early = replace(early, timestamp=int((now - 3) * 1000))  # appended 3 s ago, not fetched yet
    a, b = (early.topic, early.partition), (late.topic, late.partition)
    broker = Broker({a: 0, b: 1})
    source = BatchSource(Settings(home=Path("/nonexistent")), "g", ["t"], lambda records: None, name="x",
                         holds=lambda: {})
    source._consumer = broker
    source.ends = PartitionEnds(source._latest, clock=lambda: now - 10)   # the ends as of before the outage
    assert source.ends.refresh([a, b])
    source._next[a] = 0                                                      # consumed to that end
    output = MemoryOutput()
    stage = identity_stage(tmp_path / "identity", IdentityConfig(), CODEC, output)
    stage.expect([a, b])
    stage.caught_up, stage.ends_known_at = source.caught_up, source.ends_known_at

    source._next[b] = late.offset + 1
    broker.down = True
    assert not source.ends.refresh([a, b])
    stage.handle([late])
    assert forwarded(output) == [], "released on an end older than the record"

    broker.down, broker.high[a] = False, 1
    source.ends = PartitionEnds(source._latest)
    assert source.ends.refresh([a, b]) and not source.caught_up(a)
    stage.handle([])
    assert forwarded(output) == [], "partition a has a record the broker told of, not consumed yet"

    source._next[a] = early.offset + 1
    stage.handle([early])
    assert forwarded(output) == [early.value, late.value]


def test_an_end_that_did_not_answer_keeps_the_moment_they_were_known():
    answers = [{("t", 0): 4, ("t", 1): 2}, {("t", 0): 5}]
    ticks = iter([100.0, 101.0, 102.0])

    def ask(_partitions):
        if not answers:
            raise KafkaException("timed out")
        return answers.pop(0)

    ends = PartitionEnds(ask, clock=lambda: next(ticks))
    assert ends.known_at is None
    assert ends.refresh([("t", 0), ("t", 1)]) and ends.known_at == 100.0
    assert not ends.refresh([("t", 0), ("t", 1)]) and ends.known_at == 100.0   # ("t", 1) did not answer
    assert ends.at_end(("t", 0), 5) and not ends.at_end(("t", 0), 4)          # ...what did answer counts
    assert not ends.refresh([("t", 0)]) and ends.known_at == 100.0   # an exception: known_at stays
    ends.forget([("t", 1)])
    assert not ends.at_end(("t", 1), 2) and not ends.at_end(("t", 2), 0)
