"""The customer-360's contact rules (docs/views.md, "## Rules"): what counts as a contact, what as a company message.

Issue 14, "contacts the 360 does not count": a customer who only bought in the store
had no store channel and no PMP; six campaign messages in nine hours during an open
complaint gave company_messages = 0 and neither an overload nor a conflict finding,
while the same messages recorded as email.sent / sms.sent raised both. Each test is
named after the rule it holds.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from tests.event_builders import CAT, plain_event
from touchstream.projections.customer_360 import fold, view

NOW = datetime(2100, 1, 1, tzinfo=timezone.utc)
T0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)  # a Monday
_ids = itertools.count(1)


def ev(event_type: str, hours: float, **kw) -> dict:
    """One validated event of customer CU-1 at ``T0 + hours``."""
    plain = plain_event(event_type, T0 + timedelta(hours=hours), {"customer_id": "CU-1"},
                        event_id=kw.pop("event_id", f"r{next(_ids):05d}"), **kw)
    return CAT.validate(plain, now=NOW).record


def profile_view(*events) -> dict:
    return view(fold(events, "CU-1"))


def contacts(v: dict, channel: str, initiated_by: str) -> int:
    row = next((r for r in v["channels"] if r["channel"] == channel), None)
    split = row["by_initiator"].get(initiated_by) if row else None
    return split["contacts"] if split else 0


def pmp_row(v: dict, channel: str) -> dict:
    """The channel's PMP row; a channel without evidence has none: zero counts."""
    return next((r for r in v["pmp"] if r["channel"] == channel),
                {"channel": channel, "rank": None, "customer_initiated": 0, "initiation_share": 0.0,
                 "company_messages": 0, "responded": 0, "response_rate": None})


# -- what counts as a contact ------------------------------------------------------------------
def test_a_store_purchase_is_a_store_contact():
    v = profile_view(ev("store.purchase_completed", 0))
    assert contacts(v, "store", "customer") == 1
    row = pmp_row(v, "store")
    assert (row["rank"], row["customer_initiated"], row["initiation_share"]) == (1, 1, 1.0)


def test_a_web_order_is_a_web_contact():
    v = profile_view(ev("commerce.order_placed", 0, channel="web"))
    assert contacts(v, "web", "customer") == 1
    assert pmp_row(v, "web")["customer_initiated"] == 1


# Every customer-initiated transaction type in schemas/, on a channel it may carry.
TRANSACTIONS = [("store.purchase_completed", "store", {}),
                ("store.item_returned", "store", {"receipt_id": "RC1", "store_id": "ST1", "sku": "SKU1", "quantity": 1,
                                                  "refund": {"amount": "5.00", "currency": "EUR"},
                                                  "reason": "defective"}),
                ("commerce.order_placed", "phone", {}), ("commerce.order_placed", "email", {}),
                ("commerce.payment_received", "postal_mail", {}), ("commerce.payment_received", "web", {}),
                ("commerce.return_received", "store", {})]


@pytest.mark.parametrize("event_type, channel, fields", TRANSACTIONS)
def test_every_customer_transaction_is_a_contact_on_its_channel(event_type, channel, fields):
    v = profile_view(ev(event_type, 0, channel=channel, **fields))
    assert [(r["channel"], r["contacts"]) for r in v["channels"]] == [(channel, 1)]
    assert contacts(v, channel, "customer") == 1


def test_a_transaction_republished_with_its_business_id_counts_once():
    first, corrected = ev("commerce.order_placed", 0, channel="web"), ev("commerce.order_placed", 1, channel="web")
    assert contacts(profile_view(first, corrected), "web", "customer") == 1
    other = ev("commerce.order_placed", 2, channel="web", order_id="O2")
    assert contacts(profile_view(first, corrected, other), "web", "customer") == 2


# -- what counts as a company message ------------------------------------------------------------
def campaign(hours: float, channel: str, message_id: str, **kw) -> dict:
    return ev("campaign.message_sent", hours, channel=channel, content="promotion", message_id=message_id, **kw)


def test_a_campaign_message_is_a_company_message():
    v = profile_view(campaign(0, "email", "M1"), campaign(1, "postal_mail", "PM1"))
    assert v["touchmap"]["company_messages"] == 2
    assert (pmp_row(v, "email")["company_messages"], pmp_row(v, "postal_mail")["company_messages"]) == (1, 1)
    assert (contacts(v, "email", "company"), contacts(v, "postal_mail", "company")) == (1, 1)


def test_an_open_of_a_campaign_message_is_a_response():
    v = profile_view(campaign(0, "email", "M1"), ev("email.opened", 2, by="company", message_id="M1"))
    row = pmp_row(v, "email")
    assert (row["company_messages"], row["responded"], row["response_rate"]) == (1, 1, 1.0)


def channel_record(hours: float, channel: str, message_id: str) -> dict:
    """The channel's own record of a campaign message: the same (channel, message_id); postal mail by mail_id."""
    if channel == "postal_mail":
        return ev("postal.mail_sent", hours, by="company", content="promotion", mail_id=message_id, campaign_id="CMP")
    return ev(f"{channel}.sent", hours, by="company", content="promotion", message_id=message_id, campaign_id="CMP")


@pytest.mark.parametrize("channel", ["email", "sms", "postal_mail"])
def test_a_message_recorded_twice_counts_once(channel):
    """Whichever event records the message (the campaign's, the channel's, or both in any order), it is one."""
    cases = {"campaign only": [campaign(0, channel, "X1")], "channel only": [channel_record(0, channel, "X1")],
             "both": [campaign(0, channel, "X1"), channel_record(0.01, channel, "X1")],
             "channel first": [channel_record(0, channel, "X1"), campaign(0.01, channel, "X1")]}
    for name, events in cases.items():
        v = profile_view(*events)
        counted = (v["touchmap"]["company_messages"], pmp_row(v, channel)["company_messages"],
                   contacts(v, channel, "company"))
        assert counted == (1, 1, 1), name
        assert v["findings"] == [], name


def six_messages_in_nine_hours(recorded_by: str) -> list[dict]:
    """Alternating e-mail and SMS promotions, 1.8 hours apart, recorded by the campaign or by the channel."""
    record = campaign if recorded_by == "campaign" else channel_record
    return [record(1 + n * 1.8, ("email", "sms")[n % 2], f"MSG{n}") for n in range(6)]


def test_six_campaign_messages_during_an_open_complaint_raise_overload_and_conflict():
    opened = ev("complaint.opened", 0)
    by_campaign = profile_view(opened, *six_messages_in_nine_hours("campaign"))
    by_channel = profile_view(opened, *six_messages_in_nine_hours("channel"))
    assert by_campaign["touchmap"]["company_messages"] == by_channel["touchmap"]["company_messages"] == 6

    def kinds(v: dict) -> list[str]:
        return sorted(f["kind"] for f in v["findings"])

    # one campaign on e-mail and SMS within a week is also redundant, however it is recorded
    assert kinds(by_campaign) == kinds(by_channel) == ["conflict"] * 6 + ["overload", "redundant"]
