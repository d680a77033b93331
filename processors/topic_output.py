"""Producing a processor's outputs: send many, then wait for every acknowledgement.

A stage advances its offsets only after ``flush`` returned, so an output is
never lost; a crash before that re-sends it, which is why every output carries
an id or a key that makes the second copy harmless (at-least-once, idempotent).
"""

from __future__ import annotations

from confluent_kafka import Producer

from touchstream.config import Settings
from touchstream.kafka_access import kafka_access


class OutputError(RuntimeError):
    """Outputs were not acknowledged by Kafka; the stage must not advance its offsets."""


Header = tuple[str, bytes]


class TopicOutput:
    """Kafka outputs through librdkafka: idempotent producer, acks from all in-sync replicas."""

    def __init__(self, settings: Settings, *, client_id: str):
        self._producer = Producer({
            **kafka_access(settings).confluent(), "client.id": client_id,
            "enable.idempotence": True, "acks": "all", "compression.type": "lz4",
            "linger.ms": 20, "queue.buffering.max.messages": 1_000_000,
            # Fold workers compute where a customer's records land (``topics.key_partition``).
            "partitioner": "consistent_random",
            # Only a failed delivery calls back into Python: a callback per acknowledged record cost
            # identity a few µs per output, and success needs no record (flush waits for all).
            "on_delivery": self._delivered, "delivery.report.only.error": True,
        })
        self._errors: list[str] = []
        self.sent = 0

    def _delivered(self, err, _msg) -> None:
        if err is not None:
            self._errors.append(str(err))

    def send(self, topic: str, key: str | bytes | None, value: bytes | None, headers: list[Header] = ()) -> None:
        key = key.encode() if isinstance(key, str) else key
        while True:
            try:
                self._producer.produce(topic, key=key, value=value, headers=list(headers))
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                self._producer.poll(0.1)
        self.sent += 1

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        errors, self._errors = self._errors, []
        if remaining or errors:
            raise OutputError(f"{remaining} output(s) still pending after {timeout:g}s; errors: {errors[:3]}")


class MemoryOutput:
    """The same port in memory: for unit tests and for rebuilds that must not publish again."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None, list[Header]]] = []
        self._pending: list = []
        self.sent = 0

    def send(self, topic: str, key: str | bytes | None, value: bytes | None, headers: list[Header] = ()) -> None:
        key = key.encode() if isinstance(key, str) else key
        self._pending.append((topic, key, value, list(headers)))
        self.sent += 1

    def flush(self, timeout: float = 60.0) -> None:
        self.records += self._pending
        self._pending = []


class NullOutput:
    """Sends nothing: a rebuild replays history whose outputs downstream already received."""

    sent = 0

    def send(self, topic: str, key: str | bytes | None, value: bytes | None, headers: list[Header] = ()) -> None:
        return None

    def flush(self, timeout: float = 60.0) -> None:
        return None
