"""Deterministic demo traffic for Touchstream (``touchstream demo``).

``generate(customers, days, seed)`` yields plain-JSON events (the shape of
docs/events.md) in occurred_at order; the same arguments give the same bytes.
Modules, all pure except ``jsonl_export``:

- ``personas``: customer kinds and their channel habits, a customer's identifiers;
- ``emitter``: seeded ids, timestamps and the time-ordered event heap;
- ``touchpoints``: calls, company e-mails, SMS and letters shared by every journey;
- ``identity_steps``: identifiers surfacing one channel at a time, and their links;
- ``research``, ``sales``, ``business``, ``campaigns``, ``feedback``: journey stages;
- ``complaints`` and ``complaint_paths``: complaint cases and their lifecycles;
- ``consent_register``: withdrawals the campaign manager never hears of (contact_without_consent);
- ``generator``: the day-by-day simulation; ``report``: the SQL report of a run.
"""

from touchstream.demo.generator import DEFAULT_START, generate, run_tag

__all__ = ["DEFAULT_START", "generate", "run_tag"]
