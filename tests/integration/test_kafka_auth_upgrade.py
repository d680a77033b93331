"""An installation whose broker storage predates Kafka authentication gets its service principals
at the next ``up`` (format cannot add users to formatted storage), keeps its topics and records,
and from then on refuses clients without a login."""

from __future__ import annotations

import dataclasses

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from tests.conftest import free_ports
from touchstream.kafka_access import KafkaAccess, kafka_access
from touchstream.stack import broker_auth, local_stack
from touchstream.stack.topic_admin import ensure_topics, existing_topics
from touchstream.topics import TopicSpec

pytestmark = pytest.mark.integration


def test_storage_formatted_without_users_gets_them_and_keeps_its_topics(settings, broker, tmp_path, unique_name):
    kafka_port, controller_port = free_ports(2)
    old = dataclasses.replace(settings, home=tmp_path / "old-install", broker_port=kafka_port,
                              controller_port=controller_port, kafka_auth=False)
    topic = unique_name("kept")
    try:
        local_stack.up(old, ["broker"])
        ensure_topics(kafka_access(old), [TopicSpec(topic, 1, 1)])
        local_stack.down(old, ["broker"])
        assert not broker_auth.scram_marker(old).exists()

        new = dataclasses.replace(old, kafka_auth=True)
        local_stack.up(new, ["broker"])
        assert broker_auth.scram_marker(new).exists()
        assert topic in existing_topics(kafka_access(new, "admin"))
        with pytest.raises(KafkaException):
            AdminClient(KafkaAccess(new.bootstrap_servers).confluent()).list_topics(timeout=5)
        assert not (new.home / "kafka" / "add-users.properties").exists(), "the one-off PLAIN login is gone"
    finally:
        local_stack.down(old, ["broker"])
