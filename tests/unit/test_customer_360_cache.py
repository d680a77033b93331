"""What the customer-360 sink keeps between batches: profiles in memory, fold states in DuckDB, claims.

The sink folds each batch onto profiles from its LRU, or from the fold state stored when
the LRU let the customer go (``FoldStates``), and refolds from stored events only what
it finds in neither. These tests hold the invariant that makes that equal to a replay
(a stored state is the fold of every committed event of a customer out of the cache),
batch by batch, through redeliveries, rolled back batches and restarts, and check the
compiled state codec against a plain recursive one.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tests.event_builders import plain_event
from tests.local_codec import LocalCodec
from tests.pipeline_harness import Live, Sink, consume, expected_fingerprints, pipeline
from tests.unit.test_customer_360 import FAST, SMALL, T0
from tests.unit.test_customer_360 import streams as fold_streams
from tests.unit.test_customer_360_pipeline import PIPELINE, CrashingOutput, fresh
from tests.unit.test_customer_360_pipeline import streams as pipeline_streams
from tests.unit.test_identity_resolution import configs
from touchstream.processors import customer_360_cache as cache
from touchstream.processors.decoding import decode_event
from touchstream.projections import customer_360 as c360
from touchstream.projections.customer_360_codec import encode, from_dict, pack, shape_of, to_dict, unpack

CODEC = LocalCodec()


@FAST
@given(events=fold_streams())
def test_the_compiled_codec_writes_the_plain_format_and_reads_it_back(events):
    profile = c360.fold(events, "CU-1", SMALL)
    assert to_dict(profile) == encode(profile)   # by the hints == by the values' own types
    assert from_dict(to_dict(profile)) == profile == unpack(pack(profile))


def test_a_state_class_that_changes_changes_the_shape():
    @dataclasses.dataclass
    class Old:
        at: datetime

    @dataclasses.dataclass
    class New:
        at: str

    New.__qualname__ = Old.__qualname__
    assert shape_of(Old) != shape_of(New) and shape_of(Old) == shape_of(Old)


def _stored(sink: Sink) -> dict[str, bytes]:
    table = sink.sink.cache.states.table
    return dict(sink.db.cursor().execute(f"SELECT customer_id, state FROM {table}").fetchall())


def _folded_from_history(sink: Sink, customer: str) -> c360.Profile:
    con = sink.db.cursor()
    history = sink.store.history(con, [customer])
    return c360.fold([decode_event(CODEC, value) for _c, _e, value in history], customer)


def assert_the_invariant(sink: Sink) -> None:
    """Stored states only for customers out of the cache, each the fold of every committed event it holds;
    every remembered claim is the table's."""
    stored, cached = _stored(sink), set(sink.sink.cache._lru)
    assert cached.isdisjoint(stored)
    for customer, state in stored.items():
        assert to_dict(unpack(state)) == to_dict(_folded_from_history(sink, customer)), customer
    remembered = sink.sink.claim_cache._lru
    table = sink.store.claims(sink.db.cursor(), remembered)
    assert {k: c for k, c in remembered.items() if c is not None} == table


@PIPELINE
@given(events=pipeline_streams(), config=configs, cache_size=st.sampled_from([1, 2]), in_flush=st.booleans(),
       data=st.data(), rnd=st.randoms(use_true_random=False))
def test_after_every_batch_a_stored_state_is_the_fold_of_its_customers_committed_events(
        tmp_path, events, config, cache_size, in_flush, data, rnd):
    with every_profile_stored():
        _feed_checking_the_invariant(tmp_path, events, config, cache_size, in_flush, data, rnd)


@contextmanager
def every_profile_stored():
    """Store every profile the cache lets go, however few its events (the examples' customers have few)."""
    before, cache.MIN_STORED_EVENTS = cache.MIN_STORED_EVENTS, 1
    try:
        yield
    finally:
        cache.MIN_STORED_EVENTS = before


