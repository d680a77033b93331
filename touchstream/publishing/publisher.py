"""The Python SDK for channel systems: validate, encode, and send events to Kafka.

Nothing is sent before the event passed its contract (``Catalogue.validate``), so
a bad event fails in the caller with field paths, never downstream. Delivery is
idempotent (``enable.idempotence``, acks=all) and batched by librdkafka; ``flush``
(and ``close``) wait for every acknowledgement and raise if any send failed.

Trusted time: ``envelope.recorded_at`` is stamped with this process's clock and a
sender's value is ignored, because SLA clocks and watermarks must not follow a
wrong or hostile clock; ``occurred_at`` may lead it by ``max_clock_skew_seconds``
(``touchstream.events.time_rules``). Only a replay of an export keeps its own
recorded_at (``keep_recorded_at=True``; ``touchstream publish --keep-recorded-at``).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any, Iterable

from confluent_kafka import KafkaException, Producer

from touchstream.codec.avro_codec import AvroCodec
from touchstream.registry.credentials import client_config
from touchstream.config import Settings
from touchstream.kafka_access import kafka_access
from touchstream.events.catalogue import Catalogue, ValidEvent
from touchstream.events.time_rules import check_skew, stamp_recorded_at
from touchstream.events.validation import EventValidationError, Problem, text_problems
from touchstream.publishing.typed_helpers import DomainHelpers
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.privacy.keyring import KeyRing
from touchstream.privacy.sealer import Sealer


class PublishError(RuntimeError):
    """Kafka did not acknowledge some events; ``failed`` maps event_id -> reason."""

    def __init__(self, failed: dict[str, str]):
        self.failed = dict(failed)
        sample = "; ".join(f"{k}: {v}" for k, v in list(self.failed.items())[:5])
        super().__init__(f"{len(self.failed)} event(s) not delivered: {sample}")


class ScopeError(PermissionError):
    """The event's channel is outside what this publisher may publish."""


