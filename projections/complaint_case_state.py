"""The state of one complaint case: the facts seen (sorted by event time) and what the machine derived.

Why facts and not only a status field: complaint systems, telephony, the help desk
and the survey tool publish with different delays, so the case keeps every fact
sorted by its ``Mark`` (occurred_at, event_id) and re-derives state, escalation
level and anomalies from them (``complaint_case_machine``). A late event then
corrects the case instead of being judged against whatever arrived first, and the
same set of events gives the same case in any arrival order.

Why plain data (NamedTuples, dataclasses of str / int / bool / datetime, dicts,
sets): the case is stored and compared (replay equals live), so it round-trips
through JSON with the generic codec of the customer-360. No PII is kept: the
complaint text, notes and reopen reasons stay in the raw events. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from touchstream.projections.customer_360_state import Mark

STATE_VERSION = 1

# States of the machine (complaint_case_machine has the transition table).
NEW, OPENED, ACKNOWLEDGED, IN_PROGRESS = "new", "opened", "acknowledged", "in_progress"
CALLBACK_PROMISED, RESOLVED, CLOSED = "callback_promised", "resolved", "closed"
OPEN_STATES = frozenset({OPENED, ACKNOWLEDGED, IN_PROGRESS, CALLBACK_PROMISED})
# Derived events this project publishes itself carry ids with this prefix (complaint_sla.due_events);
# the SLA ignores them when it numbers its own escalations, so feeding them back changes nothing.
SLA_ID_PREFIX = "touchstream-sla-"


# Default of TOUCHSTREAM_FCR_GRACE_MINUTES (touchstream.config.Settings.fcr_grace_minutes).
FCR_GRACE_MINUTES = 15


@dataclass
class Config:
    """Tunables; stored in the case so a replay folds with the settings the live run used."""

    fcr_window: timedelta = timedelta(days=7)          # no repeat contact this long after resolution
    # A resolution logged this long after the first contact ended (or after the open, in a case with no
    # contact events) is still "at first contact": agents log the outcome after wrap-up.
    first_contact_grace: timedelta = timedelta(minutes=FCR_GRACE_MINUTES)


class Step(NamedTuple):
    """One complaint.* event of the case (satisfaction ratings are ``Rating``s)."""

    mark: Mark
    kind: str                    # complaint.opened -> "opened", ...
    channel: str
    initiated_by: str
    info: dict[str, str | int | bool | None]   # the non-PII fields the fold reads, per kind, and customer_hint
    due: datetime | None = None  # callback_promised: promised_by


class Touch(NamedTuple):
    """One touchpoint event threaded to the case by correlation_id; a contact is the touches of one key."""

    mark: Mark
    event_type: str
    channel: str
    direction: str               # inbound, outbound, internal (customer_360_events.direction)
    content: str
    response: bool               # the company reached the customer (a reply sent, a call answered, ...)
    wait_seconds: int | None = None      # time waiting to reach service (call queue, chat agent reply)
    talk_seconds: int | None = None      # phone talk time
    span_seconds: int | None = None      # duration of a visit or meeting


class Attempt(NamedTuple):
    """phone.callback_made: an attempt to keep a promise (``reached`` keeps it)."""

    mark: Mark
    callback_id: str | None
    reached: bool
    channel: str


class Rating(NamedTuple):
    mark: Mark
    kind: str                    # complaint_satisfaction (complaint.satisfaction_given) or csat (feedback.csat_given)
    score: int
    channel: str


class Fact(NamedTuple):
    """Any other threaded event (a goodwill credit, a return, a survey answer): kept for the record."""

    mark: Mark
    event_type: str
    channel: str


class Anomaly(NamedTuple):
    """A step the machine could not take from the state it found: recorded, never raised, never dropped."""

    mark: Mark
    event_type: str
    state: str                   # the state the case was in
    reason: str                  # e.g. resolved_before_open, closed_when_closed, reopened_when_in_progress


@dataclass
class Case:
    case_id: str
    config: Config = field(default_factory=Config)
    customer_id: str | None = None               # canonical id, given from outside (identity resolution)
    state_version: int = STATE_VERSION
    applied: set[str] = field(default_factory=set)               # every event_id folded: duplicates change nothing
    steps: list[Step] = field(default_factory=list)              # sorted by mark
    contacts: dict[str, list[Touch]] = field(default_factory=dict)  # contact key -> its touches, sorted
    attempts: list[Attempt] = field(default_factory=list)        # sorted
    ratings: list[Rating] = field(default_factory=list)          # sorted
    facts: list[Fact] = field(default_factory=list)              # sorted
    policy_version: str | None = None            # SLA policy in force at open, pinned by complaint_sla.pin_policy
    # Derived from the facts by complaint_case_machine.derive after every change:
    state: str = NEW
    level: int = 0                               # escalation level now (0 = first line)
    max_level: int = 0
    reopens: int = 0
    anomalies: list[Anomaly] = field(default_factory=list)


def new_case(case_id: str, config: Config | None = None, customer_id: str | None = None) -> Case:
    return Case(case_id=case_id, config=config or Config(), customer_id=customer_id)
