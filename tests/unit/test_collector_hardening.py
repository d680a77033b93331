"""The collector under a hostile client (issue 13): time, size, nesting, text, types, and a stuck broker.

Each test is one hole the hostile test found. The app is the real collector over
a real ``Publisher`` whose Kafka producer is a fake (acknowledges on ``poll``, or
blocks until released) and whose codec is the in-memory registry one. Requests go
through the ASGI interface directly, so a test can count how much of a body the
app pulled (``receive`` calls) instead of timing it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.local_codec import LocalCodec
from touchstream.config import Settings
from touchstream.privacy.keyring import MemoryKeyRing
from touchstream.publishing import publisher as publisher_module
from touchstream.publishing.api_keys import ApiKeyStore
from touchstream.publishing.collector import build_collector
from touchstream.publishing.http_body import nesting_depth
from touchstream.publishing.publisher import Publisher

CODEC = LocalCodec()
MB = 1024 * 1024


class FakeProducer:
    """confluent-kafka's Producer as the publisher uses it: ``poll`` acknowledges what was produced.

    ``release``: when given, ``produce`` waits for it (a broker outage that holds the caller),
    up to 5 s so a regression fails instead of hanging.
    """

    release: threading.Event | None = None

    def __init__(self, _config=None):
        self.sent: list[tuple] = []
        self._unacked: list = []
        self.entered = threading.Event()

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None):
        self.entered.set()
        if self.release is not None:
            self.release.wait(5)
        self.sent.append((topic, key, value))
        self._unacked.append(on_delivery)

    def poll(self, timeout=0):
        acked, self._unacked = self._unacked, []
        for callback in acked:
            callback(None, None)
        if not acked:
            time.sleep(min(timeout, 0.01))   # as librdkafka's poll, it waits when there is nothing to serve
        return len(acked)

    def flush(self, timeout=None):
        self.poll()
        return 0


@pytest.fixture
def collector(monkeypatch, tmp_path):
    monkeypatch.setattr(publisher_module, "Producer", FakeProducer)
    monkeypatch.setattr(FakeProducer, "release", None)
    settings = Settings(home=tmp_path)
    publisher = Publisher(settings, source="collector", codec=CODEC, keys=MemoryKeyRing())
    keys = ApiKeyStore(settings.api_keys_path)
    secret, _ = keys.create("web-shop", ["web"])
    app = build_collector(publisher, keys)
    app.state.secret, app.state.producer = secret, publisher._producer
    yield app
    app.state.delivery.close()   # its poll thread


def now() -> datetime:
    return datetime.now(timezone.utc)


def page_view(n: int = 0, **envelope) -> dict:
    env = {"event_type": "web.page_viewed", "event_id": f"web-shop:pv:{n}",
           "occurred_at": (now() - timedelta(minutes=1)).isoformat(), "channel": "web", "content": "inquiry",
           "initiated_by": "customer", "identity": {"cookie_id": "c-123"}}
    env.update(envelope)
    return {"envelope": env, "url": f"https://shop.example/p/{n}"}


def post(app, path: str, body, *, key: str | None = "", content_type: str = "application/json",
         chunk: int = 64 * 1024, declare_length: bool = True) -> tuple[int, dict, int]:
    """(status, JSON answer, how many body chunks the app received).

    ``body``: bytes, a JSON value, or ``(size, chunk_bytes)``: ``size`` bytes sent as that one
    chunk over and over (a 50 MB body without 50 MB of memory).
    """
    if isinstance(body, tuple):
        size, piece = body
        pieces = [piece] * (size // len(piece))   # one chunk object, referenced many times
    else:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        size, pieces = len(data), [data[i:i + chunk] for i in range(0, len(data), chunk)] or [b""]
    return asyncio.run(_asgi_post(app, path, pieces, size if declare_length else None,
                                  app.state.secret if key == "" else key, content_type))


async def _asgi_post(app, path, pieces, length, key, content_type):
    headers = [(b"content-type", content_type.encode())] if content_type else []
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    if key:
        headers.append((b"x-api-key", key.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8080)}
    received, sent = [0], []

    async def receive():
        index = received[0]
        received[0] += 1
        if index >= len(pieces):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": pieces[index], "more_body": index < len(pieces) - 1}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), received[0]


def sent_records(app) -> list[dict]:
    return [CODEC.decode(value).record for _topic, _key, value in app.state.producer.sent]


# --- trusted time ---------------------------------------------------------------------------

def test_the_2099_event_is_refused_with_its_path_and_nothing_is_sent(collector):
    y2099 = "2099-01-01T00:00:00Z"
    status, answer, _ = post(collector, "/events", page_view(occurred_at=y2099, recorded_at=y2099))
    assert status == 400, answer
    assert [p["path"] for p in answer["problems"]] == ["[0].envelope.occurred_at"]
    assert "future" in answer["problems"][0]["reason"]
    assert collector.state.producer.sent == []


def test_a_clients_recorded_at_is_overwritten_with_the_collectors_clock(collector):
    before = now()
    status, answer, _ = post(collector, "/events", page_view(recorded_at="2026-03-01T00:00:00Z"))
    assert status == 202, answer
    [record] = sent_records(collector)
    assert before - timedelta(milliseconds=1) <= record["envelope"]["recorded_at"] <= now()


def test_years_before_2000_are_refused(collector):
    status, answer, _ = post(collector, "/events", page_view(occurred_at="0001-01-01T00:00:00Z"))
    assert status == 400 and answer["problems"][0]["path"] == "[0].envelope.occurred_at"
    assert "before 2000-01-01" in answer["problems"][0]["reason"]


# --- authentication before the body ---------------------------------------------------------

def test_a_50_mb_body_without_a_key_gets_401_without_being_read(collector):
    status, answer, chunks_read = post(collector, "/events", (50 * MB, b" " * MB), key=None)
    assert status == 401 and answer["error"] == "missing or unknown API key"
    assert chunks_read == 0


def test_a_wrong_key_is_401_before_the_content_type_or_size_is_looked_at(collector):
    status, _, chunks_read = post(collector, "/events", (2 * MB, b"x" * MB), key="nope", content_type="text/plain")
    assert (status, chunks_read) == (401, 0)


# --- sizes: 413, never a 503 that a retry cannot fix ----------------------------------------

def test_a_body_over_the_limit_is_413_by_its_content_length_unread(collector):
    big = page_view()
    big["url"] = "https://shop.example/" + "a" * (2 * MB)   # over Kafka's 1 MB message limit too
    status, answer, chunks_read = post(collector, "/events", big)
    assert status == 413 and "at most 900000" in answer["error"]
    assert chunks_read == 0 and collector.state.producer.sent == []


def test_a_body_over_the_limit_without_content_length_is_cut_off_while_streaming(collector):
    status, _, chunks_read = post(collector, "/events/batch", b"[" + b" " * (3 * MB) + b"]", declare_length=False,
                                  chunk=100_000)
    assert status == 413
    assert chunks_read == 10   # 900,000 bytes is 9 chunks; the 10th crosses the cap, the rest is never pulled


def test_one_event_over_the_per_event_limit_is_413_with_its_index(collector):
    big = page_view(1)
    big["url"] = "https://shop.example/" + "a" * 300_000
    status, answer, _ = post(collector, "/events/batch", [page_view(0), big])
    assert status == 413 and answer["too_big"][0]["index"] == 1
    assert collector.state.producer.sent == []


# --- what JSON may hold -----------------------------------------------------------------------

def test_json_nested_5000_levels_is_400_not_500(collector):
    body = b"[" * 5000 + b"]" * 5000
    assert nesting_depth(body) == 33   # counting stops past the limit
    status, answer, _ = post(collector, "/events/batch", body)
    assert status == 400 and "deeper than 32" in answer["error"]


def test_brackets_inside_strings_do_not_count_as_nesting():
    assert nesting_depth(b'{"a": "[[[[{{{{\\"]]]", "b": [[1]]}') == 3


@pytest.mark.parametrize("where", ["value", "key"])
def test_nul_in_any_string_is_400_with_its_path(collector, where):
    event = page_view()
    if where == "value":
        event["url"] = "https://shop.example/\u0000"
    else:
        event["envelope"]["identity"]["cookie_id\u0000"] = "x"
    status, answer, _ = post(collector, "/events", event)
    assert status == 400, answer
    paths = {p["path"] for p in answer["problems"]}
    assert paths == ({"[0].url"} if where == "value" else {"[0].envelope.identity.<key>"})
    assert "NUL" in answer["problems"][0]["reason"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "",
                                          "application/json; charset=latin-1"])
def test_a_body_that_is_not_json_by_its_type_is_415(collector, content_type):
    status, answer, chunks_read = post(collector, "/events", page_view(), content_type=content_type)
    assert status == 415 and "application/json" in answer["error"]
    assert chunks_read == 0 and collector.state.producer.sent == []


def test_json_with_a_charset_is_accepted(collector):
    assert post(collector, "/events", page_view(), content_type="application/json; charset=utf-8")[0] == 202


# --- one event_id, one event ----------------------------------------------------------------

def test_an_event_id_reused_for_other_contents_in_a_batch_is_400(collector):
    first, second = page_view(1), page_view(1)
    second["url"] = "https://shop.example/other"
    status, answer, _ = post(collector, "/events/batch", [first, second])
    assert status == 400
    assert answer["problems"] == [{"path": "[1].envelope.event_id",
                                   "reason": "repeats the event_id of [0] with different contents; "
                                             "give each event its own id"}]
    assert collector.state.producer.sent == []


def test_an_identical_repeat_in_a_batch_is_accepted_and_sent_once(collector):
    one = page_view(1)   # built once: two calls a microsecond apart would differ in occurred_at
    status, answer, _ = post(collector, "/events/batch", [one, json.loads(json.dumps(one)), page_view(2)])
    assert status == 202 and answer == {"accepted": 2, "event_ids": ["web-shop:pv:1", "web-shop:pv:2"]}
    assert len(collector.state.producer.sent) == 2


# --- a stuck broker holds no one else ---------------------------------------------------------

def test_health_answers_while_publishing_waits_on_kafka(collector):
    release = threading.Event()
    FakeProducer.release = release
    producer = collector.state.producer

    async def scenario():
        transport = httpx.ASGITransport(app=collector)
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
            publishing = asyncio.create_task(client.post("/events", json=page_view(),
                                                         headers={"X-API-Key": collector.state.secret}))
            for _ in range(500):
                if producer.entered.is_set():
                    break
                await asyncio.sleep(0.01)
            health = await client.get("/health")
            stuck = not publishing.done() and not release.is_set()
            release.set()
            return health, stuck, await publishing

    health, stuck, published = asyncio.run(scenario())
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert stuck, "/health waited for the publish to finish"
    assert published.status_code == 202   # still only once Kafka acknowledged


def test_an_unacknowledged_batch_is_503_to_retry(collector, monkeypatch):
    monkeypatch.setattr(FakeProducer, "poll", lambda self, timeout=0: time.sleep(min(timeout, 0.01)) or 0)   # no answer
    monkeypatch.setattr(collector.state.delivery, "timeout", 0.2)
    status, answer, _ = post(collector, "/events", page_view())
    assert status == 503 and "retry with the same event ids" in answer["error"]
