"""No producer controls time: the 2099 event through the collector and straight onto a raw topic.

The attack the hostile test found: one ``web.page_viewed`` dated 2099 moved the SLA watermark to
2099 for good, so every running clock breached. Here the same event is refused by the collector
(400, with its path) and, written by a raw producer that skips every check, dead-lettered by each
raw consumer with the reason in the headers; no SLA clock, watermark or row moves.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from tests.integration.pipeline_helpers import page_view, sql, wait_for
from touchstream.codec.avro_codec import AvroCodec
from touchstream.events.catalogue import Catalogue
from touchstream.events.envelope import MAX_CLOCK_SKEW
from touchstream.kafka_access import KafkaAccess, kafka_access
from touchstream.publishing.api_keys import ApiKeyStore
from touchstream.serving.catchup import wait_pipeline
from touchstream.stack.topic_admin import ensure_topics
from touchstream.topics import DLQ_TOPIC, TopicSpec, raw_topic

pytestmark = pytest.mark.integration
Y2099 = "2099-01-01T00:00:00Z"
RAW_CONSUMERS = {b"interaction_log", b"identity", b"complaint_resolution"}


def timestamp_type(broker: KafkaAccess, topic: str) -> str:
    admin = KafkaAdminClient(**broker.kafka_python())
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, ["message.timestamp.type"])],
                                           config_filter="all")
        return next(iter(described.values()))[topic]["message.timestamp.type"]["value"]
    finally:
        admin.close()


def clocks(settings) -> list[list]:
    return sql(settings, "SELECT case_id, clock, state, breached, due_at, met_at FROM complaint_sla ORDER BY ALL")


def latest_times(settings) -> list[list]:
    return sql(settings, "SELECT epoch(max(latest)) FROM complaint_sla_partitions UNION ALL "
                         "SELECT epoch(max(watermark)) FROM complaint_sla_watermark")


def test_raw_topics_are_stamped_by_the_broker_and_an_old_topic_is_brought_in_line(stack, broker, unique_name):
    assert timestamp_type(broker, raw_topic("web")) == "LogAppendTime"
    old = unique_name("old-raw")
    ensure_topics(broker, [TopicSpec(old, 1, 1)])
    assert timestamp_type(broker, old) == "CreateTime"
    assert ensure_topics(broker, [TopicSpec(old, 1, 1, {"message.timestamp.type": "LogAppendTime"})]) == []
    assert timestamp_type(broker, old) == "LogAppendTime"


def test_the_collector_refuses_an_event_from_2099(stack):
    tag = f"t-{uuid.uuid4().hex[:10]}"
    secret, _ = ApiKeyStore(stack.api_keys_path).create(f"web-{tag}", ["web"])
    event = page_view(tag)
    event["envelope"]["occurred_at"] = event["envelope"]["recorded_at"] = Y2099
    response = httpx.post(f"{stack.collector_url}/events", json=event, headers={"X-API-Key": secret}, timeout=30)
    assert response.status_code == 400, response.text
    assert any(p["path"].endswith("envelope.occurred_at") for p in response.json()["problems"])


def test_a_2099_event_written_straight_to_a_raw_topic_moves_no_clock(stack):
    wait_pipeline(stack, timeout=180)
    before_clocks = clocks(stack)
    tag = f"t-{uuid.uuid4().hex[:10]}"
    event = page_view(tag)
    event["envelope"]["occurred_at"] = event["envelope"]["recorded_at"] = Y2099
    event["envelope"]["source"] = "forger"
    schema = Catalogue().schema("web.page_viewed")
    # What a producer that skips the publisher writes: the Avro record, no check made.
    record = Catalogue().validate({**event, "envelope": {**event["envelope"], "occurred_at": "2026-03-01T09:00:00Z",
                                                         "recorded_at": "2026-03-01T09:00:00Z"}}).record
    y2099 = datetime(2099, 1, 1, tzinfo=timezone.utc)
    record["envelope"] = {**record["envelope"], "occurred_at": y2099, "recorded_at": y2099}
    producer = KafkaProducer(**kafka_access(stack, "admin").kafka_python())
    marker = tag.encode()
    meta = producer.send(raw_topic("web"), key=marker, value=AvroCodec(stack.registry_url, auto_register=False).encode(schema, record)).get(30)
    producer.close()

    consumer = KafkaConsumer(**kafka_access(stack, "admin").kafka_python(), enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=1000)
    consumer.assign([TopicPartition(DLQ_TOPIC, 0)])
    seen = []
    wait_for(lambda: seen.extend(m for b in consumer.poll(timeout_ms=500).values() for m in b if m.key == marker)
             or {dict(m.headers)["dlq.consumer"] for m in seen} >= RAW_CONSUMERS,
             timeout=90, what="a dead letter from each raw-topic consumer")
    consumer.close()
    for letter in seen:
        headers = dict(letter.headers)
        assert b"envelope.occurred_at" in headers["dlq.reason"] and int(headers["dlq.offset"]) == meta.offset

    wait_pipeline(stack, timeout=180)
    assert sql(stack, "SELECT count(*) FROM interactions WHERE correlation_id = ?", [tag]) == [[0]]
    assert clocks(stack) == before_clocks
    ceiling = (datetime.now(timezone.utc) + MAX_CLOCK_SKEW + timedelta(minutes=1)).timestamp()
    for (latest,) in latest_times(stack):
        assert latest is None or latest <= ceiling
