"""The bench's traffic: demo events, validated and Avro-encoded once, then produced as fast as
Kafka takes them (throughput) or at a fixed offered load (freshness).

Why encode up front: the stages under test start at the broker. Validating and
encoding (about 12k events/s in Python) is the channel systems' cost, so it is
timed apart and never mixed into the pipeline's figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

from confluent_kafka import KafkaException, Producer

from touchstream.codec.avro_codec import AvroCodec
from touchstream.kafka_access import kafka_access
from touchstream.registry.credentials import client_config
from touchstream.config import Settings
from touchstream.demo.generator import generate
from touchstream.events.catalogue import Catalogue

PRODUCER = {"enable.idempotence": True, "acks": "all", "linger.ms": 5, "compression.type": "lz4",
            "message.timeout.ms": 120000, "queue.buffering.max.messages": 500000}


@dataclass(frozen=True)
class Encoded:
    """One event as it goes on the wire."""

    topic: str
    key: bytes
    value: bytes
    event_id: str
    event_type: str

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return [("event_type", self.event_type.encode()), ("event_id", self.event_id.encode())]


@dataclass(frozen=True)
class Traffic:
    events: list[Encoded]
    customers: int
    days: int
    seed: int
    seconds: float          # generating, validating and encoding

    @property
    def bytes(self) -> int:
        return sum(len(e.value) for e in self.events)

    @property
    def mean_size(self) -> int:
        return round(self.bytes / len(self.events)) if self.events else 0


def demo_events(events: int, customers: int, seed: int) -> tuple[Iterator[dict], int]:
    """Exactly ``events`` demo events of ``customers`` customers, oldest first, and the days simulated.
    Days are estimated from the generator's own rate (about 1.7 events per customer-day), with room
    to spare; the run is cut at ``events``, so customers active late in the period may not appear."""
    days = max(1, -(-events // max(1, customers)) * 2 // 3 + 2)
    for _ in range(8):
        stream = generate(customers, days, seed)
        taken = list(_take(stream, events))
        if len(taken) == events:
            return iter(taken), days
        days *= 2
    raise ValueError(f"the demo generator gives fewer than {events} events for {customers} customers")


def _take(stream: Iterator[dict], n: int) -> Iterator[dict]:
    for i, event in enumerate(stream):
        if i >= n:
            return
        yield event


def encode_traffic(settings: Settings, events: int, customers: int, seed: int) -> Traffic:
    """Validate and encode ``events`` demo events (registering their schemas in the stack's registry)."""
    t0 = time.perf_counter()
    stream, days = demo_events(events, customers, seed)
    catalogue, codec = Catalogue(), AvroCodec(client_config(settings, write=True))
    encoded = []
    for event in stream:
        valid = catalogue.validate(event, default_source="bench")
        encoded.append(Encoded(valid.topic, valid.key, codec.encode(valid.schema, valid.record),
                               valid.event_id, valid.event_type))
    return Traffic(encoded, customers, days, seed, time.perf_counter() - t0)


class TrafficProducer:
    """confluent-kafka (librdkafka) with the same settings as Touchstream's own publisher."""

    def __init__(self, settings: Settings):
        self._producer = Producer(kafka_access(settings, "admin").confluent(**PRODUCER))
        self._errors: list[str] = []

    def send(self, event: Encoded, on_delivery: Callable | None = None) -> None:
        def delivered(err, msg):
            if err is not None:
                self._errors.append(str(err))
            elif on_delivery is not None:
                on_delivery(event, msg)

        while True:
            try:
                self._producer.produce(event.topic, value=event.value, key=event.key, headers=event.headers,
                                       on_delivery=delivered)
                break
            except BufferError:   # local queue full: let librdkafka drain it
                self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self, timeout: float = 300.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining or self._errors:
            raise KafkaException(f"{remaining} record(s) unacknowledged, {len(self._errors)} failed: "
                                 f"{self._errors[:3]}")

    def send_all(self, events: list[Encoded]) -> float:
        """Produce every event and wait for all acknowledgements; returns seconds."""
        t0 = time.perf_counter()
        for event in events:
            self.send(event)
        self.flush()
        return time.perf_counter() - t0

    def send_paced(self, events: list[Encoded], per_second: float, sent: Callable[[Encoded, float], None],
                   delivered: Callable | None = None) -> float:
        """Offer ``per_second`` events/s in 10 ms slices, telling ``sent(event, perf_counter)`` as each is
        handed to the client; returns the seconds it took (behind schedule means the client pushed back)."""
        t0 = time.perf_counter()
        for i, event in enumerate(events):
            due = t0 + i / per_second
            delay = due - time.perf_counter()
            if delay > 0.01:
                self._producer.poll(0)
                time.sleep(delay)
            sent(event, time.perf_counter())
            self.send(event, delivered)
        self.flush()
        return time.perf_counter() - t0
