"""Erasure in DuckDB: which tables hold a customer's personal data, and what forgetting does to each.

Why two treatments: a row that only describes the person (an identifier and its owner, the fold's
cache of their state, an identity decision about their identifiers, a dead letter quoting them) is
deleted; a row that carries counts and KPIs (an interaction, a complaint case, the customer's summary
row the customer-level views count, the folds' own event copies the timeline joins through) is kept
with no person behind it. Kept rows lose their identity hints, every field the contracts mark
``"pii": true`` (nulled, as retention nulls free text), and every other mention of the person's
values; the person's customer ids become one random ``erased-<hex>`` id (``tombstone``), the same in
every table of one erasure and linked to nothing, so the views' joins, counts and KPIs come out as
before while no one can be found behind them.

Why the random id is nowhere stored with the customer id: it would be a key back to the person.
Why identifiers are matched as identity resolution stores them (``kind``, normalised ``value``):
that is how every projection stores them; the log's raw spellings of the person's hints are added
as further values once their rows are found (``Subject.with_spellings``).

Pure: no I/O. The DuckDB side is ``processors.erasure_store``.
"""

from __future__ import annotations

import json
import re
import secrets
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Iterable

from touchstream.privacy.pii_plan import plan, transform
from touchstream.schemas import load_latest
from touchstream.serving.export_pii import blank, payload_paths, profile_paths

Identifier = tuple[str, str]   # (kind, normalised value), as customer_identifiers holds them
HINTS = ("email", "phone", "cookie_id", "device_id", "loyalty_card", "account_number")   # interactions' columns
MIN_TERM = 4   # shorter values are not searched for in text: they would match unrelated words
# Per table (``_v<N>``: every version of a versioned table): what erasure does, and why.
INVENTORY = {
    "interactions": "anonymised: hints nulled, pii payload fields nulled, customer id -> tombstone; counts kept",
    "c360_events_v<N>": "anonymised: anchor -> tombstone, Avro value re-encoded without pii; the timeline's joins kept",
    "c360_identity_v<N>": "deleted: the person's identifiers; one tombstone claim owns the re-anchored events",
    "customer_360_v<N>": "anonymised: id -> tombstone, profile without identifiers/answers/pii; customer counts kept",
    "c360_state_v<N>": "deleted: the fold's cached state of the customer",
    "complaint_cases": "anonymised: customer -> tombstone, case_view scrubbed; state, SLA and metrics kept",
    "complaint_events": "anonymised: Avro value re-encoded without pii (the case refolds from it)",
    "complaint_case_hints": "deleted: the person's identifiers; one tombstone hint per case",
    "identity_decisions": "deleted when only about the person, else the person's ids/identifiers stripped",
    "dead_letters": "deleted when the reason quotes the person",
}
# Base tables find_subject does not search, and why.
SKIPPED = {
    "erasures": "the erasure log: names the customer id whose erasure it records, and no other value",
}


def tombstone() -> str:
    """A fresh customer id for an erased person: random, so nothing leads back from it."""
    return f"erased-{secrets.token_hex(10)}"


def anchor(kind: str, value: str) -> str:
    """An identifier as the 360 and the complaint tables key it (``kind:value``)."""
    return f"{kind}:{value}"


@dataclass(frozen=True)
class Subject:
    """The person being erased: their canonical id, their identifiers, and the id that replaces them."""

    customer_id: str
    identifiers: tuple[Identifier, ...]
    replacement: str = field(default_factory=tombstone)
    spellings: tuple[str, ...] = ()   # raw forms of their hints found in the log (``with_spellings``)

    @property
    def customer_ids(self) -> tuple[str, ...]:
        """Every customer id of the person (a merged customer has several): all become the tombstone."""
        ids = {self.customer_id, *(v for k, v in self.identifiers if k == "customer_id")}
        return tuple(sorted(ids))

    @property
    def anchors(self) -> tuple[str, ...]:
        """``kind:value`` of each identifier and customer id, and ``erased:<id>``: what the 360 sink keys
        an event by when its identifier's key is already gone (``processors.customer_360``)."""
        out = {anchor(k, v) for k, v in self.identifiers}
        out |= {anchor("customer_id", c) for c in self.customer_ids} | {f"erased:{c}" for c in self.customer_ids}
        return tuple(sorted(out))

    @property
    def tombstone_anchor(self) -> str:
        return anchor("customer_id", self.replacement)

    def terms(self) -> tuple[str, ...]:
        """Lower-cased values whose presence in a row means the person is still readable there."""
        values = {*self.customer_ids, *(v for _k, v in self.identifiers), *self.spellings}
        return tuple(sorted({v.strip().lower() for v in values if len(v.strip()) >= MIN_TERM}))

    def with_spellings(self, values: Iterable[str | None]) -> "Subject":
        found = {v for v in values if v} | set(self.spellings)
        return Subject(self.customer_id, self.identifiers, self.replacement, tuple(sorted(found)))

    def owns_identifier(self, kind: str, value: str) -> bool:
        return (kind, value) in set(self.identifiers) or (kind == "customer_id" and value in self.customer_ids)


