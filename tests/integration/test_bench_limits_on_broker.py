"""The bench's limit measurements against the session's real broker, at a tiny size.

Only counts and "a rate was measured" are checked: timings on a shared machine say
nothing about correctness. Every test uses a topic of its own, so the raw topics other
tests publish to never change what is counted here.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from confluent_kafka import Producer

from tests.conftest import unavailable, unique_name
from tests.event_builders import CAT, plain_event
from touchstream.bench import kafka_perf_tools as tools
from touchstream.bench import raw_consume
from touchstream.codec.avro_codec import AvroCodec
from touchstream.registry.credentials import client_config
from touchstream.stack import local_stack
from touchstream.stack.topic_admin import ensure_topics, existing_topics
from touchstream.topics import TopicSpec

pytestmark = pytest.mark.integration
T0 = datetime(2026, 4, 6, 9, tzinfo=timezone.utc)
RECORDS = 60


@pytest.fixture(scope="module")
def registry(settings, broker):
    """The stack's schema registry; started here (and stopped again) only if not already running."""
    started = local_stack.supervisor(settings).running_pid("registry") is None
    if started:
        try:
            local_stack.up(settings, ["registry"])
        except Exception as exc:  # noqa: BLE001
            local_stack.down(settings, ["registry"])
            unavailable(f"schema registry could not be started ({type(exc).__name__}): {exc}")
    yield settings.registry_url
    if started:
        local_stack.down(settings, ["registry"])


@pytest.fixture
def avro_topic(settings, broker, registry) -> tuple[str, int]:
    """A fresh 2-partition topic holding RECORDS Confluent-framed events of two types (two schema ids)."""
    topic = unique_name("bench-raw")
    ensure_topics(broker, [TopicSpec(topic, 2, 1)])
    codec = AvroCodec(client_config(settings, write=True))
    producer = Producer(broker.confluent(**{"acks": "all", "linger.ms": 5}))
    total = 0
    for i in range(RECORDS):
        event_type = "web.page_viewed" if i % 2 else "phone.call_ended"
        valid = CAT.validate(plain_event(event_type, T0, {"customer_id": f"CU-{i % 7}"}),
                             now=datetime(2100, 1, 1, tzinfo=timezone.utc))
        value = codec.encode(valid.schema, valid.record)
        total += len(value)
        producer.produce(topic, key=f"CU-{i % 7}".encode(), value=value)
    assert producer.flush(30) == 0
    return topic, total


@pytest.mark.parametrize("client", raw_consume.CLIENTS)
def test_consume_decode_reads_and_decodes_every_record(settings, avro_topic, client):
    topic, total = avro_topic
    result = raw_consume.consume_decode(settings, [topic], RECORDS, client)
    assert result["client"] == client
    assert result["records"] == RECORDS and result["bytes"] == total
    assert result["seconds"] > 0 and result["rate"] > 0


@pytest.mark.parametrize("client", raw_consume.CLIENTS)
def test_consume_only_counts_the_same_records(settings, avro_topic, client):
    topic, total = avro_topic
    result = raw_consume.consume_only(settings, [topic], RECORDS, client)
    assert (result["records"], result["bytes"]) == (RECORDS, total) and result["rate"] > 0


def test_codec_decoder_reads_the_same_records(settings, avro_topic):
    topic, total = avro_topic
    result = raw_consume.consume_decode(settings, [topic], RECORDS, "confluent-kafka", decoder="codec")
    assert (result["records"], result["bytes"]) == (RECORDS, total)


@pytest.mark.parametrize("client", raw_consume.CLIENTS)
def test_asking_for_more_records_than_the_topics_hold_fails(settings, avro_topic, client):
    topic, _ = avro_topic
    with pytest.raises(raw_consume.LimitError, match=f"only {RECORDS} of {RECORDS + 5}"):
        raw_consume.consume_only(settings, [topic], RECORDS + 5, client, stall_timeout=2.0)


@pytest.mark.parametrize("client", raw_consume.CLIENTS)
def test_an_unknown_topic_is_an_error(settings, broker, client):
    with pytest.raises(raw_consume.LimitError, match="not found"):
        raw_consume.consume_only(settings, [unique_name("no-such-topic")], 1, client)


def test_consumer_perf_on_a_short_topic_raises_with_the_count(settings, broker):
    with tools.bench_topic(settings, 1) as topic:
        assert topic in existing_topics(broker)
        with pytest.raises(tools.PerfToolError, match="read 0 of 10"):
            tools.consumer_perf(settings, topic, 10, idle_ms=2000)


def test_producer_then_consumer_perf_on_a_throwaway_topic(settings, broker):
    def bench_topics() -> set[str]:
        return {name for name in existing_topics(broker) if name.startswith("touchstream-bench-")}

    before = bench_topics()
    produced, consumed = tools.run_pair(settings, 1000, 200)
    assert produced["records"] == 1000 and produced["rate"] > 0 and produced["latency_p99_ms"] >= 0
    assert "records sent" in produced["raw"]
    assert consumed["records"] >= 1000 and consumed["rate"] > 0 and consumed["seconds"] > 0
    assert bench_topics() == before
