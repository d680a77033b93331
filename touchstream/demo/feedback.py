"""Attitudinal data beside behaviour: golden questions, NPS surveys, CSAT, compliments, welcome calls.

Why: the customer-360 joins what customers do with what they feel (domain.md
section 3) and must never ask the same question twice, so each golden question is
asked at most once per customer, on whichever channel the customer happens to use.
Scores follow the customer's mood, which complaint handling moves. Pure: no I/O.
"""

from __future__ import annotations

from touchstream.demo import touchpoints
from touchstream.demo.emitter import HOUR, MINUTE, SECOND, Emitter
from touchstream.demo.personas import Customer

GOLDEN = (
    ("household_size", "How many people drink coffee in your household?", ("1", "2", "3", "4+")),
    ("machine_age", "How old is your current coffee machine?", ("<1 year", "1-3 years", "3-5 years", "5+ years")),
    ("roast_preference", "Which roast do you prefer?", ("light", "medium", "dark")),
    ("contact_time", "When do you prefer us to call?", ("morning", "afternoon", "evening")),
    ("renewal_month", "In which month does your current coffee contract renew?", ("march", "june", "september")),
)


def golden_question(em: Emitter, c: Customer, t: int, channel: str) -> None:
    """Ask the next question this customer has not answered yet, on the channel at hand."""
    rng = em.rng
    for key, question, answers in GOLDEN:
        if key in c.asked or (key == "renewal_month" and not c.b2b) or (key == "household_size" and c.b2b):
            continue
        c.asked.add(key)
        source, ids = {"web": ("web-shop", c.web_ids(True)), "phone": ("crm", c.phone_ids(True)),
                       "store": ("pos", c.store_ids()), "email": ("survey-tool", c.email_ids(True)),
                       "field_sales": ("field-sales", c.crm_ids())}[channel]
        em.emit(t, "feedback.golden_question_answered", channel, "specification", "company", source, ids,
                {"question_key": key, "answer": rng.choice(answers), "question": question})
        return


def nps_survey(em: Emitter, c: Customer, t: int) -> None:
    """The relationship survey by e-mail: NPS plus two survey questions when the customer answers."""
    rng = em.rng
    survey = "SUR-NPS-2026"
    click = touchpoints.company_email(em, c, t, "informing", "company", "How are we doing?", "nps-survey",
                                      open_rate=0.6, click_rate=0.5, url="https://survey.example/nps")
    if click is None:
        return
    t = click + MINUTE
    score = max(0, min(10, c.rating + rng.randint(-1, 1)))
    ids = c.email_ids(True)
    em.emit(t, "feedback.nps_given", "email", "compliment" if score >= 7 else "complaint", "company", "survey-tool",
            dict(ids), {"score": score, "survey_id": survey,
                        **({"comment": "Delivery could be faster."} if score < 7 else {})})
    response = em.new_id("RESP")
    em.emit(t + 30 * SECOND, "feedback.survey_answered", "email", "informing", "company", "survey-tool", dict(ids),
            {"survey_id": survey, "response_id": response, "question_id": "q-channel",
             "question": "How would you like to hear from us?",
             "answer": {"digital_native": "e-mail", "phone_person": "phone", "store_regular": "in store",
                        "business_buyer": "account manager"}[c.persona.name]})
    em.emit(t + 60 * SECOND, "feedback.survey_answered", "email", "compliment" if score >= 7 else "complaint",
            "company", "survey-tool", dict(ids),
            {"survey_id": survey, "response_id": response, "question_id": "q-ease",
             "question": "How easy was it to do business with us (1-5)?", "answer": str(max(1, score // 2)),
             "score": max(1, score // 2)})


def csat(em: Emitter, c: Customer, t: int, channel: str, interaction_id: str | None = None) -> None:
    """A one-question rating after a service interaction (by SMS for phone people, else e-mail)."""
    rng = em.rng
    score = max(1, min(5, c.rating // 2 + rng.randint(-1, 0)))
    fields = {"score": score}
    if interaction_id:
        fields["interaction_id"] = interaction_id
    ids = c.phone_ids(False) if channel == "sms" else c.email_ids(True)
    em.emit(t, "feedback.csat_given", channel, "compliment" if score >= 4 else "complaint", "company", "survey-tool",
            ids, fields)


def compliment(em: Emitter, c: Customer, t: int) -> None:
    """An unprompted thank-you e-mail, registered as a compliment."""
    msg = em.new_id("MSG")
    em.emit(t, "email.received", "email", "compliment", "customer", "helpdesk", c.email_ids(),
            {"message_id": msg, "mailbox": "support@shop.example", "subject": "Thank you!",
             "body_excerpt": "Just wanted to say the advice in the store was excellent.", "attachment_count": 0})
    em.emit(t + 2 * HOUR, "feedback.compliment_given", "email", "compliment", "customer", "helpdesk",
            c.email_ids(True), {"text": "The advice in the store was excellent.", "about": msg})


def welcome_call(em: Emitter, c: Customer, t: int) -> int:
    """"Anything else we can do for you?": a new customer's first-month call, with a golden question."""
    rng = em.rng
    call = touchpoints.start_call(em, c, t, "informing", "company", outbound=True, identified=True)
    golden_question(em, c, call.answered_at + MINUTE, "phone")
    if rng.random() < 0.4:
        em.emit(call.answered_at + 2 * MINUTE, "feedback.compliment_given", "phone", "compliment", "customer", "crm",
                c.phone_ids(True), {"text": "Nothing else, the sign-up was easy, thanks for asking."})
    call.t = call.answered_at + rng.randint(3, 8) * MINUTE
    return touchpoints.end_call(em, c, call, resolved=True)
