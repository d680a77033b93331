"""The real Apache Kafka broker of the local stack: up, round trip, idempotence, restart, down."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from touchstream.cli import main as cli_main
from touchstream.kafka_access import KafkaAccess
from touchstream.stack import broker_runner, local_stack
from touchstream.stack.supervisor import pid_alive
from touchstream.stack.topic_admin import ensure_topics, existing_topics
from touchstream.topics import TopicSpec, load_topics

pytestmark = pytest.mark.integration


def make_topic(bootstrap: KafkaAccess, name: str, partitions: int = 1) -> None:
    assert ensure_topics(bootstrap, [TopicSpec(name, partitions, 1)]) == [name]


def produce(bootstrap: KafkaAccess, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(**bootstrap.kafka_python(linger_ms=0))
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close()


def consume(bootstrap: KafkaAccess, topic: str, group: str, expected: int, timeout: float = 30.0) -> list:
    """Read ``topic`` from the start with a fresh consumer group until ``expected`` records."""
    consumer = KafkaConsumer(
        topic, **bootstrap.kafka_python(), group_id=group, auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=1000,
    )
    seen = []
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < expected and time.monotonic() < deadline:
            seen.extend((m.key, m.value) for m in consumer)
    finally:
        consumer.close()
    return seen


def broker_pid(settings) -> int | None:
    return local_stack.supervisor(settings).running_pid("broker")


def test_produce_consume_round_trip(broker, unique_name):
    topic = unique_name("roundtrip")
    make_topic(broker, topic, partitions=2)
    records = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(20)]
    produce(broker, topic, records)
    assert sorted(consume(broker, topic, unique_name("g"), len(records))) == sorted(records)


def test_catalogue_topics_exist_and_auto_create_is_off(broker, settings, unique_name):
    topics = set(existing_topics(broker))
    assert {spec.name for spec in load_topics(settings.topic_config)} <= topics
    producer = KafkaProducer(**broker.kafka_python(max_block_ms=3000))
    try:
        with pytest.raises(Exception):  # noqa: B017 - kafka-python raises KafkaTimeoutError here
            producer.send(unique_name("not-in-catalogue"), b"x").get(timeout=5)
    finally:
        producer.close(timeout=1)


def test_status_shows_the_broker(broker, settings, capsys):
    assert cli_main(["status"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("broker"))
    assert "running" in line and str(broker_pid(settings)) in line and broker.bootstrap in line


def test_up_is_idempotent(broker, settings, capsys):
    before = broker_pid(settings)
    steps = local_stack.up(settings, ["broker"])
    assert steps[0].name == "broker" and steps[0].pid == before and steps[0].started is False
    assert broker_pid(settings) == before
    assert cli_main(["up", "--only", "broker"]) == 0
    assert "already running" in capsys.readouterr().out
    assert broker_pid(settings) == before


def test_second_stack_on_the_same_ports_is_refused(broker, settings, tmp_path):
    """Another home on our ports must fail clearly, not report our broker as its own."""
    other = dataclasses.replace(settings, home=tmp_path / "other-home")
    with pytest.raises(local_stack.StackError, match="in use"):
        local_stack.up(other, ["broker"])
    assert not (other.run_dir / "broker.pid").exists()


def test_down_then_up_keeps_data(broker, settings, unique_name):
    topic = unique_name("durable")
    make_topic(broker, topic)
    produce(broker, topic, [(b"before-restart", b"still-here")])
    old = broker_pid(settings)

    assert local_stack.down(settings, ["broker"]) == ["broker"]
    assert not pid_alive(old) and broker_pid(settings) is None

    steps = local_stack.up(settings, ["broker"])
    assert steps[0].started and steps[0].pid != old
    print(f"broker warm restart ready in {steps[0].seconds:.1f}s")
    assert consume(broker, topic, unique_name("g"), 1) == [(b"before-restart", b"still-here")]
    assert topic in existing_topics(broker)


def test_down_stops_only_by_pid(broker, settings, tmp_path):
    """A process that looks exactly like our broker (same main class and config) survives."""
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "kafka.Kafka",
                              str(broker_runner.properties_path(settings))])
    try:
        ours = broker_pid(settings)
        assert cli_main(["down", "--only", "broker"]) == 0
        assert not pid_alive(ours)
        assert decoy.poll() is None, "down killed a process by name"
    finally:
        decoy.kill()
        decoy.wait()
        local_stack.up(settings, ["broker"])  # the session broker for the tests that follow
    assert broker_pid(settings) is not None
