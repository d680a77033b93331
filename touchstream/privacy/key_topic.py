"""The key ring on Kafka: one compacted topic of wrapped data keys, keyed by kid.

Why a topic: every process that seals or opens (collector, SDK, identity, serving, fold workers)
needs the same keys, and the stack already runs Kafka; a compacted topic keeps the latest record
per kid for ever, and deleting a key is a tombstone that compaction turns into nothing on disk.
The topic's name is outside the ``touchstream`` prefix on purpose: subscribers may read every
``touchstream*`` topic, and they get no key records (which are wrapped anyway) by default.

A key is produced with acks=all and flushed before the first value it seals is sent, so a reader
that has read the topic to its end holds every key of every record it can be given.
"""

from __future__ import annotations

import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from touchstream.config import Settings
from touchstream.kafka_access import KafkaAccess, kafka_access
from touchstream.privacy.keyring import KeyRingCore, MasterKey
from touchstream.privacy.master_key import master_key
from touchstream.topics import KEYS_TOPIC

# Refusals that waiting does not cure: raised at once, never retried as an outage.
REFUSED = frozenset({KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                     KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.SASL_AUTHENTICATION_FAILED})


class TopicKeyRing(KeyRingCore):
    def __init__(self, settings: Settings, master: MasterKey | None = None, *, topic: str = KEYS_TOPIC,
                 timeout: float = 30.0, access: KafkaAccess | None = None):
        """``access``: the Kafka login to use (default: the settings' service principal)."""
        super().__init__(master or master_key(settings.home))
        self.topic, self.timeout = topic, timeout
        self._conf = (access or kafka_access(settings)).confluent()
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._io = threading.Lock()
        self._next: dict[int, int] = {}   # partition -> the offset after the last record read

    def _refresh(self) -> None:
        """Read the topic to where it ends now (the broker says where, not a cached watermark).

        Why it retries: a decode that meets a new key asks the broker, and right after a broker restart
        the answer is "not leader" or "unknown partition" for a few seconds; failing there would stop the
        stage (identity fail-stops on any error inside a batch). Past ``timeout`` it raises a transient
        error (``_TRANSPORT``), which the stages treat as the broker outage it is; a refused login or
        authorisation is raised at once."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with self._io:
                    self._read_to_end(deadline)
                return
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                if error is not None and (error.fatal() or error.code() in REFUSED):
                    raise
                self._drop_consumer()   # after a broker restart an old one kept answering "unknown partition"
                if time.monotonic() > deadline:
                    raise KafkaException(KafkaError(KafkaError._TRANSPORT, f"{self.topic}: {exc}")) from exc
                time.sleep(0.5)

    def _read_to_end(self, deadline: float) -> None:
        consumer = self._consumer or self._open_consumer()
        marks = {tp.partition: consumer.get_watermark_offsets(tp, timeout=self.timeout, cached=False)
                 for tp in self._partitions}
        ends = {p: high for p, (low, high) in marks.items() if high > low}   # an empty partition is read
        while not self._reached(consumer, ends):
            if time.monotonic() > deadline:
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{self.topic}: not read to its end in time"))
            for m in consumer.consume(num_messages=10_000, timeout=0.2):
                if m.error() is None:
                    self._apply(m.key().decode(), m.value())
                    self._next[m.partition()] = m.offset() + 1
                elif m.error().fatal():
                    raise KafkaException(m.error())

    def _reached(self, consumer: Consumer, ends: dict[int, int]) -> bool:
        if not ends:
            return True
        positions = consumer.position([TopicPartition(self.topic, p) for p in ends])
        return all(max(tp.offset, self._next.get(tp.partition, 0)) >= ends[tp.partition] for tp in positions)

    def _open_consumer(self) -> Consumer:
        consumer = Consumer({**self._conf, "group.id": "touchstream-keys", "enable.auto.commit": False,
                             "enable.partition.eof": False})
        metadata = consumer.list_topics(self.topic, timeout=self.timeout).topics.get(self.topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            consumer.close()
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"key topic {self.topic} is missing"))
        self._partitions = [TopicPartition(self.topic, p, self._next.get(p, OFFSET_BEGINNING))
                            for p in sorted(metadata.partitions)]
        consumer.assign(self._partitions)
        self._consumer = consumer
        return consumer

    def _store(self, records: dict[str, bytes | None]) -> None:
        """Produce and wait for every acknowledgement; any refusal raises (nothing may be sealed with it)."""
        with self._io:
            producer = self._producer = self._producer or Producer(
                {**self._conf, "acks": "all", "enable.idempotence": True, "linger.ms": 2})
            errors: list[KafkaError] = []
            for kid, value in records.items():
                producer.produce(self.topic, key=kid.encode(), value=value,
                                 on_delivery=lambda err, _m: err is not None and errors.append(err))
            if producer.flush(self.timeout) or errors:
                raise KafkaException(errors[0] if errors else KafkaError(
                    KafkaError._TIMED_OUT, f"{self.topic}: key records not acknowledged within {self.timeout:.0f}s"))

    def _drop_consumer(self) -> None:
        """Close the reading consumer; the next refresh opens another where this one stopped."""
        with self._io:
            if self._consumer is not None:
                try:
                    self._consumer.close()
                except Exception:   # noqa: BLE001 - it is being replaced because it misbehaves
                    pass
                self._consumer = None

    def close(self) -> None:
        with self._io:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
            if self._producer is not None:
                self._producer.flush(self.timeout)
                self._producer = None
