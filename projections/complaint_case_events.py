"""How the complaint fold reads one event: does it belong to the case, and which fact does it add.

Why these membership rules: complaint.* events name their case (``case_id``); every
other event joins the case through ``envelope.correlation_id`` (the call, the
e-mail, the chat and the letter about the complaint) or a ``case_id`` field of its
own (a callback, a goodwill credit, a CSAT rating). So later contacts on other
channels attach to the case that the first channel opened.

Why a registry keyed by event_type (``@on("complaint.resolved")``): events arrive
as Avro-shaped dicts, not classes, so this is the dict form of singledispatch, as
in ``customer_360_events``. A type nobody registered still counts: a touchpoint
event becomes a touch of its contact (keyed like the customer-360: a call by
call_id, a mail by message_id, a chat by conversation_id), anything else a plain
fact, so new event types never break the fold. Pure: no I/O.
"""

from __future__ import annotations

from bisect import insort
from typing import Callable

from touchstream.projections.complaint_case_state import Attempt, Case, Fact, Rating, Step, Touch
from touchstream.projections.customer_360_events import contact_key, direction
from touchstream.projections.customer_360_state import Mark

Handler = Callable[[Case, dict, Mark], bool]      # returns True when the state machine must re-derive
HANDLERS: dict[str, Handler] = {}

# Fields each step keeps (no PII: description, note and reason stay in the raw event).
STEP_FIELDS = {
    "opened": ("product", "category", "cause", "priority", "assigned_team", "about_channel", "order_id"),
    "acknowledged": ("agent_id", "team"),
    "updated": ("status", "agent_id", "effort_minutes"),
    "escalated": ("level", "reason", "to_team"),
    "callback_promised": ("callback_id", "callback_channel", "agent_id"),
    "reopened": (),
    "resolved": ("resolution_code", "resolved_on_first_contact", "cause", "agent_id"),
    "closed": ("reason",),
}
# Touchpoint events by which the company reaches the customer (besides an agent's chat message and a
# completed call: ``answers``).
RESPONSE_TYPES = frozenset({"email.sent", "sms.sent", "postal.mail_sent", "social.reply_sent", "document.sent",
                            "phone.call_answered", "meeting.scheduled", "meeting.held", "store.visited"})


def on(*event_types: str) -> Callable[[Handler], Handler]:
    """Register the reducer of event types: ``handler(case, record, mark) -> re-derive?``."""
    def register(handler: Handler) -> Handler:
        for event_type in event_types:
            HANDLERS[event_type] = handler
        return handler
    return register


def mark_of(record: dict) -> Mark:
    env = record["envelope"]
    return Mark(env["occurred_at"], env["event_id"])


def belongs(case_id: str, record: dict) -> bool:
    """complaint.* events by case_id; any other event by its case_id field or envelope.correlation_id."""
    env = record["envelope"]
    if env["event_type"].startswith("complaint."):
        return record.get("case_id") == case_id
    return record.get("case_id") == case_id or env.get("correlation_id") == case_id


def fold_event(case: Case, record: dict, mark: Mark) -> bool:
    """Add the event's fact to the case; True when the machine must re-derive."""
    event_type = record["envelope"]["event_type"]
    handler = HANDLERS.get(event_type)
    if handler is not None:
        return handler(case, record, mark)
    key = None if event_type.startswith("complaint.") else contact_key(event_type, record)
    if key is None:
        insort(case.facts, Fact(mark, event_type, record["envelope"]["channel"]))
        return False
    insort(case.contacts.setdefault(key, []), touch_of(event_type, record, mark))
    return False


@on(*(f"complaint.{kind}" for kind in STEP_FIELDS))
def _step(case: Case, record: dict, mark: Mark) -> bool:
    env = record["envelope"]
    kind = env["event_type"].split(".", 1)[1]
    info = {name: record.get(name) for name in STEP_FIELDS[kind]}
    info["customer_hint"] = (env.get("identity") or {}).get("customer_id")
    insort(case.steps, Step(mark, kind, env["channel"], env["initiated_by"], info, record.get("promised_by")))
    return True


@on("phone.callback_made")
def _callback(case: Case, record: dict, mark: Mark) -> bool:
    insort(case.attempts, Attempt(mark, record.get("callback_id"), bool(record.get("reached")),
                                  record["envelope"]["channel"]))
    return True


@on("complaint.satisfaction_given", "feedback.csat_given")
def _rating(case: Case, record: dict, mark: Mark) -> bool:
    kind = "csat" if record["envelope"]["event_type"] == "feedback.csat_given" else "complaint_satisfaction"
    insort(case.ratings, Rating(mark, kind, int(record["score"]), record["envelope"]["channel"]))
    return False


def answers(event_type: str, record: dict) -> bool:
    """Did the company reach the customer with this touch? The one rule of the first response, the next
    response and every response clock: a message the company sent, an agent's chat message, a meeting
    or visit, and a completed contact on any channel, so a call that ended ``completed`` with talk time
    (a call back the PBX logged only by its end) answers as an answered call does."""
    if event_type in RESPONSE_TYPES or agent_message(event_type, record):
        return True
    return event_type == "phone.call_ended" and record.get("outcome") == "completed" \
        and (record.get("talk_seconds") or 0) > 0


def agent_message(event_type: str, record: dict) -> bool:
    return event_type == "web.chat_message_sent" and record.get("sender") == "agent"


def touch_of(event_type: str, record: dict, mark: Mark) -> Touch:
    env = record["envelope"]
    wait = record.get("response_seconds") if agent_message(event_type, record) else record.get("wait_seconds")
    span = record.get("duration_seconds")
    if event_type == "meeting.held" and record.get("duration_minutes") is not None:
        span = record["duration_minutes"] * 60
    return Touch(mark, event_type, env["channel"], direction(event_type, record), env["content"],
                 answers(event_type, record), wait, record.get("talk_seconds"), span)
