"""The guide's first consume loop meets poison records: it parks them and goes on.

What it protects: ``docs/subscribing.md`` says to park a record that does not decode and go on,
and its ``DeserializingConsumer`` loop once let the exception out and stopped for good (after a
restart the same record came first again). Here confluent-kafka's exceptions come as
``DeserializingConsumer.poll`` raises them, from a fake consumer; the same loop on a real
broker: ``tests/integration/test_subscribing_on_broker.py``.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from confluent_kafka.error import KeyDeserializationError, ValueDeserializationError

from tests.guide_code import guide_block


def test_the_deserializing_loop_parks_a_poison_record_and_goes_on():
    guide = guide_block("DeserializingConsumer(")

    class Done(Exception):
        pass

    def message(offset: int, value):
        return SimpleNamespace(topic=lambda: "touchstream.raw.web", partition=lambda: 0, offset=lambda: offset,
                               key=lambda: "cookie_id:ck-1", value=lambda: value, headers=lambda: [])

    class Consumer:
        def __init__(self):
            self.queue = [message(0, {"n": 0}), ValueDeserializationError(ValueError("framing"), message(1, None)),
                          None, KeyDeserializationError(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),
                                                        message(2, None)), message(3, {"n": 3})]
            self.commits, self.closed = [], False

        def poll(self, timeout):
            if not self.queue:
                raise Done
            item = self.queue.pop(0)
            if isinstance(item, Exception):
                raise item
            return item

        def commit(self, message, asynchronous):
            self.commits.append(message.offset())

        def close(self):
            self.closed = True

    consumer, handled, parked = Consumer(), [], []
    guide.update(subscribe=lambda topics, group_id: consumer,
                 park=lambda msg, error: parked.append((msg.offset(), type(error).__name__)))
    with pytest.raises(Done):
        guide["run"](lambda key, value, headers: handled.append(value["n"]))
    assert handled == [0, 3] and parked == [(1, "ValueError"), (2, "UnicodeDecodeError")]
    assert consumer.commits == [0, 1, 2, 3] and consumer.closed
