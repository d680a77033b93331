"""Valid plain-JSON events for tests: the required fields of the common event types, and one builder.

Plain JSON is what channel systems send (SDK, HTTP, JSONL); unit tests pass it
through ``Catalogue.validate`` to get the Avro-shaped record the processors see.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from touchstream.events.catalogue import Catalogue

CAT = Catalogue()
EUR = lambda amount: {"amount": amount, "currency": "EUR"}  # noqa: E731
DEFAULTS = {
    "email.sent": {"message_id": "M1", "subject": "Hi"}, "email.delivered": {"message_id": "M1"},
    "email.opened": {"message_id": "M1"}, "email.clicked": {"message_id": "M1", "url": "https://x.example"},
    "email.received": {"message_id": "IN1", "subject": "Re", "body_excerpt": "..", "attachment_count": 0},
    "sms.sent": {"message_id": "S1", "text": "hi"}, "postal.mail_sent": {"mail_id": "PM1", "kind": "letter"},
    "web.page_viewed": {"url": "https://shop.example/p"},
    "web.form_submitted": {"form_id": "f", "form_kind": "contact", "answers": {}},
    "commerce.order_placed": {"order_id": "O1", "lines": [], "total": EUR("100.00")},
    "commerce.order_delivered": {"order_id": "O1", "delivered_to": "home"},
    "commerce.invoice_issued": {"invoice_id": "I1", "amount": EUR("100.00"), "due_date": "2026-04-01"},
    "commerce.payment_received": {"payment_id": "P1", "amount": EUR("60.00"), "method": "card"},
    "commerce.credit_issued": {"credit_id": "CR1", "amount": EUR("10.00"), "reason": "goodwill"},
    "commerce.return_received": {"return_id": "R1", "order_id": "O1", "lines": [], "refund": EUR("25.00"),
                                 "reason": "defective"},
    "complaint.opened": {"case_id": "K1", "category": "delivery", "priority": "normal", "description": "late"},
    "complaint.escalated": {"case_id": "K1", "level": 1, "reason": "severity"},
    "complaint.resolved": {"case_id": "K1", "resolution_code": "refund"},
    "complaint.closed": {"case_id": "K1", "reason": "resolved"}, "complaint.reopened": {"case_id": "K1", "reason": "x"},
    "feedback.golden_question_answered": {"question_key": "household_size", "answer": "2"},
    "feedback.survey_answered": {"survey_id": "SV", "question_id": "q1", "question": "Q?", "answer": "a"},
    "feedback.consent_given": {"purpose": "marketing"}, "feedback.consent_withdrawn": {"purpose": "marketing"},
    "feedback.csat_given": {"score": 4}, "feedback.nps_given": {"score": 9},
    "campaign.message_sent": {"campaign_id": "CMP", "message_id": "M1", "purpose": "promotion", "template": "t"},
    "social.comment_posted": {"platform": "x", "comment_id": "SC", "post_url": "https://x.example", "text": "t"},
    "phone.call_ended": {"call_id": "C1", "direction": "inbound", "wait_seconds": 30, "talk_seconds": 240,
                         "outcome": "completed"},
    "store.visited": {"store_id": "ST1", "visit_id": "V1"},
    "store.purchase_completed": {"receipt_id": "RC1", "store_id": "ST1", "lines": [], "total": EUR("42.00")},
}


def plain_event(event_type: str, at: datetime, identity: dict, *, event_id: str | None = None,
                channel: str | None = None, content: str | None = None, by: str | None = None, **fields) -> dict:
    """One plain-JSON event; envelope values default to the first the catalogue allows for the type."""
    meta = CAT.schema(event_type).meta
    iso = at.isoformat().replace("+00:00", "Z")
    env = {"event_id": event_id or f"t-{uuid.uuid4().hex[:16]}", "event_type": event_type, "occurred_at": iso,
           "recorded_at": iso, "channel": channel or meta["channels"][0], "content": content or meta["contents"][0],
           "initiated_by": by or meta["initiated_by"][0], "source": "test", "identity": identity}
    return {"envelope": env, **DEFAULTS.get(event_type, {}), **fields}


def linked(at: datetime, a: tuple[str, str], b: tuple[str, str], *, trust: str = "verified", reason: str = "login",
           channel: str = "web", identity: dict | None = None, unlink: bool = False, **kw) -> dict:
    """identity.identifiers_linked (or _unlinked): what a login, an agent or a data steward states."""
    event_type = "identity.identifiers_unlinked" if unlink else "identity.identifiers_linked"
    body = {"identifier_a": {"kind": a[0], "value": a[1]}, "identifier_b": {"kind": b[0], "value": b[1]},
            "trust": trust, "reason": reason}
    return plain_event(event_type, at, identity or {a[0]: a[1]}, channel=channel, **body, **kw)
