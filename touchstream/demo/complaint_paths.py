"""Complaint lifecycles, one function each, as they happen across channels.

Why so many: the complaint metrics of domain.md section 5 only mean something when
the data holds their contrasts: first-contact resolution on the phone or in the
store, the e-mail complaint whose promised callback is kept or missed (then a
repeat contact on another channel and an escalation), escalations to second line
and legal, a case reopened after close, a case closed for no response, a complaint
found by proactive outreach, a public review turned into a case, and a business
customer's complaint talk. Every function returns when its case ends. Pure: no I/O.
"""

from __future__ import annotations

from touchstream.demo import business, research, touchpoints
from touchstream.demo.complaints import (DESCRIPTIONS, Case, acknowledged, callback, callback_promise, closed,
                                         escalated, goodwill, new_case, opened, rated, resolved, updated)
from touchstream.demo.emitter import DAY, HOUR, MINUTE, SECOND, Emitter
from touchstream.demo.personas import Customer

CODES = ("explanation", "replacement_sent", "refund", "repair", "discount")


def _cents(em: Emitter) -> int:
    return em.rng.choice((1000, 1500, 2500, 5000))


def phone_fcr(em: Emitter, c: Customer, t: int, order: tuple | None = None) -> int:
    """Called in, solved on the call: the case the metrics celebrate."""
    rng, case = em.rng, new_case(em, c, order=order)
    call = touchpoints.start_call(em, c, t, "complaint", corr=case.case_id, identified=True)
    opened(em, case, call.answered_at + 30 * SECOND, "phone")
    solved = call.answered_at + rng.randint(3, 12) * MINUTE
    resolved(em, case, solved, "phone", rng.choice(CODES), True)
    if rng.random() < 0.3:
        goodwill(em, case, solved + MINUTE, "phone", _cents(em))
    call.t = solved + 2 * MINUTE
    end = touchpoints.end_call(em, c, call, resolved=True)
    closed(em, case, end + MINUTE, "phone")
    rated(em, case, end + rng.randint(2, 26) * HOUR, 4, 5)
    return end


def store_fcr(em: Emitter, c: Customer, t: int, order: tuple | None = None) -> int:
    """Brought the faulty item back to the store and left with a replacement."""
    if not c.card_known or not c.receipts:
        return phone_fcr(em, c, t, order)
    rng, case = em.rng, new_case(em, c, category="product_quality")
    receipt, store, sku, unit = c.receipts[-1]
    c.receipts = c.receipts[:-1]
    case.product = sku
    em.emit(t, "store.visited", "store", "complaint", "customer", "pos", c.store_ids(),
            {"store_id": store, "visit_id": em.new_id("VIS"), "duration_seconds": rng.randint(600, 1800)}, case.case_id)
    em.emit(t + 3 * MINUTE, "store.item_returned", "store", "complaint", "customer", "pos", c.store_ids(),
            {"receipt_id": receipt, "store_id": store, "sku": sku, "quantity": 1, "refund": unit,
             "reason": "defective", "comment": "Stopped heating after a week"}, case.case_id)
    opened(em, case, t + 4 * MINUTE, "store", about_channel=None)
    resolved(em, case, t + 10 * MINUTE, "store", "replacement_sent", True)
    closed(em, case, t + 11 * MINUTE, "store")
    rated(em, case, t + rng.randint(3, 30) * HOUR, 4, 5)
    return t + 11 * MINUTE


def chat_fcr(em: Emitter, c: Customer, t: int, order: tuple | None = None) -> int:
    """A chat that ends with the problem solved."""
    rng, case = em.rng, new_case(em, c, order=order)
    end = research.chat(em, c, t, "complaint", case.case_id, DESCRIPTIONS[case.category], "Great, thanks!")
    opened(em, case, t + MINUTE, "web")
    resolved(em, case, end - 10 * SECOND, "web", rng.choice(CODES), True)
    closed(em, case, end + MINUTE, "web")
    rated(em, case, end + rng.randint(1, 20) * HOUR, 3, 5)
    return end


def _email_start(em: Emitter, case: Case, t: int) -> int:
    rng, c = em.rng, case.customer
    msg = em.new_id("MSG")
    em.emit(t, "email.received", "email", "complaint", "customer", "helpdesk", c.email_ids(),
            {"message_id": msg, "mailbox": "support@shop.example", "subject": f"Complaint: {case.category}",
             "body_excerpt": DESCRIPTIONS[case.category], "attachment_count": rng.randint(0, 2)}, case.case_id)
    opened(em, case, t + rng.randint(10, 60) * MINUTE, "email")
    ack = t + rng.randint(1, 6) * HOUR
    acknowledged(em, case, ack, "email", in_reply_to=msg)
    return ack + MINUTE


