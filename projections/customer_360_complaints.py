"""Complaint cases of the customer-360, from complaint.* events (and callbacks) threaded by case_id.

Why each case keeps its steps sorted by event time and re-derives its state from
them: complaint systems, telephony and the help desk publish with different
delays, so a "resolved" may arrive before the "escalated" that preceded it; the
state is the last state-changing step in event time, never the last one to arrive.
The open intervals feed the touchmap's conflict finding (promotion while a
complaint is open). Pure: no I/O.
"""

from __future__ import annotations

from bisect import insort
from datetime import datetime
from sys import intern

from touchstream.projections.customer_360_events import on
from touchstream.projections.customer_360_state import Case, CaseStep, Mark, Profile

STATE_STEPS = frozenset({"opened", "acknowledged", "updated", "escalated", "callback_promised", "reopened",
                         "resolved", "closed"})
CLOSING_STEPS = frozenset({"resolved", "closed"})
CASE_EVENTS = ("complaint.opened", "complaint.acknowledged", "complaint.updated", "complaint.escalated",
               "complaint.callback_promised", "complaint.reopened", "complaint.resolved", "complaint.closed",
               "complaint.satisfaction_given")


@on(*CASE_EVENTS, "phone.callback_made")
def _case_step(profile: Profile, record: dict, mark: Mark) -> None:
    case_id = record.get("case_id")
    if not case_id:
        return
    env = record["envelope"]
    case = profile.complaints.get(case_id)
    if case is None:
        case = profile.complaints[case_id] = Case(case_id)
    step = CaseStep(mark, intern(env["event_type"].split(".", 1)[1]), intern(env["channel"]))
    insort(case.steps, step)
    if step.step == "opened" and _first_opened(case) == step:
        case.category, case.priority, case.order_id = record.get("category"), record.get("priority"), \
            record.get("order_id")
    _derive_state(case)


def _first_opened(case: Case) -> CaseStep | None:
    return next((s for s in case.steps if s.step == "opened"), None)


def _derive_state(case: Case) -> None:
    last = next((s for s in reversed(case.steps) if s.step in STATE_STEPS), None)
    case.state = last.step if last else None
    case.open = last is not None and last.step not in CLOSING_STEPS


def open_intervals(case: Case) -> list[tuple[Mark, Mark | None]]:
    """[start, end) spans in event time when the case was open; end None while it still is."""
    spans: list[tuple[Mark, Mark | None]] = []
    start = None
    for step in case.steps:
        if step.step not in STATE_STEPS:
            continue
        if step.step in CLOSING_STEPS:
            if start is not None:
                spans.append((start, step.mark))
                start = None
        elif start is None:
            start = step.mark
    if start is not None:
        spans.append((start, None))
    return spans


def complaints_view(cases: dict[str, Case]) -> dict:
    ordered = sorted(cases.values(), key=lambda c: (c.steps[0].mark, c.case_id))
    rows = [{"case_id": c.case_id, "state": c.state, "open": c.open, "opened_at": c.steps[0].mark.at,
             "state_at": _state_at(c), "channel": c.steps[0].channel, "category": c.category,
             "priority": c.priority, "order_id": c.order_id, "steps": len(c.steps)} for c in ordered]
    return {"open_count": sum(1 for c in ordered if c.open), "total": len(rows),
            "last": rows[-1] if rows else None, "cases": rows}


def _state_at(case: Case) -> datetime | None:
    last = next((s for s in reversed(case.steps) if s.step in STATE_STEPS), None)
    return last.mark.at if last else None
