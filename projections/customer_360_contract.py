"""The customer-360 view as the Avro records the processors publish: ``Customer360`` and ``ContactFindingRaised``.

Why a converter and not a second hand-written encoder: ``view`` stays the one
definition of the read model (plain JSON for the API and the tests), and the
published contract is ``schemas/derived/customer_360.v1.avsc``. Running the view
through ``to_avro`` turns ISO timestamps into datetimes and money strings into
exact Decimals, and it fails loudly, naming the field path, the moment the view
and the schema drift apart (a new key, a None where the schema has none), instead
of publishing a record that consumers cannot read. Converters are compiled once
per process.

On the hot path the sink skips the conversion: ``customer_360.typed_view`` already
holds datetimes and Decimals, so it is the record (the same bytes on the wire, a unit
test says so). ``to_record`` still checks one typed view per batch, so a drift fails
the batch as loudly as before.

Pure: imports only ``touchstream.schemas`` and ``touchstream.events``; no Kafka, no I/O.
"""

from __future__ import annotations

from touchstream.projections.contracts import converter

SCHEMA, _TO_RECORD = converter("customer_360")
FINDING_SCHEMA, _TO_FINDING = converter("contact_finding_raised")


def to_record(view: dict) -> dict:
    """``customer_360.view(profile)`` (or ``typed_view``) -> the Avro-shaped ``Customer360`` record fastavro writes.

    Raises ``EventValidationError`` (with field paths) if the view no longer fits the schema.
    """
    return _TO_RECORD(view)


def finding_id(customer_id: str, key: str) -> str:
    """``<customer_id>/<key>``: a finding key is unique within a profile only, the id across customers."""
    return f"{customer_id}/{key}"


def finding_records(customer_id: str, view: dict, skip: set[str] | frozenset = frozenset()) -> list[dict]:
    """One Avro-shaped ``ContactFindingRaised`` per finding of the view, in the view's (event-time) order,
    but for the finding ids in ``skip`` (announced already).

    Every other current finding is returned, not only new ones: findings are recomputed as late events
    arrive (their evidence grows), and the id makes a re-published finding replace the older copy.
    """
    out = []
    for f in view["findings"]:
        key = finding_id(customer_id, f["id"])
        if key not in skip:
            out.append(_TO_FINDING({"finding_id": key, "customer_id": customer_id, "kind": f["kind"], "at": f["at"],
                                    "subject": f["subject"], "channels": f["channels"], "evidence": f["evidence"]}))
    return out
