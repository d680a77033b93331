"""Erasure on the real stack (issue 17): a customer with complaints, a merge and a dead letter is
forgotten through ``POST /erasures``; afterwards nothing of theirs is readable on any topic (decoded with
the keys that remain), in DuckDB, or in the erasure's own audit; a rebuild of the 360 from offset 0 does
not bring them back; and another customer is untouched.

The test's own search is independent of the audit's: it looks for the person's unique word (only in
their personal values) and their customer id, in clear, in every record and every table it can read."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from confluent_kafka import Producer

from tests.integration.pipeline_helpers import record_parts, records_matching, sql, wait_for
from tests.integration.test_privacy_on_broker import complaint, records_of
from touchstream.client import Client, auth_headers, local_key
from touchstream.codec.avro_codec import AvroCodec, DecodeError
from touchstream.events.catalogue import Catalogue
from touchstream.kafka_access import kafka_access
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.processors.topic_output import TopicOutput
from touchstream.publishing.publisher import Publisher
from touchstream.serving.catchup import wait_pipeline
from touchstream.topics import DLQ_TOPIC, load_topics, raw_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
TABLES = {   # table -> its columns that may hold the person, read as text (concat: a NULL reads as "")
    "interactions": "concat(customer_id, email, phone, payload)",
    "customer_360": "concat(customer_id, profile)", "customer_identifiers": "concat(customer_id, value)",
    "complaint_cases": "concat(customer_id, case_view)",
    "identity_decisions": "concat(CAST(identifiers AS VARCHAR), customer_id)", "dead_letters": "reason",
}


def readable_copies(settings, terms: list[str]) -> dict[str, int]:
    """Records per topic where a term is readable: in the key, a header, the raw bytes, or the value
    decoded and opened with the keys that remain (the schema registry's own topic aside)."""
    codec = AvroCodec(settings.registry_url, auto_register=False, keys=TopicKeyRing(settings))
    topics = [s.name for s in load_topics(settings.topic_config) if s.name not in ("_schemas", "_touchstream_keys")]

    def readable(record) -> bool:
        parts = record_parts(record)
        try:
            parts.append(json.dumps(codec.decode(record.value).record, default=str).encode())
        except DecodeError:
            pass
        text = b" ".join(parts).decode("utf-8", "ignore").lower()
        return any(t in text for t in terms)
    return records_matching(settings, topics, readable)


def readable_rows(settings, terms: list[str]) -> dict[str, int]:
    out = {}
    for table, text in TABLES.items():
        n = sql(settings, f"SELECT count(*) FROM {table} WHERE "
                          + " OR ".join(f"contains(lower({text}), ?)" for _ in terms), terms)[0][0]
        if n:
            out[table] = n
    return out


def late_dead_letter(settings, tag: str, email: str, word: str) -> None:
    """A sealed event the sinks refuse (occurred far in the future): a dead letter with the person in it."""
    event = complaint(tag, 9, email, word)
    future = datetime.now(timezone.utc) + timedelta(days=30)
    event["envelope"]["occurred_at"] = future.isoformat()
    valid = Catalogue().validate(event, now=future, source="crm")   # the SDK would refuse it; a buggy producer not
    codec = AvroCodec(settings.registry_url, auto_register=False, keys=TopicKeyRing(settings))
    output = TopicOutput(settings, client_id=f"test-{tag}")
    output.send(raw_topic("complaint"), f"dl-{tag}", codec.encode_sealed(valid.schema, valid.record, f"email:{email.lower()}"),
                [("event_id", valid.event_id.encode()), ("event_type", b"complaint.opened")])
    output.flush()


def erase(settings, subject: str) -> dict:
    url = f"{settings.query_url}/erasures"
    answer = httpx.post(url, json={"subject": subject}, headers=auth_headers(settings), timeout=30)
    assert answer.status_code == 202, answer.text
    erasure_id = answer.json()["erasure_id"]

    def done():
        status = httpx.get(f"{url}/{erasure_id}", headers=auth_headers(settings), timeout=30).json()
        return status if status["state"] == "erased" else None
    return wait_for(done, timeout=120, what=f"erasure {erasure_id}")


def test_an_erased_customer_is_readable_nowhere_and_a_rebuild_does_not_bring_them_back(stack):
    word, tag = uuid.uuid4().hex[:12], f"er-{uuid.uuid4().hex[:10]}"
    email, phone = f"nora.{word}@example.com", "+31 6 2345 " + str(int(word[:6], 16) % 10_000).zfill(4)
    other = f"olaf.{uuid.uuid4().hex[:12]}@example.com"
    events = [complaint(tag, 0, email, word), complaint(tag, 1, email, word), complaint(tag, 2, other, "kept")]
    events[1]["envelope"]["identity"]["phone"] = phone   # seen together: a merge of the e-mail and the phone
    letters = sql(stack, "SELECT count(*) FROM dead_letters")[0][0]
    with Publisher(stack, source="crm") as publisher:
        publisher.publish_batch(events)
    late_dead_letter(stack, tag, email, word)
    wait_pipeline(stack, timeout=180)
    wait_for(lambda: sql(stack, "SELECT count(*) FROM dead_letters")[0][0] > letters, timeout=60, what="the dead letter")
    customer = sql(stack, "SELECT customer_id FROM customer_identifiers WHERE value = ?", [email])[0][0]
    kept = sql(stack, "SELECT customer_id FROM customer_identifiers WHERE value = ?", [other])[0][0]
    assert sql(stack, "SELECT count(*) FROM customer_identifiers WHERE customer_id = ?", [customer])[0][0] >= 2
    terms = [word, customer.lower()]
    assert readable_copies(stack, terms), "before: the person is readable with the keys"
    assert set(readable_rows(stack, terms)) >= {"interactions", "customer_360", "complaint_cases"}

    [sealed] = records_of(stack, raw_topic("complaint"), f"{tag}-0")
    token = AvroCodec(stack.registry_url, auto_register=False).decode(sealed.value()).record["envelope"]["identity"]["email"]
    with Client(stack.query_url, api_key=local_key(stack)) as client:   # the operator's key has the pii scope
        assert client.open_values([token]) == [email]

    status = erase(stack, f"email:{email}")
    assert status["customer_ids"] == [customer] and status["kids_deleted"] >= 2, status   # the e-mail and the phone, at least
    assert status["rows_by_table"]["interactions"] == 2

    with Client(stack.query_url, api_key=local_key(stack)) as client:
        assert client.open_values([token]) == [None], "a subscriber's copy of the token opens no more"
    wait_pipeline(stack, timeout=180)
    assert readable_rows(stack, terms) == {}
    assert readable_copies(stack, [word]) == {}
    assert sql(stack, "SELECT count(*) FROM interactions WHERE correlation_id = ?", [tag])[0][0] == 3, \
        "the counts stay: the person's interactions are kept, anonymised"
    assert sql(stack, "SELECT count(*) FROM customer_identifiers WHERE value = ?", [other]) == [[1]]
    assert sql(stack, "SELECT count(*) FROM customer_360 WHERE customer_id = ?", [kept]) == [[1]]

    report = audit(stack, status["erasure_id"])
    assert report["clean"], report
    assert report["topics"]["scanned"][raw_topic("complaint")] > 0 and DLQ_TOPIC in report["topics"]["scanned"]
    scanned = set(report["tables"]["scanned"])
    assert {"interactions", "complaint_cases", "dead_letters"} <= scanned and any(
        t.startswith("customer_360_v") for t in scanned), scanned
    assert any(f.endswith("identity.sqlite") for f in report["files"]["scanned"]), report["files"]

    headers = auth_headers(stack)
    started = httpx.post(f"{stack.query_url}/admin/rebuild/customer-360", headers=headers, timeout=30)
    assert started.status_code < 300, started.text
    wait_for(lambda: httpx.get(f"{stack.query_url}/admin/rebuild/customer-360", headers=headers,
                               timeout=30).json()["state"] in ("done", "failed"), timeout=300, what="the rebuild")
    rebuilt = httpx.get(f"{stack.query_url}/admin/rebuild/customer-360", headers=headers, timeout=30).json()
    assert rebuilt["state"] == "done", rebuilt
    time.sleep(1)
    assert readable_rows(stack, terms) == {}, "the rebuild brought the person back"
    assert sql(stack, "SELECT count(*) FROM customer_360 WHERE customer_id = ?", [kept]) == [[1]]
    assert audit(stack, status["erasure_id"])["clean"]

    # A copy in clear that erasure could not reach (a buggy producer's): the audit finds it.
    producer = Producer(kafka_access(stack, "admin").confluent())
    producer.produce(DLQ_TOPIC, key=b"copy", value=f"could not deliver to {email.upper()}".encode())
    producer.flush(30)
    found = audit(stack, status["erasure_id"])
    assert not found["clean"] and found["topics"]["found"] == {DLQ_TOPIC: 1}, found


def audit(settings, erasure_id: str) -> dict:
    answer = httpx.get(f"{settings.query_url}/erasures/{erasure_id}/report", headers=auth_headers(settings),
                       timeout=600)
    assert answer.status_code == 200, answer.text
    return answer.json()
