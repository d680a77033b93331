"""Customer-360 on the real broker: identity resolution, guard rails, reversible merges, crash and restart.

Every test uses identifiers of its own (a fresh tag), so tests sharing the
session's stack never meet in one customer. "Same rows as an uninterrupted
run" is checked against the pure fold of the same events (identity resolution
+ ``customer_360.fold``), compared by fingerprint: what a replay from offset 0
computes.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.conftest import BLOCKED_PHONE
from tests.event_builders import linked, plain_event
from tests.integration.pipeline_helpers import sql, wait_for
from tests.pipeline_harness import expected_fingerprints as replayed_fingerprints
from touchstream.client import Client, auth_headers
from touchstream.demo.generator import generate
from touchstream.identity.config_file import load_identity_config
from touchstream.processors.replay import replay
from touchstream.publishing.publisher import Publisher
from touchstream.serving.catchup import wait_pipeline
from touchstream.stack import local_stack
from touchstream.topics import CUSTOMER_360_TOPIC

pytestmark = pytest.mark.integration
T0 = datetime(2026, 4, 6, 9, tzinfo=timezone.utc)


def publish(settings, events: list[dict]) -> None:
    with Publisher(settings, source="test") as publisher:
        for start in range(0, len(events), 200):
            publisher.publish_batch(events[start:start + 200])
        publisher.flush()


def expected_fingerprints(settings, events: list[dict]) -> dict[str, str]:
    """What a replay computes: the pure resolver and fold over these events, any order."""
    return replayed_fingerprints(events, load_identity_config(settings.identity_config_path))


def live_fingerprints(settings, customers) -> dict[str, str]:
    rows = sql(settings, "SELECT customer_id, fingerprint FROM customer_360 WHERE list_contains(?, customer_id)",
               [sorted(customers)])
    return dict(rows)


def latest_per_key(settings, topic: str) -> dict[str, dict | None]:
    """What a downstream service sees on a topic, read from offset 0 and decoded with confluent-kafka's
    AvroDeserializer against our registry: the last value per key (None for a tombstone)."""
    client = SchemaRegistryClient({"url": settings.registry_url})
    deserialize = AvroDeserializer(client)
    latest: dict[str, dict | None] = {}

    def keep(records):
        for r in records:
            context = SerializationContext(topic, MessageField.VALUE)
            latest[r.key.decode()] = None if r.value is None else deserialize(r.value, context)

    replay(settings, [topic], keep)
    return latest


def test_cookie_then_login_then_call_then_store_card_is_one_profile_with_every_channel(stack):
    tag = uuid.uuid4().hex[:10]
    cookie, email, phone, card = f"ck-{tag}", f"Ann.{tag}@Example.COM", "06 " + str(random.randint(10**7, 10**8 - 1)), f"LC{tag}"
    events = [
        plain_event("web.page_viewed", T0, {"cookie_id": cookie}),
        linked(T0 + timedelta(minutes=5), ("cookie_id", cookie), ("email", email.lower()), reason="login"),
        plain_event("email.received", T0 + timedelta(hours=2), {"email": email}),
        plain_event("phone.call_ended", T0 + timedelta(days=1), {"phone": phone, "email": email.upper()},
                    channel="phone", content="inquiry", by="customer"),
        plain_event("store.visited", T0 + timedelta(days=3), {"loyalty_card": card}, by="customer"),
        plain_event("store.purchase_completed", T0 + timedelta(days=3, minutes=9), {"loyalty_card": card, "phone": phone},
                    by="customer"),
    ]
    publish(stack, events)
    wait_pipeline(stack, timeout=180)
    with Client(stack.query_url) as client:
        views = [client.customer(x) for x in (cookie, email, "+31" + phone[1:].replace(" ", ""), card)]
    assert [v and v["customer_id"] for v in views].count(None) == 0, views
    assert len({v["customer_id"] for v in views}) == 1
    view = views[0]
    assert {c["channel"] for c in view["channels"]} == {"web", "email", "phone", "store"}
    assert {(i["kind"], i["value"]) for i in view["identifiers"]} >= {("cookie_id", cookie), ("email", email.lower()),
                                                                      ("loyalty_card", card)}
    assert view["events"] == len(events)
    assert live_fingerprints(stack, [view["customer_id"]]) == expected_fingerprints(stack, events)


def test_a_blocked_value_never_merges_two_customers(stack):
    tag = uuid.uuid4().hex[:10]
    a, b = f"a.{tag}@example.com", f"b.{tag}@example.com"
    events = [
        plain_event("phone.call_ended", T0, {"email": a, "phone": BLOCKED_PHONE}, channel="phone", by="customer"),
        plain_event("phone.call_ended", T0 + timedelta(hours=1), {"email": b, "phone": BLOCKED_PHONE},
                    channel="phone", by="customer"),
        plain_event("web.page_viewed", T0, {"email": f"test-{random.randint(1, 999)}@blocked.example",
                                            "cookie_id": f"ck-{tag}"}),
    ]
    publish(stack, events)
    wait_pipeline(stack, timeout=180)
    with Client(stack.query_url) as client:
        ca, cb = client.customer(a), client.customer(b)
        assert client.customer(BLOCKED_PHONE) is None   # a blocked value identifies nobody
        assert client.customer(f"ck-{tag}")["events"] == 1
    assert ca["customer_id"] != cb["customer_id"]
    assert ca["events"] == cb["events"] == 1
    decisions = sql(stack, "SELECT count(*) FROM customer_identifiers WHERE value = ?", ["+31205550100"])
    assert decisions == [[0]]


def test_a_wrong_merge_undone_by_an_unlink_equals_never_merged(stack):
    tag = uuid.uuid4().hex[:10]
    ann = [plain_event("web.page_viewed", T0 + timedelta(hours=i), {"customer_id": f"CU-A{tag}",
                                                                   "email": f"ann.{tag}@example.com"})
           for i in range(3)]
    bob = [plain_event("store.purchase_completed", T0 + timedelta(hours=i), {"customer_id": f"CU-B{tag}",
                                                                            "loyalty_card": f"LC-B{tag}"},
                       by="customer") for i in range(2)]
    # Two accounts merge only by a verified link between the accounts themselves (a steward's merge):
    # with the default cap an e-mail or card linked to a second account is quarantined instead.
    wrong = linked(T0 + timedelta(days=1), ("customer_id", f"CU-A{tag}"), ("customer_id", f"CU-B{tag}"),
                   channel="store", reason="merge")
    publish(stack, ann + bob + [wrong])
    wait_pipeline(stack, timeout=180)
    merged = sql(stack, "SELECT customer_id, events FROM customer_360 WHERE customer_id IN (?, ?)",
                 [f"CU-A{tag}", f"CU-B{tag}"])
    assert merged == [[f"CU-A{tag}", 6]]   # one customer holds everything, the other was merged away

    undo = linked(T0 + timedelta(days=2), ("customer_id", f"CU-A{tag}"), ("customer_id", f"CU-B{tag}"),
                  channel="store", reason="wrong_match", unlink=True)
    publish(stack, [undo])
    wait_pipeline(stack, timeout=180)
    expected = expected_fingerprints(stack, ann + bob + [wrong, undo])
    assert set(expected) == {f"CU-A{tag}", f"CU-B{tag}"}
    assert live_fingerprints(stack, expected) == expected
    # The audit trail: which event linked them and which undid it (whether the link showed up as a
    # merge depends on arrival order: observed before Bob's own events, it is a link inside one customer).
    wrong_id, undo_id = wrong["envelope"]["event_id"], undo["envelope"]["event_id"]
    audit = sql(stack, "SELECT decision, from_ids, into_ids FROM identity_decisions "
                       "WHERE evidence_event_id = ? OR decided_by = ? ORDER BY seq", [wrong_id, undo_id])
    assert ["identity.linked", [], []] in audit
    assert ["customer.split", [f"CU-A{tag}"], [f"CU-A{tag}", f"CU-B{tag}"]] in audit
    assert any(decision == "identity.unlinked" for decision, _f, _i in audit)


def test_identity_and_serving_killed_mid_stream_end_with_the_same_360_rows(stack):
    seed = random.randint(1000, 10**6)
    events = list(generate(40, 20, seed))
    sender = threading.Thread(target=publish, args=(stack, events))
    sender.start()
    sup = local_stack.supervisor(stack)
    wait_for(lambda: sql(stack, "SELECT count(*) FROM customer_360")[0][0] > 0, timeout=120, what="first profiles")
    for name in ("identity", "serving"):
        os.kill(sup.running_pid(name), signal.SIGKILL)
    wait_for(lambda: not sup.is_running("identity") and not sup.is_running("serving"), timeout=30,
             what="identity and serving to die")
    sender.join(timeout=300)
    assert not sender.is_alive()
    publish(stack, events[:300])   # a producer retrying after the crash: duplicates by event_id
    local_stack.up(stack, services=["identity", "serving"])
    wait_pipeline(stack, timeout=300)
    expected = expected_fingerprints(stack, events)
    assert live_fingerprints(stack, expected) == expected
    # Subscribers of the compacted topic see the same customers: the last record of every key that is
    # a row is its 360, and every customer merged away ends with a tombstone.
    published = latest_per_key(stack, CUSTOMER_360_TOPIC)
    rows = dict(sql(stack, "SELECT customer_id, events FROM customer_360"))
    assert {k for k, v in published.items() if v is not None} == set(rows)
    assert all(published[k]["events"] == n and published[k]["customer_id"] == k for k, n in rows.items())


def test_rebuild_side_by_side_while_events_flow_then_switch_equals_replay(stack):
    first, second = list(generate(30, 10, random.randint(1000, 10**6))), list(generate(20, 10, random.randint(1000, 10**6)))
    publish(stack, first)
    wait_pipeline(stack, timeout=180)
    someone = sorted(expected_fingerprints(stack, first))[0]
    before = sql(stack, "SELECT version FROM projection_versions WHERE name = 'customer_360'")[0][0]
    sender = threading.Thread(target=publish, args=(stack, second))
    sender.start()
    started = httpx.post(f"{stack.query_url}/admin/rebuild/customer-360", headers=auth_headers(stack), timeout=30)
    assert started.status_code == 202, started.text
    seen_meanwhile = []
    with Client(stack.query_url) as client:
        while httpx.get(f"{stack.query_url}/admin/rebuild/customer-360", headers=auth_headers(stack), timeout=30).json()["state"] == "building":
            seen_meanwhile.append(client.customer(someone) is not None)   # the live version keeps serving
    sender.join(timeout=300)
    status = httpx.get(f"{stack.query_url}/admin/rebuild/customer-360", headers=auth_headers(stack), timeout=30).json()
    assert status["state"] == "done", status
    assert status["active_version"] == before + 1 and all(seen_meanwhile)
    wait_pipeline(stack, timeout=180)
    expected = expected_fingerprints(stack, first + second)
    assert live_fingerprints(stack, expected) == expected
    tables = {r[0] for r in sql(stack, "SELECT table_name FROM duckdb_tables()")}
    assert f"customer_360_v{before + 1}" in tables and f"customer_360_v{before}" not in tables