class Publisher:
    """Publishes events for one channel system (``source``), optionally limited to ``channels``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        source: str,
        channels: Iterable[str] | None = None,
        catalogue: Catalogue | None = None,
        codec: AvroCodec | None = None,
        producer_config: dict[str, Any] | None = None,
        keep_event_source: bool = False,
        keep_recorded_at: bool = False,
        keys: KeyRing | None = None,
    ):
        """``keep_event_source``: events that name their own source keep it (replaying an
        export of several systems); by default ``source`` is stamped on every event.
        ``keep_recorded_at``: events keep their own recorded_at (replaying an export; it
        may still not be in the future); by default it is this process's clock at validation.
        ``keys``: the key ring personal values are sealed with before they leave this process
        (``touchstream.privacy``); by default the stack's key topic, under the master key."""
        self.settings = settings or Settings.from_env()
        self.source = source
        self._stamp = {"default_source": source} if keep_event_source else {"source": source}
        self.keep_recorded_at = keep_recorded_at
        self.max_skew = self.settings.max_clock_skew
        self.channels = frozenset(channels) if channels is not None else None
        self.catalogue = catalogue or Catalogue()
        self.codec = codec or AvroCodec(client_config(self.settings, write=True))   # registers on first use
        config = {
            **kafka_access(self.settings).confluent(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "message.timeout.ms": 60000,
        }
        config.update(producer_config or {})
        self._producer = Producer(config)
        self.sealer = Sealer(keys if keys is not None else TopicKeyRing(self.settings))
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- validation ---------------------------------------------------------
    def validate(self, event: dict, *, now: datetime | None = None) -> ValidEvent:
        valid = self._validate_one(event, now or datetime.now(timezone.utc), self._stamp, self.keep_recorded_at)
        self._check_scope([valid])
        return valid

    def validate_batch(self, events: list[Any], *, now: datetime | None = None, source: str | None = None,
                       keep_recorded_at: bool | None = None) -> list[ValidEvent]:
        """All or nothing: every problem of every event, paths prefixed with the index (``[3].envelope.channel``).

        ``source`` overrides this publisher's (the collector passes the API key's system);
        ``keep_recorded_at`` overrides the constructor's (the collector forces False).
        An event_id repeated with other contents is refused (one of them would be dropped
        downstream as a duplicate); an identical repeat is sent once.
        """
        now = now or datetime.now(timezone.utc)
        stamp = self._stamp if source is None else {"source": source}
        keep = self.keep_recorded_at if keep_recorded_at is None else keep_recorded_at
        valid, problems = [], []
        for index, event in enumerate(events):
            try:
                valid.append(self._validate_one(event, now, stamp, keep))
            except EventValidationError as exc:
                problems.extend(Problem(f"[{index}].{p.path}".rstrip("."), p.reason) for p in exc.problems)
        if not problems:
            valid, problems = distinct_events(valid)
        if problems:
            raise EventValidationError(problems)
        self._check_scope(valid)
        return valid

    def _validate_one(self, event: Any, now: datetime, stamp: dict, keep_recorded_at: bool) -> ValidEvent:
        unstorable = text_problems(event)
        if unstorable:
            raise EventValidationError(unstorable)
        if not keep_recorded_at:
            event = stamp_recorded_at(event, now)
        valid = self.catalogue.validate(event, now=now, **stamp)
        problems = check_skew(valid.record, self.max_skew, now=now)
        if problems:
            raise EventValidationError(problems)
        return valid

    def _check_scope(self, events: list[ValidEvent]) -> None:
        if self.channels is None:
            return
        for index, event in enumerate(events):
            if event.channel not in self.channels:
                raise ScopeError(
                    f"event {index} ({event.event_type}) is on channel {event.channel!r}; "
                    f"{self.source} may publish only on: {', '.join(sorted(self.channels))}"
                )

    # -- sending ------------------------------------------------------------
    def publish(self, event: dict) -> str:
        """Validate and send one event; returns its event_id (delivery confirmed at flush)."""
        valid = self.validate(event)
        self.send_valid([valid])
        return valid.event_id

    def publish_batch(self, events: list[dict]) -> list[str]:
        """All or nothing at validation: one bad event rejects the batch before any is sent."""
        valid = self.validate_batch(list(events))
        self.send_valid(valid)
        return [v.event_id for v in valid]

    def send_valid(self, events: list[ValidEvent]) -> None:
        """Queue validated events; failures are reported by the next ``flush``."""
        self._send(events, self._record_result)

    def send_reporting(self, events: list[ValidEvent], on_result) -> None:
        """Queue events; ``on_result(event_id, error or None)`` is called once per event by whichever
        thread polls (the collector's one poll thread, ``touchstream.publishing.delivery``)."""
        self._send(events, on_result)

    def poll(self, timeout: float) -> int:
        """Serve delivery reports for up to ``timeout`` s; returns as soon as one was served."""
        return self._producer.poll(timeout)

    def _record_result(self, event_id: str, err: str | None) -> None:
        if err is not None:
            with self._lock:
                self._failed[event_id] = err

    def _send(self, events: list[ValidEvent], on_result) -> None:
        if self._closed:
            raise RuntimeError("publisher is closed")
        # Seal and encode everything first: a key store or registry failure then sends nothing of the batch.
        try:
            sealed = self.sealer.seal_events([(e.schema.subject, e.schema.schema, e.record) for e in events])
        except KafkaException as exc:   # the key topic did not store a new key: nothing may be sent sealed with it
            raise PublishError({e.event_id: f"key store: {exc}" for e in events}) from exc
        encoded = [(self.codec.encode(event.schema, record), key) for event, (record, key) in zip(events, sealed)]
        for event, (value, key) in zip(events, encoded):
            headers = [("event_type", event.event_type.encode()), ("event_id", event.event_id.encode())]

            def on_delivery(err, _msg, event_id=event.event_id):
                on_result(event_id, None if err is None else str(err))

            while True:
                try:
                    self._producer.produce(event.topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
                    break
                except BufferError:  # local queue full: let librdkafka drain, then retry
                    self._producer.poll(0.1)
                except KafkaException as exc:
                    raise PublishError({event.event_id: str(exc)}) from exc
            self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        """Wait for every acknowledgement; raise PublishError for anything not delivered."""
        remaining = self._producer.flush(timeout)
        with self._lock:
            failed, self._failed = self._failed, {}
        if remaining:
            failed["<pending>"] = f"{remaining} event(s) still unacknowledged after {timeout}s"
        if failed:
            raise PublishError(failed)

    def close(self, timeout: float = 60.0) -> None:
        if not self._closed:
            try:
                self.flush(timeout)
            finally:
                self._closed = True

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- typed helpers: publisher.phone.call_ended(...) -------------------------
    def __getattr__(self, domain: str) -> DomainHelpers:
        if domain.startswith("_") or "catalogue" not in self.__dict__:
            raise AttributeError(domain)
        names = [t for t in self.catalogue.event_types() if t.split(".", 1)[0] == domain]
        if not names:
            raise AttributeError(f"no event domain {domain!r}")
        return DomainHelpers(self, domain, names)


def distinct_events(events: list[ValidEvent]) -> tuple[list[ValidEvent], list[Problem]]:
    """Each event_id once: identical repeats collapse (a retry inside one batch is harmless);
    a repeat with other contents is a problem, since consumers would keep only one of them."""
    first: dict[str, int] = {}
    distinct, problems = [], []
    for index, event in enumerate(events):
        seen = first.setdefault(event.event_id, index)
        if seen == index:
            distinct.append(event)
        elif events[seen].record != event.record:
            problems.append(Problem(f"[{index}].envelope.event_id", f"repeats the event_id of [{seen}] with "
                                    "different contents; give each event its own id"))
    return distinct, problems
