"""Replay equals live: the interaction log rebuilt from offset 0 hashes the same as the live one."""

from __future__ import annotations

import pytest

from tests.integration.pipeline_helpers import page_view, sql
from touchstream.codec.avro_codec import AvroCodec
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.processors.interaction_log import InteractionLogSink
from touchstream.processors.replay import replay
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.publishing.dead_letters import AlreadySentDeadLetters
from touchstream.publishing.publisher import Publisher
from touchstream.serving.catchup import wait_caught_up
from touchstream.topics import load_topics, raw_topics

pytestmark = pytest.mark.integration

# Everything but the wall-clock ingestion time: same events, same positions, same values.
HASHED = "event_id, event_type, occurred_at, recorded_at, channel, content, initiated_by, source, " \
         "correlation_id, customer_id, email, phone, cookie_id, amount, currency, payload, schema_id, " \
         "topic, \"partition\", \"offset\""
HASH_SQL = f"SELECT count(*), bit_xor(hash({HASHED})) FROM interactions"


def test_rebuild_from_offset_zero_equals_live(stack, tmp_path):
    with Publisher(stack, source="web-shop") as publisher:
        publisher.publish_batch([page_view("replay", n) for n in range(500)])
    wait_caught_up(stack, timeout=120)
    live = sql(stack, HASH_SQL)[0]

    store = DuckDBStore(tmp_path / "rebuild.duckdb")
    sink = InteractionLogSink(store, AvroCodec(stack.registry_url, auto_register=False, keys=TopicKeyRing(stack)),
                              AlreadySentDeadLetters(),
                              name="rebuild")
    replay(stack, raw_topics(load_topics()), sink.handle)
    count, digest = store.query(HASH_SQL).rows[0]
    store.close()
    assert live[0] >= 500
    assert [count, str(digest)] == [live[0], str(live[1])]
