"""What subscribers are told holds on the wire: the AsyncAPI headers and the guide's code.

What they protect: the headers in the AsyncAPI document are written beside the generator, not
read from the producers, so the real producers (publisher, identity stage, SLA timer, dead-letter
producer) are run here on fake transports and their header names compared with the document
both ways. The code in ``docs/subscribing.md`` must run against the installed libraries: every
block compiles and its imports resolve, the kafka-python/fastavro decoder decodes records framed
by touchstream's codec with schemas fetched from touchstream's own registry app over its HTTP
API, and the confluent-kafka blocks build valid consumers and decode through the registry client.
Each consume loop meets poison records (not Confluent framing, an unknown schema id, a cut
body, a key that is not UTF-8) among good ones: it parks them and goes on, committing past
them, as the guide says (the guide's first loop once stopped for good at the first one).
The first loop alone: ``test_subscribing_poison.py``; on a real broker: ``test_subscribing_on_broker.py``.
"""

from __future__ import annotations

import ast
import io
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastapi.testclient import TestClient

from tests.complaint_streams import CASE, T0, ev
from tests.event_builders import linked, plain_event
from tests.guide_code import BLOCKS, guide_block
from tests.local_codec import LocalCodec
from tests.pipeline_harness import identity_stage
from touchstream.codec.avro_codec import AvroCodec
from touchstream.config import Settings
from touchstream.contracts import asyncapi
from touchstream.events.catalogue import Catalogue
from touchstream.privacy.keyring import MemoryKeyRing
from touchstream.processors.complaint_sla_timer import SlaTimer
from touchstream.processors.records import RawRecord
from touchstream.processors.topic_output import MemoryOutput
from touchstream.projections import complaint_sla as sla
from touchstream.projections.complaint_resolution import fold
from touchstream.projections.complaint_resolution_contract import SLA_SCHEMA, sla_record
from touchstream.projections.identity_resolution import IdentityConfig
from touchstream.publishing import dead_letters, publisher
from touchstream.registry.http_app import create_app
from touchstream.registry.memory_store import MemorySchemaStore
from touchstream.registry.service import RegistryService
from touchstream.schemas import load_derived_versions
from touchstream.topics import COMPLAINT_SLA_TOPIC, CUSTOMER_EVENTS_TOPIC, DLQ_TOPIC

DOC = asyncapi()
AT = datetime.now(timezone.utc) - timedelta(days=1)
COMPLAINT = [Catalogue().validate(plain_event(t, AT, {"email": "ann@example.com"}, case_id="K9"))
             for t in ("complaint.opened", "complaint.resolved", "complaint.closed")]
RING = MemoryKeyRing()   # the publisher seals with it; the codec opens with it, as the services' do


def poison(good: bytes) -> list[bytes]:
    """Values that never decode, made from a good one: not Confluent framing, an unknown schema id, a cut body."""
    return [b"not avro at all", b"\x00\x00\x0f\xff\xff" + good[5:], good[:7]]


class Recorder:
    """confluent-kafka's Producer as the publishers use it, recording instead of sending."""

    def __init__(self, config: dict | None = None):
        self.sent: list[tuple] = []

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None):
        self.sent.append((topic, key, value, list(headers or [])))

    def poll(self, timeout=0):
        return 0

    def flush(self, timeout=None):
        return 0


def documented(topic: str, codec: AvroCodec, value: bytes) -> set[str]:
    """The header names the document gives, on ``topic``, the record type ``value`` decodes to."""
    kind = codec.decode(value).event_type   # an event's type, or a derived record's full name
    found = [m for m in DOC["channels"][topic]["messages"].values()
             if kind in (m.get("x-event-type"), m.get("x-registry-subject"))]
    assert found, (topic, kind)
    names = [set(m["headers"]["properties"]) for m in found]
    assert all(n == names[0] for n in names), (topic, kind)
    return names[0]


@pytest.fixture
def codec() -> AvroCodec:
    return LocalCodec(keys=RING)


