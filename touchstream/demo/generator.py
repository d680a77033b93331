"""Deterministic demo traffic: ``generate(customers, days, seed)`` yields plain-JSON events in time order.

Why day by day: each simulated day, every customer's episodes are planned
(``agenda``: who acts, when; campaigns on their calendar days), then run in
start-time order. Episodes queue events, also for later days (deliveries,
payments, callbacks), in a heap; whatever is older than the next episode's start
is final and streams out, so events leave in occurred_at order and memory holds
only the events still ahead, never the whole run. One seeded ``random.Random``
drawn in a fixed order makes a run reproducible byte for byte; the run tag (from
the arguments) prefixes every id, so two different runs never collide in one
stack. Pure: no I/O.
"""

from __future__ import annotations

import gc
import hashlib
import random
from datetime import datetime, timezone
from typing import Iterator

from touchstream.demo import campaigns, consent_register
from touchstream.demo.agenda import Agenda, plan_day
from touchstream.demo.emitter import DAY, Emitter, to_ms
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
    consent_register.told_the_service_line(em, people)   # aside: the rest of the run is as without it
    heap = em.pending
    # Episodes allocate many small acyclic dicts that live until yielded; the cyclic GC would
    # rescan them over and over (about 40% of the time at 20k customers). It is paused while
    # our own code runs and restored whenever the caller holds control (at each yield).
    gc_on = gc.isenabled()
    gc.disable()
    try:
        for day in range(days):
            day_start = start_ms + day * DAY
            calendar = campaigns.schedule(em, day)
            agenda = Agenda()
            for c in people:
                plan_day(em, c, day, day_start, calendar, agenda)
            for t, _seq, episode, c, extra in agenda.sorted():
                if heap and heap[0][0] < t:  # everything before this episode's start is final
                    if gc_on:
                        gc.enable()
                    yield from em.drain(t)
                    gc.disable()
                episode(em, c, t, *extra)
            if gc_on:
                gc.enable()
            yield from em.drain(day_start + DAY)
            gc.disable()
    finally:
        if gc_on:
            gc.enable()


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
