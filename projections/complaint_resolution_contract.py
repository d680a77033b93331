"""The complaint case and its SLA events as the Avro records the processors publish.

``ComplaintCaseView`` (``schemas/derived/complaint_case_view.v1.avsc``, topic
``touchstream.complaint-cases``, compacted by case id) is ``complaint_resolution.view``
field for field; ``ComplaintSlaEvent`` (``complaint_sla_event.v1.avsc``, topic
``touchstream.complaint-sla``) is one event of ``complaint_sla.due_events``.

Why a converter and not a second encoder (as ``customer_360_contract``): ``view`` and
``due_events`` stay the one definition of what is published (plain JSON for the API and
the tests), ``to_avro`` turns ISO timestamps into datetimes and fails loudly, naming the
field path, the moment they drift from the schema (a new key, a None where the schema
has none). The case record is named ComplaintCaseView because ``touchstream.derived.
ComplaintCase`` is already the per-case summary inside ``Customer360``. Converters are
compiled once per process.

Pure: imports only ``touchstream.schemas`` and ``touchstream.events``; no Kafka, no I/O.
"""

from __future__ import annotations

from touchstream.projections.contracts import converter

SCHEMA, _TO_RECORD = converter("complaint_case_view")
SLA_SCHEMA, _TO_SLA = converter("complaint_sla_event")


def to_record(view: dict) -> dict:
    """``complaint_resolution.view(case)`` -> the Avro-shaped ``ComplaintCaseView`` record fastavro writes.

    Raises ``EventValidationError`` (with field paths) if the view no longer fits the schema.
    """
    return _TO_RECORD(view)


def sla_record(event: dict) -> dict:
    """One event of ``complaint_sla.due_events(...)`` -> the Avro-shaped ``ComplaintSlaEvent`` record.

    Fields the event's type does not carry (the clock of an escalation, the level of a breach) become null.
    Raises ``EventValidationError`` (with field paths) if the event no longer fits the schema.
    """
    return _TO_SLA(event)