def callback_kept(em: Emitter, c: Customer, t: int, order: tuple | None = None) -> int:
    """E-mail complaint, callback promised within a day and made in time."""
    rng, case = em.rng, new_case(em, c, order=order)
    t = _email_start(em, case, t)
    cb, deadline = callback_promise(em, case, t, "email")
    call = callback(em, case, t + rng.randint(1, 4) * HOUR, cb, True)
    resolved(em, case, call.t, "phone", rng.choice(CODES), False)
    end = touchpoints.end_call(em, c, call, resolved=True)
    closed(em, case, end + MINUTE, "phone")
    rated(em, case, end + rng.randint(2, 30) * HOUR, 3, 5)
    return end


def callback_missed(em: Emitter, c: Customer, t: int, order: tuple | None = None) -> int:
    """Phone tag: the promised callback is late or never comes; the customer chases on another channel."""
    rng, case = em.rng, new_case(em, c, order=order)
    t = _email_start(em, case, t)
    cb, deadline = callback_promise(em, case, t, "email")
    if rng.random() < 0.6:
        callback(em, case, deadline + rng.randint(2, 30) * HOUR, cb, False)
    again = deadline + rng.randint(2, 4) * DAY + rng.randint(0, 8) * HOUR
    note = "Customer chased: the promised callback never reached them"
    reason = rng.choice(("repeat_contact", "sla_breach"))
    if c.persona.name == "digital_native":
        end = research.chat(em, c, again, "complaint", case.case_id, "Still waiting for the call you promised!",
                            "OK, thank you.")
        updated(em, case, again + 5 * MINUTE, "web", note, "in_progress")
        escalated(em, case, again + 6 * MINUTE, "web", 1, reason)
        resolved(em, case, end - 5 * SECOND, "web", rng.choice(CODES), False)
        channel = "web"
    else:
        call = touchpoints.start_call(em, c, again, "complaint", corr=case.case_id, identified=True)
        updated(em, case, call.answered_at + MINUTE, "phone", note, "in_progress")
        escalated(em, case, call.answered_at + 2 * MINUTE, "phone", 1, reason)
        call.t = call.answered_at + rng.randint(8, 20) * MINUTE
        resolved(em, case, call.t - MINUTE, "phone", rng.choice(CODES), False)
        end, channel = touchpoints.end_call(em, c, call, resolved=True), "phone"
    if rng.random() < 0.6:
        goodwill(em, case, end + HOUR, channel, _cents(em))
    closed(em, case, end + 2 * HOUR, channel)
    c.rating = max(0, c.rating - 3)
    rated(em, case, end + rng.randint(4, 30) * HOUR, 1, 3)
    if c.persona.name == "digital_native" and rng.random() < 0.4:
        em.emit(end + rng.randint(1, 3) * DAY, "social.review_posted", "social", "complaint", "customer",
                "social-listener", c.crm_ids(), {"platform": "trustpilot", "review_id": em.new_id("RV"),
                                                 "rating": rng.randint(1, 2), "author_handle": c.handle,
                                                 "text": "Promised a callback that never came."}, case.case_id)
    return end


