"""How the customer-360 fold reads one event: dispatch, event-time mark, direction, contact key, signals.

Why a registry keyed by event_type (``@on("email.opened")``): events arrive as
Avro-shaped dicts, not classes, so this is the dict form of pyeventsourcing's
singledispatch on event classes; several sections may react to one type, in
registration order, and a type nobody registered still feeds the generic parts
(seen, identifiers, contacts, timeline), so new event types never break the fold.
Pure: no I/O.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable

from touchstream.projections.customer_360_state import Mark, Profile

Handler = Callable[[Profile, dict, Mark], None]
HANDLERS: dict[str, list[Handler]] = {}

INBOUND, OUTBOUND, INTERNAL = "inbound", "outbound", "internal"
TOUCHPOINT_DOMAINS = frozenset({"web", "email", "sms", "phone", "postal", "store", "social", "meeting", "document"})
# Touchpoint events that are no touchpoint contact of their own (the call, the visit is): what the complaint
# fold threads. The 360 counts the transactions among them (TRANSACTION_ID) as contacts all the same.
NOT_CONTACTS = frozenset({"phone.callback_made", "store.purchase_completed", "store.item_returned"})
# Customer-initiated transactions (order or payment, domain.md section 2): each is a contact of the customer on
# its envelope channel, by its business id; a store return has none, so the event is the contact.
TRANSACTION_ID = {
    "store.purchase_completed": ("receipt", "receipt_id"), "store.item_returned": ("return", ""),
    "commerce.order_placed": ("order", "order_id"), "commerce.payment_received": ("payment", "payment_id"),
    "commerce.return_received": ("return", "return_id"),
}
# What threads the events of one contact: (label, field) by event type, else by domain.
CONTACT_ID = {
    "web.page_viewed": ("session", "session_id"), "web.chat_message_sent": ("chat", "conversation_id"),
    "social.comment_posted": ("post", "comment_id"), "social.review_posted": ("post", "review_id"),
    "social.reply_sent": ("post", "in_reply_to"),
}
DOMAIN_CONTACT_ID = {
    "email": ("msg", "message_id"), "sms": ("msg", "message_id"), "postal": ("mail", "mail_id"),
    "phone": ("call", "call_id"), "meeting": ("meeting", "meeting_id"), "document": ("doc", "document_id"),
    "store": ("visit", "visit_id"),
}
FIXED_DIRECTION = {
    **dict.fromkeys(("web.page_viewed", "web.form_submitted", "email.received", "email.opened", "email.clicked",
                     "sms.received", "postal.mail_received", "social.comment_posted", "social.review_posted",
                     "store.visited", "store.purchase_completed", "store.item_returned", "document.signed",
                     "commerce.order_placed", "commerce.payment_received", "commerce.requirement_specified",
                     "commerce.return_received", "complaint.reopened", "complaint.satisfaction_given"), INBOUND),
    **dict.fromkeys(("email.sent", "email.delivered", "email.bounced", "sms.sent", "sms.delivered",
                     "postal.mail_sent", "social.reply_sent", "document.sent", "campaign.message_sent",
                     "commerce.invoice_issued", "commerce.order_fulfilled", "commerce.order_delivered",
                     "commerce.credit_issued", "phone.callback_made", "complaint.acknowledged",
                     "complaint.callback_promised", "complaint.resolved"), OUTBOUND),
    **dict.fromkeys(("complaint.updated", "complaint.escalated", "complaint.closed"), INTERNAL),
}
MESSAGE_TYPES = frozenset({"email.sent", "sms.sent", "postal.mail_sent", "document.sent", "meeting.scheduled",
                           "social.reply_sent", "campaign.message_sent"})
# The touchpoint domain whose events share a campaign message's message_id, by envelope channel.
CHANNEL_DOMAIN = {"postal_mail": "postal"}
SALE_TYPES = frozenset({"commerce.order_placed", "store.purchase_completed"})
SERVICE_TYPES = frozenset({"complaint.opened", "complaint.reopened", "commerce.return_received",
                           "store.item_returned"})
SIGNAL_BY_CONTENT = {"promotion": "attraction", "specification": "research", "inquiry": "service",
                     "complaint": "service", "fulfilment": "service", "invoicing": "service"}


def on(*event_types: str) -> Callable[[Handler], Handler]:
    """Register a reducer for event types: ``handler(profile, record, mark)`` updates the profile."""
    def register(handler: Handler) -> Handler:
        for event_type in event_types:
            HANDLERS.setdefault(event_type, []).append(handler)
        return handler
    return register


def mark_of(record: dict) -> Mark:
    env = record["envelope"]
    return Mark(env["occurred_at"], env["event_id"])


def money(value: dict | None) -> tuple[Decimal, str] | None:
    if not value:
        return None
    return value["amount"], value["currency"]


def direction(event_type: str, record: dict) -> str:
    """Who spoke: inbound (customer to company), outbound (company to customer) or internal bookkeeping."""
    fixed = FIXED_DIRECTION.get(event_type)
    if fixed is not None:
        return fixed
    domain = event_type.split(".", 1)[0]
    if domain == "feedback":
        return INBOUND
    if domain == "identity":
        return INTERNAL
    if domain == "phone" and record.get("direction") in (INBOUND, OUTBOUND):
        return record["direction"]
    if event_type == "web.chat_message_sent":
        return INBOUND if record.get("sender") == "customer" else OUTBOUND
    initiated_by = record["envelope"]["initiated_by"]
    return {"customer": INBOUND, "company": OUTBOUND}.get(initiated_by, INTERNAL)


def contact_key(event_type: str, record: dict) -> str | None:
    """The touchpoint contact (call, mail, session, chat, visit, ...) an event belongs to; None for business facts."""
    domain = event_type.split(".", 1)[0]
    if domain not in TOUCHPOINT_DOMAINS or event_type in NOT_CONTACTS:
        return None
    label, name = CONTACT_ID.get(event_type) or DOMAIN_CONTACT_ID.get(domain, ("event", ""))
    return _key(domain, label, name, record)


def _key(domain: str, label: str, name: str, record: dict) -> str:
    value = record.get(name) if name else None
    if not value:
        return f"{domain}:event:{record['envelope']['event_id']}"
    return f"{domain}:{label}:{value}"


def counted_contact(event_type: str, record: dict) -> str | None:
    """The contact an event counts toward in the 360: its touchpoint contact, a transaction, or a campaign message.

    A campaign record takes the key of the channel's own event for the same message (``email:msg:<message_id>``,
    ``postal:mail:<message_id>``): the dedup key is (channel, message_id), so the message counts once, whichever
    of the two records it and in whatever order they arrive.
    """
    if event_type in TRANSACTION_ID:
        return _key(event_type.split(".", 1)[0], *TRANSACTION_ID[event_type], record)
    if event_type == "campaign.message_sent":
        channel = record["envelope"]["channel"]
        domain = CHANNEL_DOMAIN.get(channel, channel)
        return _key(domain, DOMAIN_CONTACT_ID.get(domain, ("msg",))[0], "message_id", record)
    return contact_key(event_type, record)


def is_company_message(event_type: str, record: dict) -> bool:
    """A message the company started a conversation with: what contact pressure counts."""
    if record["envelope"]["initiated_by"] != "company":
        return False
    if event_type in MESSAGE_TYPES:
        return True
    if event_type == "phone.call_started":
        return record.get("direction") == OUTBOUND
    return event_type == "web.chat_message_sent" and record.get("sender") in ("agent", "bot")


def response_key(event_type: str, record: dict) -> str | None:
    """The contact key of the company message this event answers (open, click, reply, pick-up, signature)."""
    if event_type == "email.opened" and record.get("automated") is True:
        return None  # privacy-proxy prefetch: says nothing about the customer
    if event_type in ("email.opened", "email.clicked", "phone.call_answered", "document.signed", "meeting.held"):
        return contact_key(event_type, record)
    if event_type == "web.chat_message_sent" and record.get("sender") == "customer":
        return contact_key(event_type, record)
    reply_to = record.get("in_reply_to")
    if reply_to and event_type in ("email.received", "sms.received"):
        return f"{event_type.split('.')[0]}:msg:{reply_to}"
    if reply_to and event_type == "postal.mail_received":
        return f"postal:mail:{reply_to}"
    return None


def journey_signal(event_type: str, record: dict) -> str | None:
    """Which journey stage an event speaks for: research, attraction, sale, service (support after a sale)."""
    if event_type in SALE_TYPES:
        return "sale"
    env = record["envelope"]
    if event_type == "document.signed" and env["content"] == "order_payment":
        return "sale"
    if event_type in SERVICE_TYPES:
        return "service"
    domain = event_type.split(".", 1)[0]
    if domain in ("feedback", "identity", "complaint") or direction(event_type, record) != INBOUND:
        return None
    content = env["content"]
    if content == "informing":
        return "attraction" if env["initiated_by"] == "company" else "research"
    return SIGNAL_BY_CONTENT.get(content)
