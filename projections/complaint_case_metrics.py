"""What a complaint case measures: its contacts, responses, callbacks and the efficiency figures.

Why derived on demand from the facts: every figure (wait to reach service, time to
first response, handle time, phone tag and its extra contacts, resolution time) is
a function of the sorted facts, so it is the same for any arrival order and a late
event corrects it. ``as_of`` cuts the facts at an event time: the SLA asks "what
had happened by then", never "what had arrived by then".

Definitions (domain.md section 5):

- a *contact* is the touches of one contact key (a call, a chat conversation, one
  e-mail, one letter, a visit, a meeting); it starts at its first touch and ends at
  its last touch or at the end of the duration a visit or meeting reports;
- its *direction* is that of its first touch: inbound contacts are the customer's;
- a *response* is the company reaching the customer: an acknowledgement, a
  callback promise, a resolution, a reply sent, a call answered, an agent's chat
  message, a visit or meeting held, a call completed with talk time, a callback that reached
  the customer (``complaint_case_events.answers`` decides for touches: one rule for every clock);
- *handle time* is phone talk time, visit and meeting duration, chat conversation
  length, plus the effort minutes of complaint.updated (help-desk effort tracking);
- *phone tag*: a case with a callback promise; its cost is the contacts that
  started after the first promise until the case was finished. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from touchstream.projections.complaint_case_machine import Transition, open_periods, replay
from touchstream.projections.complaint_case_state import Case, Step
from touchstream.projections.customer_360_state import Mark

RESPONSE_STEPS = frozenset({"acknowledged", "callback_promised", "resolved"})
FINISHING = frozenset({"resolved", "closed"})


class Contact(NamedTuple):
    key: str
    channel: str
    direction: str
    content: str
    started: Mark
    ended_at: datetime
    wait_seconds: int | None
    talk_seconds: int | None
    handle_seconds: int
    touches: int


class Callback(NamedTuple):
    callback_id: str
    promised: Mark
    due: datetime | None
    channel: str | None
    attempts: int
    kept_at: datetime | None
    kept_by: str | None          # event_id of the phone.callback_made that reached the customer
    status: str                  # kept, kept_late, missed, pending


def _cut(items: list, as_of: datetime | None) -> list:
    return items if as_of is None else [i for i in items if i.mark.at <= as_of]


def steps_until(case: Case, as_of: datetime | None = None) -> list[Step]:
    return _cut(case.steps, as_of)


def transitions(case: Case, as_of: datetime | None = None) -> list[Transition]:
    return replay(_cut(case.steps, as_of), _cut(case.attempts, as_of)).transitions


def opening(case: Case) -> Step | None:
    """The first complaint.opened in event time: origin channel, product, category, priority."""
    return next((s for s in case.steps if s.kind == "opened"), None)


def start_of(case: Case, as_of: datetime | None = None) -> Mark | None:
    """When the case opened: its complaint.opened, else (an implicit open) its earliest step."""
    steps = steps_until(case, as_of)
    first = next((s for s in steps if s.kind == "opened"), None) or (steps[0] if steps else None)
    return first.mark if first else None


def contacts_of(case: Case, as_of: datetime | None = None) -> list[Contact]:
    rows = []
    for key, touches in case.contacts.items():
        touches = _cut(touches, as_of)
        if not touches:
            continue
        first, last = touches[0], touches[-1]
        ended = max(t.mark.at + timedelta(seconds=t.span_seconds or 0) for t in touches)
        wait = next((t.wait_seconds for t in touches if t.wait_seconds is not None), None)
        talk = max((t.talk_seconds for t in touches if t.talk_seconds is not None), default=None)
        spans = [t.span_seconds for t in touches if t.span_seconds is not None]
        if talk is not None:
            handle = talk
        elif spans:
            handle = max(spans)
        else:
            chat = first.event_type == "web.chat_message_sent"
            handle = int((last.mark.at - first.mark.at).total_seconds()) if chat else 0
        rows.append(Contact(key, first.channel, first.direction, first.content, first.mark, ended, wait, talk,
                            handle, len(touches)))
    return sorted(rows, key=lambda c: c.started)


def customer_contacts(contacts: list[Contact]) -> list[Contact]:
    """Contacts the customer started about the matter (a compliment afterwards is not a repeat contact)."""
    return [c for c in contacts if c.direction == "inbound" and c.content != "compliment"]


def responses(case: Case, as_of: datetime | None = None) -> list[Mark]:
    """Every moment the company reached the customer, sorted."""
    marks = [s.mark for s in steps_until(case, as_of) if s.kind in RESPONSE_STEPS]
    marks += [a.mark for a in _cut(case.attempts, as_of) if a.reached]
    marks += [t.mark for touches in case.contacts.values() for t in _cut(touches, as_of) if t.response]
    return sorted(marks)


def first_response(case: Case, as_of: datetime | None = None) -> Mark | None:
    """The first response (its time no earlier than the open: a customer already being served, as in the call
    in which the complaint was logged or a public reply before the case was opened, got it at the open)."""
    start, marks = start_of(case, as_of), responses(case, as_of)
    if start is None or not marks:
        return None
    return Mark(max(start.at, marks[0].at), marks[0].event_id)


def accepted(trans: list[Transition], kinds: frozenset[str] | set[str]) -> list[Transition]:
    """Steps of these kinds the machine took (an anomalous second resolution does not count)."""
    return [t for t in trans if t.kind in kinds and (t.anomaly is None or t.anomaly.endswith("_before_open"))]


def callbacks(case: Case, as_of: datetime | None = None, judge_at: datetime | None = None) -> list[Callback]:
    """Every promise with its attempts and status (``callback_status``).

    ``as_of`` cuts the facts at an event time (the SLA: what had happened by then) and judges there;
    without it every fact counts and promises are judged at the later of ``judge_at`` (the sink's SLA
    watermark) and the case's latest event, since a fold has no clock of its own."""
    attempts = _cut(case.attempts, as_of)
    steps = steps_until(case, as_of)
    facts = [s.mark.at for s in steps] + [a.mark.at for a in attempts]
    facts += [t.mark.at for touches in case.contacts.values() for t in _cut(touches, as_of)]
    horizon = as_of or max(facts + ([judge_at] if judge_at else []), default=None)
    finishes = [end.mark for _, end in open_periods(transitions(case, as_of)) if end is not None]
    rows = []
    for step in (s for s in steps if s.kind == "callback_promised"):
        callback_id = str(step.info.get("callback_id"))
        mine = [a for a in attempts if a.callback_id == callback_id]
        kept = next((a.mark for a in mine if a.reached), None)
        finish = next((f for f in finishes if f > step.mark), None)
        rows.append(Callback(callback_id, step.mark, step.due, step.info.get("callback_channel"), len(mine),
                             kept and kept.at, kept and kept.event_id,
                             callback_status(step.due, kept, finish, horizon)))
    return rows


