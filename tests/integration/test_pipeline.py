"""End to end on the real stack: SDK, HTTP and JSON Lines publishing into the DuckDB log.

Each test tags its events with a unique correlation id and counts only those, so
tests share the stack's raw topics without seeing each other's events.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.integration.pipeline_helpers import page_view, sql, wait_count, wait_for
from touchstream.cli import main as cli_main
from touchstream.client import auth_headers
from touchstream.kafka_access import kafka_access
from touchstream.publishing.api_keys import ApiKeyStore
from touchstream.publishing.publisher import Publisher, ScopeError
from touchstream.topics import DLQ_TOPIC

pytestmark = pytest.mark.integration


def tag() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def test_sdk_events_land_exactly_once(stack):
    t = tag()
    events = [page_view(t, n) for n in range(20)]
    with Publisher(stack, source="web-shop", channels={"web"}) as publisher:
        publisher.publish_batch(events)
        publisher.publish_batch(events[:5])  # a retry: same event ids again
    assert wait_count(stack, "correlation_id = ?", [t], 20) == 20
    rows = sql(stack, "SELECT count(DISTINCT event_id), min(source), min(channel) FROM interactions WHERE correlation_id = ?", [t])
    assert rows == [[20, "web-shop", "web"]]


def test_typed_helper_and_scope(stack):
    t = tag()
    with Publisher(stack, source="pbx", channels={"phone"}) as publisher:
        publisher.phone.call_ended(
            identity={"phone": "+31 20 555 0100"}, content="complaint", initiated_by="customer",
            occurred_at="2026-03-01T09:12:00Z", correlation_id=t, call_id="c-1", direction="inbound",
            wait_seconds=95, talk_seconds=410, outcome="completed",
        )
        with pytest.raises(ScopeError):
            publisher.publish(page_view(t, 1))
    wait_count(stack, "correlation_id = ?", [t], 1)
    payload = sql(stack, "SELECT payload->>'wait_seconds', event_type FROM interactions WHERE correlation_id = ?", [t])
    assert payload == [["95", "phone.call_ended"]]


def test_http_collector_keys_and_validation(stack):
    t = tag()
    secret, _ = ApiKeyStore(stack.api_keys_path).create(f"web-{t}", ["web"])
    url = f"{stack.collector_url}/events/batch"
    ok = httpx.post(url, json=[page_view(t, 0), page_view(t, 1)], headers={"X-API-Key": secret}, timeout=30)
    assert ok.status_code == 202, ok.text
    assert len(ok.json()["event_ids"]) == 2

    assert httpx.post(url, json=[page_view(t, 2)], timeout=30).status_code == 401
    assert httpx.post(url, json=[page_view(t, 2)], headers={"X-API-Key": "nope"}, timeout=30).status_code == 401

    bad = page_view(t, 3)
    bad["envelope"]["occurred_at"] = "yesterday"
    response = httpx.post(url, json=[page_view(t, 4), bad], headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert response.status_code == 400
    assert response.json()["problems"][0]["path"] == "[1].envelope.occurred_at"

    store_event = {
        "envelope": {"event_type": "store.visited", "occurred_at": "2026-03-01T10:00:00Z", "channel": "store",
                     "content": "inquiry", "initiated_by": "customer", "identity": {"loyalty_card": "L1"},
                     "correlation_id": t},
    }
    response = httpx.post(f"{stack.collector_url}/events", json=store_event, headers={"X-API-Key": secret}, timeout=30)
    assert response.status_code in (400, 403)  # 403 when valid but out of scope
    wait_count(stack, "correlation_id = ?", [t], 2)
    # the rejected batch published nothing: still exactly the two accepted events
    assert sql(stack, "SELECT count(*), min(source) FROM interactions WHERE correlation_id = ?", [t]) == [[2, f"web-{t}"]]


def test_jsonl_publish_reports_rejects(stack, tmp_path):
    t = tag()
    lines = [json.dumps(page_view(t, n)) for n in range(3)]
    lines.insert(1, '{"envelope": {"event_type": "web.page_viewed"}}')
    lines.insert(3, "not json")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code = cli_main(["publish", str(path), "--quiet"])
    assert code == 1
    rejects = [json.loads(x) for x in (tmp_path / "events.jsonl.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [2, 4]
    assert any(p["path"] == "envelope.occurred_at" for p in rejects[0]["problems"])
    assert wait_count(stack, "correlation_id = ?", [t], 3) == 3


def test_garbage_goes_to_the_dead_letter_topic(stack):
    topic = "touchstream.raw.web"
    producer = KafkaProducer(**kafka_access(stack, "admin").kafka_python())
    marker = uuid.uuid4().hex.encode()
    meta = producer.send(topic, key=marker, value=b"\x07not avro at all " + marker).get(timeout=30)
    producer.send(topic, key=marker, value=b"\x00\x00\x00\x7f\xffbogus id").get(timeout=30)
    producer.close()

    consumer = KafkaConsumer(**kafka_access(stack, "admin").kafka_python(), enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=1000)
    consumer.assign([TopicPartition(DLQ_TOPIC, 0)])

    def letters():
        return [m for batch in consumer.poll(timeout_ms=500).values() for m in batch]

    # Every consumer of the raw topics dead-letters what it cannot decode, under its own name.
    seen = []
    consumers = {b"interaction_log", b"identity", b"complaint_resolution"}
    wait_for(lambda: seen.extend(m for m in letters() if m.key == marker) or len(seen) >= 2 * len(consumers),
             timeout=60, what="two dead letters from each raw-topic consumer")
    by_consumer: dict = {}
    for m in seen:
        h = dict(m.headers)
        by_consumer.setdefault(h["dlq.consumer"], []).append(h)
    assert set(by_consumer) == consumers
    for letters_of_one in by_consumer.values():
        first, second = sorted(letters_of_one, key=lambda h: int(h["dlq.offset"]))
        assert b"magic byte" in first["dlq.reason"]
        assert b"not in the registry" in second["dlq.reason"]
        assert first["dlq.topic"] == topic.encode()
        assert int(first["dlq.offset"]) == meta.offset
    rows = sql(stack, 'SELECT count(*) FROM dead_letters WHERE topic = ? AND "offset" = ?', [topic, meta.offset])
    assert rows == [[1]]


def test_query_endpoint_is_read_only(stack):
    for statement in ("DELETE FROM interactions", "CREATE TABLE x(a int)", "COPY interactions TO '/tmp/x.csv'",
                      "SELECT * FROM read_csv('/etc/passwd')", "INSTALL httpfs", "SELECT 1; SELECT 2"):
        response = httpx.post(f"{stack.query_url}/sql", json={"sql": statement}, headers=auth_headers(stack), timeout=30)
        assert response.status_code == 400, statement


def test_cli_query(stack):
    out = subprocess.run([sys.executable, "-m", "touchstream.cli", "query", "SELECT 41 + 1 AS answer", "--format", "csv"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["answer", "42"]
