"""The customer-360 state: plain dataclasses of str / int / Decimal / datetime, sets and dicts.

Why plain data: the state is stored (RocksDB / DuckDB) and compared (replay equals
live), so it must round-trip through JSON (``customer_360_codec``) and compare with
``==``. Why it keeps *facts* (sorted lists, id sets) beside summaries: every
"last X", window and finding is a function of the set of events seen, never of
their arrival order, so a late event can be folded in and correct the profile.
Derived numbers (balance, shares, ranks) are computed by ``view``, not stored.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import NamedTuple

STATE_VERSION = 1
# Form fields that carry information the company keeps (asking again is a repeated request).
KNOWN_FIELDS = ("email", "phone", "first_name", "last_name", "name", "address", "street", "postcode",
                "city", "company", "date_of_birth", "household_size")


@dataclass(slots=True)
class Config:
    """Tunables; stored in the profile so a replay folds with the settings the live run used."""

    last_n: int = 20                                  # interactions kept in the timeline
    window: timedelta = timedelta(days=7)             # contact-pressure window (sliding and tumbling)
    overload_cap: int = 5                             # more company messages than this in a window: overload
    window_anchor: datetime = datetime(1970, 1, 5, tzinfo=timezone.utc)  # a Monday: touchmap buckets start here
    known_fields: tuple[str, ...] = KNOWN_FIELDS
    region: str | None = "NL"                         # phones without +country, as in identity.toml
    # "<channel|all>:<purpose>" permissions the customer must give before the company contacts them for it
    # (consent_policy.toml; default none); anything else is permitted until withdrawn (customer_360_consent)
    opt_in: tuple[str, ...] = ()


class Mark(NamedTuple):
    """Where an event sits in event time; ties on occurred_at are broken by event_id (total order).

    Named tuples (here and for the other small sorted records) compare in C: the fold compares marks
    on almost every event.
    """

    at: datetime
    event_id: str


@dataclass(slots=True)
class Identifier:
    kind: str
    value: str
    first_seen: datetime
    last_seen: datetime
    sightings: int = 0
    trust: str = "unknown"      # best trust an identity event claimed for it (verified > observed > claimed)


@dataclass(slots=True)
class Unlink:
    mark: Mark
    identifier_a: str           # "kind:value"
    identifier_b: str
    reason: str


@dataclass(slots=True)
class ContactCount:
    count: int = 0
    last: Mark | None = None


@dataclass(slots=True)
class Interaction:
    mark: Mark
    event_type: str
    channel: str
    content: str
    direction: str              # inbound (customer -> company), outbound, internal
    initiated_by: str


@dataclass(slots=True)
class Journey:
    signals: dict[str, Mark] = field(default_factory=dict)   # latest signal per class (research/attraction/sale/service)
    first_sale: Mark | None = None
    stage: str | None = None
    since: Mark | None = None                                # the signal that decided the stage


@dataclass(slots=True)
class Order:
    order_id: str
    kind: str = "order"                  # order (commerce.order_placed) or receipt (store.purchase_completed)
    placed: Mark | None = None
    channel: str | None = None
    total: Decimal | None = None
    currency: str | None = None
    campaign_id: str | None = None
    fulfilled: Mark | None = None
    delivered: Mark | None = None


@dataclass(slots=True)
class Entry:
    """One ledger line (invoice, payment, credit, return) by its business id; a newer event version wins."""

    mark: Mark
    amount: Decimal
    currency: str
    ref: str | None = None               # order or invoice it belongs to
    detail: str | None = None            # reason / due date


@dataclass(slots=True)
class Commerce:
    orders: dict[str, Order] = field(default_factory=dict)
    invoices: dict[str, Entry] = field(default_factory=dict)
    payments: dict[str, Entry] = field(default_factory=dict)
    credits: dict[str, Entry] = field(default_factory=dict)
    returns: dict[str, Entry] = field(default_factory=dict)


class CaseStep(NamedTuple):
    mark: Mark
    step: str                            # complaint.opened -> "opened"; phone.callback_made -> "callback_made"
    channel: str


@dataclass(slots=True)
class Case:
    case_id: str
    steps: list[CaseStep] = field(default_factory=list)      # sorted by event time
    category: str | None = None
    priority: str | None = None
    order_id: str | None = None
    state: str | None = None                                   # last state-changing step
    open: bool = False


class Given(NamedTuple):
    mark: Mark
    channel: str


@dataclass(slots=True)
class Answer:
    kind: str                            # golden or survey
    key: str                             # question_key or question_id
    answer: str
    question: str | None
    score: int | None
    survey_id: str | None
    latest: Given                        # when and where the current answer was given
    given: list[Given] = field(default_factory=list)           # every time it was answered, sorted


@dataclass(slots=True)
class Consent:
    for_channel: str                     # a channel, or "all"
    purpose: str
    status: str                          # given or withdrawn
    mark: Mark
    via_channel: str                     # where the customer said so
    policy_version: str | None = None


class Statement(NamedTuple):
    """One consent statement of a slot: every one is kept, because the one in force at a contact decides."""

    mark: Mark
    status: str                          # given or withdrawn


@dataclass(slots=True)
class Score:
    value: Decimal
    mark: Mark
    channel: str
    ref: str | None = None               # case, survey or platform


@dataclass(slots=True)
class Attitude:
    csat: Score | None = None
    nps: Score | None = None
    complaint_satisfaction: Score | None = None
    review: Score | None = None
    sentiment: Score | None = None       # last scored social comment
    sentiment_count: int = 0
    sentiment_total: Decimal = Decimal(0)
    compliments: int = 0


@dataclass(slots=True)
class Message:
    """A company-initiated message (the unit of contact pressure), keyed by its contact key."""

    mark: Mark                           # earliest event of the message
    channel: str
    content: str
    event_type: str
    campaign_id: str | None = None
    purpose: str = "service"             # marketing if any record of it is (customer_360_consent.contact_purpose)


class Touch(NamedTuple):
    mark: Mark
    channel: str


@dataclass(slots=True)
class Finding:
    kind: str                            # repeat_question, repeated_request, overload, redundant, conflict,
                                         # contact_without_consent
    at: datetime
    evidence: list[str]                  # event ids, in event-time order
    subject: str                         # question key, field, campaign, case, ...
    channels: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Profile:
    customer_id: str
    config: Config = field(default_factory=Config)
    state_version: int = STATE_VERSION
    applied: set[str] = field(default_factory=set)            # every event_id folded: duplicates change nothing
    first_seen: Mark | None = None
    last_seen: Mark | None = None
    identifiers: dict[str, Identifier] = field(default_factory=dict)   # "kind:value"
    unlinks: list[Unlink] = field(default_factory=list)
    channels: dict[str, dict[str, ContactCount]] = field(default_factory=dict)  # channel -> initiated_by ->
    contact_keys: set[str] = field(default_factory=set)       # "channel|initiated_by|contact key" counted
    interactions: list[Interaction] = field(default_factory=list)      # last N, oldest first
    journey: Journey = field(default_factory=Journey)
    commerce: Commerce = field(default_factory=Commerce)
    complaints: dict[str, Case] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)  # "golden:<key>" / "survey:<question_id>"
    form_fields: dict[str, list[Mark]] = field(default_factory=dict)   # known field -> submissions carrying it
    consents: dict[str, Consent] = field(default_factory=dict)         # "<channel|all>:<purpose>"
    consent_history: dict[str, list[Statement]] = field(default_factory=dict)   # the same slots: all, sorted
    attitude: Attitude = field(default_factory=Attitude)
    messages: dict[str, Message] = field(default_factory=dict)         # company messages by contact key
    responses: dict[str, Mark] = field(default_factory=dict)           # contact key -> first response
    campaign_touches: dict[str, list[Touch]] = field(default_factory=dict)
    findings: dict[str, Finding] = field(default_factory=dict)         # by finding id


def new_profile(customer_id: str, config: Config | None = None) -> Profile:
    return Profile(customer_id=customer_id, config=config or Config())
