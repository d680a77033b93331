"""The complaint state machine, replayed over a case's facts in event-time order.

Why a replay rather than a mutable status: the facts are kept sorted by (occurred_at,
event_id), so the machine sees them in the order they happened, not the order they
arrived; a late ``acknowledged`` that happened before ``resolved`` is then an
ordinary step, and the result is the same for any arrival order. Cases hold a
dozen steps, so replaying after each change is cheap.

Why anomalies instead of exceptions: the machine judges what the channel systems
report, and they can be wrong (a step logged against a closed case, a clock that
is off). An impossible step is recorded on the case with its event id, the state
it met and a reason, and leaves the state as it was; the case never crashes and
nothing is dropped silently. A step before any ``opened`` is one anomaly
(``<kind>_before_open``) and then counts as an implicit open, so one missing
opening does not cascade into a string of anomalies.

    state \\ step      opened  acknowledged  updated  callback_promised  escalated  resolved  closed  reopened
    new               opened  [1]           [1]      [1]                [1]        [1]       [1]     [1]
    opened            [2]     acknowledged  in_prog  callback_promised  =, level   resolved  closed  X
    acknowledged      [2]     =             in_prog  callback_promised  =, level   resolved  closed  X
    in_progress       [2]     =             =        callback_promised  =, level   resolved  closed  X
    callback_promised [2]     =             in_prog  =                  =, level   resolved  closed  X
    resolved          [2]     X             =        X                  X          X         closed  in_prog (+1 reopen)
    closed            [2]     X             =        X                  X          X         X       in_prog (+1 reopen)

    =  no change;  X  anomaly ``<kind>_when_<state>``, no change;  [2] ``opened_twice`` unless the case was
    only implicitly open;  [1] ``<kind>_before_open``, then the step as from ``opened``.
    phone.callback_made (reached) takes callback_promised back to in_progress once no promise is pending;
    it is never an anomaly. complaint.updated on a finished case is a note, not a transition.
"""

from __future__ import annotations

import heapq
from typing import Iterable, NamedTuple

from touchstream.projections.complaint_case_state import (
    ACKNOWLEDGED, CALLBACK_PROMISED, CLOSED, IN_PROGRESS, NEW, OPEN_STATES, OPENED, RESOLVED, Anomaly, Attempt,
    Case, Step,
)
from touchstream.projections.customer_360_state import Mark

SAME = "="
_OPEN = dict.fromkeys(OPEN_STATES, SAME)
TABLE: dict[str, dict[str, str]] = {
    "opened": {NEW: OPENED},
    "acknowledged": {**_OPEN, OPENED: ACKNOWLEDGED},
    "updated": {**dict.fromkeys(OPEN_STATES, IN_PROGRESS), RESOLVED: SAME, CLOSED: SAME},
    "callback_promised": dict.fromkeys(OPEN_STATES, CALLBACK_PROMISED),
    "escalated": _OPEN,
    "resolved": dict.fromkeys(OPEN_STATES, RESOLVED),
    "closed": {**dict.fromkeys(OPEN_STATES, CLOSED), RESOLVED: CLOSED},
    "reopened": {RESOLVED: IN_PROGRESS, CLOSED: IN_PROGRESS},
}
STEP_KINDS = tuple(TABLE)


class Transition(NamedTuple):
    """One fact as the machine took it: the state before and after, and the anomaly if it could not."""

    mark: Mark
    kind: str                    # a step kind, or callback_made
    before: str
    after: str
    anomaly: str | None


class Replay(NamedTuple):
    state: str
    level: int
    max_level: int
    reopens: int
    anomalies: list[Anomaly]
    transitions: list[Transition]


def replay(steps: Iterable[Step], attempts: Iterable[Attempt] = ()) -> Replay:
    """Run the machine over sorted steps and callback attempts (both sorted by mark)."""
    state, level, max_level, reopens = NEW, 0, 0, 0
    explicit_open = False
    pending: set[str] = set()
    kept: set[str] = set()
    anomalies: list[Anomaly] = []
    transitions: list[Transition] = []
    for fact in heapq.merge(steps, attempts, key=lambda f: f.mark):
        before = state
        if isinstance(fact, Attempt):
            state = _callback(fact, state, pending, kept)
            transitions.append(Transition(fact.mark, "callback_made", before, state, None))
            continue
        kind, anomaly, start = fact.kind, None, state
        if kind == "opened" and state != NEW:
            anomaly = "opened_twice" if explicit_open else None   # else: the case was only implicitly open
            target = SAME
        else:
            if state == NEW and kind != "opened":
                anomaly, start = f"{kind}_before_open", OPENED
            target = TABLE[kind].get(start)
        if target is None:
            anomaly, state = anomaly or f"{kind}_when_{state}", start
        elif anomaly != "opened_twice":
            state = start if target == SAME else target
            level, reopens = _effects(fact, level, reopens, pending, kept)
            max_level = max(max_level, level)
        explicit_open = explicit_open or kind == "opened"
        if anomaly:
            anomalies.append(Anomaly(fact.mark, f"complaint.{kind}", before, anomaly))
        transitions.append(Transition(fact.mark, kind, before, state, anomaly))
    return Replay(state, level, max_level, reopens, anomalies, transitions)


def _effects(step: Step, level: int, reopens: int, pending: set[str], kept: set[str]) -> tuple[int, int]:
    """What an accepted step changes besides the state: escalation level, reopen count, pending promises."""
    if step.kind == "escalated" and isinstance(step.info.get("level"), int):
        level = step.info["level"]
    elif step.kind == "reopened":
        reopens += 1
    elif step.kind == "callback_promised":
        callback_id = step.info.get("callback_id")
        if callback_id not in kept:
            pending.add(str(callback_id))
    return level, reopens


def _callback(attempt: Attempt, state: str, pending: set[str], kept: set[str]) -> str:
    if not attempt.reached:
        return state
    if attempt.callback_id in pending:
        pending.discard(attempt.callback_id)
    elif attempt.callback_id is None and pending:
        pending.discard(min(pending))      # a callback that names no promise keeps the oldest-named one
    if attempt.callback_id is not None:
        kept.add(attempt.callback_id)
    return IN_PROGRESS if state == CALLBACK_PROMISED and not pending else state


def derive(case: Case) -> Case:
    """Re-derive state, level, reopen count and anomalies of the case from its facts (in place)."""
    result = replay(case.steps, case.attempts)
    case.state, case.level, case.max_level = result.state, result.level, result.max_level
    case.reopens, case.anomalies = result.reopens, result.anomalies
    return case


def open_periods(transitions: list[Transition]) -> list[tuple[Transition, Transition | None]]:
    """[start, end) spans in event time when the case was open: (the step that opened, the one that ended it)."""
    spans: list[tuple[Transition, Transition | None]] = []
    start = None
    for t in transitions:
        was_open, is_open = t.before in OPEN_STATES, t.after in OPEN_STATES
        if is_open and not was_open:
            start = t
        elif was_open and not is_open and start is not None:
            spans.append((start, t))
            start = None
    if start is not None:
        spans.append((start, None))
    return spans


__all__ = ["STEP_KINDS", "TABLE", "Replay", "Transition", "derive", "open_periods", "replay"]
