"""Registry and broker outages are waited out, bugs still stop a stage: the decoding retry, the batch
source's retry of a batch, the SLA timer's tick, the outage bookkeeping and what /health says about it."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastapi.testclient import TestClient

from tests.conftest import free_ports
from tests.event_builders import plain_event
from tests.local_codec import LocalCodec, MemoryRegistryClient
from tests.unit.test_batch_source import Message
from touchstream.backoff import Backoff
from touchstream.codec.avro_codec import AvroCodec, RegistryError
from touchstream.config import Settings
from touchstream.events.catalogue import Catalogue
from touchstream.processors import outages
from touchstream.processors.app import tick_through_outages
from touchstream.processors.batch_source import BatchSource
from touchstream.processors.decoding import decode
from touchstream.processors.outages import BROKER, REGISTRY, BrokerWatch, Outage, outage_of
from touchstream.processors.records import RawRecord
from touchstream.processors.topic_output import OutputError, TopicOutput
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.serving.http_app import build_api

AT = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
PENDING = OutputError("3 output(s) still pending after 60s; errors: []")
REFUSED = OutputError("0 output(s) still pending after 60s; errors: ['Local: Message timed out']")


@pytest.fixture(autouse=True)
def reachable():
    """Every test starts (and leaves) the process-wide outages closed."""
    for outage in (BROKER, REGISTRY):
        outage.recovered()
    outages.LAG.clear()
    yield
    for outage in (BROKER, REGISTRY):
        outage.recovered()
    outages.LAG.clear()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- the decoding retry --------------------------------------------------------------------------

class FlakyRegistry(MemoryRegistryClient):
    """A registry that is unreachable for the first ``down`` schema fetches, then answers."""

    def __init__(self, source: MemoryRegistryClient, down: int, error: Exception) -> None:
        super().__init__()
        self._ids, self._texts = source._ids, source._texts
        self.down, self.error, self.calls = down, error, 0

    def get_schema(self, schema_id: int):
        self.calls += 1
        if self.calls <= self.down:
            raise self.error
        return super().get_schema(schema_id)


def encoded_event(email: str = "ann@example.com") -> bytes:
    catalogue, writer = Catalogue(), LocalCodec()
    record = catalogue.validate(plain_event("web.page_viewed", AT, {"email": email}), now=AT).record
    return writer.encode(catalogue.schema("web.page_viewed"), record)


def reader_codec(down: int, error: Exception) -> tuple[AvroCodec, FlakyRegistry]:
    registry = FlakyRegistry(LocalCodec()._client, down, error)
    return AvroCodec("http://registry.invalid", auto_register=False, client=registry), registry


def test_an_unreachable_registry_is_waited_out_with_backoff_and_the_record_decoded(caplog):
    codec, registry = reader_codec(5, httpx.ConnectError("[Errno 111] Connection refused"))
    waits = []
    with caplog.at_level(logging.WARNING, logger="touchstream.processors.outages"):
        decoded = decode(codec, encoded_event("secret.person@example.com"), sleep=waits.append)
    assert decoded.record["envelope"]["event_type"] == "web.page_viewed"
    assert registry.calls == 6 and waits == [0.2, 0.4, 0.8, 1.6, 3.2]
    assert REGISTRY.since is None, "the outage ends with the first schema fetched"
    text = caplog.text
    assert "schema registry unreachable" in text and "reachable again after" in text
    assert "secret.person" not in text, "an outage log must not carry the record's personal data"


def test_the_registry_clients_own_transport_errors_are_an_outage_too():
    """confluent-kafka's registry client raises its vendored ``httpx2`` errors, which are no
    ``httpx.TransportError``: the fault suite's 30 s registry outage ended identity and serving."""
    import httpx2

    codec, registry = reader_codec(3, httpx2.ConnectError("[Errno 111] Connection refused"))
    decoded = decode(codec, encoded_event(), sleep=lambda _s: None)
    assert decoded.record["envelope"]["event_type"] == "web.page_viewed" and registry.calls == 4


