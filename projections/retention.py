"""Retention: which data expires, and what an expired event keeps.

Why free text and not identifiers: the contracts mark personal data ``"pii": true``. Identifiers
(e-mail, phone, cookie, card, account, a social handle, the values identity links) tie events to a
customer for as long as the customer exists; forgetting them is erasure's job (issue 17). Free text
(a complaint's description, an e-mail's subject and excerpt, notes, comments, reasons, answers,
message texts, a meeting's location) is what a customer or an agent wrote once: it serves the case
at hand and may not be kept for years, so it expires ``free_text_days`` after the broker received
the event. The field is nulled, not dropped, so readers still see the field exists.

Why the broker's time: a producer could date an event in the past (early expiry) or far ahead
(text kept forever); the broker's append time (``LogAppendTime`` on the raw topics) is the one time
no producer chooses, and a replay from offset 0 meets the same time again, so a rebuild expires
exactly what the live log expired.

Pure: no I/O beyond reading the packaged schemas. The DuckDB side is ``processors.retention_expiry``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import lru_cache

from touchstream.events.envelope import IDENTITY_FIELDS
from touchstream.privacy.pii_plan import KEPT_TEXT
from touchstream.serving.export_pii import blank, payload_paths

Path = tuple[str, ...]
# pii fields that are identifiers, not free text: the identity hints, the identifier records' values
# (identity.*) and a customer's handle on a social platform.
IDENTIFIER_FIELDS = frozenset({*IDENTITY_FIELDS, "value", *KEPT_TEXT})
# Copies of free text in DuckDB that expiry does not reach yet, and why (the report lists them).
NOT_REACHED = {
    "complaint_events.value": "the complaint fold's own copy of each event, as published (sealed) Avro bytes: "
                              "its free text expires with its month's key, not row by row",
    "c360_events_<v>.value": "the customer-360 fold's own copy of each event, as published (sealed) Avro bytes: "
                             "its free text expires with its month's key, not row by row",
    "customer_360_<v>.profile": "answers to golden questions and surveys (refolded from c360_events)",
}


@lru_cache(maxsize=1)
def free_text_paths() -> dict[str, frozenset[Path]]:
    """Per event type, the payload paths of its free text: pii fields that are not identifiers."""
    out = {t: frozenset(p for p in paths if not IDENTIFIER_FIELDS & set(p)) for t, paths in payload_paths().items()}
    return {t: paths for t, paths in out.items() if paths}


def expired(received_ms: int | None, now_ms: int, keep_ms: int | None) -> bool:
    """Received more than ``keep_ms`` before ``now_ms`` (None keeps; an unknown time is not judged)."""
    return keep_ms is not None and received_ms is not None and received_ms < now_ms - keep_ms


def without_text(record: dict, paths: frozenset[Path]) -> dict:
    """A copy of a decoded event with the free text at ``paths`` nulled; ``record`` is left alone (other
    sinks share it)."""
    out = dict(record)
    for path in paths:
        if len(path) > 1 and out.get(path[0]) is not None:
            out[path[0]] = copy.deepcopy(out[path[0]])
        blank(out, path)
    return out


def payload_without_text(text: str, paths: frozenset[Path]) -> str | None:
    """The interaction log's payload JSON with the free text at ``paths`` nulled, written as the log writes
    it (``interaction_log.to_row``: sorted keys, no spaces), so a row expired later equals one expired on
    write; None when there was nothing to null (expiry is idempotent)."""
    value = json.loads(text)
    before = json.dumps(value, sort_keys=True, separators=(",", ":"))
    for path in paths:
        blank(value, path)
    after = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return None if after == before else after


def has_text_sql(paths_by_type: dict[str, frozenset[Path]]) -> str:
    """A WHERE condition over ``interactions`` true for rows that still hold free text of their type
    (a nulled field reads as NULL), so repeated runs read only what is left to expire."""
    by_fields: dict[tuple[str, ...], list[str]] = {}
    for event_type, paths in sorted(paths_by_type.items()):
        by_fields.setdefault(tuple(sorted({p[0] for p in paths})), []).append(event_type)
    terms = []
    for fields, types in by_fields.items():
        listed = ", ".join(_quote(t) for t in types)
        present = " OR ".join(f"json_extract_string(payload, {_quote('$.' + f)}) IS NOT NULL" for f in fields)
        terms.append(f"(event_type IN ({listed}) AND ({present}))")
    return "(" + " OR ".join(terms) + ")" if terms else "false"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class ExpiryReport:
    """What one expiry run removed (or, without ``applied``, would remove)."""

    applied: bool
    dead_letters_days: float
    free_text_days: float
    dead_letters_deleted: int = 0
    payloads_stripped: int = 0
    by_event_type: dict[str, int] = field(default_factory=dict)
    text_keys: int = 0   # months' free-text keys deleted (or due): that text opens on no topic any more

    def as_dict(self) -> dict:
        return {"applied": self.applied, "dead_letters_days": self.dead_letters_days,
                "free_text_days": self.free_text_days, "dead_letters_deleted": self.dead_letters_deleted,
                "payloads_stripped": self.payloads_stripped, "by_event_type": dict(sorted(self.by_event_type.items())),
                "text_keys": self.text_keys,
                "not_reached": NOT_REACHED}
