"""Telling an outage (schema registry, Kafka broker) from a bug, and keeping track of one.

Why a stage waits out an outage instead of exiting: a registry or broker that is away
for a minute is not the record's fault, and a process that exits on it takes the
query API and the SLA timer down with it for nothing. Why a bug still stops the
process (fail-stop): a handler that raises on data has left no trace only if its
batch was rolled back, and exiting before any offset past durable state is committed
is what keeps at-least-once; the supervisor restarts it.

``Outage`` is this process's view of one dependency: since when it is unreachable
(``/health`` reports it), logged at warning with the duration, at most every
``log_every`` seconds, never with record contents (reasons are client error texts).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone

import httpx
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError

from touchstream.codec.avro_codec import RegistryError
from touchstream.processors.topic_output import OutputError

log = logging.getLogger(__name__)

# librdkafka codes that mean "the broker (or the way to it) is away for now", beside KafkaError.retriable().
TRANSIENT_KAFKA = {
    KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT, KafkaError._MSG_TIMED_OUT,
    KafkaError._RESOLVE, KafkaError._WAIT_COORD, KafkaError._NO_OFFSET, KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION, KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.REBALANCE_IN_PROGRESS,
}


class Outage:
    """One dependency's outage as this process sees it; thread-safe (every source thread reports)."""

    def __init__(self, what: str, *, log_every: float = 30.0, clock=time.monotonic, wall=time.time):
        self.what, self.log_every, self.clock, self.wall = what, log_every, clock, wall
        self._began: float | None = None     # clock() when it began
        self._since: float | None = None     # wall() when it began, for people
        self._logged = 0.0
        self._lock = threading.Lock()

    def failed(self, reason: str) -> None:
        """Another failed attempt: begins the outage, or logs its duration now and then."""
        with self._lock:
            now = self.clock()
            if self._began is None:
                self._began, self._since, self._logged = now, self.wall(), now
                log.warning("%s unreachable (%s); retrying with backoff", self.what, _short(reason))
            elif now - self._logged >= self.log_every:
                self._logged = now
                log.warning("%s unreachable for %.0fs (%s); still retrying", self.what, now - self._began,
                            _short(reason))

    def recovered(self) -> None:
        """An attempt went through: ends the outage, if there was one (cheap when there was not)."""
        if self._began is None:
            return
        with self._lock:
            if self._began is not None:
                log.warning("%s reachable again after %.0fs", self.what, self.clock() - self._began)
                self._began = self._since = None

    @property
    def since(self) -> float | None:
        """Epoch seconds when the outage began, None while reachable."""
        return self._since

    def seconds(self) -> float | None:
        began = self._began
        return None if began is None else self.clock() - began

    def snapshot(self) -> dict:
        since = self._since
        seconds = self.seconds()
        return {"reachable": since is None,
                "unreachable_since": None if since is None else
                datetime.fromtimestamp(since, timezone.utc).isoformat(timespec="seconds"),
                "outage_seconds": None if seconds is None else round(seconds, 1)}


BROKER = Outage("Kafka broker")
REGISTRY = Outage("schema registry")


def _short(reason: str) -> str:
    return " ".join(str(reason).split())[:200]


def kafka_transient(error: KafkaError) -> bool:
    """A librdkafka error that says "not now" rather than "never"."""
    return not error.fatal() and (error.retriable() or error.code() in TRANSIENT_KAFKA)


def registry_down(exc: BaseException) -> bool:
    """The registry could not be reached, or failed on its side (5xx): not the record's fault.

    Looks through the cause chain: ``AvroCodec`` wraps transport errors in ``RegistryError``."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, httpx.TransportError) or getattr(exc, "unreachable", False):
            return True
        if isinstance(exc, SchemaRegistryError) and (exc.http_status_code or 0) >= 500:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def pending_only(exc: OutputError) -> bool:
    """Outputs not acknowledged yet, none refused: librdkafka still holds them and delivers them
    once the broker is back (``TopicOutput.flush`` names refused deliveries after "errors: ")."""
    return str(exc).rstrip().endswith("errors: []")


def outage_of(exc: BaseException, *, rerunnable: bool) -> Outage | None:
    """Which dependency's outage ``exc`` is, or None (a bug: fail-stop).

    ``rerunnable``: the failed batch left no trace (a sink whose rows and offsets share one
    rolled-back transaction), so running it again is safe whatever was half done. A stage that
    changed memory before its outputs were acknowledged (identity) may only retry a flush whose
    outputs are all still queued: a refused output, or a registry failure half-way through its
    outputs, is only redone by a restart from its durable state."""
    if isinstance(exc, OutputError):
        return BROKER if rerunnable or pending_only(exc) else None
    if not rerunnable:
        return None
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return BROKER if kafka_transient(exc.args[0]) else None
    if isinstance(exc, (RegistryError, httpx.TransportError)) and registry_down(exc):
        return REGISTRY
    if isinstance(exc, RuntimeError) and str(exc).startswith("dead letters not delivered"):
        return BROKER   # DeadLetterProducer.send: the dead-letter topic's broker did not acknowledge
    return None


# Per source in this process: how far its consumer is behind the partition ends, as of librdkafka's
# last statistics (``/health`` reports it; during a broker outage it is as of the last contact).
LAG: dict[str, dict] = {}


class BrokerWatch:
    """librdkafka's callbacks for one consumer: client errors begin a broker outage, its statistics end
    one and give the consumer's lag. The broker answers when a connection to it is UP and has received
    within ``silent_after`` seconds (the group coordinator's connection hears a heartbeat every 2 s even
    while the fetcher rests on a full queue); a frozen broker keeps its connections UP but silent, until
    its requests time out a minute later."""

    silent_after = 20.0

    def __init__(self, name: str, outage: Outage = BROKER, wall=time.time):
        self.name, self.outage, self.wall = name, outage, wall

    def on_error(self, error: KafkaError) -> None:
        """An outage begins when librdkafka has no broker left; one connection dropping (a broker closes
        idle ones) is not one. While an outage lasts, every further error just adds to its log."""
        if error.code() == KafkaError._ALL_BROKERS_DOWN or (self.outage.since is not None and kafka_transient(error)):
            self.outage.failed(f"{self.name}: {error.str()}")
        else:   # a fatal one also reaches consume(), which stops the stage
            log.warning("%s: consumer error %s", self.name, error.str())

    def on_stats(self, text: str) -> None:
        try:
            stats = json.loads(text)
        except ValueError:
            return
        heard = [b.get("rxidle", -1) / 1e6 for b in stats.get("brokers", {}).values() if b.get("state") == "UP"]
        if self.wall() - stats.get("time", self.wall()) > 5:
            pass   # queued while the stage was busy in its handler: old news about the broker
        elif any(0 <= idle < self.silent_after for idle in heard):
            self.outage.recovered()
        elif heard and min(heard) >= self.silent_after:
            self.outage.failed(f"{self.name}: no answer from the broker for {min(heard):.0f}s")
        lags = [p.get("consumer_lag", -1) for t in stats.get("topics", {}).values()
                for n, p in t.get("partitions", {}).items() if n != "-1"]
        known = [lag for lag in lags if lag >= 0]
        LAG[self.name] = {"records_behind": sum(known) if known else None,
                          "as_of": datetime.fromtimestamp(self.wall(), timezone.utc).isoformat(timespec="seconds")}
