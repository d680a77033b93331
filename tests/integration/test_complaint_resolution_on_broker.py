"""Complaint cases on the real broker: first-contact resolution across channels, from the raw topics."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.complaint_replay import Replayed
from tests.event_builders import plain_event
from tests.integration.pipeline_helpers import wait_for
from tests.integration.test_customer_360_on_broker import latest_per_key, publish
from touchstream.client import Client
from touchstream.codec.avro_codec import AvroCodec, DecodeError
from touchstream.identity.config_file import load_identity_config
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.processors.decoding import decode_checked
from touchstream.processors.replay import replay
from touchstream.projections.identity_resolution import IdentityResolver
from touchstream.serving.catchup import wait_pipeline, wait_sla_settled
from touchstream.topics import COMPLAINT_CASES_TOPIC, COMPLAINT_SLA_TOPIC, load_topics, raw_topics

pytestmark = pytest.mark.integration
T0 = datetime(2026, 5, 4, 10, tzinfo=timezone.utc)


def test_a_phone_complaint_resolved_on_the_call_is_fcr_until_an_email_about_it_two_days_later(stack):
    case, customer = f"CASE-{uuid.uuid4().hex[:10]}", f"CU-{uuid.uuid4().hex[:8]}"
    who = {"customer_id": customer}

    def about(event_type: str, at: datetime, **kw) -> dict:
        event = plain_event(event_type, at, who, **kw)
        event["envelope"]["correlation_id"] = case
        return event

    call = [
        about("phone.call_started", T0, channel="phone", content="complaint", by="customer", call_id=case + "-c1",
              direction="inbound"),
        about("complaint.opened", T0 + timedelta(minutes=1), channel="phone", by="customer", case_id=case,
              category="delivery", priority="normal", description="parcel late"),
        about("complaint.resolved", T0 + timedelta(minutes=6), channel="phone", by="company", case_id=case,
              resolution_code="explanation", resolved_on_first_contact=True),
        about("phone.call_ended", T0 + timedelta(minutes=7), channel="phone", content="complaint", by="customer",
              call_id=case + "-c1"),
    ]
    publish(stack, call)
    wait_pipeline(stack, timeout=180)
    with Client(stack.query_url) as client:
        resolved = client.complaint(case)
        assert resolved["state"] == "resolved" and resolved["origin_channel"] == "phone"
        assert resolved["fcr"]["fcr"] is True, resolved["fcr"]
        publish(stack, [about("email.received", T0 + timedelta(days=2), channel="email", content="complaint",
                              by="customer", message_id=case + "-m1", subject="still late")])
        wait_pipeline(stack, timeout=180)
        repeat = client.complaint(case)
        assert repeat["fcr"]["fcr"] is False and repeat["channels_touched"] == ["email", "phone"], repeat["fcr"]
        rows = client.sql("SELECT fcr, contacts FROM complaint_cases WHERE case_id = ?", [case])
        assert rows == [{"fcr": False, "contacts": repeat["metrics"]["contacts"]}]
        assert client.complaint("CASE-nobody") is None


def sla_events(settings, case: str) -> list[dict]:
    """The case's records on touchstream.complaint-sla, as a subscriber decodes them with our registry."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    deserialize = AvroDeserializer(SchemaRegistryClient({"url": settings.registry_url}))
    found: list[dict] = []

    def keep(records):
        found.extend(deserialize(r.value, SerializationContext(COMPLAINT_SLA_TOPIC, MessageField.VALUE))
                     for r in records if r.key.decode() == case)

    replay(settings, [COMPLAINT_SLA_TOPIC], keep)
    return found


def after_watermark(client: Client) -> datetime:
    """A start time beyond every event the stack has seen: the SLA clock is event time, shared by all tests."""
    rows = client.sql("SELECT max(watermark) AS w FROM complaint_sla_watermark")
    seen = rows[0]["w"] if rows and rows[0]["w"] else None
    start = max(T0, datetime.fromisoformat(seen) if seen else T0) + timedelta(days=1)
    return start.replace(minute=0, second=0, microsecond=0)


def case_events(case: str, customer: str):
    def about(event_type: str, at: datetime, channel: str = "phone", by: str = "company", **kw) -> dict:
        event = plain_event(event_type, at, {"customer_id": customer}, channel=channel, by=by, **kw)
        event["envelope"]["correlation_id"] = case
        return event
    return about


