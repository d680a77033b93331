"""The collector under concurrent requests on a real broker (issue 16): each request gets its own answer.

Each request awaits its own delivery reports, so fifty at once through the stack's collector
each get a 202 naming their own events, and every event is on its raw topic exactly once. A
request whose events Kafka refuses gets its 503 while its concurrent neighbours get their 202:
here the refusal is the broker's ACLs (a collector whose producer logs in as a channel system
allowed to write the web topic only, asked for email events by a key that may publish them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import replace

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.conftest import free_ports
from tests.integration.pipeline_helpers import page_view
from touchstream.kafka_access import channel_user, kafka_access
from touchstream.publishing.api_keys import ApiKeyStore
from touchstream.publishing.collector import build_collector
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.publishing.publisher import Publisher
from touchstream.stack import kafka_acls, local_stack
from touchstream.topics import raw_topic

pytestmark = pytest.mark.integration


def email_opened(tag: str, n: int) -> dict:
    event = page_view(tag, n)
    event["envelope"].update(event_type="email.opened", channel="email", initiated_by="customer")
    event["envelope"]["identity"] = {"email": f"{tag}-{n}@example.com"}
    del event["url"]
    return {**event, "message_id": f"M-{tag}-{n}"}


def event_ids_on(settings, topic: str, tag: str) -> Counter:
    """How often each event_id of this test is on ``topic`` (every partition, start to end)."""
    consumer = KafkaConsumer(**kafka_access(settings, "admin").kafka_python(), enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends, seen = consumer.end_offsets(parts), Counter()
        while any(consumer.position(p) < ends[p] for p in parts):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    event_id = dict(record.headers).get("event_id", b"").decode()
                    if event_id.startswith(tag):
                        seen[event_id] += 1
        return seen
    finally:
        consumer.close()


async def post_all(client: httpx.AsyncClient, secret: str, bodies: list[tuple[str, object]]) -> list[httpx.Response]:
    """Every request at once (one connection each); the answers in the order of ``bodies``."""
    headers = {"X-API-Key": secret}
    return await asyncio.gather(*(client.post(path, json=body, headers=headers) for path, body in bodies))


def test_fifty_concurrent_requests_each_get_their_own_acknowledgement(stack):
    tag = f"c-{uuid.uuid4().hex[:10]}"
    secret, _ = ApiKeyStore(stack.api_keys_path).create(f"web-{tag}", ["web"])
    singles = [("/events", page_view(tag, n)) for n in range(40)]
    batches = [("/events/batch", [page_view(tag, 100 + 3 * b + i) for i in range(3)]) for b in range(10)]
    bodies = singles + batches

    async def scenario():
        limits = httpx.Limits(max_connections=len(bodies))
        async with httpx.AsyncClient(base_url=stack.collector_url, limits=limits, timeout=120) as client:
            return await post_all(client, secret, bodies)

    answers = asyncio.run(scenario())
    for (_path, body), answer in zip(bodies, answers):
        sent = [e["envelope"]["event_id"] for e in (body if isinstance(body, list) else [body])]
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"accepted": len(sent), "event_ids": sent}
    expected = {e: 1 for _p, body in bodies for e in
                (x["envelope"]["event_id"] for x in (body if isinstance(body, list) else [body]))}
    assert len(expected) == 70
    assert event_ids_on(stack, raw_topic("web"), tag) == expected


@pytest.fixture
def web_only_collector(stack):
    """A collector whose Kafka login may write the web topic only, and a key that may publish web and email."""
    tag = f"r-{uuid.uuid4().hex[:10]}"
    keys = ApiKeyStore(stack.api_keys_path)
    keys.create(f"webonly-{tag}", ["web"])             # its Kafka principal: the web topic, not email's
    secret, _ = keys.create(f"mixed-{tag}", ["web", "email"])
    kafka_acls.ensure(stack, timeout=30.0)
    publisher = Publisher(replace(stack, kafka_user=channel_user(f"webonly-{tag}")), source="collector",
                          keys=TopicKeyRing(stack))   # the stack's key ring: only the raw topics are refused

    app = build_collector(publisher, keys)
    app.state.delivery.timeout = 600   # a 503 here can only be Kafka's refusal, never the wait running out
    yield app, secret, tag
    app.state.delivery.close()


def test_a_request_kafka_refuses_gets_its_error_while_its_neighbours_succeed(stack, web_only_collector, caplog):
    app, secret, tag = web_only_collector
    bodies = [("/events", page_view(tag, n)) for n in range(20)]
    refused = [("/events/batch", [email_opened(tag, 100 + n)]) for n in range(3)]
    mixed = ("/events/batch", [page_view(tag, 200), email_opened(tag, 201)])   # all or nothing: Kafka took one
    bodies[5:5], bodies[12:12] = refused[:2], [refused[2], mixed]

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://collector", timeout=None) as client:
            return await post_all(client, secret, bodies)

    with caplog.at_level(logging.ERROR, logger="touchstream.publishing.collector"):
        answers = asyncio.run(scenario())
    web = [(body, a) for (_p, body), a in zip(bodies, answers) if _p == "/events"]
    assert all(a.status_code == 202 and a.json()["event_ids"] == [b["envelope"]["event_id"]] for b, a in web), \
        [a.text for _b, a in web]
    for (_p, body), answer in zip(bodies, answers):
        if _p == "/events/batch":
            assert answer.status_code == 503, answer.text
            assert "retry with the same event ids" in answer.json()["error"]
    assert "TOPIC_AUTHORIZATION_FAILED" in caplog.text   # refused by the broker, not timed out
    assert event_ids_on(stack, raw_topic("email"), tag) == {}
    on_web = event_ids_on(stack, raw_topic("web"), tag)
    assert {b["envelope"]["event_id"] for b, _a in web} <= set(on_web) and set(on_web.values()) == {1}


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc), but multiprocessing's resource tracker."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and b"resource_tracker" not in _cmdline(int(entry)):
                out.add(int(entry))
    return out


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def until(done, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_two_collector_workers_share_its_port_and_end_with_it(stack):
    """``TOUCHSTREAM_COLLECTOR_WORKERS=2`` (issue 16): the collector process runs two uvicorn workers behind
    its one port, each with its own producer; concurrent requests all get their 202 and every event is
    on its topic once; and killed with SIGKILL (no signal passed on), it takes its workers with it,
    so none is left holding the port."""
    port = free_ports(1)[0]
    env = {**local_stack.child_env(stack), "TOUCHSTREAM_COLLECTOR_PORT": str(port),
           "TOUCHSTREAM_COLLECTOR_WORKERS": "2"}
    main = subprocess.Popen([sys.executable, "-m", "touchstream.publishing"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        url = f"http://{stack.host}:{port}"
        until(lambda: _healthy(url), 90, "the collector's /health")
        until(lambda: len(children(main.pid)) >= 2, 30, "two workers")
        workers = children(main.pid)
        assert len(workers) == 2
        tag = f"w-{uuid.uuid4().hex[:10]}"
        secret, _ = ApiKeyStore(stack.api_keys_path).create(f"web-{tag}", ["web"])
        bodies = [("/events", page_view(tag, n)) for n in range(40)]

        async def scenario():
            async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=40), timeout=120) as c:
                return await post_all(c, secret, bodies)

        answers = asyncio.run(scenario())
        assert [a.status_code for a in answers] == [202] * 40, [a.text for a in answers if a.status_code != 202]
        assert event_ids_on(stack, raw_topic("web"), tag) == {b["envelope"]["event_id"]: 1 for _p, b in bodies}
        main.kill()
        main.wait(30)
        until(lambda: not any(alive(w) for w in workers), 30, "the workers to end with their parent")
    finally:
        for pid in [main.pid, *workers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
