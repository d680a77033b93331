"""The Python limit: read raw topics from offset 0 and Avro-decode every value, nothing else.

Touchstream's processors are Python; the fastest they could ever go is what a lean
Python consumer reaches on the same broker: fetch, split the Confluent header off,
``fastavro.schemaless_reader`` with the writer schema. No validation, no reader-schema
resolution, no dict building beyond what fastavro returns, no state. Two clients,
because they differ a lot: kafka-python parses record batches in Python, confluent-kafka
in librdkafka (C).

Choices that make this a *lean* limit rather than a default-config one:

* manual ``assign`` from the beginning, no consumer group (no join, no commits);
* large fetches and big ``poll``/``consume`` batches (fewer Python round trips);
* kafka-python with ``check_crcs=False``: without the optional ``crc32c`` C package it
  checks CRC32C in pure Python, which alone costs more than decoding (librdkafka's
  ``check.crcs`` is off by default too);
* bare fastavro with one parsed writer schema per schema id instead of
  ``AvroCodec.decode`` (which also resolves to the newest local schema and wraps the
  result); the codec is kept as an option to measure what that costs.

``seconds`` runs from the first poll to the last record handled, so connection and
metadata set-up are outside it while the first fetch (and its offset lookup) is inside.
"""

from __future__ import annotations

import io
import json
import time
import urllib.request
import uuid
from typing import Callable

import fastavro

from touchstream.config import Settings
from touchstream.kafka_access import kafka_access

CLIENTS = ("kafka-python", "confluent-kafka")
BATCH = 10_000
FETCH_MAX_BYTES = 64 * 1024 * 1024
PARTITION_FETCH_BYTES = 16 * 1024 * 1024


class LimitError(RuntimeError):
    """The raw consume could not finish (too few records, unknown topic, registry down)."""


# --- decoding (pure apart from the schema fetch it is given) --------------------------------

def fetch_registry_schema(registry_url: str, schema_id: int, timeout: float = 10.0) -> dict:
    """The writer schema of ``schema_id`` from a Confluent-compatible registry."""
    url = f"{registry_url.rstrip('/')}/schemas/ids/{schema_id}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(json.loads(response.read())["schema"])
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot decode"
        raise LimitError(f"schema id {schema_id} not readable from {url}: {exc}") from exc


class LeanDecoder:
    """Confluent-framed Avro -> dict with bare fastavro and a per-id parsed-schema cache.

    ``fetch(schema_id) -> schema dict`` is called once per id (the registry, or a dict in tests).
    """

    def __init__(self, fetch: Callable[[int], dict]):
        self._fetch = fetch
        self._parsed: dict[int, object] = {}

    def decode(self, value: bytes) -> dict:
        if value is None or len(value) < 5 or value[0] != 0:
            raise LimitError(f"not Confluent-framed Avro: {value if value is None else value[:5]!r}")
        schema_id = int.from_bytes(value[1:5], "big")
        parsed = self._parsed.get(schema_id)
        if parsed is None:
            parsed = self._parsed[schema_id] = fastavro.parse_schema(self._fetch(schema_id))
        buf = io.BytesIO(value)
        buf.seek(5)   # no copy of the body, unlike value[5:]
        return fastavro.schemaless_reader(buf, parsed, None)

    @property
    def schema_ids(self) -> list[int]:
        return sorted(self._parsed)


def make_decoder(settings: Settings, decoder: str) -> Callable[[bytes], object]:
    """``lean`` (the limit) or ``codec`` (touchstream's AvroCodec, to measure its overhead)."""
    if decoder == "lean":
        return LeanDecoder(lambda sid: fetch_registry_schema(settings.registry_url, sid)).decode
    if decoder == "codec":
        from touchstream.codec.avro_codec import AvroCodec

        return AvroCodec(settings.registry_url, auto_register=False).decode
    raise ValueError(f"unknown decoder {decoder!r}; use 'lean' or 'codec'")


# --- the two clients -------------------------------------------------------------------------

class _KafkaPythonSource:
    """kafka-python ``KafkaConsumer`` assigned to every partition, from the beginning."""

    def __init__(self, settings: Settings, topics: list[str], batch: int):
        from kafka import KafkaConsumer, TopicPartition

        self._batch = batch
        self._consumer = KafkaConsumer(
            **kafka_access(settings, "admin").kafka_python(), group_id=None, enable_auto_commit=False,
            client_id="touchstream-bench-raw", check_crcs=False,
            fetch_max_bytes=FETCH_MAX_BYTES, max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            receive_buffer_bytes=4 * 1024 * 1024, max_poll_records=batch, fetch_max_wait_ms=100,
        )
        try:
            parts = []
            known = self._consumer.topics()   # one blocking metadata call for every topic
            for topic in topics:
                found = self._consumer.partitions_for_topic(topic) if topic in known else None
                if not found:
                    raise LimitError(f"topic {topic!r} not found on {settings.bootstrap_servers}")
                parts += [TopicPartition(topic, p) for p in sorted(found)]
            self._consumer.assign(parts)
            self._consumer.seek_to_beginning()
        except BaseException:
            self._consumer.close()
            raise

    def poll(self, timeout: float) -> list[bytes]:
        polled = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=self._batch)
        return [record.value for records in polled.values() for record in records]

    def close(self) -> None:
        self._consumer.close()


