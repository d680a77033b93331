"""What the customer told us: golden questions, survey answers, form fields, consent, and how they feel.

Why every answer keeps all the times it was given: the company must never ask the
same question twice (domain.md section 3), so a second answer to the same golden
question or survey question, on any channel, is a ``repeat_question`` finding, and
a known field (e-mail, name, ...) typed into a second form is a
``repeated_request``. The current answer, consent or score is the latest in event
time. Sentiment is summed as an exact Decimal (rounded to 1e-6) so the mean is order-free.
Pure: no I/O.
"""

from __future__ import annotations

from bisect import insort
from decimal import Decimal
from sys import intern

from touchstream.projections.customer_360_events import on
from touchstream.projections.customer_360_state import (Answer, Attitude, Consent, Finding, Given, Mark, Profile,
                                                         Score)

SENTIMENT_STEP = Decimal("0.000001")


def _answer(profile: Profile, kind: str, key: str, record: dict, mark: Mark) -> None:
    channel = record["envelope"]["channel"]
    given = Given(mark, intern(channel))
    slot = f"{kind}:{key}"
    answer = profile.answers.get(slot)
    if answer is None:
        answer = profile.answers[slot] = Answer(kind, key, record["answer"], None, None, None, given)
    insort(answer.given, given)
    if given >= answer.latest:
        answer.answer, answer.latest = record["answer"], given
        answer.question, answer.score, answer.survey_id = record.get("question"), record.get("score"), \
            record.get("survey_id")
    if len(answer.given) > 1:
        evidence = [g.mark for g in answer.given]
        profile.findings[f"repeat_question:{slot}"] = Finding(
            "repeat_question", evidence[1].at, [m.event_id for m in evidence], slot,
            sorted({g.channel for g in answer.given}))


@on("feedback.golden_question_answered")
def _golden(profile: Profile, record: dict, mark: Mark) -> None:
    _answer(profile, "golden", record["question_key"], record, mark)


@on("feedback.survey_answered")
def _survey(profile: Profile, record: dict, mark: Mark) -> None:
    """Keyed by question_id across surveys: the same question in a second survey is still asked twice."""
    _answer(profile, "survey", record["question_id"], record, mark)


@on("web.form_submitted")
def _form(profile: Profile, record: dict, mark: Mark) -> None:
    answers = record.get("answers") or {}
    for name in profile.config.known_fields:
        if not answers.get(name):
            continue
        marks = profile.form_fields.setdefault(name, [])
        insort(marks, mark)
        if len(marks) > 1:
            profile.findings[f"repeated_request:{name}"] = Finding(
                "repeated_request", marks[1].at, [m.event_id for m in marks], name, ["web"])


@on("feedback.consent_given", "feedback.consent_withdrawn")
def _consent(profile: Profile, record: dict, mark: Mark) -> None:
    """Per channel (or "all") and purpose, the latest statement in event time holds."""
    env = record["envelope"]
    scope = record.get("for_channel") or "all"
    slot = f"{scope}:{record['purpose']}"
    current = profile.consents.get(slot)
    if current is not None and current.mark > mark:
        return
    status = "given" if env["event_type"] == "feedback.consent_given" else "withdrawn"
    profile.consents[slot] = Consent(scope, record["purpose"], status, mark, env["channel"],
                                     record.get("policy_version"))


def _latest(current: Score | None, record: dict, mark: Mark, value, ref: str | None) -> Score:
    if current is not None and current.mark > mark:
        return current
    return Score(Decimal(value), mark, record["envelope"]["channel"], ref)


@on("feedback.csat_given")
def _csat(profile: Profile, record: dict, mark: Mark) -> None:
    att = profile.attitude
    att.csat = _latest(att.csat, record, mark, record["score"], record.get("case_id") or record.get("interaction_id"))


@on("feedback.nps_given")
def _nps(profile: Profile, record: dict, mark: Mark) -> None:
    att = profile.attitude
    att.nps = _latest(att.nps, record, mark, record["score"], record.get("survey_id"))


@on("complaint.satisfaction_given")
def _complaint_rating(profile: Profile, record: dict, mark: Mark) -> None:
    att = profile.attitude
    att.complaint_satisfaction = _latest(att.complaint_satisfaction, record, mark, record["score"],
                                         record.get("case_id"))


@on("social.review_posted")
def _review(profile: Profile, record: dict, mark: Mark) -> None:
    att = profile.attitude
    att.review = _latest(att.review, record, mark, record["rating"], record.get("platform"))


@on("social.comment_posted")
def _comment(profile: Profile, record: dict, mark: Mark) -> None:
    """Only comments a classifier scored. Rounded to 1e-6 as a Decimal: sums stay exact, so order-free."""
    sentiment = record.get("sentiment")
    if sentiment is None or sentiment != sentiment:  # absent or NaN
        return
    att = profile.attitude
    value = Decimal(repr(max(-1.0, min(1.0, float(sentiment))))).quantize(SENTIMENT_STEP)
    att.sentiment_count += 1
    att.sentiment_total += value
    att.sentiment = _latest(att.sentiment, record, mark, value, record.get("platform"))


@on("feedback.compliment_given")
def _compliment(profile: Profile, record: dict, mark: Mark) -> None:
    profile.attitude.compliments += 1


# -- derived -------------------------------------------------------------------------------
def _score(score: Score | None) -> dict | None:
    if score is None:
        return None
    value = int(score.value) if score.value == score.value.to_integral_value() else float(score.value)
    return {"value": value, "at": score.mark.at, "channel": score.channel, "ref": score.ref}


def attitude_view(att: Attitude) -> dict:
    mean = att.sentiment_total / att.sentiment_count if att.sentiment_count else None
    return {"csat": _score(att.csat), "nps": _score(att.nps), "complaint_satisfaction": _score(att.complaint_satisfaction),
            "review": _score(att.review), "sentiment": {
                "last": _score(att.sentiment), "count": att.sentiment_count,
                "mean": None if mean is None else round(float(mean), 4)},
            "compliments": att.compliments}


def answers_view(profile: Profile) -> dict:
    answers = [{"kind": a.kind, "key": a.key, "answer": a.answer, "question": a.question, "score": a.score,
                "survey_id": a.survey_id, "at": a.latest.mark.at, "channel": a.latest.channel,
                "times_given": len(a.given)} for _, a in sorted(profile.answers.items())]
    consents = [{"for_channel": c.for_channel, "purpose": c.purpose, "status": c.status,
                 "at": c.mark.at, "via_channel": c.via_channel, "policy_version": c.policy_version}
                for _, c in sorted(profile.consents.items())]
    return {"answers": answers, "consents": consents}
