"""The Python SDK for channel systems: validate, encode, and send events to Kafka.

Nothing is sent before the event passed its contract (``Catalogue.validate``), so
a bad event fails in the caller with field paths, never downstream. Delivery is
idempotent (``enable.idempotence``, acks=all) and batched by librdkafka; ``flush``
(and ``close``) wait for every acknowledgement and raise if any send failed.
"""

from __future__ import annotations

import inspect
import threading
from datetime import datetime, timezone
from typing import Any, Iterable

from confluent_kafka import KafkaException, Producer

from touchstream.codec.avro_codec import AvroCodec
from touchstream.config import Settings
from touchstream.events.catalogue import Catalogue, ValidEvent
from touchstream.events.validation import EventValidationError, Problem

ENVELOPE_ARGS = ("identity", "occurred_at", "channel", "content", "initiated_by", "correlation_id", "causation_id", "event_id")


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
    ):
        """``keep_event_source``: events that name their own source keep it (replaying an
        export of several systems); by default ``source`` is stamped on every event."""
        self.settings = settings or Settings.from_env()
        self.source = source
        self._stamp = {"default_source": source} if keep_event_source else {"source": source}
        self.channels = frozenset(channels) if channels is not None else None
        self.catalogue = catalogue or Catalogue()
        self.codec = codec or AvroCodec(self.settings.registry_url)
        config = {
            "bootstrap.servers": self.settings.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "message.timeout.ms": 60000,
        }
        config.update(producer_config or {})
        self._producer = Producer(config)
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- validation ---------------------------------------------------------
    def validate(self, event: dict, *, now: datetime | None = None) -> ValidEvent:
        valid = self.catalogue.validate(event, now=now, **self._stamp)
        self._check_scope([valid])
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
        valid = self.catalogue.validate_batch(list(events), **self._stamp)
        self._check_scope(valid)
        self.send_valid(valid)
        return [v.event_id for v in valid]

    def send_valid(self, events: list[ValidEvent]) -> None:
        """Queue validated events; failures are reported by the next ``flush``."""
        self._send(events, self._record_failure)

    def deliver(self, events: list[ValidEvent], timeout: float = 30.0) -> None:
        """Send and wait until Kafka acknowledged these events (used by the HTTP collector)."""
        failed: dict[str, str] = {}
        self._send(events, lambda event_id, err: failed.__setitem__(event_id, err))
        remaining = self._producer.flush(timeout)
        if remaining and not failed:
            failed["<pending>"] = f"{remaining} event(s) unacknowledged after {timeout}s"
        if failed:
            raise PublishError(failed)

    def _record_failure(self, event_id: str, err: str) -> None:
        with self._lock:
            self._failed[event_id] = err

    def _send(self, events: list[ValidEvent], on_error) -> None:
        if self._closed:
            raise RuntimeError("publisher is closed")
        # Encode everything first: a registry failure then sends nothing of the batch.
        encoded = [self.codec.encode(event.schema, event.record) for event in events]
        for event, value in zip(events, encoded):
            headers = [("event_type", event.event_type.encode()), ("event_id", event.event_id.encode())]

            def on_delivery(err, _msg, event_id=event.event_id):
                if err is not None:
                    on_error(event_id, str(err))

            while True:
                try:
                    self._producer.produce(event.topic, value=value, key=event.key, headers=headers, on_delivery=on_delivery)
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
    def __getattr__(self, domain: str) -> "_DomainHelpers":
        if domain.startswith("_") or "catalogue" not in self.__dict__:
            raise AttributeError(domain)
        names = [t for t in self.catalogue.event_types() if t.split(".", 1)[0] == domain]
        if not names:
            raise AttributeError(f"no event domain {domain!r}")
        return _DomainHelpers(self, domain, names)


class _DomainHelpers:
    """``publisher.<domain>.<event>(**fields)``: builds the envelope, then ``publish``."""

    def __init__(self, publisher: Publisher, domain: str, event_types: list[str]):
        self._publisher = publisher
        self._domain = domain
        self._types = {t.split(".", 1)[1]: t for t in event_types}

    def __dir__(self) -> list[str]:
        return sorted(self._types)

    def __getattr__(self, name: str):
        if name not in self._types:
            raise AttributeError(f"no event {self._domain}.{name}; known: {', '.join(sorted(self._types))}")
        schema = self._publisher.catalogue.schema(self._types[name])

        def helper(**kwargs: Any) -> str:
            return self._publisher.publish(build_event(schema, kwargs))

        fields = [f["name"] for f in schema.schema["fields"] if f["name"] != "envelope"]
        params = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in (*ENVELOPE_ARGS, *fields)]
        helper.__signature__ = inspect.Signature(params)
        helper.__name__ = name
        helper.__doc__ = schema.schema.get("doc")
        return helper


def build_event(schema, kwargs: dict[str, Any]) -> dict:
    """Split helper keyword arguments into envelope and payload; default what the catalogue fixes."""
    meta = schema.meta
    env: dict[str, Any] = {"event_type": schema.event_type}
    for arg in ENVELOPE_ARGS:
        if arg in kwargs:
            env[arg] = kwargs.pop(arg)
    for field, allowed in (("channel", "channels"), ("content", "contents"), ("initiated_by", "initiated_by")):
        if field not in env and len(meta.get(allowed) or []) == 1:
            env[field] = meta[allowed][0]
    env.setdefault("occurred_at", datetime.now(timezone.utc))
    missing = [f for f in ("channel", "content", "initiated_by", "identity") if f not in env]
    if missing:
        raise EventValidationError([Problem(f"envelope.{m}", "required field is missing") for m in missing])
    return {"envelope": env, **kwargs}
