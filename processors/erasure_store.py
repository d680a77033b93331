"""Erasure in DuckDB: forget one customer in every table (``erase_customer``), and the audit that
looks for them afterwards (``find_subject``). The erasure log (``erasures``, ``exports``) is ``erasure_log``.

Why in the caller's transaction: the Kafka side deletes the person's data keys and records the
erasure; the DuckDB rows must change together with that record, or not at all. Why idempotent:
an erasure request may be retried after a crash; a second run finds no row that still names the
person and changes nothing. What happens to each table, and why, is ``projections.erasure``.

Why the audit reads every base table from the catalogue rather than a list: a table added later
that copies a personal value is then found by the audit (and fails its test) the day it ships.

The folds' own event copies (``c360_events_v<N>.value``, ``complaint_events.value``) are Avro as
published; they are decoded with their writer schema (``registry``: anything with the schema
registry client's ``get_schema(id)``, as ``AvroCodec`` holds) and written back under the same
schema id without the person, so a later refold of a case or a rebuild of the timeline still reads
them. The caller also drops its in-memory caches of the customer (the 360 sink's profiles).
"""

from __future__ import annotations

import io
import json
import re
import struct
from typing import Iterable

import fastavro
import pyarrow as pa

from touchstream.projections.customer_360 import view_fingerprint
from touchstream.projections.erasure import (HINTS, SKIPPED, Identifier, Subject, anonymised_json,
                                             anonymised_payload, anonymised_profile, anonymised_record,
                                             decision_change, mention_sql, searchable)
from touchstream.projections.identity_normalise import normalise

VERSIONED = re.compile(r"^customer_360_v(\d+)$")
REWRITTEN = pa.schema([("key", pa.string()), ("text", pa.string()), ("fp", pa.string()), ("owned", pa.bool_()),
                       ("data", pa.binary())])


def claims_of(con, customer_ids: Iterable[str]) -> list[Identifier]:
    """Every identifier (kind, normalised value) the 360, in any version, gives one of ``customer_ids``."""
    ids, found = sorted(set(customer_ids)), set()
    for v in _versions(con):
        for (identifier,) in con.execute(f"SELECT identifier FROM c360_identity_v{v} WHERE list_contains(?, customer_id)",
                                         [ids]).fetchall():
            kind, _, value = identifier.partition(":")
            if kind != "erased":
                found.add((kind, value))
    return sorted(found)


class AvroValues:
    """Confluent-framed Avro values rewritten without the person, under their own schema id."""

    def __init__(self, registry):
        self.registry, self._schemas = registry, {}

    def anonymised(self, data: bytes, subject: Subject) -> bytes:
        schema_id = struct.unpack_from(">I", data, 1)[0]
        if schema_id not in self._schemas:
            body = json.loads(self.registry.get_schema(schema_id).schema_str)
            self._schemas[schema_id] = (body, fastavro.parse_schema(body))
        body, parsed = self._schemas[schema_id]
        record = fastavro.schemaless_reader(io.BytesIO(data[5:]), parsed, None)
        out = io.BytesIO(data[:5])
        out.seek(5)
        fastavro.schemaless_writer(out, parsed, anonymised_record(record, body, subject))
        return out.getvalue()


def erase_customer(con, customer_id: str, identifiers: Iterable[Identifier], *, registry,
                   replacement: str | None = None) -> dict[str, int]:
    """Forget the customer in every DuckDB table, inside the caller's transaction; returns the rows
    deleted or changed per table (only tables with changes). ``identifiers``: (kind, normalised value)
    pairs; the 360's own claims of the customer are added to them. ``replacement``: the id that takes
    the person's place (default: a random one)."""
    versions = _versions(con)
    subject = Subject(customer_id, tuple(identifiers), **({"replacement": replacement} if replacement else {}))
    subject = Subject(customer_id, tuple(sorted({*subject.identifiers, *claims_of(con, subject.customer_ids)})),
                      subject.replacement)
    rows = _person_rows(con, subject, versions)
    subject = subject.with_spellings(v for row in rows for v in row[3:])
    values, counts = AvroValues(registry), {}
    counts["interactions"] = _interactions(con, subject, rows)
    for v in versions:
        counts.update(_c360(con, v, subject, values))
    counts.update(_complaints(con, subject, {r[0] for r in rows}, values))
    counts["identity_decisions"] = _decisions(con, subject)
    counts["dead_letters"] = _run(con, "DELETE FROM dead_letters WHERE "
                                  "len(list_filter(?, lambda t: contains(lower(reason), t))) > 0 RETURNING 1",
                                  [list(subject.terms())])
    return {table: n for table, n in sorted(counts.items()) if n}


def find_subject(con, customer_id: str, identifiers: Iterable[Identifier]) -> dict[str, int]:
    """Rows per base table that still hold the customer id or an identifier's value in readable form
    (any text, JSON, byte, list or struct column, case-insensitively); only tables with such rows."""
    terms = list(Subject(customer_id, tuple(identifiers)).terms())
    columns: dict[str, list[str]] = {}
    for table, column, dtype in con.execute(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_catalog, table_schema, table_name) "
            "WHERE t.table_type = 'BASE TABLE' AND c.table_catalog = current_database() "
            "AND c.table_schema = 'main' ORDER BY c.table_name, c.ordinal_position").fetchall():
        if table not in SKIPPED and searchable(dtype):
            columns.setdefault(table, []).append(column)
    found = {t: con.execute(mention_sql(t, cs, len(terms)), terms).fetchone()[0] for t, cs in columns.items()}
    return {t: n for t, n in sorted(found.items()) if n}


