"""The identity stage and the customer-360 sink wired together in process (``tests.pipeline_harness``).

Why: each stage is correct alone, but the 360 rows are right only if the re-keyed events
and membership records, read over several partitions in any order, redelivered, and
across restarts of either stage, still route every event to its final customer. So the
properties compare the sink's ``customer_360`` rows with a replay from offset 0: the pure
resolver and the pure fold over the same events (``expected_fingerprints``).

Streams come from the identity tests' ``specs`` (links, unlinks and sightings over a
small pool of identifiers, so merges, splits and renames happen), plus a few fold-rich
events of the 360 tests, all as plain JSON through the real catalogue.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.event_builders import linked, plain_event
from tests.local_codec import LocalCodec
from tests.pipeline_harness import (CustomerEventsTopic, Sink, consume, expected_fingerprints, identify,
                                    identity_stage, pipeline, raw_logs, seqs, validated)
from tests.unit.test_customer_360 import FOCUS, T0, _plain
from tests.unit.test_identity_resolution import WORLD_A, configs, hints, specs
from touchstream.processors.topic_output import MemoryOutput
from touchstream.projections.customer_360_contract import SCHEMA as PROFILE_SCHEMA
from touchstream.projections.customer_360_contract import finding_id, to_record
from touchstream.topics import FINDINGS_TOPIC

CODEC = LocalCodec()
PIPELINE = settings(max_examples=10, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
CACHE_SIZES = st.sampled_from([1, 2, 20_000])   # tiny caches: evictions force refolds from stored events


def plain(spec: tuple, event_id: str) -> dict:
    """One identity-test spec (``test_identity_resolution.specs``) as a plain-JSON event."""
    what, minute, *rest = spec
    at = T0 + timedelta(minutes=minute)
    if what in ("linked", "unlinked"):
        trust = rest[2] if what == "linked" else "verified"
        reason = "wrong_match" if what == "unlinked" else "match_rule"
        return linked(at, rest[0], rest[1], trust=trust, reason=reason, unlink=what == "unlinked", event_id=event_id)
    if what == "observed":
        envelope, hint, trust = rest
        return plain_event("identity.identifier_observed", at, dict([envelope]), event_id=event_id,
                           identifier={"kind": hint[0], "value": hint[1]}, how="login", trust=trust)
    return plain_event(rest[0], at, dict(rest[1]), event_id=event_id)


@st.composite
def streams(draw, max_size: int = 14) -> list[dict]:
    """Identity events over a small pool, a few events that exercise the fold, and a few sent twice (a
    producer retrying), in any order."""
    out = [plain(spec, f"e{i:03d}") for i, spec in enumerate(draw(specs(WORLD_A, max_size=max_size)))]
    for n in range(draw(st.integers(0, 4))):
        event = draw(_plain(draw(st.sampled_from(FOCUS))))
        identity = dict(draw(st.lists(hints(WORLD_A), min_size=1, max_size=2)))
        event["envelope"].update(event_id=f"f{n:03d}", recorded_at=event["envelope"]["occurred_at"],
                                 identity=identity)
        out.append(event)
    retried = draw(st.lists(st.sampled_from(out), max_size=3)) if out else []
    return draw(st.permutations(out + retried))


def fresh(tmp_path):
    """A folder per hypothesis example (``tmp_path`` is shared by all examples of one test)."""
    return tmp_path / uuid.uuid4().hex


def assert_the_topics_agree_with_the_table(sink: Sink) -> None:
    """The last ``touchstream.customer-360`` record per key is the row's 360, and a tombstone exactly where
    no row is; every finding of a row was raised on ``touchstream.contact-findings``."""
    last, rows = sink.last_360(), sink.rows()
    assert {k.decode() for k, v in last.items() if v is None}.isdisjoint(rows)
    assert {k.decode() for k, v in last.items() if v is not None} == set(rows), "a stale 360 of a customer gone"
    raised = {CODEC.decode(v).record["finding_id"] for t, _k, v, _h in sink.output.records if t == FINDINGS_TOPIC}
    for customer in rows:
        value, profile = last.get(customer.encode()), sink.store.profile(customer)
        assert value is not None, f"{customer} has a row but its last 360 record is missing or a tombstone"
        decoded = CODEC.decode(value)
        assert decoded.schema_id == CODEC.schema_id(PROFILE_SCHEMA)
        assert decoded.record["customer_id"] == customer
        assert decoded.record == to_record(profile)   # the topic says what the table says
        assert {finding_id(customer, f["id"]) for f in profile["findings"]} <= raised


# -- properties ------------------------------------------------------------------------------
@PIPELINE
@given(events=streams(), config=configs, cache_size=CACHE_SIZES, rnd=st.randoms(use_true_random=False))
def test_any_interleaving_of_partitions_and_batches_gives_the_rows_of_a_replay(tmp_path, events, config,
                                                                              cache_size, rnd):
    topic, sink = pipeline(fresh(tmp_path), events, CODEC, rnd, config=config, cache_size=cache_size)
    sink.feed(consume(topic.logs, rnd))
    assert sink.rows() == expected_fingerprints(events, config)
    assert_the_topics_agree_with_the_table(sink)


@PIPELINE
@given(events=streams(), config=configs, rnd=st.randoms(use_true_random=False))
def test_redelivered_batches_change_nothing(tmp_path, events, config, rnd):
    """At-least-once: partitions rewound mid-stream, and whole batches handed over a second time."""
    topic, sink = pipeline(fresh(tmp_path), events, CODEC, rnd, config=config)
    deliveries = consume(topic.logs, rnd, rewinds=4)
    for i, batch in enumerate(deliveries):
        sink.feed([batch])
        if rnd.random() < 0.3:
            sink.feed([rnd.choice(deliveries[:i + 1])])
    assert sink.rows() == expected_fingerprints(events, config)
    assert_the_topics_agree_with_the_table(sink)


class CrashingOutput(MemoryOutput):
    """Kafka failing one batch's outputs: ``flush`` raises after delivering only the first half of them
    (the identity stage keeps its offsets, the sink's transaction rolls back)."""

    def __init__(self, fail_at: int | None):
        super().__init__()
        self.flushes, self.fail_at = 0, fail_at

    def flush(self, timeout: float = 60.0) -> None:
        self.flushes += 1
        if self.flushes == self.fail_at:
            self.records += self._pending[:len(self._pending) // 2]
            self._pending = []
            raise RuntimeError("outputs not acknowledged")
        super().flush(timeout)


@PIPELINE
@given(events=streams(), config=configs, cache_size=CACHE_SIZES, in_flush=st.booleans(), data=st.data(),
       rnd=st.randoms(use_true_random=False))
def test_a_sink_restarted_on_its_duckdb_file_ends_with_the_rows_of_a_replay(tmp_path, events, config, cache_size,
                                                                             in_flush, data, rnd):
    """The sink dies after some batches (or inside one); a new one on the same file is fed from an earlier
    batch: what was committed is skipped, the rest applied."""
    folder, output = fresh(tmp_path), CrashingOutput(None)
    topic, first = pipeline(folder, events, CODEC, rnd, config=config, cache_size=cache_size, output=output)
    deliveries = consume(topic.logs, rnd)
    crash = data.draw(st.integers(0, len(deliveries)), "crash after batch")
    output.fail_at = crash + 1 if in_flush else None
    try:
        first.feed(deliveries[:crash + 1] if in_flush else deliveries[:crash])
    except RuntimeError:
        pass
    first.db.close()
    output.fail_at = None
    resume = data.draw(st.integers(0, crash), "resume from batch")
    second = Sink(folder / "x.duckdb", CODEC, cache_size=cache_size, output=output)
    second.feed(deliveries[resume:])
    assert second.rows() == expected_fingerprints(events, config)
    assert_the_topics_agree_with_the_table(second)


@PIPELINE
@given(events=streams(), config=configs, mid_batch=st.booleans(), data=st.data(), rnd=st.randoms(use_true_random=False))
def test_an_identity_stage_restored_from_its_snapshot_continues_with_higher_sequence_numbers(tmp_path, events, config,
                                                                                             mid_batch, data, rnd):
    """Snapshot after batch s, outputs published up to batch k (and maybe half of the next), offsets committed
    up to c (s <= c <= k): the new stage re-observes s..c silently, re-sends from c on and goes on; the seqs
    of the new run are above the old run's, and the 360 rows are still a replay's."""
    folder, output = fresh(tmp_path), CrashingOutput(None)
    topic = CustomerEventsTopic(output)
    raw = consume(raw_logs(validated(events), CODEC), rnd)
    snap = data.draw(st.integers(0, len(raw)), "snapshot after batch")
    commit = data.draw(st.integers(snap, len(raw)), "offsets committed up to batch")
    crash = data.draw(st.integers(commit, len(raw)), "crash after batch")
    before = identity_stage(folder / "identity", config, CODEC, output)
    identify(before, raw[:snap], topic)
    before.save()
    identify(before, raw[snap:crash], topic)
    if mid_batch and crash < len(raw):
        output.fail_at = output.flushes + 1
        with pytest.raises(RuntimeError):
            before.handle(raw[crash])
        topic.collect()
    published = len(output.records)
    after = identity_stage(folder / "identity", config, CODEC, output)
    after.catch_up([r for batch in raw[:commit] for r in batch])
    identify(after, raw[commit:], topic)
    assert after.epoch > before.epoch
    old, new = seqs(output.records[:published], CODEC), seqs(output.records[published:], CODEC)
    assert not old or not new or min(new) > max(old)
    sink = Sink(folder / "x.duckdb", CODEC)
    sink.feed(consume(topic.logs, rnd))
    assert sink.rows() == expected_fingerprints(events, config)
