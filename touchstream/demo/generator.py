"""Deterministic demo traffic: ``generate(customers, days, seed)`` yields plain-JSON events in time order.

Why day by day: the world is simulated one day at a time (every customer gets a
chance to act, campaigns go out on their calendar days); episodes started on a day
may queue events for later days (deliveries, payments, callbacks), which wait in a
heap. Everything before the next midnight is final once the day is simulated, so
events stream out in occurred_at order while memory holds only the events still
ahead, never the whole run. One seeded ``random.Random`` drawn in a fixed order
makes a run reproducible byte for byte; the run tag (from the arguments) prefixes
every id, so two different runs never collide in one stack. Pure: no I/O.
"""

from __future__ import annotations

import gc
import hashlib
import random
from datetime import datetime, timezone
from typing import Iterator

from touchstream.demo import (business, campaigns, complaint_paths, feedback, identity_steps, research, sales,
                              touchpoints)
from touchstream.demo.emitter import DAY, HOUR, MINUTE, Emitter, to_ms
from touchstream.demo.personas import PERSONA_WEIGHTS, PERSONAS, Customer

DEFAULT_START = datetime(2026, 1, 5, tzinfo=timezone.utc)
# New customers reveal identifiers step by step: (step, min gap days, max gap days, probability) per persona.
LADDERS = {
    "digital_native": (("anon", 0, 0, 1.0), ("anon", 1, 2, 0.6), ("signup", 1, 4, 1.0), ("welcome", 3, 9, 0.3),
                       ("call", 1, 6, 0.6), ("card", 2, 7, 0.5)),
    "store_regular": (("anon", 0, 0, 1.0), ("signup", 1, 5, 1.0), ("call", 2, 7, 0.7), ("card", 2, 7, 1.0),
                      ("welcome", 2, 8, 0.3)),
    "phone_person": (("call", 0, 0, 1.0), ("welcome", 4, 12, 0.5), ("card", 3, 10, 0.4)),
    "business_buyer": (("anon", 0, 0, 1.0), ("signup", 1, 4, 1.0), ("call", 2, 6, 1.0)),
}


def run_tag(customers: int, days: int, seed: int, start: datetime = DEFAULT_START) -> str:
    """Short hex tag of one run's arguments: prefixes every event id (``demo-<tag>-``) and business id."""
    text = f"{seed}|{customers}|{days}|{start.astimezone(timezone.utc).isoformat()}"
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def event_id_prefix(customers: int, days: int, seed: int, start: datetime = DEFAULT_START) -> str:
    return f"demo-{run_tag(customers, days, seed, start)}-"


def generate(customers: int, days: int, seed: int, start: datetime = DEFAULT_START) -> Iterator[dict]:
    """Events of ``customers`` customers over ``days`` days from ``start``, oldest first."""
    if customers < 0 or days < 0:
        raise ValueError("customers and days must not be negative")
    start_ms = to_ms(start)
    return _simulate(customers, days, seed, start, start_ms)


def _simulate(customers: int, days: int, seed: int, start: datetime, start_ms: int) -> Iterator[dict]:
    tag = run_tag(customers, days, seed, start)
    rng = random.Random(f"touchstream-demo|{tag}|{seed}")
    em = Emitter(rng, tag, start_ms, start_ms + days * DAY)
    base = int(tag, 16)
    people = [_new_customer(em, i, base, days) for i in range(customers)]
    for day in range(days):
        day_start = start_ms + day * DAY
        # Simulating a day allocates many small acyclic dicts that all survive until drained;
        # the cyclic GC would rescan them over and over (about 40% of the time at 20k customers).
        # It is paused only while our own code runs, never while the caller holds control.
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            calendar = campaigns.schedule(em, day)
            for c in people:
                _live(em, c, day, day_start)
                for camp in calendar:
                    campaigns.deliver(em, c, camp, day_start)
        finally:
            if gc_was_on:
                gc.enable()
        yield from em.drain(day_start + DAY)


def _new_customer(em: Emitter, idx: int, base: int, days: int) -> Customer:
    rng = em.rng
    persona = rng.choices(PERSONAS, PERSONA_WEIGHTS)[0]
    new = rng.random() < persona.new_share
    c = Customer(idx, persona, rng, em.tag, base, new)
    if new:
        day = rng.randint(0, max(0, min(6, days - 1)))
        for step, lo, hi, p in LADDERS[persona.name]:
            day += rng.randint(lo, hi)
            if rng.random() < p:
                c.ladder.append((day, step))
    return c


def _ladder(em: Emitter, c: Customer, step: str, day_start: int) -> None:
    t = em.at(day_start, 8, 21)
    if step == "anon":
        research.web_session(em, c, t, False)
    elif step == "signup":
        identity_steps.sign_up(em, c, t)
        if c.b2b:
            research.quote_request(em, c, t + 20 * MINUTE)
    elif step == "call" and (c.has_account or c.persona.name == "phone_person"):
        identity_steps.first_call(em, c, em.at(day_start, 9, 17))
    elif step == "card" and c.has_account and c.loyalty is not None and not c.card_known:
        sales.store_visit(em, c, em.at(day_start, 10, 18))
    elif step == "welcome" and c.has_account and c.phone_known:
        feedback.welcome_call(em, c, em.at(day_start, 10, 17))


def _live(em: Emitter, c: Customer, day: int, day_start: int) -> None:
    """One customer's day: ladder steps for new customers, then whatever their persona does."""
    while c.ladder and c.ladder[0][0] <= day:
        _ladder(em, c, c.ladder.pop(0)[1], day_start)
    if not c.has_account:
        return
    rng, p = em.rng, c.persona
    r = rng.random
    if r() < p.web:
        end = research.web_session(em, c, em.at(day_start, 7, 23), r() < 0.6)
        if r() < 0.04:
            research.quote_request(em, c, end + MINUTE) if not c.b2b else feedback.golden_question(em, c, end, "web")
    if r() < p.chat:
        end = research.chat(em, c, em.at(day_start, 8, 22))
        if r() < 0.3:
            feedback.csat(em, c, end + 10 * MINUTE, "email")
    if r() < p.call:
        _service_call(em, c, em.at(day_start, 8, 18))
    if r() < p.email_in:
        research.email_inquiry(em, c, em.at(day_start, 7, 23))
    if c.loyalty is not None and r() < p.store:
        end = sales.store_visit(em, c, em.at(day_start, 9, 20))
        if c.card_known and r() < 0.1:
            feedback.golden_question(em, c, end + MINUTE, "store")
    if r() < p.order:
        (sales.web_order if p.order_channel == "web" else sales.phone_order)(em, c, em.at(day_start, 8, 22))
    if c.b2b:
        if r() < 0.04:
            business.sales_cycle(em, c, em.at(day_start, 8, 17))
        if r() < 0.03:
            business.account_review(em, c, em.at(day_start, 9, 16))
    if r() < p.social:
        research.social_post(em, c, em.at(day_start, 7, 23))
    if r() < 0.006:
        feedback.nps_survey(em, c, em.at(day_start, 9, 12))
    if r() < 0.003:
        feedback.compliment(em, c, em.at(day_start, 8, 22))
    if p.name == "digital_native" and not c.unlinked and r() < 0.002:
        identity_steps.unlink_shared_device(em, c, em.at(day_start, 8, 22))
    _complaints(em, c, day_start)


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


def _complaints(em: Emitter, c: Customer, day_start: int) -> None:
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
    path = rng.choices(names, weights)[0]
    complaint_paths.PATHS[path](em, c, em.at(day_start, 8, 20), order)