def callback_status(due: datetime | None, kept: Mark | None, finish: Mark | None, horizon: datetime | None) -> str:
    """kept / kept_late: a phone.callback_made naming the promise reached the customer by / after the due
    time (an attempt that reached nobody keeps nothing); missed: none had by the time event time reached the
    due time; pending: not due yet, or the case finished before the due time (as the SLA callback clock,
    which that finish meets), so a promise is never judged at an instant no SLA agenda rewrites it at."""
    if kept is not None:
        return "kept" if due is None or kept.at <= due else "kept_late"
    if due is None or horizon is None or (finish is not None and finish.at <= due):
        return "pending"
    return "missed" if horizon >= due else "pending"


def case_metrics(case: Case, as_of: datetime | None = None) -> dict:
    """The case's efficiency figures, JSON-ready (seconds; None where the case has no such fact);
    ``as_of``: the event time callbacks are judged at (``callbacks``' judge_at)."""
    start = start_of(case)
    contacts = contacts_of(case)
    trans = transitions(case)
    resolutions = accepted(trans, {"resolved"})
    finished = accepted(trans, FINISHING)
    promises = callbacks(case, judge_at=as_of)
    waits = [c.wait_seconds for c in customer_contacts(contacts) if c.wait_seconds is not None]
    effort = sum(s.info.get("effort_minutes") or 0 for s in case.steps if s.kind == "updated")
    first = first_response(case)
    extra = 0
    if promises:
        until = finished[-1].mark if finished and finished[-1].mark > promises[0].promised else None
        extra = sum(1 for c in contacts if c.started > promises[0].promised and (until is None or c.started <= until))
    return {
        "contacts": len(contacts), "customer_contacts": len(customer_contacts(contacts)),
        "wait_seconds": waits[0] if waits else None, "wait_seconds_total": sum(waits) if waits else None,
        "first_response_seconds": _seconds(start, first and first.at),
        "handle_seconds": sum(c.handle_seconds for c in contacts) + effort * 60, "effort_minutes": effort,
        "resolution_seconds": _seconds(start, resolutions[0].mark.at if resolutions else None),
        "final_resolution_seconds": _seconds(start, resolutions[-1].mark.at if resolutions else None),
        "reopens": case.reopens, "escalations": sum(1 for s in case.steps if s.kind == "escalated"),
        "callbacks_promised": len(promises), "phone_tag": bool(promises), "extra_contacts": extra,
        **{f"callbacks_{status}": sum(1 for p in promises if p.status == status)
           for status in ("kept", "kept_late", "missed", "pending")},
    }


def _seconds(start: Mark | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start.at).total_seconds())