def escalated_path(em: Emitter, c: Customer, t: int, order: tuple | None = None) -> int:
    """Raised on the web or the phone, escalated once or twice, settled with a credit."""
    rng, case = em.rng, new_case(em, c, order=order)
    if c.persona.name == "digital_native":
        em.emit(t, "web.form_submitted", "web", "complaint", "customer", "web-shop", c.web_ids(True),
                {"form_id": "complaint-v1", "form_kind": "complaint", "page_url": research.SHOP + "/help/complaint",
                 "answers": {"description": DESCRIPTIONS[case.category], "order_id": case.order or ""}}, case.case_id)
        opened(em, case, t + MINUTE, "web", priority="high")
        acknowledged(em, case, t + rng.randint(1, 4) * HOUR, "email")
    else:
        call = touchpoints.start_call(em, c, t, "complaint", corr=case.case_id, identified=True)
        opened(em, case, call.answered_at + MINUTE, "phone", priority="high")
        acknowledged(em, case, call.answered_at + 2 * MINUTE, "phone")
        touchpoints.end_call(em, c, call, resolved=False)
    t += DAY
    updated(em, case, t, "email", "Investigating with the supplier", "investigating")
    t += rng.randint(1, 2) * DAY
    escalated(em, case, t, "email", 1, rng.choice(("severity", "expertise_needed")))
    if rng.random() < 0.35:
        t += rng.randint(1, 3) * DAY
        escalated(em, case, t, "email", 2, rng.choice(("legal_risk", "customer_request")))
    t += rng.randint(1, 4) * DAY
    channel = "postal_mail" if c.persona.postal else "email"
    resolved(em, case, t, channel, "refund", False, cause="manufacturing defect")
    if channel == "postal_mail":
        touchpoints.letter(em, c, t + HOUR, "complaint", case.by, "letter", corr=case.case_id)
    else:
        touchpoints.company_email(em, c, t + HOUR, "complaint", case.by, f"Your complaint {case.case_id}",
                                  corr=case.case_id, agent=case.agent, open_rate=0.9, click_rate=0.0)
    goodwill(em, case, t + 2 * HOUR, channel, _cents(em) * 2)
    closed(em, case, t + 3 * HOUR, channel)
    rated(em, case, t + rng.randint(1, 3) * DAY, 2, 4)
    return t + 3 * HOUR


def reopened_path(em: Emitter, c: Customer, t: int, order: tuple | None = None) -> int:
    """Resolved and closed, then the fix did not hold: reopened on another channel."""
    rng, case = em.rng, new_case(em, c, order=order, category="product_quality" if order is None else None)
    t = _email_start(em, case, t)
    t += rng.randint(1, 2) * DAY
    resolved(em, case, t, "email", "replacement_sent", False)
    closed(em, case, t + HOUR, "email")
    again = t + rng.randint(3, 8) * DAY
    call = touchpoints.start_call(em, c, again, "complaint", corr=case.case_id, identified=True)
    em.emit(call.answered_at + MINUTE, "complaint.reopened", "phone", "complaint", case.by, "crm", c.crm_ids(),
            {"case_id": case.case_id, "reason": "The replacement has the same fault"}, case.case_id)
    updated(em, case, call.answered_at + 3 * MINUTE, "phone", "Second unit faulty; refund agreed", "reopened")
    call.t = max(call.t, call.answered_at + 4 * MINUTE)
    end = touchpoints.end_call(em, c, call, resolved=False)
    t = end + rng.randint(1, 3) * DAY
    resolved(em, case, t, "email", "refund", False, cause="batch defect")
    if rng.random() < 0.5:
        goodwill(em, case, t + MINUTE, "email", _cents(em))
    closed(em, case, t + HOUR, "email")
    rated(em, case, t + rng.randint(2, 30) * HOUR, 2, 4)
    return t + HOUR


def proactive(em: Emitter, c: Customer, t: int, order: tuple | None = None) -> int:
    """"Is there anything we could do better?": outreach that uncovers a complaint (initiated by the company)."""
    rng = em.rng
    case = new_case(em, c, by="company", order=order, category=rng.choice(("service", "delivery", "billing")))
    question = "Is there anything we could do better?"
    if rng.random() < 0.5:
        call = touchpoints.start_call(em, c, t, "informing", "company", outbound=True, corr=case.case_id,
                                      identified=True)
        opened(em, case, call.answered_at + 2 * MINUTE, "phone", description="Mentioned when asked: " + question)
        acknowledged(em, case, call.answered_at + 3 * MINUTE, "phone")
        if rng.random() < 0.55:
            resolved(em, case, call.answered_at + 8 * MINUTE, "phone", rng.choice(CODES), True)
            call.t = call.answered_at + 10 * MINUTE
            end = touchpoints.end_call(em, c, call, resolved=True)
        else:
            cb, deadline = callback_promise(em, case, call.answered_at + 5 * MINUTE, "phone", within=48 * HOUR)
            call.t = call.answered_at + 6 * MINUTE
            touchpoints.end_call(em, c, call, resolved=False)
            later = callback(em, case, deadline - rng.randint(24, 40) * HOUR, cb, True)
            resolved(em, case, later.t, "phone", rng.choice(CODES), False)
            end = touchpoints.end_call(em, c, later, resolved=True)
        channel = "phone"
    else:
        response = em.new_id("RESP")
        em.emit(t, "feedback.survey_answered", "email", "complaint", "company", "survey-tool", c.email_ids(True),
                {"survey_id": "SUR-ANYTHING-BETTER", "response_id": response, "question_id": "q-better",
                 "question": question, "answer": DESCRIPTIONS[case.category]}, case.case_id)
        opened(em, case, t + rng.randint(1, 5) * HOUR, "email",
               description="From survey: " + DESCRIPTIONS[case.category])
        acknowledged(em, case, t + 6 * HOUR, "email")
        end = t + rng.randint(1, 3) * DAY
        resolved(em, case, end, "email", rng.choice(CODES), False)
        channel = "email"
    closed(em, case, end + MINUTE, channel)
    rated(em, case, end + rng.randint(2, 30) * HOUR, 3, 5)
    return end


