"""The guide's consume loop on a real broker: poison records among good ones are parked, not fatal.

What it protects: ``docs/subscribing.md`` tells a downstream service to "park it and go on" when
a value does not decode, and its loop once stopped for good at the first such record (the
exception left the loop; after a restart the same record came first again). Here the guide's
own code reads a fresh topic holding good records and poison ones (not Confluent framing, an
unknown schema id, a key that is not UTF-8) with a real ``DeserializingConsumer``: every good
record is handled in order, every poison one parked, and the group's commit ends past them all.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

from tests.conftest import unique_name
from tests.event_builders import plain_event
from tests.guide_code import guide_block
from touchstream.codec.avro_codec import AvroCodec
from touchstream.events.catalogue import Catalogue
from touchstream.kafka_access import KafkaAccess

pytestmark = pytest.mark.integration

AT = datetime.now(timezone.utc) - timedelta(days=1)


class Done(Exception):
    """Raised by the handler once every good record arrived: the guide's loop runs forever."""


def _topic(broker: KafkaAccess) -> str:
    topic, admin = unique_name("guide-poison"), AdminClient(broker.confluent())
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)   # ``admin`` must outlive the future
    return topic


@pytest.mark.timeout(120)
def test_the_guides_loop_parks_poison_records_and_reads_on(broker: KafkaAccess):
    topic = _topic(broker)
    registry = SchemaRegistryClient.new_client({"url": "mock://" + topic})
    codec = AvroCodec("mock://" + topic, client=registry)
    events = [Catalogue().validate(plain_event(t, AT + timedelta(minutes=n), {"email": "ann@example.com"},
                                               case_id="K9"))
              for n, t in enumerate(("complaint.opened", "complaint.resolved", "complaint.closed"))]
    good = [(e.key, codec.encode(e.schema, e.record)) for e in events]
    records = [good[0], (b"email:ann@example.com", b"not avro at all"),                 # offsets 0, 1
               good[1], (b"\xff\xfe", good[1][1]),                                      # 2, 3 (key not UTF-8)
               (b"email:ann@example.com", b"\x00\x00\x0f\xff\xff" + good[2][1][5:]),  # 4: unknown schema id
               good[2]]                                                                 # 5
    producer = Producer(broker.confluent())
    for key, value in records:
        producer.produce(topic, value=value, key=key)
    assert producer.flush(30) == 0

    guide, handled, parked = guide_block("DeserializingConsumer("), [], []
    login = {k: v for k, v in broker.confluent().items() if k != "bootstrap.servers"}
    guide.update(BOOTSTRAP=broker.bootstrap, KAFKA_LOGIN=login, SchemaRegistryClient=lambda conf: registry)
    park = guide["park"]
    guide["park"] = lambda msg, error: (park(msg, error), parked.append(msg.offset()))

    def handle(key, value, headers):
        handled.append((key, value))
        if len(handled) == len(events):
            raise Done

    group = unique_name("guide-group")
    with pytest.raises(Done):
        guide["run"](handle, topics=[topic], group_id=group)
    assert handled == [(e.key.decode(), e.record) for e in events]
    assert parked == [1, 3, 4]
    check = Consumer(broker.confluent(**{"group.id": group, "enable.auto.commit": False}))
    try:
        committed, = check.committed([TopicPartition(topic, 0)], timeout=30)
    finally:
        check.close()
    assert committed.offset == 5   # past every poison record; the last good one is handled, not yet committed