class _ConfluentSource:
    """confluent-kafka ``Consumer`` assigned at OFFSET_BEGINNING; never joins its group."""

    def __init__(self, settings: Settings, topics: list[str], batch: int):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self._batch = batch
        self._consumer = Consumer({
            **kafka_access(settings, "admin").confluent(),
            "group.id": f"touchstream-bench-{uuid.uuid4().hex[:12]}",  # required; never joined
            "enable.auto.commit": False,
            "fetch.max.bytes": FETCH_MAX_BYTES,
            "max.partition.fetch.bytes": PARTITION_FETCH_BYTES,
            "queued.max.messages.kbytes": 256 * 1024,
            "fetch.wait.max.ms": 100,
        })
        try:
            metadata = self._consumer.list_topics(timeout=30)
            parts = []
            for topic in topics:
                meta = metadata.topics.get(topic)
                if meta is None or meta.error is not None or not meta.partitions:
                    raise LimitError(f"topic {topic!r} not found on {settings.bootstrap_servers}")
                parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
            self._consumer.assign(parts)
        except BaseException:
            self._consumer.close()
            raise

    def poll(self, timeout: float) -> list[bytes]:
        values = []
        for message in self._consumer.consume(num_messages=self._batch, timeout=timeout):
            if message.error() is not None:
                if message.error().is_fatal():
                    raise LimitError(f"confluent-kafka: {message.error()}")
                continue  # partition EOF and other informational events
            values.append(message.value())
        return values

    def close(self) -> None:
        self._consumer.close()


def open_source(settings: Settings, topics: list[str], client: str, batch: int = BATCH):
    if client == "kafka-python":
        return _KafkaPythonSource(settings, topics, batch)
    if client == "confluent-kafka":
        return _ConfluentSource(settings, topics, batch)
    raise ValueError(f"unknown client {client!r}; use one of {', '.join(CLIENTS)}")


# --- the measurement -------------------------------------------------------------------------

def drain(poll: Callable[[float], list[bytes]], expected: int, handle: Callable[[bytes], object] | None,
          *, stall_timeout: float = 20.0, clock: Callable[[], float] = time.perf_counter) -> tuple[int, int, float]:
    """Poll until ``expected`` values were handled; return (records, value bytes, seconds).

    The last batch is cut at ``expected`` so the count is exact. ``stall_timeout`` seconds
    without a single record means the topics hold fewer than expected: ``LimitError``.
    """
    if expected <= 0:
        raise ValueError("expected must be positive")
    records = nbytes = 0
    start = clock()
    last_progress = time.monotonic()
    while records < expected:
        values = poll(0.5)
        if not values:
            if time.monotonic() - last_progress > stall_timeout:
                raise LimitError(f"only {records} of {expected} records after {stall_timeout:.0f}s "
                                 "without a new one; the topics hold fewer than expected")
            continue
        last_progress = time.monotonic()
        if len(values) > expected - records:
            values = values[:expected - records]
        if handle is not None:
            for value in values:
                handle(value)
        records += len(values)
        nbytes += sum(map(len, values))
    return records, nbytes, clock() - start


def _measure(settings, topics, expected, client, handle, stall_timeout) -> dict:
    source = open_source(settings, list(topics), client)
    try:
        cpu = time.process_time()
        records, nbytes, seconds = drain(source.poll, expected, handle, stall_timeout=stall_timeout)
        cpu = time.process_time() - cpu
    finally:
        source.close()
    # cpu_seconds (this process, librdkafka's threads included) is less skewed than wall time
    # when other processes share the cores; it is context, the figure is ``rate``.
    return {"client": client, "records": records, "seconds": seconds,
            "rate": records / seconds if seconds > 0 else 0.0, "bytes": nbytes, "cpu_seconds": cpu}


def consume_decode(settings: Settings, topics: list[str], expected: int, client: str, *,
                   decoder: str = "lean", stall_timeout: float = 20.0) -> dict:
    """Read ``expected`` records of ``topics`` from offset 0 and Avro-decode each value.

    Returns {"client", "records", "seconds", "rate", "bytes", "cpu_seconds"}; ``bytes`` counts
    record values.
    """
    return _measure(settings, topics, expected, client, make_decoder(settings, decoder), stall_timeout)


def consume_only(settings: Settings, topics: list[str], expected: int, client: str, *,
                 stall_timeout: float = 20.0) -> dict:
    """The same read without decoding: how much of the limit is the client, how much Avro."""
    return _measure(settings, topics, expected, client, None, stall_timeout)