def _pattern(subject: Subject) -> re.Pattern | None:
    terms = sorted(subject.terms(), key=len, reverse=True)   # longest first: an id inside another is replaced whole
    return re.compile("|".join(map(re.escape, terms)), re.IGNORECASE) if terms else None


def scrub_text(text: str, subject: Subject, pattern: re.Pattern | None = None) -> str:
    """``text`` with every mention of the person replaced: a customer id by the tombstone, any other
    value by nothing. Case-insensitive, as e-mail addresses are written in any case."""
    pattern = pattern if pattern is not None else _pattern(subject)
    if pattern is None:
        return text
    ids = {c.lower() for c in subject.customer_ids}
    return pattern.sub(lambda m: subject.replacement if m.group(0).lower() in ids else "", text)


def scrub_value(value, subject: Subject, pattern: re.Pattern | None = None):
    """Parsed JSON or a decoded Avro record with ``scrub_text`` on every string (keys kept)."""
    pattern = pattern if pattern is not None else _pattern(subject)
    if isinstance(value, str):
        return scrub_text(value, subject, pattern)
    if isinstance(value, dict):
        return {k: scrub_value(v, subject, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v, subject, pattern) for v in value]
    return value


def _dumps(value) -> str:
    """As the interaction log and the retention writer write JSON: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def anonymised_payload(text: str, event_type: str, subject: Subject) -> str:
    """An interaction's payload without its pii fields (nulled, keys kept) and without the person's values;
    an event type the catalogue does not know cannot be judged field by field, so it keeps nothing."""
    paths = payload_paths().get(event_type)
    if paths is None:
        return "{}"
    value = json.loads(text)
    node = _payload_plan(event_type)
    if node is not None:   # as an erased value decodes: None, or "" where the schema has no null (replay == live)
        value = transform(value, node, lambda _v, leaf, _p, _n: None if leaf.nullable else "")
    return _dumps(scrub_value(value, subject))


@lru_cache(maxsize=None)
def _payload_plan(event_type: str):
    """The event type's personal fields (its payload is the record without its envelope)."""
    schema = load_latest().get(event_type)
    return None if schema is None else plan(schema.schema)


def anonymised_profile(text: str, subject: Subject) -> str:
    """A 360 profile without identifiers, answers' text and other pii (the ``Customer360`` contract's pii
    fields), and with the tombstone for the customer id: what the customer-level views still count."""
    value = json.loads(text)
    for path in profile_paths():
        blank(value, path)
    if isinstance(value.get("identifiers"), list):
        value["identifiers"] = []
    return _dumps(scrub_value(value, subject))


def anonymised_json(text: str, subject: Subject) -> str:
    """JSON with the person's values replaced (a case view: ids, codes, times and metrics otherwise)."""
    return _dumps(scrub_value(json.loads(text), subject))


def anonymised_record(record: dict, schema: dict, subject: Subject) -> dict:
    """A decoded Avro record (its writer ``schema``) without its pii fields (None, or "" where the schema
    has no null, as an erased key reads) and without the person's values elsewhere."""
    node = plan(schema)
    if node is not None:
        record = transform(record, node, lambda _v, leaf, _p, _n: None if leaf.nullable else "")
    return scrub_value(record, subject)


def decision_change(identifiers: list[dict], customer_id: str | None, from_ids: list[str], into_ids: list[str],
                    subject: Subject) -> str | dict | None:
    """What erasure does to one identity decision: None (not about the person), "delete" (only about the
    person), or the columns to set (it also names someone else: the person's part is stripped)."""
    ours = set(subject.customer_ids)
    theirs = [i for i in identifiers if not subject.owns_identifier(i["kind"], i["value"])]
    names = {customer_id, *from_ids, *into_ids} - {None}
    if len(theirs) == len(identifiers) and not names & ours:
        return None
    if not theirs and names <= ours:
        return "delete"

    def swap(ids):
        return sorted({subject.replacement if i in ours else i for i in ids})
    return {"identifiers": theirs, "customer_id": subject.replacement if customer_id in ours else customer_id,
            "from_ids": swap(from_ids), "into_ids": swap(into_ids)}


def searchable(data_type: str) -> bool:
    """A column whose values can hold text: strings, JSON, bytes, and lists, structs or maps of them."""
    return any(t in data_type for t in ("VARCHAR", "JSON", "BLOB"))


def mention_sql(table: str, columns: Iterable[str], terms: int) -> str:
    """Count the rows of ``table`` where any of ``columns``, read as text and lower-cased, contains one of
    ``terms`` values (bound as parameters ``$1``, ``$2``, ...: one per term)."""
    reads = [f'lower(CAST("{c}" AS VARCHAR))' for c in columns]
    hits = " OR ".join(f"contains({r}, ${n + 1})" for r in reads for n in range(terms))
    return f'SELECT count(*) FROM "{table}" WHERE {hits or "false"}'
