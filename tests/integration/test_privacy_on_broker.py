"""Personal values on the real stack (issue 17): sealed before they reach Kafka, by the SDK and the
collector alike; opened by the services, so DuckDB answers with them; never readable on the raw topic,
in its record keys or on the key topic; and the key topic out of a subscriber's reach."""

from __future__ import annotations

import uuid

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tests.integration.pipeline_helpers import record_parts, records_matching, sql, wait_count
from touchstream.codec.avro_codec import AvroCodec
from touchstream.kafka_access import kafka_access
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.privacy.sealing import PREFIX
from touchstream.publishing.api_keys import ApiKeyStore
from touchstream.publishing.publisher import Publisher
from touchstream.serving.catchup import wait_pipeline
from touchstream.topics import (COMPLAINT_CASES_TOPIC, COMPLAINT_SLA_TOPIC, CUSTOMER_360_TOPIC, CUSTOMER_EVENTS_TOPIC,
                                DECISIONS_TOPIC, FINDINGS_TOPIC, KEYS_TOPIC, raw_topic)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def complaint(tag: str, n: int, email: str, secret: str = "never came") -> dict:
    return {"envelope": {"event_id": f"{tag}-{n}", "event_type": "complaint.opened", "channel": "email",
                         "content": "complaint", "initiated_by": "customer", "occurred_at": "2026-03-01T09:00:00Z",
                         "identity": {"email": email}, "correlation_id": tag},
            "case_id": f"case-{tag}-{n}", "category": "delivery", "priority": "high",
            "description": f"my parcel {secret} ({n})"}


def records_of(settings, topic: str, tag: str, user: str = "admin") -> list:
    """Every record of ``topic`` whose event_id header starts with ``tag`` (start to end, all partitions)."""
    consumer = Consumer({**kafka_access(settings, user).confluent(), "group.id": f"privacy-{tag}",
                         "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(topic, timeout=20).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1] for p in parts}
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        found, done = [], set()
        while len(done) < len(parts):
            for m in consumer.consume(500, timeout=1.0):
                if m.error() is None:
                    if dict(m.headers() or []).get("event_id", b"").decode().startswith(tag):
                        found.append(m)
                    if m.offset() + 1 >= ends[m.partition()]:
                        done.add(m.partition())
            done |= {p for p, end in ends.items() if end == 0}
        return found
    finally:
        consumer.close()


def test_personal_values_are_sealed_on_kafka_and_open_in_duckdb(stack):
    tag, word = f"pv-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex[:12]   # the word is only in personal fields
    emails = [f"Tess.{word}@Example.com", f"ugo.{word}@example.com"]
    with Publisher(stack, source="crm") as publisher:
        publisher.publish(complaint(tag, 0, emails[0], word))
    secret, _ = ApiKeyStore(stack.api_keys_path).create(f"mail-{tag}", ["email"])
    answer = httpx.post(f"{stack.collector_url}/events", json=complaint(tag, 1, emails[1], word),
                        headers={"X-API-Key": secret}, timeout=30)
    assert answer.status_code == 202, answer.text

    wait_count(stack, "correlation_id = ?", [tag], 2)
    rows = sql(stack, "SELECT email, payload->>'description' FROM interactions WHERE correlation_id = ? "
                      "ORDER BY event_id", [tag])
    assert rows == [[emails[0], f"my parcel {word} (0)"], [emails[1], f"my parcel {word} (1)"]]

    raw = records_of(stack, raw_topic("complaint"), tag)
    assert len(raw) == 2
    ring = TopicKeyRing(stack)
    for record, email in zip(sorted(raw, key=lambda m: m.headers()[1][1]), emails):
        assert word.encode() not in record.value() and word.encode() not in record.key()
        assert record.key() == ring.ref(f"email:{email.lower()}").encode()   # a pseudonym keeps the partition
        plain = AvroCodec(stack.registry_url, auto_register=False).decode(record.value()).record
        assert plain["description"].startswith(PREFIX) and plain["envelope"]["identity"]["email"].startswith(PREFIX)
        opened = AvroCodec(stack.registry_url, auto_register=False, keys=ring).decode(record.value()).record
        assert opened["envelope"]["identity"]["email"] == email
    ring.close()


def test_the_key_topic_holds_no_plain_key_and_no_subscriber_reads_it(stack):
    tag, word = f"kt-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex[:12]
    with Publisher(stack, source="crm") as publisher:
        publisher.publish(complaint(tag, 0, f"vera.{word}@example.com", word))
    consumer = Consumer({**kafka_access(stack, "admin").confluent(), "group.id": f"keys-{tag}",
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(KEYS_TOPIC, 0, 0)])
    values = [m.value() for m in consumer.consume(100_000, timeout=5.0) if m.error() is None and m.value()]
    consumer.close()
    assert values and not any(word.encode() in v for v in values)

    subscriber = Consumer({**kafka_access(stack, "subscriber").confluent(), "group.id": f"sub-{tag}"})
    try:
        seen = subscriber.list_topics(KEYS_TOPIC, timeout=15).topics[KEYS_TOPIC]
        assert seen.error is not None and seen.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, seen.error
        with pytest.raises(KafkaException):
            subscriber.get_watermark_offsets(TopicPartition(KEYS_TOPIC, 0), timeout=15)
        subscriber.get_watermark_offsets(TopicPartition(raw_topic("complaint"), 0), timeout=15)   # it reads the rest
    finally:
        subscriber.close()


DERIVED = (CUSTOMER_EVENTS_TOPIC, DECISIONS_TOPIC, CUSTOMER_360_TOPIC, FINDINGS_TOPIC, COMPLAINT_CASES_TOPIC,
           COMPLAINT_SLA_TOPIC)


def clear_copies(settings, word: bytes) -> dict[str, int]:
    """Records of every derived topic holding ``word`` in clear, in key, value or a header."""
    return records_matching(settings, DERIVED, lambda r: any(word in p for p in record_parts(r)))


def test_what_the_services_derive_is_sealed_too(stack):
    """Identity's anchor header, memberships and decisions, the 360 and the SLA events carry the
    customer's identifiers sealed; DuckDB, which the services fill from them, has them in clear."""
    word, tag = uuid.uuid4().hex[:12], f"dv-{uuid.uuid4().hex[:10]}"   # the word only in personal values
    email, phone = f"wil.{word}@example.com", "+31 6 1234 " + str(int(word[:6], 16) % 10_000).zfill(4)
    first = complaint(tag, 0, email, word)
    second = complaint(tag, 1, email, word)
    second["envelope"]["identity"]["phone"] = phone   # seen together: a merge, a membership, a decision
    with Publisher(stack, source="crm") as publisher:
        publisher.publish_batch([first, second])
    wait_pipeline(stack, timeout=180)
    customer = sql(stack, "SELECT customer_id FROM customer_identifiers WHERE value = ?", [email])
    assert customer, "identity resolved the e-mail"
    assert sql(stack, "SELECT count(*) FROM customer_360 WHERE customer_id = ?", [customer[0][0]])[0][0] == 1
    assert clear_copies(stack, word.encode()) == {}
