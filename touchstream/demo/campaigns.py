"""Company-initiated mass communication: e-mail, SMS and postal campaigns, and their responses.

Why: contact pressure and closed-loop measurement (domain.md sections 4 and 7)
need a campaign record per recipient (campaign.message_sent sharing message_id
with the channel's own event), response funnels that differ by persona (opens,
clicks, reply cards, coupon redemptions, orders attributed to the campaign) and
the cost of over-mailing (unsubscribes). Only customers the channel can reach and
who consented are mailed. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from touchstream.demo import identity_steps, research, sales, touchpoints
from touchstream.demo.emitter import DAY, HOUR, MINUTE, SECOND, Emitter
from touchstream.demo.personas import Customer


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    channel: str      # email, sms, postal_mail
    purpose: str      # promotion, informing, benefit
    template: str
    subject: str
    hour: int


def schedule(em: Emitter, day: int) -> tuple[Campaign, ...]:
    """The campaign calendar: a weekly promotion mail, SMS and postal drops, a voucher, a newsletter."""
    week = day // 7 + 1
    out = []
    if day % 7 == 1:
        out.append(Campaign(em.new_id("CMP"), "email", "promotion", f"promo-week-{week}",
                            "This week's offers on espresso machines", 10))
    if day % 14 == 3:
        out.append(Campaign(em.new_id("CMP"), "sms", "promotion", "sms-store-coupon",
                            "10% off in store this weekend with code SHOP10", 12))
    if day % 28 == 9:
        out.append(Campaign(em.new_id("CMP"), "postal_mail", "promotion", "catalogue-spring", "Spring catalogue", 8))
    if day % 28 == 16:
        out.append(Campaign(em.new_id("CMP"), "email", "benefit", "loyalty-voucher",
                            "A 5 euro voucher for our loyal customers", 9))
    if day % 28 == 23:
        out.append(Campaign(em.new_id("CMP"), "email", "informing", "newsletter", "Brewing tips for the season", 11))
    return tuple(out)


def reachable(c: Customer, camp: Campaign) -> bool:
    """Only customers the channel can reach, who consented, get the message."""
    if not c.has_account:
        return False
    if camp.channel == "email":
        return c.email_known and c.consent_email and c.email_ok and (camp.purpose != "benefit" or c.card_known)
    if camp.channel == "sms":
        return c.phone_known and c.consent_sms and c.loyalty is not None
    return c.persona.postal


def send_time(c: Customer, camp: Campaign, day_start: int) -> int:
    """Mass sends go out within the campaign's hour, recipient by recipient."""
    return day_start + camp.hour * HOUR + (c.idx * 37 % 3600) * SECOND


def deliver(em: Emitter, c: Customer, t: int, camp: Campaign) -> None:
    """One recipient of one campaign: the campaign record, the channel message and the response."""
    if not reachable(c, camp):
        return
    rng = em.rng
    content = "promotion" if camp.purpose == "promotion" else "informing"
    msg = em.new_id("MSG" if camp.channel != "postal_mail" else "PM")
    variant = "A" if rng.random() < 0.5 else "B"
    em.emit(t, "campaign.message_sent", camp.channel, content, "company", "campaign-manager", c.crm_ids(),
            {"campaign_id": camp.campaign_id, "message_id": msg, "purpose": camp.purpose,
             "template": camp.template, "variant": variant})
    t += SECOND
    persona = c.persona
    if camp.channel == "email":
        url = research.SHOP + ("/offers/seasonal" if content == "promotion" else "/blog/brewing-guide")
        click = touchpoints.company_email(em, c, t, content, "company", camp.subject, camp.template,
                                          camp.campaign_id, persona.email_open, persona.email_click, url,
                                          message_id=msg)
        if click is not None:
            end = research.web_session(em, c, click + 2 * SECOND, rng.random() < 0.7, content,
                                       referrer="https://mail.example/", pages=rng.randint(1, 3))
            if content == "promotion" and rng.random() < 0.12:
                sales.web_order(em, c, end + MINUTE, campaign=camp.campaign_id)
            elif rng.random() < 0.03:
                em.emit(end + 10 * MINUTE, "email.received", "email", "inquiry", "company", "helpdesk", c.email_ids(),
                        {"message_id": em.new_id("MSG"), "in_reply_to": msg, "mailbox": "news@shop.example",
                         "subject": "Re: " + camp.subject, "body_excerpt": "Is this offer also valid in store?",
                         "attachment_count": 0})
        elif rng.random() < (0.02 if persona.email_open < 0.3 else 0.006):
            identity_steps.withdraw(em, c, t + rng.randint(1, 48) * HOUR, "email")
    elif camp.channel == "sms":
        stop = rng.random() < 0.03
        touchpoints.sms(em, c, t, content, "company", camp.subject, camp.template, camp.campaign_id,
                        reply="STOP" if stop else None, message_id=msg)
        if stop:
            identity_steps.withdraw(em, c, t + 4 * HOUR, "sms")
        elif rng.random() < 0.2:
            sales.store_visit(em, c, em.at(t - t % DAY + rng.randint(1, 4) * DAY, 10, 18), "company", camp.campaign_id)
    else:
        mail = touchpoints.letter(em, c, t, content, "company", "catalogue", camp.template, camp.campaign_id,
                                  message_id=msg)
        if rng.random() < 0.06:
            em.emit(t + rng.randint(3, 10) * DAY, "postal.mail_received", "postal_mail", content, "company", "mailroom",
                    c.crm_ids(), {"mail_id": em.new_id("PM"), "kind": "reply_card", "in_reply_to": mail,
                                  "summary": "Please send me the office machine price list"})
        elif persona.order_channel == "phone" and rng.random() < 0.05:
            sales.phone_order(em, c, em.at(t - t % DAY + rng.randint(2, 6) * DAY, 9, 17))
