"""Consent told to the service line, which the campaign manager never hears of.

Why: the 360 reads every channel system; a campaign manager reads only its own suppression
list, fed by the preference centre and the SMS gateway's STOP replies (``identity_steps.withdraw``).
A customer who tells the service line "no more promotional e-mails" is recorded by the CRM
(``feedback.consent_withdrawn``), and the weekly campaign mails keep coming: each one is a
``contact_without_consent`` finding (``projections/customer_360_consent.py``), which is what the
finding is there to catch.

Who: every ``EVERY``-th customer the e-mail campaigns reach at the start (an account, a known
address, e-mail consent), from the first, so even a small run has one; alternately withdrawing
e-mail marketing only and all marketing ("all" scope). When: the first afternoon, before the
first weekly mail (day 1). Queued with ``Emitter.aside``: no draw from the run's random source
and no id of the main sequence, so every other event of a run stays as it was. Pure: no I/O.
"""

from __future__ import annotations

from touchstream.demo.emitter import HOUR, MINUTE, Emitter
from touchstream.demo.personas import Customer

EVERY = 20


def told_the_service_line(em: Emitter, people: list[Customer]) -> None:
    mailed = [c for c in people if c.has_account and c.email_known and c.consent_email and c.email_ok]
    for n, c in enumerate(mailed[::EVERY]):
        fields = {"purpose": "marketing", **({"for_channel": "email"} if n % 2 == 0 else {})}
        em.aside(em.start_ms + 14 * HOUR + (c.idx % 120) * MINUTE, "feedback.consent_withdrawn", "phone", "inquiry",
                 "customer", "crm", c.phone_ids(True), fields)