def _feed_checking_the_invariant(tmp_path, events, config, cache_size, in_flush, data, rnd):
    folder, output = fresh(tmp_path), CrashingOutput(None)
    topic, sink = pipeline(folder, events, CODEC, rnd, config=config, cache_size=cache_size, output=output)
    deliveries = consume(topic.logs, rnd, rewinds=2)
    output.fail_at = data.draw(st.integers(1, len(deliveries) + 1), "failing flush") if in_flush else None
    for i, batch in enumerate(deliveries):
        try:
            sink.feed([batch])
        except RuntimeError:
            assert_the_invariant(sink)
            sink.feed([batch])   # the rolled back batch, again
        assert_the_invariant(sink)
        if i == len(deliveries) // 2:
            sink.restart()
            assert_the_invariant(sink)
    assert sink.rows() == expected_fingerprints(events, config)


def _visits(customer: str, n: int, start: int = 0) -> list[dict]:
    return [plain_event("web.page_viewed", T0 + timedelta(hours=start + i), {"customer_id": customer},
                        event_id=f"{customer}-{start + i}") for i in range(n)]


def test_a_customer_the_cache_let_go_is_restored_from_its_state_not_refolded(tmp_path):
    live = Live(tmp_path, CODEC)
    live.sink.sink.cache.size = 1
    live.sink.sink.cache.min_stored = 3
    live.send(*_visits("CU-A", 3))
    live.send(*_visits("CU-B", 2))             # CU-A leaves the cache: its state is stored
    assert set(_stored(live.sink)) == {"CU-A"}
    refolds = live.sink.sink.stats["refolds"]
    live.send(*_visits("CU-A", 2, start=10))
    assert live.sink.sink.stats["refolds"] == refolds and live.sink.sink.cache.stats["restored"] == 1
    assert not _stored(live.sink)   # CU-A's row was taken; CU-B (2 events) was let go unstored
    assert live.sink.events_of("CU-A") == 5
    everything = _visits("CU-A", 3) + _visits("CU-B", 2) + _visits("CU-A", 2, start=10)
    assert live.sink.rows() == expected_fingerprints(everything)


def test_a_state_of_another_shape_or_config_is_dropped_and_the_customer_refolded(tmp_path):
    live = Live(tmp_path, CODEC)
    live.sink.sink.cache.size, live.sink.sink.cache.min_stored = 1, 1
    live.send(*_visits("CU-A", 3), *_visits("CU-C", 1))
    live.send(*_visits("CU-B", 1))
    table = live.sink.sink.cache.states.table
    with live.sink.db.transaction() as con:
        con.execute(f"UPDATE {table} SET shape = 'an older release' WHERE customer_id = 'CU-A'")
    live.sink.sink.cache.config = dataclasses.replace(live.sink.sink.config, last_n=7)   # CU-C's is "older"
    refolds = live.sink.sink.stats["refolds"]
    live.send(*_visits("CU-A", 1, start=10), *_visits("CU-C", 1, start=10))
    assert live.sink.sink.stats["refolds"] == refolds + 2 and live.sink.sink.cache.stats["restored"] == 0
    assert_the_invariant(live.sink)
    everything = _visits("CU-A", 3) + _visits("CU-C", 1) + _visits("CU-B", 1) + _visits("CU-A", 1, start=10) + \
        _visits("CU-C", 1, start=10)
    assert live.sink.rows() == expected_fingerprints(everything)


def test_stored_states_are_dropped_with_their_version(tmp_path):
    live = Live(tmp_path, CODEC)
    live.sink.sink.cache.size, live.sink.sink.cache.min_stored = 0, 1
    live.send(*_visits("CU-A", 2))
    table = live.sink.sink.cache.states.table
    assert _stored(live.sink)
    live.sink.store.drop()
    assert not live.sink.db.cursor().execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchone()[0]


def test_a_profile_of_few_events_is_let_go_unstored_and_refolded_when_its_customer_returns(tmp_path):
    live = Live(tmp_path, CODEC)
    live.sink.sink.cache.size, live.sink.sink.cache.min_stored = 1, 3
    live.send(*_visits("CU-A", 2))
    live.send(*_visits("CU-B", 1))
    assert not _stored(live.sink)
    refolds = live.sink.sink.stats["refolds"]
    live.send(*_visits("CU-A", 1, start=10))
    assert live.sink.sink.stats["refolds"] == refolds + 1
    assert live.sink.rows() == expected_fingerprints(_visits("CU-A", 2) + _visits("CU-B", 1) + _visits("CU-A", 1, 10))