def test_publisher_and_identity_stage_send_the_documented_headers(monkeypatch, tmp_path: Path, codec):
    monkeypatch.setattr(publisher, "Producer", Recorder)
    pub = publisher.Publisher(Settings(home=tmp_path), source="test", codec=codec, keys=RING)
    for event in [plain_event("web.page_viewed", AT, {"cookie_id": "ck-1"}),
                  plain_event("web.page_viewed", AT + timedelta(minutes=1), {"email": "ann@example.com"}),
                  linked(AT + timedelta(minutes=2), ("cookie_id", "ck-1"), ("email", "ann@example.com"))]:
        pub.publish(event)
    raw = [RawRecord(topic, 0, offset, key, value, headers)
           for offset, (topic, key, value, headers) in enumerate(pub._producer.sent)]
    assert raw and all(r.topic in DOC["channels"] for r in raw)
    for r in raw:
        assert {name for name, _ in r.headers} == documented(r.topic, codec, r.value)
    output = MemoryOutput()
    identity_stage(tmp_path / "identity", IdentityConfig(), codec, output).handle(raw)
    output.flush()
    kinds = set()
    for topic, _key, value, headers in (r for r in output.records if r[0] == CUSTOMER_EVENTS_TOPIC):
        names = {name for name, _ in headers}
        assert names == documented(topic, codec, value)
        kinds.add(dict(headers)["touchstream.kind"].decode())
    assert kinds == {"event", "membership"}, "the events should make one merge"


def test_sla_timer_sends_the_documented_header_and_event_types(codec):
    case = fold([ev("complaint.opened", 0, "o", "phone")], CASE)
    due = sla.due_events(case, sla.pin_policy(case, sla.load_policies()), T0 + timedelta(days=30))
    first = due[0]["envelope"]
    undo = sla.withdrawal(case, {"event_id": first["event_id"], "event_type": first["event_type"],
                                 "clock": due[0]["clock"], "occurred_at": first["occurred_at"]})
    output = MemoryOutput()
    timer = SlaTimer(codec, output)
    for event in [*due, undo]:
        timer._send(CASE, event)
    output.flush()
    messages = DOC["channels"][COMPLAINT_SLA_TOPIC]["messages"]
    sent_types = set()
    for topic, _key, value, headers in output.records:
        assert topic == COMPLAINT_SLA_TOPIC and {n for n, _ in headers} == documented(topic, codec, value)
        sent_types.add(dict(headers)["touchstream.event_type"].decode())
    allowed = {t for m in messages.values() for t in m["headers"]["properties"]["touchstream.event_type"]["enum"]}
    assert "complaint.sla_withdrawn" in sent_types and sent_types <= allowed


def test_dead_letters_carry_the_documented_headers(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(dead_letters, "Producer", Recorder)
    dlq = dead_letters.DeadLetterProducer(Settings(home=tmp_path), consumer="test")
    original = [("event_type", b"web.page_viewed")]
    dlq.send([dead_letters.DeadLetter(RawRecord("touchstream.raw.web", 2, 41, b"k", b"\x01junk", original), "bad")])
    (topic, key, value, headers), = dlq._producer.sent
    documented_dlq = set(DOC["channels"][DLQ_TOPIC]["messages"]["DeadLetter"]["headers"]["properties"])
    assert (topic, key, value) == (DLQ_TOPIC, b"k", b"\x01junk")
    assert {n for n, _ in headers} - {n for n, _ in original} == documented_dlq


# --------------------------------------------------------------------------- the guide's code


def test_every_guide_block_compiles_and_its_imports_resolve():
    assert len(BLOCKS) >= 3
    for block in BLOCKS:
        tree = ast.parse(block)
        imports = ast.Module([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], [])
        exec(compile(imports, "<guide imports>", "exec"), {})


def test_kafka_python_decoder_reads_records_framed_by_touchstream(monkeypatch, caplog):
    service = RegistryService(MemorySchemaStore())
    client = SimpleNamespace(register_schema=lambda subject, s: service.register(subject, s.schema_str).id)
    codec = AvroCodec("unused", client=client)
    http = TestClient(create_app(service))

    def urlopen(url):
        assert url.startswith("http://127.0.0.1:8081/")
        response = http.get(url.removeprefix("http://127.0.0.1:8081"))
        if response.status_code != 200:   # as urllib does: an unknown schema id is a 404
            raise urllib.error.HTTPError(url, response.status_code, response.text, None, None)
        return io.BytesIO(response.content)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    events = COMPLAINT
    guide = guide_block("def decode(")
    for e in events:
        value = codec.encode(e.schema, e.record)
        assert guide["decode"](value) == e.record
    assert guide["decode"](None) is None

    class Consumer:   # kafka-python's KafkaConsumer: iterable of records, commit()
        def __init__(self, *topics, **config):
            from kafka import KafkaConsumer
            assert set(config) <= set(KafkaConsumer.DEFAULT_CONFIG), config
            self.topics, self.commits = topics, 0

        def __iter__(self):
            good = codec.encode(events[0].schema, events[0].record)
            values = [(e.key, codec.encode(e.schema, e.record), e.event_type) for e in events]
            values[1:1] = [(events[0].key, bad, "complaint.opened") for bad in poison(good)]
            values.append((b"\xff\xfe", good, "complaint.opened"))   # a key that is not UTF-8
            for offset, (key, value, event_type) in enumerate(values):
                yield SimpleNamespace(topic="touchstream.raw.complaint", partition=0, offset=offset, key=key,
                                      value=value, headers=[("event_type", event_type.encode())])

        def commit(self):
            self.commits += 1

    consumers, handled, parked = [], [], []
    guide["KafkaConsumer"] = lambda *topics, **config: consumers.append(Consumer(*topics, **config)) or consumers[-1]
    park = guide["park"]
    guide["park"] = lambda message, error: (park(message, error), parked.append(message.offset))
    with caplog.at_level("WARNING", logger="my-service"):
        guide["run"](lambda key, event: handled.append((key, event)))
    assert handled == [(events[0].key.decode(), events[0].record)]
    assert parked == [1, 2, 3, 6] and consumers[0].commits == 7   # parked, committed past, went on
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"parked touchstream.raw.complaint[0]@{n}" for n in parked]   # where, never the bytes


