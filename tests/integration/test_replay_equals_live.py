"""Replay equals live: the interaction log rebuilt from offset 0 hashes the same as the live one, also
after erasures (an erased person's events are read back anonymous, and the ledger is applied again)."""

from __future__ import annotations

import threading

import pytest

from tests.integration.pipeline_helpers import page_view, sql, wait_for
from touchstream.codec.avro_codec import AvroCodec
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.processors.erasure_stage import ErasureStage
from touchstream.processors.interaction_log import InteractionLogSink
from touchstream.processors.replay import replay
from touchstream.processors.topic_output import NullOutput
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.publishing.dead_letters import AlreadySentDeadLetters
from touchstream.publishing.publisher import Publisher
from touchstream.serving.catchup import wait_caught_up
from touchstream.topics import ERASURES_TOPIC, load_topics, raw_topics

pytestmark = pytest.mark.integration

# Everything but the wall-clock ingestion time: same events, same positions, same values.
HASHED = "event_id, event_type, occurred_at, recorded_at, channel, content, initiated_by, source, " \
         "correlation_id, customer_id, email, phone, cookie_id, amount, currency, payload, schema_id, " \
         "topic, \"partition\", \"offset\""
HASH_SQL = f"SELECT count(*), bit_xor(hash({HASHED})) FROM interactions"


class Between:
    """The erasure stage's view of a 360 sink, here none: nothing to hold still, no cache to drop."""

    lock = threading.Lock()

    def forget(self, customers: set[str]) -> None:
        return None


def test_rebuild_from_offset_zero_equals_live(stack, tmp_path):
    with Publisher(stack, source="web-shop") as publisher:
        publisher.publish_batch([page_view("replay", n) for n in range(500)])
    wait_caught_up(stack, timeout=120)
    # An event that named an erased customer id after its erasure is forgotten again by serving's sweep
    # (every 30 s, README Erasure); the comparison is of the log once that has happened.
    wait_for(lambda: sql(stack, "SELECT count(*) FROM interactions WHERE customer_id IN "
                                "(SELECT unnest(customer_ids) FROM erasures)") == [[0]], timeout=90,
             what="the erasure sweep")
    live = sql(stack, HASH_SQL)[0]

    store = DuckDBStore(tmp_path / "rebuild.duckdb")
    ring = TopicKeyRing(stack)
    codec = AvroCodec(stack.registry_url, auto_register=False, keys=ring)
    sink = InteractionLogSink(store, codec, AlreadySentDeadLetters(), name="rebuild")
    replay(stack, raw_topics(load_topics()), sink.handle)
    # The erasure ledger, as serving's erasure stage reads it on a DuckDB rebuilt from offset 0: an erased
    # person's events came back anonymous (their keys are gone); their customer ids are forgotten again.
    erasures = ErasureStage(store, codec, ring, NullOutput(), AlreadySentDeadLetters(), Between())
    replay(stack, [ERASURES_TOPIC], erasures.handle)
    count, digest = store.query(HASH_SQL).rows[0]
    store.close()
    assert live[0] >= 500
    assert [count, str(digest)] == [live[0], str(live[1])]
