"""The dead-letter producer: undecodable records go to ``touchstream.dlq``, reason in headers.

The original key, value and headers are kept byte for byte so a fixed consumer
can replay them; ``dlq.*`` headers say where the record came from and why it
was refused. Nothing is dropped: the sink advances its offset past a bad record
only after the dead letter is acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from confluent_kafka import Producer

from touchstream.config import Settings
from touchstream.kafka_access import kafka_access
from touchstream.processors.records import RawRecord
from touchstream.topics import DLQ_TOPIC


@dataclass(frozen=True)
class DeadLetter:
    record: RawRecord
    reason: str


class DeadLetterProducer:
    def __init__(self, settings: Settings, *, consumer: str, topic: str = DLQ_TOPIC):
        self.topic = topic
        self.consumer = consumer
        self._producer = Producer(kafka_access(settings).confluent(**{"enable.idempotence": True, "acks": "all"}))

    def send(self, letters: list[DeadLetter], timeout: float = 30.0) -> None:
        """Send and wait for every acknowledgement; raise if any was not delivered."""
        errors: list[str] = []

        def on_delivery(err, _msg):
            if err is not None:
                errors.append(str(err))

        now = datetime.now(timezone.utc).isoformat().encode()
        for letter in letters:
            record = letter.record
            headers = list(record.headers) + [
                ("dlq.reason", letter.reason.encode()[:1000]),
                ("dlq.topic", record.topic.encode()),
                ("dlq.partition", str(record.partition).encode()),
                ("dlq.offset", str(record.offset).encode()),
                ("dlq.consumer", self.consumer.encode()),
                ("dlq.at", now),
            ]
            self._producer.produce(self.topic, key=record.key, value=record.value, headers=headers, on_delivery=on_delivery)
        remaining = self._producer.flush(timeout)
        if remaining or errors:
            raise RuntimeError(f"dead letters not delivered: {remaining} pending, errors: {errors[:3]}")


class AlreadySentDeadLetters:
    """For rebuilds: the live run already sent these dead letters, so a replay
    records them in its own table but does not publish them a second time."""

    def send(self, letters: list[DeadLetter], timeout: float = 30.0) -> None:
        return None