def base_tables(con) -> list[str]:
    """Every base table of the database's main schema (what ``find_subject`` must cover)."""
    return [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "AND table_catalog = current_database() AND table_schema = 'main' ORDER BY 1").fetchall()]


# -- the steps ----------------------------------------------------------------------------------------
def _run(con, sql: str, params: list) -> int:
    return len(con.execute(sql, params).fetchall())


def _versions(con) -> list[int]:
    return sorted(int(m.group(1)) for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
                  if (m := VERSIONED.match(t)))



def _person_rows(con, subject: Subject, versions: list[int]) -> list[tuple]:
    """(event_id, event_type, payload, *hints) of the interactions that are the person's: their customer
    ids, events the 360 files under their identifiers, or one of their identifiers as a hint."""
    by_kind = {k: [v for kk, v in subject.identifiers if kk == k] for k in HINTS}
    by_kind["phone"] = _phone_spellings(con, by_kind["phone"])
    anchored = " UNION ALL ".join(f"SELECT event_id FROM c360_events_v{v} WHERE list_contains($anchors, anchor)"
                                  for v in versions) or "SELECT NULL"
    hints = " OR ".join(f"list_contains(${k}, {'lower(trim(email))' if k == 'email' else f'trim({k})'})"
                        for k in HINTS)
    return con.execute(
        f"SELECT event_id, event_type, payload, {', '.join(HINTS)} FROM interactions "
        f"WHERE list_contains($ids, customer_id) OR event_id IN ({anchored}) OR {hints}",
        {"ids": list(subject.customer_ids), **({"anchors": list(subject.anchors)} if versions else {}),
         **by_kind}).fetchall()   # a store without the 360 (the interaction log alone) has no anchors to match


def _phone_spellings(con, phones: list[str]) -> list[str]:
    """The log's spellings of the person's phone numbers (trimmed): those ending in the same digits that
    normalise, as identity resolution does, to one of them."""
    ends = sorted({p[-6:] for p in phones if len(p) >= 6})
    if not ends:
        return list(phones)
    written = con.execute("SELECT DISTINCT trim(phone) FROM interactions WHERE list_contains(?, "
                          "right(regexp_replace(phone, '[^0-9]', '', 'g'), 6))", [ends]).fetchall()
    return sorted({*phones, *(w for (w,) in written if getattr(normalise("phone", w)[0], "value", None) in phones)})


def _rewrite(con, sql: str, rows: list[dict]) -> int:
    """Run ``sql``, an UPDATE reading ``rows`` as ``_erased`` (``REWRITTEN``); returns how many rows."""
    if not rows:
        return 0
    con.register("_erased", pa.Table.from_pylist(rows, schema=REWRITTEN))
    try:
        con.execute(sql)
    finally:
        con.unregister("_erased")
    return len(rows)


def _interactions(con, subject: Subject, rows: list[tuple]) -> int:
    """The person's interactions keep type, channel, times and amounts: hints and pii payload fields go,
    their customer ids become the tombstone (another customer's id on the row stays)."""
    nulls = ", ".join(f"{h} = NULL" for h in HINTS)
    new = [{"key": r[0], "text": anonymised_payload(r[2], r[1], subject)} for r in rows]
    ids = ", ".join(f"'{c}'" for c in (c.replace("'", "''") for c in subject.customer_ids))
    return _rewrite(con, f"UPDATE interactions SET customer_id = CASE WHEN customer_id IN ({ids}) "
                    f"THEN '{subject.replacement}' ELSE customer_id END, {nulls}, "
                    "payload = e.text FROM _erased e WHERE interactions.event_id = e.key", new)