def social(em: Emitter, c: Customer, t: int, order: tuple | None = None) -> int:
    """A one-star review; the social desk answers in public, takes it private and calls back."""
    rng, case = em.rng, new_case(em, c, order=order)
    review, platform = em.new_id("RV"), rng.choice(("google", "trustpilot", "facebook"))
    em.emit(t, "social.review_posted", "social", "complaint", "customer", "social-listener", c.crm_ids(),
            {"platform": platform, "review_id": review, "rating": rng.randint(1, 2), "author_handle": c.handle,
             "text": DESCRIPTIONS[case.category], "about": case.product}, case.case_id)
    t += rng.randint(1, 5) * HOUR
    em.emit(t, "social.reply_sent", "social", "complaint", "customer", "social-listener", c.crm_ids(),
            {"platform": platform, "reply_id": em.new_id("SR"), "in_reply_to": review, "visibility": "public",
             "text": "Sorry to hear this, we sent you a private message.", "agent_id": case.agent}, case.case_id)
    opened(em, case, t + MINUTE, "social", about_channel=rng.choice(("store", "web", "phone")))
    cb, deadline = callback_promise(em, case, t + 2 * MINUTE, "social")
    call = callback(em, case, t + rng.randint(1, 4) * HOUR, cb, True)
    resolved(em, case, call.t, "phone", rng.choice(CODES), False)
    end = touchpoints.end_call(em, c, call, resolved=True)
    closed(em, case, end + MINUTE, "phone")
    if rng.random() < 0.4:
        em.emit(end + DAY, "social.comment_posted", "social", "compliment", "customer", "social-listener",
                c.crm_ids(), {"platform": platform, "comment_id": em.new_id("SC"), "post_url":
                              f"https://reviews.example/shop/{review}", "author_handle": c.handle,
                              "text": "Update: they called me and sorted it out.", "sentiment": 0.6}, case.case_id)
    return end


def no_response(em: Emitter, c: Customer, t: int, order: tuple | None = None) -> int:
    """The company asks for details, the customer never answers, the case is closed."""
    rng, case = em.rng, new_case(em, c, order=order)
    t = _email_start(em, case, t)
    updated(em, case, t + HOUR, "email", "Asked the customer for photos of the damage", "waiting_for_customer")
    touchpoints.company_email(em, c, t + HOUR, "complaint", "customer", f"Re: your complaint {case.case_id}",
                              corr=case.case_id, agent=case.agent, open_rate=0.5, click_rate=0.0)
    end = t + rng.randint(7, 10) * DAY
    closed(em, case, end, "email", "no_response")
    return end


def meeting(em: Emitter, c: Customer, t: int, order: tuple | None = None) -> int:
    """A business customer's complaint, talked through with the account manager."""
    rng = em.rng
    case = new_case(em, c, order=order, category=rng.choice(("billing", "delivery", "service")))
    call = touchpoints.start_call(em, c, t, "complaint", corr=case.case_id, identified=True)
    opened(em, case, call.answered_at + MINUTE, "phone", priority="high")
    acknowledged(em, case, call.answered_at + 2 * MINUTE, "phone")
    end = touchpoints.end_call(em, c, call, resolved=False)
    end, _ = business.meeting(em, c, end + HOUR, "complaint", "customer", outcome="agreed", corr=case.case_id)
    resolved(em, case, end, "meeting", "discount", False)
    goodwill(em, case, end + DAY, "document", _cents(em) * 4)
    closed(em, case, end + DAY + HOUR, "meeting")
    rated(em, case, end + 2 * DAY, 3, 5)
    return end


PATHS = {"phone_fcr": phone_fcr, "store_fcr": store_fcr, "chat_fcr": chat_fcr, "callback_kept": callback_kept,
         "callback_missed": callback_missed, "escalated": escalated_path, "reopened": reopened_path,
         "proactive": proactive, "social": social, "no_response": no_response, "meeting": meeting}
