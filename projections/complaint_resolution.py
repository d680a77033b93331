"""The complaint-case fold: ``apply(case, event) -> case`` over the events of one complaint case.

A case opens on a complaint.opened from any channel; its complaint.* events name
it by ``case_id`` and every other event about it (the call, the e-mail, the chat,
the letter, the callback, the rating) joins through ``envelope.correlation_id``
(``complaint_case_events.belongs``), so a case follows one problem across channels
(domain.md section 5). The canonical customer id comes from outside (identity
resolution): pass it to ``new_case`` / ``fold`` or set ``case.customer_id``; until
then ``view`` shows the ``identity.customer_id`` hint of its complaint events.

Rules it keeps, and why (as the customer-360 fold):

- **Order-free.** Facts are kept sorted by (occurred_at, event_id) and the state
  machine (``complaint_case_machine``) is replayed over them, so the same set of
  events gives the same case in any arrival order and a late event corrects it.
- **Never crashes, never drops.** An impossible transition is an ``Anomaly`` on the
  case (event id, state met, reason); an event of another case is ignored.
- **A duplicate event_id changes nothing** (``case.applied``).
- **Plain data**, round-tripped through JSON by ``to_dict``/``from_dict``;
  ``fingerprint`` compares replay with live. No I/O, no clock, no randomness.

``view`` is the JSON-ready read model: state, anomalies, who/what/where, contacts,
callbacks, escalations, resolution, satisfaction, metrics and the case's own FCR.
FCR across the customer's other cases and the rates live in ``complaint_case_fcr``;
SLA clocks in ``complaint_sla``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Iterable

from touchstream.projections.complaint_case_events import belongs, fold_event, mark_of
from touchstream.projections.complaint_case_fcr import (  # noqa: F401  (re-exported)
    Fcr, RepeatContact, first_contact_resolution, same_issue_contacts, summarise,
)
from touchstream.projections.complaint_case_machine import derive
from touchstream.projections.complaint_case_metrics import (
    accepted, callbacks, case_metrics, contacts_of, opening, start_of, transitions,
)
from touchstream.projections.complaint_case_state import OPEN_STATES, Case, Config, new_case
from touchstream.projections.customer_360_codec import decode, encode

__all__ = ["Case", "Config", "Fcr", "RepeatContact", "apply", "belongs", "fingerprint", "first_contact_resolution",
           "customer_hint", "fold", "from_dict", "new_case", "same_issue_contacts", "summarise", "to_dict", "view",
           "views"]


def apply(case: Case, record: dict) -> Case:
    """Fold one Avro-shaped event into the case (in place); events of other cases are ignored."""
    event_id = record["envelope"]["event_id"]
    if event_id in case.applied or not belongs(case.case_id, record):
        return case
    case.applied.add(event_id)
    if fold_event(case, record, mark_of(record)):
        derive(case)
    return case


def fold(records: Iterable[dict], case_id: str, config: Config | None = None, case: Case | None = None,
         customer_id: str | None = None) -> Case:
    """Fold many events, from a new case or on top of ``case`` (a restored checkpoint)."""
    case = case if case is not None else new_case(case_id, config, customer_id)
    for record in records:
        apply(case, record)
    return case


def to_dict(case: Case) -> dict:
    """The whole state (bookkeeping included), enough to resume folding after a restart."""
    return encode(case)


def from_dict(data: dict) -> Case:
    return decode(Case, data)


def fingerprint(case: Case) -> str:
    """sha256 of the canonical JSON of the state: equal fingerprints <=> equal cases."""
    return hashlib.sha256(json.dumps(to_dict(case), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def views(folded: Iterable[Case], as_of: datetime | None = None) -> list[dict]:
    """The views of many cases, FCR judged across each customer's cases (a new case about the same issue
    within the window makes an earlier resolution a repeat contact), in case id order.

    ``as_of`` (the sink's SLA watermark) judges the callbacks of the cases under an SLA policy only: their
    SLA agenda rewrites them when event time reaches a due time, so replay equals live at rest; a case
    without a policy has no agenda and is judged at its latest event."""
    folded = sorted(folded, key=lambda c: c.case_id)
    by_customer: dict[str, list[Case]] = {}
    for case in folded:
        if case.customer_id:
            by_customer.setdefault(case.customer_id, []).append(case)
    return [view(case, same_issue_contacts(case, by_customer.get(case.customer_id or "", ())),
                 as_of if case.policy_version else None) for case in folded]


def view(case: Case, repeats: Iterable[tuple] = (), as_of: datetime | None = None) -> dict:
    """The case as JSON-friendly data: what an agent on any channel and the analysts see.

    ``repeats``: the customer's other contacts about the same issue (``same_issue_contacts``), for FCR.
    ``as_of``: the event time callbacks are judged at, when later than the case's latest event (a fold
    has no clock: a promise nobody called back on is missed once event time reaches its due time)."""
    opened, start = opening(case), start_of(case)
    info = opened.info if opened else {}
    trans = transitions(case)
    resolutions, closures = accepted(trans, {"resolved"}), accepted(trans, {"closed"})
    last_resolution = next((s for s in case.steps if resolutions and s.mark == resolutions[-1].mark), None)
    fcr = first_contact_resolution(case, repeats)
    contacts = contacts_of(case)
    return {
        "case_id": case.case_id, "customer_id": case.customer_id or customer_hint(case), "state": case.state,
        "open": case.state in OPEN_STATES, "events": len(case.applied),
        "opened_at": _iso(start and start.at), "opened_event_id": start and start.event_id,
        "origin_channel": opened.channel if opened else (case.steps[0].channel if case.steps else None),
        "initiated_by": opened.initiated_by if opened else None,
        "channels_touched": sorted({s.channel for s in case.steps} | {c.channel for c in contacts}
                                   | {a.channel for a in case.attempts}),
        **{name: info.get(name) for name in ("product", "category", "priority", "about_channel", "order_id")},
        "cause": _latest(case, "cause", ("opened", "resolved")),
        "assigned_team": _latest(case, "team", ("acknowledged",), "to_team", ("escalated",))
        or info.get("assigned_team"),
        "escalation_level": case.level, "max_escalation_level": case.max_level,
        "escalations": [{"at": _iso(s.mark.at), "event_id": s.mark.event_id, "level": s.info.get("level"),
                         "reason": s.info.get("reason"), "to_team": s.info.get("to_team")}
                        for s in case.steps if s.kind == "escalated"],
        "contacts": [{"key": c.key, "channel": c.channel, "direction": c.direction, "started_at": _iso(c.started.at),
                      "ended_at": _iso(c.ended_at), "wait_seconds": c.wait_seconds, "talk_seconds": c.talk_seconds,
                      "handle_seconds": c.handle_seconds, "events": c.touches} for c in contacts],
        "callbacks": [{"callback_id": c.callback_id, "promised_at": _iso(c.promised.at), "due": _iso(c.due),
                       "channel": c.channel, "attempts": c.attempts, "kept_at": _iso(c.kept_at), "status": c.status}
                      for c in callbacks(case, judge_at=as_of)],
        "reopen_count": case.reopens,
        "resolved_at": _iso(resolutions[0].mark.at if resolutions else None),
        "resolution_code": last_resolution.info.get("resolution_code") if last_resolution else None,
        "closed_at": _iso(closures[-1].mark.at if closures else None),
        "close_reason": next((s.info.get("reason") for s in reversed(case.steps)
                              if closures and s.mark == closures[-1].mark), None),
        "satisfaction": _ratings(case, resolutions[0].mark.at if resolutions else None),
        "metrics": case_metrics(case, as_of),
        "fcr": {"fcr": fcr.fcr, "reason": fcr.reason, "window_ends": _iso(fcr.window_ends),
                "repeats": list(fcr.repeats)},
        "anomalies": [{"at": _iso(a.mark.at), "event_id": a.mark.event_id, "event_type": a.event_type,
                       "state": a.state, "reason": a.reason} for a in case.anomalies],
        "policy_version": case.policy_version,
    }


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def customer_hint(case: Case) -> str | None:
    """The ``identity.customer_id`` of the case's first step that names one (before identity resolution)."""
    return next((s.info["customer_hint"] for s in case.steps if s.info.get("customer_hint")), None)


def _latest(case: Case, name: str, kinds: tuple[str, ...], other: str = "", other_kinds: tuple[str, ...] = ()):
    """The latest non-null value of a field over the steps of some kinds the machine took (in event time)."""
    refused = {a.mark for a in case.anomalies if not a.reason.endswith("_before_open")}
    for step in reversed(case.steps):
        if step.mark in refused:
            continue
        value = step.info.get(name) if step.kind in kinds else step.info.get(other) if step.kind in other_kinds \
            else None
        if value is not None:
            return value
    return None


def _ratings(case: Case, resolved_at) -> dict:
    """The latest score of each kind; after_resolution says whether it rates a resolved case."""
    out = {}
    for kind in ("complaint_satisfaction", "csat"):
        rating = next((r for r in reversed(case.ratings) if r.kind == kind), None)
        out[kind] = rating and {"score": rating.score, "at": _iso(rating.mark.at), "channel": rating.channel,
                                "after_resolution": resolved_at is not None and rating.mark.at >= resolved_at}
    return out