def test_a_missed_callback_breaches_when_event_time_passes_its_deadline(stack):
    case, customer = f"CASE-{uuid.uuid4().hex[:10]}", f"CU-{uuid.uuid4().hex[:8]}"
    about = case_events(case, customer)
    with Client(stack.query_url) as client:
        t = after_watermark(client)
        publish(stack, [
            about("complaint.opened", t, by="customer", case_id=case, category="delivery", priority="normal",
                  description="parcel missing"),
            about("complaint.acknowledged", t + timedelta(minutes=1), case_id=case),
            about("complaint.callback_promised", t + timedelta(minutes=5), case_id=case, callback_id=case + "-cb",
                  callback_channel="phone", promised_by=(t + timedelta(hours=4)).isoformat()),
        ])
        wait_pipeline(stack, timeout=180)
        clock = "callback:" + case + "-cb"
        before = wait_for(lambda: {c["clock"]: c for c in client.complaint(case)["sla"] if c["clock"] == clock},
                          timeout=90, interval=1, what="the callback clock")   # once event time reaches it
        assert before[clock]["state"] in ("running", "warning") and before[clock]["met_at"] is None
        assert not [e for e in sla_events(stack, case) if e["envelope"]["event_type"] == "complaint.sla_breached"]
        # Nothing more happens on the case; another customer's visit six hours later moves event time on.
        publish(stack, [plain_event("web.page_viewed", t + timedelta(hours=6), {"cookie_id": "ck-" + case})])
        wait_pipeline(stack, timeout=180)
        # The case's partitions go quiet; once idle (10 s) they stop holding event time back, and the
        # serving process's SLA timer (every 2 s) judges the clock without any new record.
        after = wait_for(lambda: {c["clock"]: c for c in client.complaint(case)["sla"]
                                  if c["clock"] == clock and c["state"] == "breached"},
                         timeout=90, interval=1, what="the callback clock to breach")
        assert after[clock]["met_at"] is None
        breaches = [e for e in sla_events(stack, case) if e["envelope"]["event_type"] == "complaint.sla_breached"]
        assert [e["clock"] for e in breaches if e["clock"] == clock] == [clock]
        due = next(e for e in breaches if e["clock"] == clock)["due_at"]
        assert due == t + timedelta(hours=4)
        assert client.sql("SELECT case_id FROM complaint_breaches WHERE clock = ?", [clock]) == [{"case_id": case}]
    assert case in cli("--breached", "--limit", "1000")


def test_reopen_after_close_updates_the_kpis_and_the_case_topic(stack):
    case, product = f"CASE-{uuid.uuid4().hex[:10]}", f"SKU-{uuid.uuid4().hex[:8]}"
    about = case_events(case, f"CU-{uuid.uuid4().hex[:8]}")
    kpis = "SELECT sum(closed) AS closed, sum(reopened_cases) AS reopened, sum(still_open) AS open " \
           "FROM complaint_kpis WHERE product = ?"
    with Client(stack.query_url) as client:
        t = after_watermark(client)
        publish(stack, [
            about("complaint.opened", t, channel="email", by="customer", case_id=case, category="product_quality",
                  product=product, priority="low", description="broken hinge"),
            about("complaint.resolved", t + timedelta(hours=2), channel="email", case_id=case,
                  resolution_code="replacement"),
            about("complaint.closed", t + timedelta(hours=3), channel="email", case_id=case),
        ])
        wait_pipeline(stack, timeout=180)
        assert client.sql(kpis, [product]) == [{"closed": 1, "reopened": 0, "open": 0}]
        publish(stack, [about("complaint.reopened", t + timedelta(days=2), channel="phone", by="customer",
                              case_id=case, reason="broke again")])
        wait_pipeline(stack, timeout=180)
        assert client.sql(kpis, [product]) == [{"closed": 0, "reopened": 1, "open": 1}]
        view = client.complaint(case)
    assert view["reopen_count"] == 1 and view["state"] != "closed"
    published = latest_per_key(stack, COMPLAINT_CASES_TOPIC)[case]
    assert published["state"] == view["state"] and published["reopen_count"] == 1


def cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "touchstream.cli", "complaints", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_cli_lists_and_shows_cases(stack):
    case = f"CASE-{uuid.uuid4().hex[:10]}"
    opened = plain_event("complaint.opened", T0, {"customer_id": "CU-cli"}, channel="web", by="customer",
                         case_id=case, category="billing", priority="high", description="double charge")
    publish(stack, [opened])
    wait_pipeline(stack, timeout=180)
    assert case in cli("--open", "--limit", "1000")
    assert json.loads(cli(case))["state"] == "opened"


def test_complaint_rows_and_clocks_equal_a_replay_of_the_raw_topics(stack):
    """Everything this session published, read back from offset 0 and folded purely, gives the live
    rows: case views (by fingerprint), canonical customers, and the SLA clocks at rest."""
    wait_pipeline(stack, timeout=180)
    wait_sla_settled(stack, timeout=120)
    codec, records = AvroCodec(stack.registry_url, auto_register=False, keys=TopicKeyRing(stack)), []

    def keep(batch):
        for r in batch:
            try:
                records.append(decode_checked(codec, r).record)
            except DecodeError:          # the dead-letter tests' garbage and forgeries: no sink folds them either
                pass

    replay(stack, raw_topics(load_topics(stack.topic_config)), keep)
    config = load_identity_config(stack.identity_config_path)
    want = Replayed(records, IdentityResolver(config), config.default_region)
    with Client(stack.query_url) as client:
        cases = {r["case_id"]: (r["customer_id"], r["fingerprint"]) for r in
                 client.sql("SELECT case_id, customer_id, fingerprint FROM complaint_cases", max_rows=100_000)}
        clocks = client.sql("SELECT case_id, clock, state, due_at, met_at FROM complaint_sla", max_rows=100_000)
    assert len(cases) >= 4 and cases == want.cases
    got = {(r["case_id"], r["clock"]): (r["state"], _utc(r["due_at"]), _utc(r["met_at"])) for r in clocks}
    assert got == want.clocks


def _utc(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(timezone.utc) if text else None