def test_a_registry_outage_longer_than_the_old_eight_tries_still_ends_in_the_record():
    codec, registry = reader_codec(40, httpx.ReadTimeout("timed out"))
    waits = []
    assert decode(codec, encoded_event(), sleep=waits.append).record["envelope"]["identity"]
    assert registry.calls == 41 and max(waits) == 30.0, "capped at 30 s between tries"


def test_a_registry_failing_on_its_side_is_an_outage_too():
    codec, registry = reader_codec(3, SchemaRegistryError(503, 50003, "backing store unavailable"))
    assert decode(codec, encoded_event(), sleep=lambda _: None).schema_id
    assert registry.calls == 4


def test_a_registry_that_answers_but_refuses_is_raised_after_its_attempts():
    codec, registry = reader_codec(100, SchemaRegistryError(401, 40101, "unauthorised"))
    with pytest.raises(RegistryError):
        decode(codec, encoded_event(), attempts=3, sleep=lambda _: None)
    assert registry.calls == 3


# --- outage or bug ---------------------------------------------------------------------------------

def registry_unreachable() -> RegistryError:
    try:
        try:
            raise httpx.ConnectError("refused")
        except httpx.ConnectError as exc:
            raise RegistryError("touchstream.identity.IdentityDecided: registry unreachable") from exc
    except RegistryError as wrapped:
        return wrapped


@pytest.mark.parametrize("exc, rerunnable, outage", [
    (PENDING, False, BROKER),                   # outputs still queued: flushing again is safe for anyone
    (REFUSED, True, BROKER),                    # a rolled-back sink may redo refused outputs
    (REFUSED, False, None),                     # identity may not: a restart redoes them from its snapshot
    (KafkaException(KafkaError(KafkaError._TRANSPORT, "down")), True, BROKER),
    (KafkaException(KafkaError(KafkaError._FENCED, "fenced", fatal=True)), True, None),
    (registry_unreachable(), True, REGISTRY),
    (registry_unreachable(), False, None),
    (RegistryError("subject not found (code 40401)"), True, None),
    (RuntimeError("dead letters not delivered: 2 pending, errors: []"), True, BROKER),
    (ValueError("a handler bug"), True, None),
    (KeyError("envelope"), True, None),
])
def test_outages_are_told_from_bugs(exc, rerunnable, outage):
    assert outage_of(exc, rerunnable=rerunnable) is outage


def test_a_flush_against_an_unreachable_broker_reads_as_outputs_still_queued():
    """Pins the one thing ``pending_only`` reads from ``TopicOutput``: its message when nothing was refused."""
    port = free_ports(1)[0]
    output = TopicOutput(Settings(home=Path("/unused"), broker_port=port), client_id="outage-test")
    output.send("t", "k", b"v")
    try:
        with pytest.raises(OutputError) as raised:
            output.flush(timeout=0.3)
    finally:
        output._producer.purge()   # no reconnecting after the test
        output._producer.flush(0)
    assert outages.pending_only(raised.value) and outage_of(raised.value, rerunnable=False) is BROKER


def test_a_refused_output_is_named_although_only_failed_deliveries_call_back():
    """``delivery.report.only.error``: success costs no Python call, yet every refusal still reaches ``flush``."""
    port = free_ports(1)[0]
    output = TopicOutput(Settings(home=Path("/unused"), broker_port=port), client_id="refusal-test")
    output.send("t", "k", b"v")
    output.send("t", "k", b"w")
    output._producer.purge()   # both refused locally, as a broker refusal would be reported
    try:
        with pytest.raises(OutputError) as raised:
            output.flush(timeout=5)
    finally:
        output._producer.flush(0)
    assert "Purged" in str(raised.value) and not outages.pending_only(raised.value)


# --- the batch source ------------------------------------------------------------------------------