def test_confluent_blocks_build_consumers_and_decode_every_type():
    guide = guide_block("DeserializingConsumer(")
    guide["BOOTSTRAP"] = "127.0.0.1:1"   # builds (librdkafka checks every property) without a broker
    assert guide["KAFKA_LOGIN"]["sasl.username"] == "subscriber"   # the broker authenticates every client
    guide["KAFKA_LOGIN"]["sasl.password"] = "from-TOUCHSTREAM_KAFKA_PASSWORD"
    guide["subscribe"](["touchstream.complaint-sla"], "guide-test").close()

    registry = SchemaRegistryClient.new_client({"url": "mock://guide"})
    codec = AvroCodec("mock://guide", client=registry)
    case = fold([ev("complaint.opened", 0, "o", "phone")], CASE)
    due = sla.due_events(case, sla.pin_policy(case, sla.load_policies()), T0 + timedelta(days=30))
    records = [sla_record(e) for e in due]
    v1 = next(d for d in load_derived_versions() if d.name == "complaint_sla_event" and d.version == 1)
    old = codec.encode(v1, {k: v for k, v in records[0].items() if k != "withdraws"})
    context = SerializationContext(COMPLAINT_SLA_TOPIC, MessageField.VALUE)
    writer_shaped = AvroDeserializer(registry)(old, context)
    assert "withdraws" not in writer_shaped
    reader_shaped = AvroDeserializer(registry, schema_str=SLA_SCHEMA.canonical)(old, context)
    assert reader_shaped == {**writer_shaped, "withdraws": None}

    filtered = guide_block("run_filtered")

    class Done(Exception):
        pass

    class Consumer:   # confluent-kafka's Consumer: poll() -> Message or None
        def __init__(self, config):
            good = codec.encode(COMPLAINT[0].schema, COMPLAINT[0].record)
            self.queue = [None, COMPLAINT[0], *[(COMPLAINT[0], bad) for bad in poison(good)], *COMPLAINT[1:]]
            self.commits, self.closed = 0, False

        def subscribe(self, topics):
            self.topics = topics

        def poll(self, timeout):
            if not self.queue:
                raise Done
            e = self.queue.pop(0)
            if e is None:
                return None
            e, value = e if isinstance(e, tuple) else (e, codec.encode(e.schema, e.record))
            return SimpleNamespace(error=lambda: None, topic=lambda: e.topic, key=lambda: e.key, value=lambda: value,
                                   headers=lambda: [("event_type", e.event_type.encode()), ("event_id", b"x")])

        def commit(self, message, asynchronous):
            self.commits += 1

        def close(self):
            self.closed = True

    consumers, parked = [], []
    filtered.update(Consumer=lambda config: consumers.append(Consumer(config)) or consumers[-1],
                    SchemaRegistryClient=lambda conf: registry, park=lambda msg, error: parked.append(type(error)))
    handled = []
    with pytest.raises(Done):
        filtered["run_filtered"](lambda key, event: handled.append((key, event)))
    wanted = [e for e in COMPLAINT if e.event_type.encode() in filtered["WANTED"]]
    assert len(wanted) == 2 and handled == [(e.key.decode(), e.record) for e in wanted]
    assert len(parked) == 3 and consumers[0].closed and consumers[0].commits == len(COMPLAINT) + 3
