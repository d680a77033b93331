"""DuckDB storage of the customer-360: the fold's event store, identity claims and the read tables.

Shares the serving process's DuckDB file and writer lock (``DuckDBStore``). Every
table is suffixed with a version so a rebuild can fill a fresh version beside the
live one; ``activate`` points the analysts' views at a version in one transaction.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Iterable

import pyarrow as pa

from touchstream.projections.customer_360_routing import Claim
from touchstream.projections.duckdb_store import DuckDBStore, insert_rows, keyed, load_sql
from touchstream.projections.identity_normalise import KINDS, normalise

VERSIONS_DDL = """CREATE TABLE IF NOT EXISTS projection_versions (
    name VARCHAR PRIMARY KEY, version INTEGER NOT NULL, switched_at TIMESTAMPTZ)"""
EVENTS = pa.schema([("event_id", pa.string()), ("anchor", pa.string()),
                    ("occurred_at", pa.timestamp("ms", tz="UTC")), ("value", pa.binary())])
CLAIMS = pa.schema([("identifier", pa.string()), ("customer_id", pa.string()), ("seq", pa.uint64())])
CHANNEL = pa.struct([
    ("channel", pa.string()), ("contacts", pa.int32()), ("customer_initiated", pa.int32()),
    ("company_initiated", pa.int32()), ("last_contact_at", pa.timestamp("ms", tz="UTC")), ("pmp_rank", pa.int32()),
    ("pmp_score", pa.float64()), ("response_rate", pa.float64()),
])
FINDING = pa.struct([
    ("finding_id", pa.string()), ("kind", pa.string()), ("raised_at", pa.timestamp("ms", tz="UTC")),
    ("subject", pa.string()), ("channels", pa.list_(pa.string())), ("evidence", pa.list_(pa.string())),
])
SUMMARY = pa.schema([
    ("customer_id", pa.string()), ("events", pa.int32()), ("first_seen", pa.timestamp("ms", tz="UTC")),
    ("last_seen", pa.timestamp("ms", tz="UTC")), ("journey_stage", pa.string()), ("preferred_channel", pa.string()),
    ("identifiers", pa.int32()), ("channels", pa.int32()), ("open_complaints", pa.int32()),
    ("last_csat", pa.float64()), ("last_nps", pa.float64()), ("findings", pa.int32()), ("profile", pa.string()),
    ("fingerprint", pa.string()), ("updated_at", pa.timestamp("ms", tz="UTC")),
    ("channel_rows", pa.list_(CHANNEL)), ("finding_rows", pa.list_(FINDING)),
    ("first_sale_at", pa.timestamp("ms", tz="UTC")), ("known", pa.bool_()), ("company_contacts", pa.int32()),
    ("customer_contacts", pa.int32()), ("company_channels", pa.int32()), ("overload_findings", pa.int32()),
])
NAME = "customer_360"


def sink_name(version: int) -> str:
    return f"{NAME}_v{version}"


class Customer360Store:
    def __init__(self, db: DuckDBStore, version: int | None = None):
        self.db = db
        db.execute_script(VERSIONS_DDL)
        active = self.active_version()
        self.version = version or active or 1
        db.execute_script(load_sql(NAME).replace("{v}", f"v{self.version}"))
        if active is None:
            self.activate(self.version)
        elif active == self.version:   # a file from an older release may lack views added since (OR REPLACE)
            db.execute_script(_views(active))

    @property
    def sink(self) -> str:
        return sink_name(self.version)

    def table(self, table: str) -> str:
        """This version's name of a table (``c360_identity`` -> ``c360_identity_v3``), for other sinks' reads."""
        return self._t(table)

    def _t(self, table: str) -> str:
        return f"{table}_v{self.version}"

    def active_version(self) -> int | None:
        cur = self.db.cursor()
        try:
            row = cur.execute("SELECT version FROM projection_versions WHERE name = ?", [NAME]).fetchone()
        finally:
            cur.close()
        return row[0] if row else None

    def versions(self) -> list[int]:
        """Every version whose tables exist (the active one, and a rebuild's while it runs)."""
        cur = self.db.cursor()
        try:
            rows = cur.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'customer\\_360\\_v%' "
                               "ESCAPE '\\'").fetchall()
        finally:
            cur.close()
        return sorted(int(name.rsplit("_v", 1)[1]) for (name,) in rows)

    def differences(self, old: "Customer360Store") -> tuple[list[tuple[str, str]], list[str], set[str]]:
        """Against an older version: (customer, profile) new or changed, customers gone, old finding ids."""
        new_t, old_t = self._t("customer_360"), old._t("customer_360")
        cur = self.db.cursor()
        try:
            changed = cur.execute(
                f"SELECT n.customer_id, n.profile FROM {new_t} n LEFT JOIN {old_t} o USING (customer_id) "
                "WHERE o.fingerprint IS DISTINCT FROM n.fingerprint ORDER BY n.customer_id").fetchall()
            gone = [r[0] for r in cur.execute(
                f"SELECT customer_id FROM {old_t} ANTI JOIN {new_t} USING (customer_id) ORDER BY 1").fetchall()]
            findings = {r[0] for r in cur.execute(f"SELECT unnest(finding_rows).finding_id FROM {old_t}").fetchall()}
        finally:
            cur.close()
        return changed, gone, findings

    def activate(self, version: int) -> None:
        """Point the analysts' views at ``version``, atomically (readers see the old or the new, never a mix)."""
        with self.db.transaction() as con:
            con.execute(_views(version))
            con.execute("INSERT INTO projection_versions VALUES (?, ?, now()) ON CONFLICT DO UPDATE SET "
                        "version = excluded.version, switched_at = excluded.switched_at", [NAME, version])

    def drop(self) -> None:
        """Remove this version's tables (a retired or abandoned version)."""
        with self.db.transaction() as con:
            for table in ("customer_360", "c360_identity", "c360_events", "c360_state"):   # c360_state: FoldStates
                con.execute(f"DROP TABLE IF EXISTS {self._t(table)}")
            con.execute("DELETE FROM sink_offsets WHERE sink = ?", [self.sink])

    # -- inside the sink's transaction ---------------------------------------------------------
    def claims(self, con, identifiers: Iterable[str]) -> dict[str, Claim]:
        rows = keyed(con, f"SELECT i.identifier, i.customer_id, i.seq FROM {self._t('c360_identity')} i "
                        "JOIN _keys ON i.identifier = _keys.k", identifiers)
        return {r[0]: Claim(*r) for r in rows}

    def history(self, con, customers: Iterable[str]) -> list[tuple[str, str, bytes]]:
        """(customer, event id, Avro value) of every stored event whose anchor the customers hold now."""
        return keyed(con, f"SELECT m.customer_id, e.event_id, e.value FROM {self._t('c360_events')} e "
                        f"JOIN {self._t('c360_identity')} m ON m.identifier = e.anchor "
                        "JOIN _keys ON m.customer_id = _keys.k ORDER BY e.occurred_at, e.event_id", customers)

    def existing(self, con, customers: Iterable[str]) -> set[str]:
        """Those of ``customers`` that have a row: every customer with committed events has one (its
        events and its row are written in one transaction), so the others have no history to refold."""
        return {r[0] for r in keyed(con, f"SELECT c.customer_id FROM {self._t('customer_360')} c "
                                         "JOIN _keys ON c.customer_id = _keys.k", customers)}

    def finding_ids(self, con, customers: Iterable[str]) -> set[str]:
        rows = keyed(con, f"SELECT unnest(c.finding_rows).finding_id FROM {self._t('customer_360')} c "
                        "JOIN _keys ON c.customer_id = _keys.k", customers)
        return {r[0] for r in rows}

    def add_events(self, con, rows: list[dict]) -> set[str]:
        """Store events; returns the ids that were new (a redelivered event is already there)."""
        return {r[0] for r in insert_rows(con, self._t("c360_events"), rows, EVENTS,
                                          "ON CONFLICT DO NOTHING RETURNING event_id")}

    def take_events(self, con, anchors: Iterable[str]) -> list[tuple[str, str, bytes]]:
        """Remove and return (event id, anchor, Avro value) of the events stored under ``anchors``: a fold
        worker hands them to the partition of the customer that holds those identifiers now."""
        rows = keyed(con, f"SELECT e.event_id, e.anchor, e.value FROM {self._t('c360_events')} e "
                          "JOIN _keys ON e.anchor = _keys.k ORDER BY e.event_id", anchors)
        if rows:
            keyed(con, f"DELETE FROM {self._t('c360_events')} WHERE anchor IN (SELECT k FROM _keys)", anchors)
        return rows

    def put_claims(self, con, claims: Iterable[Claim]) -> None:
        rows = [c._asdict() for c in claims]
        insert_rows(con, self._t("c360_identity"), rows, CLAIMS,
                "ON CONFLICT DO UPDATE SET customer_id = excluded.customer_id, seq = excluded.seq")

    def put_profiles(self, con, summaries: list[dict], gone: Iterable[str]) -> None:
        """Upsert the customers in ``summaries``; delete those in ``gone`` (merged away)."""
        insert_rows(con, self._t("customer_360"), summaries, SUMMARY,
                "ON CONFLICT DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in SUMMARY.names[1:]))
        for customer in gone:
            con.execute(f"DELETE FROM {self._t('customer_360')} WHERE customer_id = ?", [customer])

    # -- reads (their own cursors) ----------------------------------------------------------------
    def resolve(self, text: str) -> str | None:
        """A customer id from a customer id, any identifier as written (normalised like events:
        e-mail case, phone to E.164), or ``kind:value``. A customer id wins over an identifier.
        Point queries by primary key: DuckDB answers those from its index, joins it would scan."""
        cur = self.db.cursor()
        try:
            if cur.execute(f"SELECT 1 FROM {self._t('customer_360')} WHERE customer_id = ?", [text]).fetchone():
                return text
            for candidate in candidates(text):
                row = cur.execute(f"SELECT customer_id FROM {self._t('c360_identity')} WHERE identifier = ?",
                                  [candidate]).fetchone()
                if row:
                    return row[0]
            return None
        finally:
            cur.close()

    def profile(self, customer_id: str) -> dict | None:
        cur = self.db.cursor()
        try:
            row = cur.execute(f"SELECT profile FROM {self._t('customer_360')} WHERE customer_id = ?",
                              [customer_id]).fetchone()
        finally:
            cur.close()
        return json.loads(row[0]) if row else None

    def lookup(self, text: str) -> dict | None:
        customer = self.resolve(text.strip())
        return self.profile(customer) if customer else None

    def timeline(self, customer_id: str, limit: int = 200, newest_first: bool = True) -> list[dict]:
        """The touchmap: every interaction of the customer on any channel, from the interaction log
        (the whole history, not only the profile's last N), whatever identifier each event carried."""
        order = "DESC" if newest_first else "ASC"
        cur = self.db.cursor()
        try:
            cur.execute(
                "SELECT i.occurred_at, i.channel, i.content, i.initiated_by, i.event_type, i.event_id, "
                "i.correlation_id, i.amount, i.currency "
                f"FROM {self._t('c360_identity')} m JOIN {self._t('c360_events')} e ON e.anchor = m.identifier "
                "JOIN interactions i ON i.event_id = e.event_id WHERE m.customer_id = ? "
                f"ORDER BY i.occurred_at {order}, i.event_id {order} LIMIT ?", [customer_id, limit])
            columns = [d[0] for d in cur.description]
            return [dict(zip(columns, row)) for row in cur.fetchall()]
        finally:
            cur.close()

    def fingerprints(self) -> dict[str, str]:
        cur = self.db.cursor()
        try:
            return dict(cur.execute(f"SELECT customer_id, fingerprint FROM {self._t('customer_360')}").fetchall())
        finally:
            cur.close()


def _views(version: int) -> str:
    """The analysts' views of the customer-360, pointing at ``version``."""
    return load_sql(f"{NAME}_views").replace("{v}", f"v{version}")


def candidates(text: str) -> list[str]:
    """Identifiers ``text`` may be, normalised as events are: "kind:value" first, then by its look."""
    kind, sep, value = text.partition(":")
    if sep and kind in KINDS:
        node, _ = normalise(kind, value)
        return [str(node)] if node else []
    kinds = ["email"] if "@" in text else ["phone"] if text.lstrip("+").replace(" ", "").replace("-", "").isdigit() else []
    kinds += [k for k in ("customer_id", "loyalty_card", "account_number", "cookie_id", "device_id") if k not in kinds]
    out = []
    for k in kinds:
        node, _ = normalise(k, text)
        if node is not None:
            out.append(str(node))
    return out


def utc(moment: str | datetime | None) -> datetime | None:
    return datetime.fromisoformat(moment) if isinstance(moment, str) else moment
