"""SLA clocks of a complaint case, and the derived events (warning, breach, escalation) they make due.

Why clocks are a function of (case facts, policy, as_of) and nothing else: they
are computed from event time only, over the facts that had happened by ``as_of``.
A call logged late is folded into the case like any event, and the clock it
meets is then exactly the clock computed had the call arrived on time: a late
event corrects the clock instead of being lost. ``as_of`` only decides whether an
unmet clock is running, in warning or breached.

The clocks (``Clock.name``; kind before the colon):

- ``first_response``: from the open; met by the first response (acknowledgement,
  callback promise, resolution, reply, answered or completed call, ... one rule,
  ``complaint_case_events.answers``, as for every clock below), a response before the
  open counting at the open;
- ``next_response:<event_id>``: each customer contact while the case is open,
  after the open; met by the next response;
- ``periodic_update:<event_id>``: while open, from the open and then from each
  update (a response or a complaint.updated); met by the next update;
- ``resolution`` (and ``resolution:<reopen event_id>`` per reopen): met by the
  resolution or closure that ends the open period;
- ``callback:<callback_id>``: due at the promised deadline (wall clock), met by a
  phone.callback_made that reached the customer.

A case that finishes (resolved or closed) stops its running clocks: they count as
met by that step unless their due time had already passed. Targets come from the
policy version pinned at the open, per priority and origin channel, in working time
under the policy's calendar.

``due_events`` turns warnings and breaches into plain-JSON events
(``complaint.sla_warning``, ``complaint.sla_breached``, and ``complaint.escalated``
with reason ``sla_breach`` for the clock kinds the policy escalates). Their time
is the warning or due instant, never the wall clock, and their id is a hash of
case, clock, kind, due time and policy version, so a replay or a re-fired timer
gives the same ids and consumers ignore repeats. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import NamedTuple

from touchstream.projections.complaint_case_machine import open_periods
from touchstream.projections.complaint_case_metrics import (
    callbacks, contacts_of, customer_contacts, first_response, opening, responses, start_of, steps_until,
    transitions,
)
from touchstream.projections.complaint_case_state import SLA_ID_PREFIX, Case
from touchstream.projections.complaint_sla_calendar import add_working
from touchstream.projections.complaint_sla_policy import (  # noqa: F401  (re-exported)
    Policy, PolicyError, Target, load_policies, parse_policies, policy_for,
)
from touchstream.projections.customer_360_state import Mark

__all__ = ["BREACHED", "MET", "RUNNING", "WARNING", "Clock", "Policy", "PolicyError", "Target", "clocks",
           "due_events", "event_id", "load_policies", "parse_policies", "pin_policy", "policy_for", "withdrawal"]

RUNNING, MET, WARNING, BREACHED = "running", "met", "warning", "breached"
SOURCE = "touchstream-sla"


class Clock(NamedTuple):
    name: str
    kind: str
    started_at: datetime
    due_at: datetime
    warning_at: datetime
    met_at: datetime | None
    state: str                   # running, met, warning, breached
    breached_at: datetime | None
    started_by: str              # event_id that started the clock
    met_by: str | None = None    # event_id that met (or stopped) it


def pin_policy(case: Case, policies: tuple[Policy, ...]) -> Policy | None:
    """The policy of the case: the pinned version, else the one in force at its complaint.opened (then pinned)."""
    if case.policy_version is not None:
        pinned = next((p for p in policies if p.version == case.policy_version), None)
        if pinned is not None:
            return pinned
    opened = opening(case)
    policy = policy_for(policies, opened.mark.at) if opened else None
    if policy is not None:
        case.policy_version = policy.version
    return policy


def clocks(case: Case, policy: Policy, as_of: datetime) -> list[Clock]:
    """Every SLA clock of the case as of an event time, in start order."""
    start = start_of(case, as_of)
    if start is None:
        return []
    opened = opening(case)
    info = opened.info if opened and opened.mark.at <= as_of else {}
    channel = opened.channel if info else steps_until(case, as_of)[0].channel
    priority = str(info.get("priority") or "unknown")
    fraction = policy.warning_fraction
    periods = open_periods(transitions(case, as_of))
    finishes = [end.mark for _, end in periods if end is not None]
    resp = responses(case, as_of)
    updates = sorted(resp + [s.mark for s in steps_until(case, as_of) if s.kind == "updated"])

    def clock(name: str, target: Target, began: Mark, met: Mark | None) -> Clock:
        return _clock(name, began, add_working(target.calendar, began.at, target.span),
                      add_working(target.calendar, began.at, target.span * fraction), met, as_of)

    def until_finish(began: Mark, met: Mark | None) -> Mark | None:
        stop = next((f for f in finishes if f > began), None)
        return min(m for m in (met, stop) if m is not None) if (met or stop) else None

    out = [clock("first_response", policy.target("first_response", priority, channel), start,
                 until_finish(start, first_response(case, as_of)))]
    for index, (begin, end) in enumerate(periods):
        began = start if index == 0 else begin.mark
        name = "resolution" if index == 0 else f"resolution:{began.event_id}"
        out.append(clock(name, policy.target("resolution", priority, channel), began, end.mark if end else None))
        anchor: Mark | None = began
        while anchor is not None and (end is None or anchor < end.mark):
            nxt = next((u for u in updates if u > anchor and (end is None or u <= end.mark)), None)
            out.append(clock(f"periodic_update:{anchor.event_id}", policy.target("periodic_update", priority, channel),
                             anchor, nxt or (end.mark if end else None)))
            anchor = nxt
        for contact in customer_contacts(contacts_of(case, as_of)):
            if contact.started > began and (end is None or contact.started < end.mark):
                met = next((r for r in resp if r >= contact.started), None)   # its own first touch may answer
                out.append(clock(f"next_response:{contact.started.event_id}",
                                 policy.target("next_response", priority, channel), contact.started,
                                 until_finish(contact.started, met)))
    for promise in callbacks(case, as_of):
        if promise.due is None:
            continue
        kept = Mark(promise.kept_at, promise.kept_by) if promise.kept_by else None
        span = max(promise.due - promise.promised.at, timedelta(0))
        out.append(_clock(f"callback:{promise.callback_id}", promise.promised, promise.due,
                          promise.promised.at + span * fraction, until_finish(promise.promised, kept), as_of))
    return sorted(out, key=lambda c: (c.started_at, c.name))


def _clock(name: str, began: Mark, due: datetime, warning: datetime, met: Mark | None, as_of: datetime) -> Clock:
    kind = name.split(":", 1)[0]
    if met is not None:
        late = met.at > due
        return Clock(name, kind, began.at, due, warning, met.at, BREACHED if late else MET, due if late else None,
                     began.event_id, met.event_id)
    state = BREACHED if as_of >= due else WARNING if as_of >= warning else RUNNING
    return Clock(name, kind, began.at, due, warning, None, state, due if state == BREACHED else None, began.event_id)


def due_events(case: Case, policy: Policy, as_of: datetime, identity: dict | None = None) -> list[dict]:
    """The derived events due by ``as_of``: plain JSON, deterministic ids, in event-time order."""
    if not case.steps:
        return []
    opened = opening(case) or case.steps[0]
    base = {"channel": opened.channel, "initiated_by": opened.initiated_by,
            "identity": identity if identity is not None else _identity(case)}
    priority = opened.info.get("priority")
    events, escalations = [], []
    for c in clocks(case, policy, as_of):
        body = {"case_id": case.case_id, "clock": c.name, "clock_kind": c.kind, "started_at": _iso(c.started_at),
                "due_at": _iso(c.due_at), "policy_version": policy.version, "priority": priority}
        warned = c.warning_at < c.due_at and c.warning_at <= as_of and (c.met_at is None or c.met_at > c.warning_at)
        if warned:
            events.append(_event(case, policy, c, "complaint.sla_warning", c.warning_at, base,
                                 {**body, "warning_at": _iso(c.warning_at)}))
        if c.state == BREACHED:
            events.append(_event(case, policy, c, "complaint.sla_breached", c.due_at, base, body))
            if c.kind in policy.escalate_on_breach:
                escalations.append(c)
    level = 0
    for c in sorted(escalations, key=lambda c: (c.due_at, c.name)):
        human = [s.info.get("level") for s in case.steps if s.kind == "escalated" and s.mark.at <= c.due_at
                 and not s.mark.event_id.startswith(SLA_ID_PREFIX)]
        level = max([level] + [v for v in human if isinstance(v, int)]) + 1
        events.append(_event(case, policy, c, "complaint.escalated", c.due_at, base,
                             {"case_id": case.case_id, "level": level, "reason": "sla_breach", "to_team": None}))
    return sorted(events, key=lambda e: (e["envelope"]["occurred_at"], e["envelope"]["event_id"]))


def event_id(case_id: str, clock: str, event_type: str, due_at: datetime, version: str) -> str:
    text = "|".join((case_id, clock, event_type, _iso(due_at), version))
    return SLA_ID_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:32]


def _event(case: Case, policy: Policy, c: Clock, event_type: str, at: datetime, base: dict, body: dict) -> dict:
    envelope = {"event_id": event_id(case.case_id, c.name, event_type, c.due_at, policy.version),
                "event_type": event_type, "occurred_at": _iso(at), "recorded_at": _iso(at),
                "channel": base["channel"], "content": "complaint", "initiated_by": base["initiated_by"],
                "source": SOURCE, "identity": base["identity"], "correlation_id": case.case_id,
                "causation_id": c.started_by}
    return {"envelope": envelope, **body}


def _identity(case: Case) -> dict:
    hint = case.customer_id or next((s.info["customer_hint"] for s in case.steps if s.info.get("customer_hint")),
                                    None)
    return {"customer_id": hint} if hint else {}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def withdrawal(case: Case, withdrawn: dict, identity: dict | None = None) -> dict:
    """``complaint.sla_withdrawn`` for an SLA event already published that a later-arriving event made undue.

    ``withdrawn`` holds the published event's ``event_id``, ``event_type``, ``clock`` and ``occurred_at``
    (ISO or datetime). The id hashes the withdrawn id, so a re-run withdraws with the same id.
    """
    opened = opening(case) or (case.steps[0] if case.steps else None)
    at = withdrawn["occurred_at"]
    at = _iso(at) if isinstance(at, datetime) else at
    clock = withdrawn.get("clock")
    envelope = {"event_id": SLA_ID_PREFIX + hashlib.sha256(f"withdrawn|{withdrawn['event_id']}".encode())
                .hexdigest()[:32],
                "event_type": "complaint.sla_withdrawn", "occurred_at": at, "recorded_at": at,
                "channel": opened.channel if opened else "web", "content": "complaint",
                "initiated_by": opened.initiated_by if opened else "company", "source": SOURCE,
                "identity": identity if identity is not None else _identity(case),
                "correlation_id": case.case_id, "causation_id": withdrawn["event_id"]}
    return {"envelope": envelope, "case_id": case.case_id, "clock": clock,
            "clock_kind": clock.split(":", 1)[0] if clock else None, "withdraws": withdrawn["event_id"]}
