"""The key ring's contract (``tests/keyring_contract.py``) on the real broker: ``TopicKeyRing`` over a
compacted topic of its own per test, as the stack's key topic is configured. Two rings on one topic are
two processes: one only learns of the other's keys by reading the topic."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import unique_name
from tests.keyring_contract import MASTER, KeyRingContract
from touchstream.kafka_access import KafkaAccess
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.privacy.keyring import MasterKey

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


class TestTopicKeyRing(KeyRingContract):
    @pytest.fixture(autouse=True)
    def _broker(self, broker: KafkaAccess, settings):
        self.access, self.settings, self.topics, self.rings = broker, settings, {}, []
        yield
        for ring in self.rings:
            ring.close()

    def ring(self, store: str, master: MasterKey = MASTER):
        topic = self.topics.get(store)
        if topic is None:
            topic = self.topics[store] = unique_name(f"keys-{store}")
            admin = AdminClient(self.access.confluent())
            config = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"}
            admin.create_topics([NewTopic(topic, 2, 1, config=config)])[topic].result(30)
        ring = TopicKeyRing(self.settings, master, topic=topic, access=self.access, timeout=20)
        self.rings.append(ring)
        return ring
