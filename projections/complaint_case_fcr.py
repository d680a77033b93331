"""First-contact resolution across channels, and the rates over many cases.

Why FCR needs more than the agent's flag: "resolved in the first interaction,
without callbacks or repeat contacts" (domain.md section 5) is only known after the
fact, and the repeat contact may come on another channel: the customer who called
and was told "solved" but e-mails two days later was not helped at first contact.

The verdict (``first_contact_resolution``), in this order:

1. unresolved (no resolution the machine accepted): ``None``, not counted in rates;
2. the case was reopened: not FCR, reason ``reopened`` (the solution did not hold;
   this says more than how the first resolution came about, so it comes first);
3. a callback promised or attempted before the first resolution: not FCR;
4. resolved *on the first contact*: the first resolution lies within the case's
   first contact (its end + ``Config.first_contact_grace``, for wrap-up logging;
   setting ``TOUCHSTREAM_FCR_GRACE_MINUTES``, default 15) and no other contact
   started between the end of that contact and the resolution. A case with no
   threaded contact falls back to the agent's ``resolved_on_first_contact``, else
   to "resolved within the grace of the open";
5. no repeat contact about the same issue within ``window`` (default
   ``Config.fcr_window``, 7 days) after the first resolution.

"Same issue" is either (a) the same case: an inbound contact threaded to the case
by correlation_id that starts after the resolution (a later call, e-mail, chat,
letter, visit; a compliment is not a repeat), or (b) the caller's
``repeat_contacts``: (at, channel, event_id) tuples of the same customer's contacts
about the same matter. ``same_issue_contacts`` builds (b) from the customer's other
cases: same canonical customer, same product (or, without a product, the same
category other than unknown/other), opened after the resolution within the
window. Until the window has passed (``as_of``) a positive verdict is not settled.
Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import mean
from typing import Iterable, NamedTuple

from touchstream.projections.complaint_case_metrics import (
    accepted, callbacks, case_metrics, contacts_of, customer_contacts, opening, start_of, transitions,
)
from touchstream.projections.complaint_case_state import Case


class RepeatContact(NamedTuple):
    at: datetime
    channel: str
    event_id: str


class Fcr(NamedTuple):
    fcr: bool | None             # None: not resolved (yet)
    reason: str                  # unresolved, callback, second_contact, resolved_after_first_contact, agent_flag,
    #                              reopened, repeat_contact, first_contact
    resolved_at: datetime | None = None
    window_ends: datetime | None = None
    repeats: tuple[str, ...] = ()  # event ids of the repeat contacts
    settled: bool = True         # False while the window is still running at as_of


def resolved_on_first_contact(case: Case) -> tuple[bool | None, str]:
    """Steps 1-4 of the verdict: (True/False/None, reason)."""
    resolutions = accepted(transitions(case), {"resolved"})
    if not resolutions:
        return None, "unresolved"
    if case.reopens:
        return False, "reopened"
    resolved = resolutions[0].mark
    if any(c.promised < resolved for c in callbacks(case)) or any(a.mark < resolved for a in case.attempts):
        return False, "callback"
    contacts = contacts_of(case)
    grace = case.config.first_contact_grace
    if contacts and contacts[0].started <= resolved:
        first = contacts[0]
        if any(first.ended_at < c.started.at and c.started <= resolved for c in contacts[1:]):
            return False, "second_contact"
        if resolved.at > first.ended_at + grace:
            return False, "resolved_after_first_contact"
        return True, "first_contact"
    step = next(s for s in case.steps if s.mark == resolved)
    flag = step.info.get("resolved_on_first_contact")
    if isinstance(flag, bool):
        return flag, "agent_flag"
    start = start_of(case)
    within = start is not None and resolved.at <= start.at + grace
    return within, "first_contact" if within else "resolved_after_first_contact"


def first_contact_resolution(case: Case, repeat_contacts: Iterable[tuple] = (), window: timedelta | None = None,
                             as_of: datetime | None = None) -> Fcr:
    """The FCR verdict of a case, counting repeat contacts on any channel (see the module doc)."""
    verdict, reason = resolved_on_first_contact(case)
    resolutions = accepted(transitions(case), {"resolved"})
    if verdict is None:
        return Fcr(None, reason)
    resolved = resolutions[0].mark.at
    ends = resolved + (window if window is not None else case.config.fcr_window)
    if not verdict:
        return Fcr(False, reason, resolved, ends)
    own = [RepeatContact(c.started.at, c.channel, c.started.event_id) for c in customer_contacts(contacts_of(case))
           if resolved < c.started.at <= ends]
    given = [RepeatContact(*r) for r in repeat_contacts if resolved < r[0] <= ends]
    repeats = sorted(set(own + given))
    if repeats:
        return Fcr(False, "repeat_contact", resolved, ends, tuple(r.event_id for r in repeats))
    return Fcr(True, reason, resolved, ends, (), as_of is None or as_of >= ends)


def issue_of(case: Case) -> tuple[str, str] | None:
    """What the case is about, for "same issue": its product, else its category (unknown/other say nothing)."""
    step = opening(case)
    if step is None:
        return None
    if step.info.get("product"):
        return "product", str(step.info["product"])
    category = step.info.get("category")
    return ("category", str(category)) if category not in (None, "unknown", "other") else None


def same_issue_contacts(case: Case, others: Iterable[Case], window: timedelta | None = None) -> list[RepeatContact]:
    """The same customer's other cases about the same issue, opened after this one's resolution within the window."""
    resolutions = accepted(transitions(case), {"resolved"})
    issue = issue_of(case)
    if not resolutions or issue is None or case.customer_id is None:
        return []
    resolved = resolutions[0].mark.at
    ends = resolved + (window if window is not None else case.config.fcr_window)
    found = []
    for other in others:
        if other.case_id == case.case_id or other.customer_id != case.customer_id or issue_of(other) != issue:
            continue
        start = start_of(other)
        if start is not None and resolved < start.at <= ends:
            step = opening(other) or other.steps[0]
            found.append(RepeatContact(start.at, step.channel, start.event_id))
    return sorted(found)


def summarise(cases: Iterable[Case], window: timedelta | None = None, as_of: datetime | None = None) -> dict:
    """Rates over cases: FCR across channels, reopen rate, phone-tag rate and its cost, mean times (seconds)."""
    cases = list(cases)
    by_customer: dict[str, list[Case]] = {}
    for case in cases:
        by_customer.setdefault(case.customer_id or "", []).append(case)
    rows = []
    for case in cases:
        repeats = same_issue_contacts(case, by_customer.get(case.customer_id or "", []), window)
        rows.append((case, first_contact_resolution(case, repeats, window, as_of), case_metrics(case, as_of)))
    judged = [fcr for _, fcr, _ in rows if fcr.fcr is not None]
    resolved = [m for _, fcr, m in rows if fcr.resolved_at is not None]
    tagged = [m for _, _, m in rows if m["phone_tag"]]
    untagged = [m for _, _, m in rows if not m["phone_tag"]]
    return {
        "cases": len(rows), "resolved": len(resolved), "fcr_judged": len(judged),
        "fcr": sum(1 for f in judged if f.fcr), "fcr_rate": _rate(sum(1 for f in judged if f.fcr), len(judged)),
        "reopened": sum(1 for m in resolved if m["reopens"]),
        "reopen_rate": _rate(sum(1 for m in resolved if m["reopens"]), len(resolved)),
        "phone_tag_rate": _rate(len(tagged), len(rows)),
        "contacts_per_case_with_phone_tag": _mean(m["contacts"] for m in tagged),
        "contacts_per_case_without_phone_tag": _mean(m["contacts"] for m in untagged),
        "extra_contacts_from_phone_tag": sum(m["extra_contacts"] for m in tagged),
        **{f"mean_{name}": _mean(m[name] for _, _, m in rows)
           for name in ("wait_seconds", "first_response_seconds", "handle_seconds", "resolution_seconds")},
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(values: Iterable[int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(mean(present), 1) if present else None
