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

# Payload fields the analyst views read of millions of rows (cem_touchpoints: calls, chats, replies),
# copied to typed columns so that no view parses the payload JSON per row. Each is NULL where the
# event's payload has no such field, so a column is as sparse as its events and a view that filters
# on it reads little (a dense column, such as every e-mail's message_id, would cost a full read).
THREAD_FIELDS = ("call_id", "conversation_id", "in_reply_to", "direction", "sender")
SECONDS_FIELDS = ("wait_seconds", "response_seconds")
# received_message_id: the id of a message the company received from a customer (these types; the
# first of MESSAGE_ID_FIELDS its payload has), which a reply's in_reply_to names.
RECEIVED_MESSAGES = frozenset({"email.received", "sms.received", "postal.mail_received", "social.comment_posted",
                               "social.review_posted"})
MESSAGE_ID_FIELDS = ("message_id", "mail_id", "comment_id", "review_id")
TYPED_COLUMNS = (*THREAD_FIELDS, *SECONDS_FIELDS, "received_message_id")

COLUMNS = (
    "event_id", "event_type", "domain", "occurred_at", "recorded_at", "channel", "content",
    "initiated_by", "source", "correlation_id", "causation_id", *IDENTITY_FIELDS,
    "amount", "currency", "payload", "schema_id", "topic", "partition", "offset", "ingested_at",
    *TYPED_COLUMNS,   # last: an older table gets them by ALTER TABLE ... ADD COLUMN (interaction_log.sql)
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


def _text(value: Any) -> str | None:
    """An id or enum symbol as text; anything else (no raw contract has one there) as NULL."""
    return value if isinstance(value, str) else None


def _typed(event_type: str, record: dict) -> dict[str, Any]:
    """The TYPED_COLUMNS of one event (see above)."""
    typed: dict[str, Any] = {f: _text(record.get(f)) for f in THREAD_FIELDS}
    for name in SECONDS_FIELDS:
        value = record.get(name)
        typed[name] = None if value is None else float(value)
    typed["received_message_id"] = next((_text(record[f]) for f in MESSAGE_ID_FIELDS if record.get(f) is not None),
                                        None) if event_type in RECEIVED_MESSAGES else None
    return typed


def to_row(event_type: str, record: dict, schema_id: int, pos: Position, ingested_at: datetime) -> dict[str, Any]:
    env = record["envelope"]
    identity = env["identity"]
    amount, currency = _amount(record)
    payload = {k: v for k, v in record.items() if k != "envelope"}
    event_type = env["event_type"] or event_type
    return {
        "event_id": env["event_id"],
        "event_type": event_type,
        "domain": event_type.split(".", 1)[0],
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
        **_typed(event_type, record),
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
