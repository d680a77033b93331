"""The query tier beside fold workers: ``customer_360`` rows read from the workers' 360 topic.

Why: with fold workers, serving's rows are no longer folded there but ingested from the compacted
``touchstream.customer-360`` topic; analysts must see exactly the rows serving's own fold writes,
every typed column included, however the topic is batched or redelivered.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given
from hypothesis import strategies as st

from tests.pipeline_harness import EVENT_PARTITIONS, Sink, consume, expected_fingerprints, partition_of
from tests.unit.test_customer_360_partitions import CODEC, Workers, live
from tests.unit.test_customer_360_pipeline import PIPELINE, fresh, streams
from tests.unit.test_identity_resolution import configs
from touchstream.processors.customer_360_rows import ProfileRowsSink
from touchstream.processors.records import RawRecord
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.publishing.dead_letters import AlreadySentDeadLetters
from touchstream.topics import CUSTOMER_360_TOPIC

def topic_of(workers: Workers) -> dict:
    """The workers' 360 records on the topic's partitions (keyed by customer), offsets increasing."""
    logs = defaultdict(list)
    for topic, key, value, headers in workers.output.records:
        if topic == CUSTOMER_360_TOPIC:
            log = logs[(topic, partition_of(key, EVENT_PARTITIONS))]
            log.append(RawRecord(topic, partition_of(key, EVENT_PARTITIONS), len(log), key, value, headers))
    return logs


def table(store: Customer360Store) -> dict[str, tuple]:
    """Every column of every row but the time it was written."""
    cur = store.db.cursor()
    try:
        return {row[0]: row for row in cur.execute(f"SELECT * EXCLUDE (updated_at) FROM {store.table('customer_360')}")
                .fetchall()}
    finally:
        cur.close()


@PIPELINE
@given(events=streams(), config=configs, rnd=st.randoms(use_true_random=False))
def test_rows_ingested_from_the_workers_360s_are_the_rows_of_serving_s_own_fold(tmp_path, events, config, rnd):
    folder = fresh(tmp_path)
    workers = live(folder, events, config, rnd)
    db = DuckDBStore(folder / "query.duckdb")
    rows = ProfileRowsSink(Customer360Store(db), CODEC, AlreadySentDeadLetters())
    for batch in consume(topic_of(workers), rnd, rewinds=2):
        rows.handle(batch)
    one = Sink(folder / "one.duckdb", CODEC)
    one.feed(consume(workers.topic.logs, rnd))   # identity's records and the hand-overs: one sink folds all
    assert rows.store.fingerprints() == expected_fingerprints(events, config)
    assert table(rows.store) == table(one.store)


def test_a_score_the_360_schema_writes_as_a_double_keeps_the_worker_s_text(tmp_path):
    """A satisfaction score of 3 is 3.0 once through Avro's double; the rows keep the worker's "3"."""
    import random
    from datetime import timedelta
    from tests.event_builders import plain_event
    from tests.unit.test_customer_360 import T0
    from tests.unit.test_customer_360_partitions import a_merge_across_partitions
    events = a_merge_across_partitions()
    email = events[0]["envelope"]["identity"]["email"]
    events.append(plain_event("feedback.csat_given", T0 + timedelta(minutes=20), {"email": email}, score=3))
    workers = live(tmp_path, events, None, random.Random(5))
    rows = ProfileRowsSink(Customer360Store(DuckDBStore(tmp_path / "query.duckdb")), CODEC, AlreadySentDeadLetters())
    for batch in consume(topic_of(workers), random.Random(6)):
        rows.handle(batch)
    (customer,) = expected_fingerprints(events)
    assert rows.store.profile(customer)["attitude"]["csat"]["value"] == 3
    assert rows.store.fingerprints() == expected_fingerprints(events)


def test_an_index_only_sink_keeps_claims_and_events_but_writes_no_profile(tmp_path):
    """Serving beside fold workers: lookups resolve identifiers, timelines find events, no 360 is folded."""
    import random
    from tests.unit.test_customer_360_partitions import a_merge_across_partitions
    events = a_merge_across_partitions()
    workers = live(tmp_path, events, None, random.Random(3))
    index = Sink(tmp_path / "index.duckdb", CODEC)
    index.sink.folds = False
    index.feed(consume(workers.topic.logs, random.Random(4)))
    (customer,) = expected_fingerprints(events)
    assert index.rows() == {} and index.output.records == []
    assert index.store.resolve(events[0]["envelope"]["identity"]["email"]) == customer
    assert len(index.store.history(index.db.cursor(), [customer])) == len(events)


def test_serving_beside_fold_workers_refuses_a_rebuild_it_cannot_do():
    """Its rebuild would fold and publish 360s beside the workers': it says what to do instead."""
    import pytest
    from touchstream.processors.customer_360_rebuild import Rebuild, RebuildError
    from touchstream.serving.__main__ import WORKERS_REBUILD
    with pytest.raises(RebuildError, match="fold workers"):
        Rebuild(live=None, settings=None, refused=WORKERS_REBUILD).start()
