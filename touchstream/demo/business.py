"""The business buyer's sales cycle: need -> meeting (with SMS reminder) -> proposal -> contract -> order.

Why separate: business buyers live on meetings, documents and postal mail rather
than web and store (domain.md section 2: meetings and documents are touchpoints
too), pay by transfer and are often late. Pure: no I/O.
"""

from __future__ import annotations

from touchstream.demo import sales, touchpoints
from touchstream.demo.emitter import DAY, HOUR, MINUTE, SECOND, Emitter
from touchstream.demo.personas import ACCOUNT_MANAGERS, BUSINESS_SKUS, Customer


def meeting(em: Emitter, c: Customer, t: int, content: str, initiated_by: str, outcome: str | None = None,
            corr: str | None = None) -> tuple[int, str]:
    """Booked, reminded by SMS the day before, held. Returns (end of meeting, outcome)."""
    rng = em.rng
    mid, organizer = em.new_id("MTG"), rng.choice(ACCOUNT_MANAGERS)
    kind = rng.choice(("in_person", "in_person", "video"))
    channel = "field_sales" if kind == "in_person" else "meeting"
    starts = (t // DAY + rng.randint(2, 6)) * DAY + rng.choice((9, 10, 11, 14, 15)) * HOUR
    minutes = rng.choice((30, 45, 60, 90))
    location = f"{c.company}, reception" if kind == "in_person" else "https://video.example/m/" + mid
    em.emit(t, "meeting.scheduled", channel, content, initiated_by, "field-sales", c.crm_ids(),
            {"meeting_id": mid, "starts_at": em.iso(starts), "ends_at": em.iso(starts + minutes * MINUTE),
             "kind": kind, "location": location, "attendee_count": rng.randint(2, 5), "organizer_id": organizer}, corr)
    if c.phone_known:
        touchpoints.sms(em, c, starts - DAY + rng.randint(0, 2) * HOUR, "informing", "company",
                        f"Reminder: meeting tomorrow at {em.iso(starts)[11:16]}.", template="meeting-reminder",
                        corr=corr, reply="OK, see you then" if rng.random() < 0.5 else None)
    outcome = outcome or rng.choice(("proposal_requested", "proposal_requested", "agreed", "follow_up_planned",
                                     "no_decision", "declined"))
    end = starts + minutes * MINUTE
    em.emit(end, "meeting.held", channel, content, initiated_by, "field-sales", c.crm_ids(),
            {"meeting_id": mid, "kind": kind, "duration_minutes": minutes, "attendee_count": rng.randint(2, 5),
             "outcome": outcome, "notes": f"Discussed {content} with {c.company}", "organizer_id": organizer}, corr)
    return end, outcome


def document(em: Emitter, c: Customer, t: int, kind: str, content: str, initiated_by: str, title: str,
             value: int | None = None, sign: bool = False, corr: str | None = None) -> tuple[int, bool]:
    """document.sent and, when a signature is asked and given, document.signed. Returns (t, signed)."""
    rng = em.rng
    doc = em.new_id("DOC")
    fields = {"document_id": doc, "kind": kind, "title": title, "signature_required": sign,
              "agent_id": rng.choice(ACCOUNT_MANAGERS), "valid_until": em.date(t + 30 * DAY)}
    if value is not None:
        fields["value"] = em.money(value)
    em.emit(t, "document.sent", "document", content, initiated_by, "esign", c.crm_ids(), fields, corr)
    if not sign or rng.random() < 0.15:
        return t, False
    t += rng.randint(2 * HOUR, 4 * DAY)
    em.emit(t, "document.signed", "document", content if content != "inquiry" else "informing", initiated_by,
            "esign", c.crm_ids(), {"document_id": doc, "kind": kind,
                                  "method": "handwritten" if rng.random() < 0.2 else "electronic"}, corr)
    return t, True


def sales_cycle(em: Emitter, c: Customer, t: int) -> int:
    """From a stated need to a signed contract, a delivered order and a (perhaps late) payment."""
    rng = em.rng
    deal = em.new_id("DEAL")
    sku, category, price = rng.choice(BUSINESS_SKUS[:2])
    qty = rng.randint(2, 12)
    value = price * qty
    msg = em.new_id("MSG")
    em.emit(t, "email.received", "email", "specification", "customer", "helpdesk", c.email_ids(),
            {"message_id": msg, "mailbox": "sales@shop.example", "subject": f"Request for {qty} {category}",
             "body_excerpt": f"We are furnishing a new floor and need {qty} {category}.", "attachment_count": 1}, deal)
    em.emit(t + 20 * MINUTE, "commerce.requirement_specified", "email", "specification", "customer", "crm",
            c.crm_ids(), {"requirement_id": em.new_id("REQ"), "product_category": category, "quantity": qty,
                          "description": f"{qty} {category} for a new office floor",
                          "budget": em.money(value + value // 10), "needed_by": em.date(t + 45 * DAY)}, deal)
    if rng.random() < 0.3:
        document(em, c, t + HOUR, "terms", "informing", "company", "General terms of sale 2026", corr=deal)
    end, outcome = meeting(em, c, t + HOUR, "specification", "customer", corr=deal)
    if outcome in ("declined", "no_decision"):
        return end
    if outcome == "follow_up_planned":
        end, outcome = meeting(em, c, end + DAY, "specification", "company", outcome="proposal_requested", corr=deal)
    t, signed = document(em, c, em.office(end + rng.randint(4 * HOUR, 2 * DAY)), "proposal", "specification",
                         "customer",
                         f"Proposal {category} for {c.company}", value=value, sign=True, corr=deal)
    if not signed:
        return t
    t, signed = document(em, c, em.office(t + rng.randint(2 * HOUR, DAY)), "contract", "order_payment", "customer",
                         f"Supply contract {c.company}", value=value, sign=True, corr=deal)
    if not signed:
        return t
    order = em.new_id("ORD")
    lines = [{"sku": sku, "quantity": qty, "unit_price": em.money(price)}]
    em.emit(t + MINUTE, "commerce.order_placed", "document", "order_payment", "customer", "crm", c.crm_ids(),
            {"order_id": order, "lines": lines, "total": em.money(value)}, deal)
    delivered, _late = sales.fulfil(em, c, t + MINUTE, order, lines, "document", place="other")
    channel = rng.choice(("postal_mail", "email", "document"))
    sales.settle(em, c, delivered + HOUR, order, value, "document", channel, False)
    return delivered


def account_review(em: Emitter, c: Customer, t: int) -> int:
    """A periodic statement and a quarterly review call with the account manager."""
    rng = em.rng
    document(em, c, em.office(t), "statement", "invoicing", "company", f"Statement {em.date(t)[:7]} {c.company}")
    call = touchpoints.start_call(em, c, t + rng.randint(1, 3) * DAY, "informing", "company", outbound=True,
                                  identified=True)
    call.t += rng.randint(5, 20) * MINUTE
    return touchpoints.end_call(em, c, call, identified=True) + SECOND
