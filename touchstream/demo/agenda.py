"""What each customer does on a given day, and when: the day's agenda of episodes.

Why an agenda instead of acting at once: deciding first (who acts, at what time)
and then running the episodes in start-time order lets the generator hand out
every event older than the next episode's start while the day is still being
simulated, so memory holds a few hours of events, not a day of them (a campaign
day at 100k customers is half a million events). Episodes never emit events
before their start time; ``Emitter.emit`` enforces it. Pure: no I/O.
"""

from __future__ import annotations

from typing import Callable

from touchstream.demo import (business, campaigns, complaint_paths, feedback, identity_steps, research, sales,
                              touchpoints)
from touchstream.demo.emitter import DAY, HOUR, MINUTE, Emitter
from touchstream.demo.personas import Customer

# (t, seq, episode, customer, extra args): seq breaks ties in planning order, so sorting never
# compares functions. The episode is called as ``episode(em, customer, t, *extra)``.
Entry = tuple
LADDER_HOURS = {"anon": (8, 21), "signup": (8, 21), "call": (9, 17), "card": (10, 18), "welcome": (10, 17)}


class Agenda:
    """The episodes planned for one day, run in start-time order."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def add(self, t: int, episode: Callable, c: Customer, *extra) -> None:
        self.entries.append((t, len(self.entries), episode, c, extra))

    def sorted(self) -> list[Entry]:
        self.entries.sort()
        return self.entries


def plan_day(em: Emitter, c: Customer, day: int, day_start: int, calendar: tuple, agenda: Agenda) -> None:
    """Decide one customer's episodes for the day: ladder steps, persona habits, complaints, campaigns."""
    rng = em.rng
    while c.ladder and c.ladder[0][0] <= day:
        step = c.ladder.pop(0)[1]
        agenda.add(em.at(day_start, *LADDER_HOURS[step]), _ladder, c, step)
    if not c.has_account:
        return
    p = c.persona
    r = rng.random
    for rate, episode, hours in (
        (p.web, _browse, (7, 23)), (p.chat, _chat, (8, 22)), (p.call, _service_call, (8, 18)),
        (p.email_in, research.email_inquiry, (7, 23)), (p.social, research.social_post, (7, 23)),
        (0.006, feedback.nps_survey, (9, 12)), (0.003, feedback.compliment, (8, 22)),
    ):
        if r() < rate:
            agenda.add(em.at(day_start, *hours), episode, c)
    if c.loyalty is not None and r() < p.store:
        agenda.add(em.at(day_start, 9, 20), _store, c)
    if r() < p.order:
        agenda.add(em.at(day_start, 8, 22), sales.web_order if p.order_channel == "web" else sales.phone_order, c)
    if c.b2b:
        if r() < 0.04:
            agenda.add(em.at(day_start, 8, 17), business.sales_cycle, c)
        if r() < 0.03:
            agenda.add(em.at(day_start, 9, 16), business.account_review, c)
    if p.name == "digital_native" and not c.unlinked and r() < 0.002:
        agenda.add(em.at(day_start, 8, 22), identity_steps.unlink_shared_device, c)
    _plan_complaint(em, c, day_start, agenda)
    for camp in calendar:
        if campaigns.reachable(c, camp):
            agenda.add(campaigns.send_time(c, camp, day_start), campaigns.deliver, c, camp)


def _plan_complaint(em: Emitter, c: Customer, day_start: int, agenda: Agenda) -> None:
    """A complaint now and then, more likely right after a late delivery; the path follows the persona."""
    rng = em.rng
    order = c.orders[-1] if c.orders else None
    late_yesterday = order is not None and order[6] and order[5] // DAY == day_start // DAY - 1
    if late_yesterday and rng.random() < 0.5:
        pass
    elif rng.random() < c.persona.complaint:
        order = order if order is not None and order[5] < day_start and rng.random() < 0.4 else None
    else:
        return
    names, weights = zip(*c.persona.paths)
    path = complaint_paths.PATHS[rng.choices(names, weights)[0]]
    agenda.add(em.at(day_start, 8, 20), path, c, order)


def _ladder(em: Emitter, c: Customer, t: int, step: str) -> None:
    if step == "anon":
        research.web_session(em, c, t, False)
    elif step == "signup":
        identity_steps.sign_up(em, c, t)
        if c.b2b:
            research.quote_request(em, c, t + 20 * MINUTE)
    elif step == "call" and (c.has_account or c.persona.name == "phone_person"):
        identity_steps.first_call(em, c, t)
    elif step == "card" and c.has_account and c.loyalty is not None and not c.card_known:
        sales.store_visit(em, c, t)
    elif step == "welcome" and c.has_account and c.phone_known:
        feedback.welcome_call(em, c, t)


def _browse(em: Emitter, c: Customer, t: int) -> None:
    r = em.rng.random
    end = research.web_session(em, c, t, r() < 0.6)
    if r() < 0.04:
        if c.b2b:
            feedback.golden_question(em, c, end, "web")
        else:
            research.quote_request(em, c, end + MINUTE)


def _chat(em: Emitter, c: Customer, t: int) -> None:
    end = research.chat(em, c, t)
    if em.rng.random() < 0.3:
        feedback.csat(em, c, end + 10 * MINUTE, "email")


def _store(em: Emitter, c: Customer, t: int) -> None:
    end = sales.store_visit(em, c, t)
    if c.card_known and em.rng.random() < 0.1:
        feedback.golden_question(em, c, end + MINUTE, "store")


def _service_call(em: Emitter, c: Customer, t: int) -> None:
    """An inbound question; an unknown number is linked to the account first."""
    r = em.rng.random
    if not c.phone_known:
        identity_steps.first_call(em, c, t)
        return
    call = touchpoints.start_call(em, c, t, "inquiry", identified=r() < 0.6)
    if r() < 0.15:
        feedback.golden_question(em, c, call.answered_at + MINUTE, "phone")
    end = touchpoints.end_call(em, c, call, resolved=r() < 0.85)
    if r() < 0.25:
        feedback.csat(em, c, end + HOUR, "sms" if c.persona.sms and c.consent_sms else "email")