class FakeConsumer:
    """consume() hands out one batch, then nothing; commits are recorded."""

    def __init__(self, source: BatchSource, records: list) -> None:
        self.source, self.batches, self.commits = source, [records], []

    def consume(self, n, timeout):
        if not self.batches:
            self.source._stop.set()
            return []
        return self.batches.pop(0)

    def commit(self, offsets, asynchronous):
        self.commits.append(([(tp.topic, tp.partition, tp.offset) for tp in offsets], asynchronous))


def source_with(handle, *, rerunnable: bool) -> BatchSource:
    source = BatchSource(Settings(home=Path("/unused")), "g", ["t"], handle, name="test", rerunnable=rerunnable)
    source.outage_backoff = lambda: Backoff(base=0.001, cap=0.002)
    return source


def failing(times: int, exc: Exception):
    calls = []

    def handle(records: list[RawRecord]) -> None:
        calls.append([r.offset for r in records])
        if len(calls) <= times:
            raise exc
    return handle, calls


@pytest.mark.parametrize("exc, rerunnable", [
    (PENDING, False), (REFUSED, True), (registry_unreachable(), True),
    (KafkaException(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")), True),
])
def test_a_batch_that_meets_an_outage_is_handled_again_then_committed(exc, rerunnable):
    handle, calls = failing(3, exc)
    source = source_with(handle, rerunnable=rerunnable)
    consumer = FakeConsumer(source, [Message(offset=7), Message(offset=8)])
    source._consume(consumer)
    assert calls == [[7, 8]] * 4 and source.handled == 2
    assert consumer.commits[-1] == ([("t", 0, 9)], False)


@pytest.mark.parametrize("exc, rerunnable", [(ValueError("bad data"), True), (REFUSED, False)])
def test_a_bug_is_not_retried_and_nothing_is_committed(exc, rerunnable):
    handle, calls = failing(1, exc)
    source = source_with(handle, rerunnable=rerunnable)
    consumer = FakeConsumer(source, [Message(offset=7)])
    with pytest.raises(type(exc)):
        source._consume(consumer)
    assert calls == [[7]] and consumer.commits == []


def test_a_stop_during_an_outage_leaves_the_batch_uncommitted():
    source = source_with(lambda records: (_ for _ in ()).throw(PENDING), rerunnable=True)
    source.outage_backoff = lambda: Backoff(base=30.0, cap=30.0)
    source._stop.set()
    assert source._handle([RawRecord("t", 0, 1, None, b"v", [])]) is False


def test_an_outage_in_the_sla_tick_is_reported_and_a_bug_raised():
    tick_through_outages("complaint_resolution", lambda: (_ for _ in ()).throw(PENDING))
    assert BROKER.since is not None
    with pytest.raises(ZeroDivisionError):
        tick_through_outages("complaint_resolution", lambda: 1 / 0)


# --- the bookkeeping ----------------------------------------------------------------------------------

def test_an_outage_logs_when_it_begins_now_and_then_with_its_duration_and_when_it_ends(caplog):
    clock, wall = Clock(), Clock()
    outage = Outage("Kafka broker", log_every=30, clock=clock, wall=wall)
    with caplog.at_level(logging.WARNING, logger="touchstream.processors.outages"):
        outage.failed("Connect to 127.0.0.1:9092 failed")
        clock.now += 10
        outage.failed("again")
        clock.now += 25
        outage.failed("still")
        assert outage.snapshot()["outage_seconds"] == 35 and not outage.snapshot()["reachable"]
        clock.now += 5
        outage.recovered()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert "unreachable (Connect to" in messages[0] and "unreachable for 35s" in messages[1]
    assert messages[2] == "Kafka broker reachable again after 40s"
    assert outage.snapshot() == {"reachable": True, "unreachable_since": None, "outage_seconds": None}


def test_librdkafka_statistics_end_an_outage_and_give_the_lag():
    watch = BrokerWatch("interaction_log", wall=lambda: AT.timestamp())
    watch.on_error(KafkaError(KafkaError._TRANSPORT, "127.0.0.1:9092/1: Disconnected (after 600000ms in state UP)"))
    assert BROKER.since is None, "one idle connection closed by the broker is no outage"
    watch.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert BROKER.since is not None
    down = {"brokers": {"127.0.0.1:9092/1": {"nodeid": 1, "state": "CONNECT", "rxidle": -1}},
            "topics": {"t": {"partitions": {"0": {"consumer_lag": 5}, "1": {"consumer_lag": -1},
                                            "-1": {"consumer_lag": 99}}}}}
    watch.on_stats(json.dumps(down))
    assert BROKER.since is not None and outages.LAG["interaction_log"]["records_behind"] == 5
    up = {**down, "brokers": {"127.0.0.1:9092/1": {"nodeid": 1, "state": "UP", "rxidle": 120_000}}}
    watch.on_stats(json.dumps(up))
    assert BROKER.since is None
    assert outages.LAG["interaction_log"] == {"records_behind": 5, "as_of": "2026-06-01T12:00:00+00:00"}


def test_a_broker_that_keeps_its_connections_but_stops_answering_is_an_outage():
    """Frozen (SIGSTOP, a stalled disk): the connection stays UP, nothing comes back."""
    watch = BrokerWatch("customer_360")
    busy = {"brokers": {"127.0.0.1:9092/1": {"nodeid": 1, "state": "UP", "rxidle": 40_000_000},
                        "GroupCoordinator": {"nodeid": 1, "state": "UP", "rxidle": 1_500_000}}}
    watch.on_stats(json.dumps(busy))
    assert BROKER.since is None, "a fetcher resting on a full queue while heartbeats come back is no outage"
    silent = {"brokers": {"127.0.0.1:9092/1": {"nodeid": 1, "state": "UP", "rxidle": 40_000_000},
                          "GroupCoordinator": {"nodeid": 1, "state": "UP", "rxidle": 21_000_000},
                          "127.0.0.1:9092/bootstrap": {"nodeid": -1, "state": "INIT", "rxidle": -1}}}
    watch.on_stats(json.dumps(silent))
    assert BROKER.since is not None
    watch.on_stats(json.dumps({"brokers": {"127.0.0.1:9092/1": {"nodeid": 1, "state": "UP", "rxidle": 90_000}}}))
    assert BROKER.since is None
    watch.on_stats(json.dumps({**silent, "time": int(time.time()) - 60}))
    assert BROKER.since is None, "statistics queued while the stage was busy are old news"


# --- what the query API says ----------------------------------------------------------------------

def test_health_answers_during_a_broker_outage_and_says_how_stale(tmp_path):
    store = DuckDBStore(tmp_path / "t.duckdb")
    with store.transaction() as con:
        store.save_offsets(con, "interaction_log", {("touchstream.raw.web", 0): 42}, AT)
    outages.LAG["interaction_log"] = {"records_behind": 7, "as_of": "2026-06-01T12:00:00+00:00"}
    client = TestClient(build_api(store, ready=SimpleNamespace(is_set=lambda: True)))
    healthy = client.get("/health")
    assert healthy.status_code == 200 and healthy.json()["status"] == "ok"
    assert "X-Touchstream-Broker-Unreachable-Since" not in healthy.headers

    BROKER.failed("1/1 brokers are down")
    response = client.get("/health")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "degraded"
    assert body["broker"]["reachable"] is False and body["broker"]["unreachable_since"]
    assert response.headers["X-Touchstream-Broker-Unreachable-Since"] == body["broker"]["unreachable_since"]
    assert datetime.fromisoformat(body["sinks"]["interaction_log"]["last_commit"]) == AT
    assert body["sources"]["interaction_log"]["records_behind"] == 7
    assert datetime.fromisoformat(body["broker"]["unreachable_since"]) > AT - timedelta(days=3650)
    query = client.post("/sql", json={"sql": "SELECT count(*) AS n FROM sink_offsets", "format": "json"})
    assert query.status_code == 200, query.text   # analysts still read DuckDB, told since when it is stale
    assert query.json()["rows"] == [[1]]
    assert query.headers["X-Touchstream-Broker-Unreachable-Since"] == body["broker"]["unreachable_since"]
    store.close()
