"""The bench's traffic: demo events, validated and Avro-encoded once, then produced as fast as
Kafka takes them (throughput) or at a fixed offered load (freshness).

Why encode up front: the stages under test start at the broker. Validating, sealing
personal values and encoding is the channel systems' cost, so it is timed apart and
never mixed into the pipeline's figures (sealing's CPU is reported on its own line).
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
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.privacy.sealer import Sealer

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
    seconds: float          # generating, validating, sealing and encoding
    seal_cpu: float = 0.0   # CPU seconds of sealing personal values (touchstream.privacy), making keys included
    seal_steady: float = 0.0   # CPU seconds per event of sealing the last batch again, every key known

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
    """Validate, seal and encode ``events`` demo events, as the SDK does (registering their schemas in the
    stack's registry, and their subjects' keys on its key topic, in batches of ``SEAL_BATCH``)."""
    t0 = time.perf_counter()
    stream, days = demo_events(events, customers, seed)
    catalogue, codec = Catalogue(), AvroCodec(client_config(settings, write=True))
    ring = TopicKeyRing(settings, access=kafka_access(settings, "admin"))
    sealer, encoded, seal_cpu, items = Sealer(ring), [], 0.0, []
    try:
        for batch in _batches(stream, SEAL_BATCH):
            valid = [catalogue.validate(event, default_source="bench") for event in batch]
            items = [(v.schema.subject, v.schema.schema, v.record) for v in valid]
            c0 = time.process_time()
            sealed = sealer.seal_events(items)
            seal_cpu += time.process_time() - c0
            encoded += [Encoded(v.topic, key, codec.encode(v.schema, record), v.event_id, v.event_type)
                        for v, (record, key) in zip(valid, sealed)]
        c0 = time.process_time()
        sealer.seal_events(items)   # the last batch again: what sealing costs once its subjects have keys
        steady = (time.process_time() - c0) / max(1, len(items))
    finally:
        ring.close()
    return Traffic(encoded, customers, days, seed, time.perf_counter() - t0, seal_cpu, steady)


SEAL_BATCH = 5000


def _batches(stream: Iterator[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for event in stream:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


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
