"""The schema registry on a real Kafka broker, driven by confluent-kafka's own client.

Every test writes to its own ``_schemas``-style topic, so tests (and reruns)
never see each other's schemas.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import uvicorn
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka import KafkaConsumer, TopicPartition

from tests.unit.test_registry_contract import NO_DEFAULT, OTHER, V1, V2, RegistryContract, text
from touchstream.config import Settings
from touchstream.kafka_access import KafkaAccess
from touchstream.registry.bootstrap import SchemaRegistrationError, register_all
from touchstream.registry.credentials import client_config
from touchstream.registry.http_app import create_app
from touchstream.registry.kafka_store import KafkaSchemaStore
from touchstream.registry.service import RegistryService
from touchstream.schemas import EventSchema

pytestmark = pytest.mark.integration


@pytest.fixture
def bootstrap(broker) -> KafkaAccess:
    return broker


@pytest.fixture
def topic() -> str:
    return f"_schemas-test-{uuid.uuid4().hex[:12]}"


class TestKafkaStore(RegistryContract):
    @pytest.fixture
    def open_store(self, bootstrap, topic):
        stores: list[KafkaSchemaStore] = []

        def open_store() -> KafkaSchemaStore:
            stores.append(KafkaSchemaStore(bootstrap, topic, timeout=30))
            return stores[-1]

        yield open_store
        for store in stores:
            store.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Registry:
    """A registry served by uvicorn in a thread over a KafkaSchemaStore on ``topic``."""

    def __init__(self, bootstrap: KafkaAccess, topic: str):
        self.store = KafkaSchemaStore(bootstrap, topic)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(RegistryService(self.store)), port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "registry http server did not start"
            time.sleep(0.05)

    def client(self) -> SchemaRegistryClient:
        return SchemaRegistryClient({"url": self.url})

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.store.close()


@pytest.fixture
def registry(bootstrap, topic):
    running = Registry(bootstrap, topic)
    yield running
    running.stop()


def avro(body: dict) -> Schema:
    return Schema(json.dumps(body), "AVRO")


def test_confluent_client_calls(registry):
    client = registry.client()
    first = client.register_schema("t.shop.Order", avro(V1))
    second = client.register_schema("t.shop.Order", avro(V2))
    assert (first, second) == (1, 2)
    assert client.register_schema("t.shop.Refund", avro(OTHER)) == 3
    assert json.loads(client.get_schema(first).schema_str) == V1

    latest = client.get_latest_version("t.shop.Order")
    assert (latest.schema_id, latest.version, latest.subject) == (2, 2, "t.shop.Order")
    assert json.loads(latest.schema.schema_str) == V2
    assert client.get_version("t.shop.Order", 1).schema_id == 1
    found = client.lookup_schema("t.shop.Order", Schema(json.dumps(V1, indent=2), "AVRO"))
    assert (found.schema_id, found.version) == (1, 1)

    assert client.get_subjects() == ["t.shop.Order", "t.shop.Refund"]
    assert client.get_versions("t.shop.Order") == [1, 2]
    assert client.get_schema_types() == ["AVRO"]
    assert [(v.subject, v.version) for v in client.get_schema_versions(2)] == [("t.shop.Order", 2)]

    assert client.test_compatibility("t.shop.Order", avro(NO_DEFAULT)) is False
    assert client.test_compatibility("t.shop.Order", avro(evolve_total_note())) is True

    assert client.get_compatibility() == "BACKWARD"
    client.set_compatibility(level="FULL")
    client.set_compatibility("t.shop.Refund", "NONE")
    assert (client.get_compatibility(), client.get_compatibility("t.shop.Refund")) == ("FULL", "NONE")

    assert client.delete_subject("t.shop.Refund") == [1]
    assert client.get_subjects() == ["t.shop.Order"]
    assert client.delete_subject("t.shop.Refund", permanent=True) == [1]
    assert client.get_subjects(deleted=True) == ["t.shop.Order"]
    with pytest.raises(SchemaRegistryError) as exc:
        client.get_latest_version("t.shop.Refund")
    assert (exc.value.http_status_code, exc.value.error_code) == (404, 40401)


def evolve_total_note() -> dict:
    body = json.loads(json.dumps(V2))
    body["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    return body


def test_incompatible_change_is_refused_with_409_and_a_clear_message(registry):
    client = registry.client()
    client.register_schema("t.shop.Order", avro(V1))
    with pytest.raises(SchemaRegistryError) as exc:
        client.register_schema("t.shop.Order", avro(NO_DEFAULT))
    assert (exc.value.http_status_code, exc.value.error_code) == (409, 409)
    assert "currency" in exc.value.error_message and "default" in exc.value.error_message
    response = httpx.post(
        f"{registry.url}/compatibility/subjects/t.shop.Order/versions/latest?verbose=true",
        json={"schema": text(NO_DEFAULT)},
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.schemaregistry.v1+json")
    body = response.json()
    assert body["is_compatible"] is False and any("currency" in m for m in body["messages"])
    assert client.get_versions("t.shop.Order") == [1]


def test_a_restarted_registry_serves_the_same_ids(bootstrap, topic):
    first = Registry(bootstrap, topic)
    try:
        client = first.client()
        ids = {name: client.register_schema(f"t.shop.{name}", avro(body))
               for name, body in (("Order", V1), ("Refund", OTHER))}
        ids["Order2"] = client.register_schema("t.shop.Order", avro(V2))
        client.set_compatibility("t.shop.Order", "FULL")
    finally:
        first.stop()
    second = Registry(bootstrap, topic)
    try:
        client = second.client()  # a fresh client: nothing cached
        assert client.lookup_schema("t.shop.Order", avro(V1)).schema_id == ids["Order"]
        assert client.get_latest_version("t.shop.Order").schema_id == ids["Order2"]
        assert json.loads(client.get_schema(ids["Refund"]).schema_str) == OTHER
        assert client.get_compatibility("t.shop.Order") == "FULL"
        fresh = dict(OTHER, name="Return")
        assert client.register_schema("t.shop.Return", avro(fresh)) == max(ids.values()) + 1
    finally:
        second.stop()


def read_topic(bootstrap: KafkaAccess, topic: str) -> list[tuple[bytes, bytes | None]]:
    consumer = KafkaConsumer(**bootstrap.kafka_python(group_id=None, enable_auto_commit=False))
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    end = consumer.end_offsets([tp])[tp]
    out: list[tuple[bytes, bytes | None]] = []
    while consumer.position(tp) < end:
        for batch in consumer.poll(timeout_ms=1000).values():
            out += [(m.key, m.value) for m in batch]
    consumer.close()
    return out


def test_schemas_topic_records_have_the_confluent_byte_layout(registry, bootstrap, topic):
    client = registry.client()
    client.register_schema("t.shop.Order", avro(V1))
    client.set_compatibility(level="FULL")
    client.set_compatibility("t.shop.Order", "NONE")
    client.delete_subject("t.shop.Order")
    client.delete_subject("t.shop.Order", permanent=True)
    stored = json.dumps(json.loads(text(V1)), separators=(",", ":"))
    value = {"subject": "t.shop.Order", "version": 1, "id": 1, "schema": stored}
    key = b'{"keytype":"SCHEMA","subject":"t.shop.Order","version":1,"magic":1}'
    subject_config = b'{"keytype":"CONFIG","subject":"t.shop.Order","magic":0}'
    assert read_topic(bootstrap, topic) == [
        (key, json.dumps(dict(value, deleted=False), separators=(",", ":")).encode()),
        (b'{"keytype":"CONFIG","subject":null,"magic":0}', b'{"compatibilityLevel":"FULL"}'),
        (subject_config, b'{"compatibilityLevel":"NONE"}'),
        (key, json.dumps(dict(value, deleted=True), separators=(",", ":")).encode()),
        (subject_config, None),  # a soft-deleted subject loses its own level, as in Confluent
        (key, None),
    ]


def test_avro_serializer_and_deserializer_round_trip_through_our_registry(registry):
    schema = {
        "type": "record", "name": "Ping", "namespace": "t.net",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["a", "b"]}},
            {"name": "note", "type": ["null", "string"], "default": None},
        ],
    }
    client = registry.client()
    serializer = AvroSerializer(client, json.dumps(schema))
    ctx = SerializationContext("t.net.pings", MessageField.VALUE)
    record = {"id": "p-1", "at": 1_700_000_000_000, "kind": "b", "note": None}
    framed = serializer(record, ctx)
    schema_id = client.get_latest_version("t.net.pings-value").schema_id
    assert framed[0] == 0 and int.from_bytes(framed[1:5], "big") == schema_id
    decoded = AvroDeserializer(registry.client())(framed, ctx)
    assert decoded["id"] == "p-1" and decoded["kind"] == "b" and decoded["note"] is None
    assert int(decoded["at"].timestamp() * 1000) == record["at"]


def test_bootstrap_registers_every_event_schema_idempotently(registry, tmp_path):
    settings = Settings(home=tmp_path, host="127.0.0.1", registry_port=registry.port)
    first = register_all(settings)
    assert first and all(isinstance(i, int) for i in first.values())
    assert register_all(settings) == first
    assert "phone.call_ended.v1" in first

    bad = dict(V1, namespace="t.bad", fields=V1["fields"] + [{"name": "extra", "type": "int"}])
    history = [
        EventSchema("bad.order", "bad", 1, Path("order.v1.avsc"), dict(V1, namespace="t.bad")),
        EventSchema("bad.order", "bad", 2, Path("order.v2.avsc"), bad),
    ]
    with pytest.raises(SchemaRegistrationError) as exc:
        register_all(settings, history)
    assert exc.value.subject == "t.bad.Order" and "t.bad.Order" in str(exc.value) and "extra" in str(exc.value)


def test_module_entry_point_serves_after_catching_up(bootstrap, topic):
    port = free_port()
    # A topic of this test's own, outside the registry principal's grants: the process logs in as admin.
    env = dict(os.environ, TOUCHSTREAM_BOOTSTRAP=bootstrap.bootstrap, TOUCHSTREAM_REGISTRY_PORT=str(port),
               TOUCHSTREAM_KAFKA_USER="admin")
    env.pop("TOUCHSTREAM_REGISTRY_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "touchstream.registry", "--topic", topic],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/subjects", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "registry process did not become ready"
            time.sleep(0.2)
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(SchemaRegistryError) as refused:   # no credential: no write, no config change
            SchemaRegistryClient({"url": url}).register_schema("t.shop.Order", avro(V1))
        assert refused.value.http_status_code == 401
        assert httpx.put(f"{url}/config", json={"compatibility": "NONE"}, timeout=5).status_code == 401
        assert httpx.get(f"{url}/config", timeout=5).json() == {"compatibilityLevel": "BACKWARD"}
        client = SchemaRegistryClient(client_config(Settings.from_env(env), write=True))
        assert client.register_schema("t.shop.Order", avro(V1)) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM), stderr  # uvicorn re-raises SIGTERM after a clean stop
    assert "schema store closed" in stderr
    assert "registered subject=t.shop.Order version=1 id=1" in stderr
    assert '"fields"' not in stderr  # schema contents stay out of the log
