"""The interaction log projection: one flat row per event, whatever its type.

Pure: maps a decoded event (plus where it was read) to a row, and chooses which
records of a batch still need applying. The DuckDB side is ``duckdb_store``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable

from touchstream.events.envelope import IDENTITY_FIELDS
from touchstream.events.validation import to_json

# Money fields that stand for "the amount" of an event, most telling first.
AMOUNT_FIELDS = ("total", "amount", "refund", "value", "budget")

COLUMNS = (
    "event_id", "event_type", "domain", "occurred_at", "recorded_at", "channel", "content",
    "initiated_by", "source", "correlation_id", "causation_id", *IDENTITY_FIELDS,
    "amount", "currency", "payload", "schema_id", "topic", "partition", "offset", "ingested_at",
)


@dataclass(frozen=True)
class Position:
    """Where a record was read: the sink commits ``offset + 1`` per partition."""

    topic: str
    partition: int
    offset: int


def _amount(record: dict) -> tuple[Decimal | None, str | None]:
    for name in AMOUNT_FIELDS:
        money = record.get(name)
        if isinstance(money, dict) and isinstance(money.get("amount"), Decimal):
            return money["amount"], money.get("currency")
    return None, None


def to_row(event_type: str, record: dict, schema_id: int, pos: Position, ingested_at: datetime) -> dict[str, Any]:
    env = record["envelope"]
    identity = env["identity"]
    amount, currency = _amount(record)
    payload = {k: v for k, v in record.items() if k != "envelope"}
    return {
        "event_id": env["event_id"],
        "event_type": env["event_type"] or event_type,
        "domain": (env["event_type"] or event_type).split(".", 1)[0],
        "occurred_at": env["occurred_at"],
        "recorded_at": env["recorded_at"],
        "channel": env["channel"],
        "content": env["content"],
        "initiated_by": env["initiated_by"],
        "source": env["source"],
        "correlation_id": env.get("correlation_id"),
        "causation_id": env.get("causation_id"),
        **{f: identity.get(f) for f in IDENTITY_FIELDS},
        "amount": amount,
        "currency": currency,
        "payload": json.dumps(to_json(payload), sort_keys=True, separators=(",", ":")),
        "schema_id": schema_id,
        "topic": pos.topic,
        "partition": pos.partition,
        "offset": pos.offset,
        "ingested_at": ingested_at,
    }


def first_per_event_id(rows: Iterable[dict], key: str = "event_id") -> list[dict]:
    """Keep the first row of each ``key`` value: a redelivered duplicate never wins over the original."""
    seen: set[str] = set()
    out = []
    for row in rows:
        if row[key] not in seen:
            seen.add(row[key])
            out.append(row)
    return out


def next_offsets(positions: Iterable[Position]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for p in positions:
        key = (p.topic, p.partition)
        out[key] = max(out.get(key, 0), p.offset + 1)
    return out
