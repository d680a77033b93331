"""Building blocks shared by every journey: a phone call, a company e-mail, an SMS, a letter.

Why shared: a call has the same started / answered / ended shape whether it carries
an order, a complaint or a sales pitch, and every company e-mail goes through the
same delivered / opened / clicked funnel. Journeys differ only in content,
initiator and correlation id. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from touchstream.demo.emitter import MINUTE, SECOND, Emitter
from touchstream.demo.personas import AGENTS, COMPANY_NUMBER, SHORT_CODE, Customer

QUEUES = {"inquiry": "service", "complaint": "complaints", "order_payment": "sales", "specification": "sales",
          "invoicing": "billing", "informing": "outbound", "promotion": "outbound", "fulfilment": "service",
          "compliment": "service"}


@dataclass
class Call:
    """A call in progress: queue events between ``start_call`` and ``end_call`` at ``t``."""

    call_id: str
    direction: str
    content: str
    initiated_by: str
    agent: str
    queue: str
    wait: int
    answered_at: int
    corr: str | None
    t: int


def start_call(em: Emitter, c: Customer, t: int, content: str, initiated_by: str = "customer",
               outbound: bool = False, corr: str | None = None, identified: bool = False) -> Call:
    """call_started (+ call_answered). Caller ID gives the phone number; the agent may add customer_id."""
    rng = em.rng
    call_id, agent = em.new_id("CALL"), rng.choice(AGENTS)
    direction = "outbound" if outbound else "inbound"
    queue = QUEUES[content]
    fields = {"call_id": call_id, "direction": direction, "company_number": COMPANY_NUMBER}
    if outbound:
        fields["agent_id"] = agent
    else:
        fields["queue"] = queue
    em.emit(t, "phone.call_started", "phone", content, initiated_by, "pbx", c.phone_ids(identified), fields, corr)
    wait = rng.randint(5, 25) if outbound else rng.choice((15, 40, 90, 180, 420))
    answered = t + wait * SECOND
    em.emit(answered, "phone.call_answered", "phone", content, initiated_by, "pbx", c.phone_ids(identified),
            {"call_id": call_id, "wait_seconds": wait, "agent_id": agent, "queue": queue}, corr)
    return Call(call_id, direction, content, initiated_by, agent, queue, wait, answered, corr,
                answered + rng.randint(150, 420) * SECOND)


def end_call(em: Emitter, c: Customer, call: Call, resolved: bool | None = None, identified: bool = True) -> int:
    """call_ended with wait and talk time; the agent identified the caller during the call."""
    t = max(call.t, call.answered_at + SECOND)
    fields = {"call_id": call.call_id, "direction": call.direction,
              "wait_seconds": 0 if call.direction == "outbound" else call.wait,
              "talk_seconds": (t - call.answered_at) // SECOND, "outcome": "completed",
              "agent_id": call.agent, "queue": call.queue}
    if resolved is not None:
        fields["resolved_on_call"] = resolved
    em.emit(t, "phone.call_ended", "phone", call.content, call.initiated_by, "pbx", c.phone_ids(identified),
            fields, call.corr)
    return t


def missed_call(em: Emitter, c: Customer, t: int, content: str, initiated_by: str, corr: str | None = None) -> int:
    """An outbound call nobody picked up: started and ended (no_answer / voicemail)."""
    call_id = em.new_id("CALL")
    em.emit(t, "phone.call_started", "phone", content, initiated_by, "pbx", c.phone_ids(False),
            {"call_id": call_id, "direction": "outbound", "agent_id": em.rng.choice(AGENTS)}, corr)
    t += 30 * SECOND
    em.emit(t, "phone.call_ended", "phone", content, initiated_by, "pbx", c.phone_ids(False),
            {"call_id": call_id, "direction": "outbound", "wait_seconds": 0, "talk_seconds": 0,
             "outcome": em.rng.choice(("no_answer", "voicemail"))}, corr)
    return t


def company_email(em: Emitter, c: Customer, t: int, content: str, initiated_by: str, subject: str,
                  template: str | None = None, campaign: str | None = None, open_rate: float = 0.5,
                  click_rate: float = 0.2, url: str = "https://shop.example/offers/seasonal",
                  corr: str | None = None, message_id: str | None = None, agent: str | None = None) -> int | None:
    """email.sent then delivered (or bounced), opened, clicked. Returns the click time, or None."""
    rng = em.rng
    msg = message_id or em.new_id("MSG")
    source = "esp-mailer" if template else "helpdesk"
    sent = {"message_id": msg, "subject": subject}
    extra = {"campaign_id": campaign} if campaign else {}
    if template:
        sent["template"] = template
    if agent:
        sent["agent_id"] = agent
    em.emit(t, "email.sent", "email", content, initiated_by, source, c.email_ids(True), {**sent, **extra}, corr)
    t += rng.randint(2, 90) * SECOND
    if rng.random() < 0.025:
        hard = rng.random() < 0.3
        em.emit(t, "email.bounced", "email", content, initiated_by, "esp-mailer", c.email_ids(),
                {"message_id": msg, "bounce_type": "hard" if hard else "soft",
                 "diagnostic": "550 mailbox unavailable" if hard else "452 mailbox full", **extra}, corr)
        if hard:
            c.email_ok = False
        return None
    em.emit(t, "email.delivered", "email", content, initiated_by, "esp-mailer", c.email_ids(),
            {"message_id": msg, **extra}, corr)
    if rng.random() >= open_rate:
        return None
    t += rng.randint(1 * MINUTE, 30 * 60 * MINUTE)
    em.emit(t, "email.opened", "email", content, initiated_by, "esp-mailer", c.email_ids(),
            {"message_id": msg, "automated": rng.random() < 0.1, **extra}, corr)
    if rng.random() >= click_rate:
        return None
    t += rng.randint(5, 120) * SECOND
    em.emit(t, "email.clicked", "email", content, initiated_by, "esp-mailer", c.email_ids(),
            {"message_id": msg, "url": url, **extra}, corr)
    return t


def sms(em: Emitter, c: Customer, t: int, content: str, initiated_by: str, text: str,
        template: str | None = None, campaign: str | None = None, corr: str | None = None,
        reply: str | None = None, message_id: str | None = None) -> int:
    """sms.sent + sms.delivered, and optionally the customer's answer (sms.received).

    A campaign passes the message_id of its campaign.message_sent: one message, two records."""
    rng = em.rng
    msg = message_id or em.new_id("SMS")
    fields = {"message_id": msg, "text": text}
    if template:
        fields["template"] = template
    if campaign:
        fields["campaign_id"] = campaign
    em.emit(t, "sms.sent", "sms", content, initiated_by, "sms-gateway", c.phone_ids(False), fields, corr)
    t += rng.randint(2, 60) * SECOND
    em.emit(t, "sms.delivered", "sms", content, initiated_by, "sms-gateway", c.phone_ids(False),
            {"message_id": msg, **({"campaign_id": campaign} if campaign else {})}, corr)
    if reply is not None:
        t += rng.randint(1, 180) * MINUTE
        em.emit(t, "sms.received", "sms", content, initiated_by, "sms-gateway", c.phone_ids(False),
                {"message_id": em.new_id("SMS"), "in_reply_to": msg, "short_code": SHORT_CODE, "text": reply}, corr)
    return t


def letter(em: Emitter, c: Customer, t: int, content: str, initiated_by: str, kind: str,
           template: str | None = None, campaign: str | None = None, corr: str | None = None,
           in_reply_to: str | None = None, message_id: str | None = None) -> str:
    """postal.mail_sent by the mail room; returns the mail_id (a reply card or letter may answer it)."""
    mail = message_id or em.new_id("PM")
    fields = {"mail_id": mail, "kind": kind}
    for key, value in (("template", template), ("campaign_id", campaign), ("in_reply_to", in_reply_to)):
        if value:
            fields[key] = value
    em.emit(t, "postal.mail_sent", "postal_mail", content, initiated_by, "mailroom", c.crm_ids(), fields, corr)
    return mail
