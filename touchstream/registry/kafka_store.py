"""``SchemaStore`` on the compacted ``_schemas`` topic, the way Confluent's registry keeps it.

The topic is the only storage: a background thread reads it from offset 0 and
folds every record into memory, so a restart rebuilds the same state (same ids,
same versions). A write produces one record (acks=all) and then waits until the
reader has consumed past that record's offset before returning, so a read that
follows a write sees it, and nothing is ever answered that is not in the log.

The reader owns its consumer (kafka-python consumers are not thread-safe):
``sync()`` asks it for the end offset through a ticket and waits for it.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from touchstream.kafka_access import KafkaAccess, as_access
from touchstream.registry import records
from touchstream.registry.base import RegistryState, SchemaStore, SchemaVersion, StoreError
from touchstream.topics import SCHEMAS_TOPIC

log = logging.getLogger(__name__)


class KafkaSchemaStore(SchemaStore):
    """Starts reading at construction and returns once it has caught up with the topic."""

    def __init__(
        self,
        bootstrap_servers: KafkaAccess | str,
        topic: str = SCHEMAS_TOPIC,
        *,
        replication_factor: int = 1,
        timeout: float = 30.0,
        client_id: str = "touchstream-registry",
    ):
        self.topic = topic
        self.timeout = timeout
        self._tp = TopicPartition(topic, 0)
        self._cond = threading.Condition()
        self._state = RegistryState()
        self._position = 0
        self._requested = 0  # sync tickets handed out
        self._answered = 0  # highest ticket whose end offset is in _end
        self._end = 0
        self._failure: Exception | None = None
        self._stop = threading.Event()
        self._producer: KafkaProducer | None = None
        self._consumer: KafkaConsumer | None = None
        try:
            access = as_access(bootstrap_servers)
            self._ensure_topic(access, replication_factor, client_id)
            self._producer = KafkaProducer(**access.kafka_python(client_id=client_id, acks="all", linger_ms=0))
            self._consumer = KafkaConsumer(
                **access.kafka_python(),
                client_id=client_id,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=100,
            )
            self._consumer.assign([self._tp])
            self._consumer.seek_to_beginning(self._tp)
        except KafkaError as exc:
            self.close()
            raise StoreError(f"cannot open schema topic {topic!r} on {as_access(bootstrap_servers).bootstrap}: {exc}") from exc
        self._thread = threading.Thread(target=self._read_loop, name=f"schemas-reader-{topic}", daemon=True)
        self._thread.start()
        try:
            self.sync(timeout)
        except StoreError:
            self.close()
            raise

    # -- the port ------------------------------------------------------------

    def put_schema(self, record: SchemaVersion) -> None:
        self._write(records.schema_key(record.subject, record.version), records.schema_value(record))

    def put_config(self, subject: str | None, level: str | None) -> None:
        self._write(records.config_key(subject), None if level is None else records.config_value(level))

    def delete_schema(self, subject: str, version: int) -> None:
        self._write(records.schema_key(subject, version), None)

    def state(self) -> RegistryState:
        with self._cond:
            return self._state.copy()

    def sync(self, timeout: float | None = None) -> None:
        with self._cond:
            self._requested += 1
            ticket = self._requested
            ok = self._cond.wait_for(
                lambda: self._answered >= ticket and self._position >= self._end,
                self.timeout if timeout is None else timeout,
            )
            if not ok:
                raise StoreError(self._lag_message(f"did not catch up with {self.topic!r}"))

    def close(self) -> None:
        self._stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        for client in (self._producer, self._consumer):
            if client is not None:
                try:
                    client.close()
                except Exception:  # closing is best effort; the process may be going down
                    log.debug("error closing kafka client", exc_info=True)
        self._producer = self._consumer = None

    # -- internals -----------------------------------------------------------

    def _write(self, key: bytes, value: bytes | None) -> None:
        if self._producer is None:
            raise StoreError("schema store is closed")
        try:
            meta = self._producer.send(self.topic, key=key, value=value, partition=0).get(timeout=self.timeout)
            self._producer.flush(timeout=self.timeout)
        except KafkaError as exc:
            raise StoreError(f"write to {self.topic!r} failed: {exc}") from exc
        with self._cond:
            ok = self._cond.wait_for(lambda: self._position > meta.offset, self.timeout)
        if not ok:
            raise StoreError(self._lag_message(f"wrote offset {meta.offset} but did not read it back"))

    def _lag_message(self, what: str) -> str:
        cause = f"; reader error: {self._failure}" if self._failure else ""
        return f"schema store {what} within {self.timeout}s (read up to offset {self._position}){cause}"

    def _read_loop(self) -> None:
        consumer = self._consumer
        while not self._stop.is_set() and consumer is not None:
            try:
                batches = consumer.poll(timeout_ms=100)
                with self._cond:
                    for messages in batches.values():
                        for msg in messages:
                            self._apply(msg.offset, msg.key, msg.value)
                    wanted = self._requested
                end = consumer.end_offsets([self._tp])[self._tp] if wanted > self._answered else None
                position = consumer.position(self._tp)
                with self._cond:
                    self._position = position
                    if end is not None:
                        self._end, self._answered = end, wanted
                    self._failure = None
                    self._cond.notify_all()
            except Exception as exc:  # keep reading through broker hiccups; waiters time out with the cause
                if self._stop.is_set():
                    break
                log.warning("reading %s failed: %s", self.topic, exc)
                with self._cond:
                    self._failure = exc
                time.sleep(0.5)

    def _apply(self, offset: int, key: bytes | None, value: bytes | None) -> None:
        try:
            records.apply(self._state, key, value)
        except records.MalformedRecord as exc:
            log.warning("skipping malformed record at %s offset %d: %s", self.topic, offset, exc)

    def _ensure_topic(self, access: KafkaAccess, replication_factor: int, client_id: str) -> None:
        """Create the topic (compacted, one partition: order across subjects matters) if missing."""
        admin = KafkaAdminClient(**access.kafka_python(client_id=client_id))
        try:
            spec = NewTopic(self.topic, 1, replication_factor, topic_configs={"cleanup.policy": "compact"})
            try:
                admin.create_topics([spec], timeout_ms=int(self.timeout * 1000), wait_for_metadata=True)
                log.info("created schema topic %s", self.topic)
            except TopicAlreadyExistsError:
                pass
            partitions = admin.describe_topics([self.topic])[0].get("partitions", [])
            if len(partitions) != 1:
                raise StoreError(
                    f"topic {self.topic!r} has {len(partitions)} partitions; the schema registry needs exactly 1"
                )
        finally:
            admin.close()
