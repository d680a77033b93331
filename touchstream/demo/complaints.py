"""A complaint case and its steps: opened, acknowledged, promises, escalations, resolution, rating.

Why a case object: every complaint.* event carries the case id and the envelope's
correlation_id threads the case across channels (the e-mail, the missed callback,
the chat a few days later), so complaint analytics can follow one problem through
the service system (domain.md section 5). initiated_by is the customer for a
complaint they raised, the company for one found by proactive outreach. The
lifecycles themselves are in ``complaint_paths``. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from touchstream.demo import identity_steps, touchpoints
from touchstream.demo.emitter import HOUR, MINUTE, SECOND, Emitter
from touchstream.demo.personas import AGENTS, Customer

TEAMS = ("complaints-1st-line", "complaints-2nd-line", "technical-support", "billing-desk", "legal")
DESCRIPTIONS = {
    "delivery": "My parcel arrived days later than promised.",
    "product_quality": "The machine leaks water after a week of use.",
    "billing": "I was charged twice for the same order.",
    "service": "Nobody answered my question for days.",
    "staff": "The clerk in the store was unfriendly.",
    "website": "The checkout page kept failing.",
    "pricing": "The price changed between my cart and the checkout.",
}


@dataclass
class Case:
    """One complaint case: who raised it (initiated_by) and what it is about."""

    case_id: str
    customer: Customer
    by: str
    category: str
    order: str | None
    product: str | None
    agent: str


def new_case(em: Emitter, c: Customer, by: str = "customer", order: tuple | None = None,
             category: str | None = None) -> Case:
    rng = em.rng
    if order is not None:
        category = category or ("delivery" if order[6] else "product_quality")
        return Case(em.new_id("CASE"), c, by, category, order[0], order[1], rng.choice(AGENTS))
    category = category or rng.choice(("product_quality", "product_quality", "billing", "service", "staff",
                                       "website", "pricing"))
    product = rng.choice(("SKU-COF-01", "SKU-GRN-01", "SKU-MLK-01")) if category == "product_quality" else None
    return Case(em.new_id("CASE"), c, by, category, None, product, rng.choice(AGENTS))


def step(em: Emitter, case: Case, t: int, event_type: str, channel: str, fields: dict, source: str = "crm",
         ids: dict | None = None) -> str:
    fields["case_id"] = case.case_id
    return em.emit(t, event_type, channel, "complaint", case.by, source, ids or case.customer.crm_ids(), fields,
                   case.case_id)


def opened(em: Emitter, case: Case, t: int, channel: str, priority: str = "normal",
           about_channel: str | None = None, description: str | None = None) -> str:
    fields = {"category": case.category, "priority": priority, "assigned_team": TEAMS[0],
              "description": description or DESCRIPTIONS[case.category]}
    for key, value in (("product", case.product), ("order_id", case.order), ("about_channel", about_channel)):
        if value is not None:
            fields[key] = value
    return step(em, case, t, "complaint.opened", channel, fields)


def acknowledged(em: Emitter, case: Case, t: int, channel: str, in_reply_to: str | None = None) -> None:
    step(em, case, t, "complaint.acknowledged", channel, {"agent_id": case.agent, "team": TEAMS[0]})
    if channel == "email":
        fields = {"message_id": em.new_id("MSG"), "subject": f"We received your complaint [{case.case_id}]",
                  "agent_id": case.agent}
        if in_reply_to:
            fields["in_reply_to"] = in_reply_to
        em.emit(t + SECOND, "email.sent", "email", "complaint", case.by, "helpdesk", case.customer.email_ids(True),
                fields, case.case_id)


def updated(em: Emitter, case: Case, t: int, channel: str, note: str, status: str) -> None:
    step(em, case, t, "complaint.updated", channel,
         {"note": note, "status": status, "agent_id": case.agent, "effort_minutes": em.rng.randint(5, 45)})


def escalated(em: Emitter, case: Case, t: int, channel: str, level: int, reason: str) -> None:
    step(em, case, t, "complaint.escalated", channel,
         {"level": level, "reason": reason, "to_team": TEAMS[min(level, len(TEAMS) - 1)]})


def resolved(em: Emitter, case: Case, t: int, channel: str, code: str, first_contact: bool,
             cause: str | None = None) -> str:
    fields = {"resolution_code": code, "resolved_on_first_contact": first_contact, "agent_id": case.agent}
    if cause:
        fields["cause"] = cause
    case.customer.rating = max(0, min(10, case.customer.rating + (1 if first_contact else -1)))
    return step(em, case, t, "complaint.resolved", channel, fields)


def closed(em: Emitter, case: Case, t: int, channel: str, reason: str = "resolved") -> None:
    step(em, case, t, "complaint.closed", channel, {"reason": reason})


def goodwill(em: Emitter, case: Case, t: int, channel: str, cents: int) -> None:
    """A goodwill credit settling the complaint (content complaint, initiated as the case)."""
    fields = {"credit_id": em.new_id("CRN"), "amount": em.money(cents), "reason": "goodwill", "case_id": case.case_id}
    if case.order:
        fields["order_id"] = case.order
    em.emit(t, "commerce.credit_issued", channel, "complaint", case.by, "billing", case.customer.billing_ids(),
            fields, case.case_id)


def rated(em: Emitter, case: Case, t: int, low: int, high: int) -> None:
    """The post-case survey, by SMS or e-mail; not everybody answers."""
    rng, c = em.rng, case.customer
    if rng.random() < 0.2:
        return
    score = rng.randint(low, high)
    if c.phone_known and c.consent_sms and rng.random() < 0.5:
        channel, ids = "sms", c.phone_ids(False)
    else:
        channel, ids = "email", c.email_ids(True)
    fields = {"score": score}
    if score <= 2:
        fields["comment"] = "It took far too long."
    step(em, case, t, "complaint.satisfaction_given", channel, fields, "survey-tool", ids)


def callback_promise(em: Emitter, case: Case, t: int, channel: str, within: int = 24 * HOUR) -> tuple[str, int]:
    """complaint.callback_promised; returns (callback_id, deadline). Makes sure a number is on file."""
    c = case.customer
    if not c.phone_known:  # the customer left a number with the complaint: claimed, not verified
        ids = c.crm_ids()
        identity_steps.observed(em, t - SECOND, channel, "crm", ids, "phone", c.phone, "agent_entry", "claimed")
        identity_steps.linked(em, t - SECOND, channel, "crm", c.crm_ids(), ("phone", c.phone),
                               ("customer_id", c.cid), "claimed", "agent_confirmed")
        c.phone_known = True
    callback = em.new_id("CB")
    deadline = t + within
    step(em, case, t, "complaint.callback_promised", channel,
         {"callback_id": callback, "promised_by": em.iso(deadline), "callback_channel": "phone",
          "agent_id": case.agent})
    return callback, deadline


def callback(em: Emitter, case: Case, t: int, callback_id: str, reached: bool) -> touchpoints.Call | int:
    """phone.callback_made: a reached callback returns the open call (resolve, then end it); a miss, its end time."""
    c = case.customer
    t = em.office(t)
    if not reached:
        end = touchpoints.missed_call(em, c, t, "complaint", case.by, case.case_id)
        em.emit(end, "phone.callback_made", "phone", "complaint", case.by, "pbx", c.phone_ids(True),
                {"callback_id": callback_id, "case_id": case.case_id, "reached": False, "agent_id": case.agent},
                case.case_id)
        return end
    call = touchpoints.start_call(em, c, t, "complaint", case.by, outbound=True, corr=case.case_id, identified=True)
    em.emit(call.answered_at, "phone.callback_made", "phone", "complaint", case.by, "pbx", c.phone_ids(True),
            {"call_id": call.call_id, "callback_id": callback_id, "case_id": case.case_id, "reached": True,
             "agent_id": case.agent}, case.case_id)
    call.t += em.rng.randint(3, 15) * MINUTE
    return call