def _c360(con, v: int, subject: Subject, values: AvroValues) -> dict[str, int]:
    """One version of the customer-360: events re-anchored and rewritten, claims replaced by one tombstone
    claim, the summary row anonymised under the tombstone, the cached fold state deleted."""
    anchors, ids, tomb = list(subject.anchors), list(subject.customer_ids), subject.replacement
    events = con.execute(f"SELECT event_id, value FROM c360_events_v{v} WHERE list_contains(?, anchor)",
                         [anchors]).fetchall()
    new = [{"key": e, "data": values.anonymised(value, subject)} for e, value in events]
    counts = {f"c360_events_v{v}": _rewrite(
        con, f"UPDATE c360_events_v{v} SET anchor = '{subject.tombstone_anchor}', value = e.data "
        "FROM _erased e WHERE event_id = e.key", new)}
    seqs = con.execute(f"DELETE FROM c360_identity_v{v} WHERE list_contains(?, identifier) "
                       "OR list_contains(?, customer_id) RETURNING seq", [anchors, ids]).fetchall()
    counts[f"c360_identity_v{v}"] = len(seqs)
    if events:
        con.execute(f"INSERT INTO c360_identity_v{v} VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    [subject.tombstone_anchor, tomb, max((s for (s,) in seqs), default=0)])
    table, changed = f"customer_360_v{v}", 0
    for old, profile in con.execute(f"SELECT customer_id, profile FROM {table} WHERE list_contains(?, customer_id)",
                                    [ids]).fetchall():
        text = anonymised_profile(profile, subject)
        con.execute(
            f"INSERT INTO {table} SELECT * REPLACE ($tomb AS customer_id, $text AS profile, $fp AS fingerprint, "
            "list_transform(finding_rows, lambda f: struct_pack(finding_id := replace(f.finding_id, $old, $tomb), "
            "kind := f.kind, raised_at := f.raised_at, subject := f.subject, channels := f.channels, "
            f"evidence := f.evidence)) AS finding_rows) FROM {table} WHERE customer_id = $old",
            {"tomb": tomb, "text": text, "fp": view_fingerprint(text), "old": old})
        con.execute(f"DELETE FROM {table} WHERE customer_id = ?", [old])
        changed += 1
    counts[table] = changed
    counts[f"c360_state_v{v}"] = _run(con, f"DELETE FROM c360_state_v{v} WHERE list_contains(?, customer_id) "
                                      "RETURNING 1", [ids]) if _exists(con, f"c360_state_v{v}") else 0
    return counts


def _exists(con, table: str) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchone()[0] > 0


def _complaints(con, subject: Subject, events: set[str], values: AvroValues) -> dict[str, int]:
    """The person's cases keep their state and metrics under the tombstone; their events' Avro copies and
    the case views lose the person; their identifiers leave the case hints."""
    if not _exists(con, "complaint_cases"):
        return {}
    anchors, ids = list(subject.anchors), list(subject.customer_ids)
    cases = con.execute(
        "SELECT case_id, case_view, list_contains($ids, customer_id) OR (customer_id IS NULL AND "
        "list_contains($anchors, customer_anchor)) FROM complaint_cases WHERE list_contains($ids, customer_id) "
        "OR list_contains($anchors, customer_anchor) OR case_id IN "
        "(SELECT case_id FROM complaint_case_hints WHERE list_contains($anchors, identifier))",
        {"ids": ids, "anchors": anchors}).fetchall()
    owned = sorted(c for c, _, mine in cases if mine)
    new = [{"key": c, "text": (text := anonymised_json(view, subject)), "fp": view_fingerprint(text), "owned": mine}
           for c, view, mine in cases]
    counts = {"complaint_cases": _rewrite(
        con, "UPDATE complaint_cases SET case_view = e.text, fingerprint = e.fp, "
        f"customer_id = CASE WHEN e.owned THEN '{subject.replacement}' ELSE customer_id END, "
        f"customer_anchor = CASE WHEN e.owned THEN '{subject.tombstone_anchor}' ELSE customer_anchor END "
        "FROM _erased e WHERE case_id = e.key", new)}
    stored = con.execute("SELECT event_id, value FROM complaint_events WHERE list_contains(?, case_id) "
                         "OR list_contains(?, event_id)", [owned, sorted(events)]).fetchall()
    new = [{"key": e, "data": values.anonymised(value, subject)} for e, value in stored]
    counts["complaint_events"] = _rewrite(con, "UPDATE complaint_events SET value = e.data FROM _erased e "
                                          "WHERE event_id = e.key", new)
    counts["complaint_case_hints"] = _run(con, "DELETE FROM complaint_case_hints WHERE list_contains(?, identifier) "
                                          "RETURNING 1", [anchors])
    for case in owned:
        con.execute("INSERT INTO complaint_case_hints VALUES (?, ?, 0) ON CONFLICT DO NOTHING",
                    [case, subject.tombstone_anchor])
    return counts


def _decisions(con, subject: Subject) -> int:
    """Identity decisions only about the person are deleted; one that also names someone else loses the
    person's ids and identifiers."""
    if not _exists(con, "identity_decisions"):
        return 0
    rows = con.execute(
        "SELECT decision_id, identifiers, customer_id, from_ids, into_ids FROM identity_decisions "
        "WHERE list_contains($ids, customer_id) OR list_has_any($ids, from_ids) OR list_has_any($ids, into_ids) "
        "OR list_has_any($anchors, list_transform(identifiers, lambda i: i.kind || ':' || i.value))",
        {"ids": list(subject.customer_ids), "anchors": list(subject.anchors)}).fetchall()
    changed = 0
    for decision_id, identifiers, customer, from_ids, into_ids in rows:
        change = decision_change(identifiers, customer, from_ids, into_ids, subject)
        if change == "delete":
            con.execute("DELETE FROM identity_decisions WHERE decision_id = ?", [decision_id])
        elif change is not None:
            con.execute("UPDATE identity_decisions SET identifiers = $identifiers, customer_id = $customer_id, "
                        "from_ids = $from_ids, into_ids = $into_ids WHERE decision_id = $id",
                        {**change, "id": decision_id})
        changed += change is not None
    return changed
