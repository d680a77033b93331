"""Complaint cases on the real broker: first-contact resolution across channels, from the raw topics."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.event_builders import plain_event
from tests.integration.test_customer_360_on_broker import publish
from touchstream.client import Client
from touchstream.serving.catchup import wait_pipeline

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


def test_cli_lists_and_shows_cases(stack):
    case = f"CASE-{uuid.uuid4().hex[:10]}"
    opened = plain_event("complaint.opened", T0, {"customer_id": "CU-cli"}, channel="web", by="customer",
                         case_id=case, category="billing", priority="high", description="double charge")
    publish(stack, [opened])
    wait_pipeline(stack, timeout=180)

    def cli(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "touchstream.cli", "complaints", *args],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert case in cli("--open", "--limit", "1000")
    assert json.loads(cli(case))["state"] == "opened"
