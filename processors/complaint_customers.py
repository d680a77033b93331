"""Canonical customer ids for complaint cases, read from the live customer-360's claims.

Why the complaint sink asks the 360 and not identity resolution directly: the 360's
``c360_identity`` table already holds, per identifier, the customer its newest claim
names, in the same DuckDB file, so a case resolves in one query per batch. Why a
reconcile: the complaint sink folds the raw topics, which can run ahead of the 360
(and a merge or an unlink moves identifiers later), so after every 360 commit and
every complaint batch the cases whose anchor now belongs to another customer are
refolded. The rows therefore converge on the 360's final answer whatever the
timing, as a replay does.
"""

from __future__ import annotations

from typing import Iterable

from touchstream.processors.customer_360_lookup import LiveCustomer360


class Customer360Directory:
    """The complaint sink's port to identity: ``owners`` for a batch, ``moved_cases`` for the reconcile."""

    def __init__(self, live: LiveCustomer360):
        self.live = live

    def owners(self, con, identifiers: Iterable[str]) -> dict[str, str]:
        """{identifier: canonical customer id} for the identifiers the 360 knows."""
        return {k: claim.customer_id for k, claim in self.live.store.claims(con, identifiers).items()}

    def moved_cases(self, con) -> list[str]:
        """Cases whose customer the 360 now names otherwise than the row shows: their anchor identifier
        moved to another customer, or the 360 now knows a stronger hint of theirs than the anchor."""
        table = self.live.store.table("c360_identity")
        return [r[0] for r in con.execute(
            f"SELECT c.case_id FROM complaint_cases c JOIN {table} i ON i.identifier = c.customer_anchor "
            "WHERE i.customer_id IS DISTINCT FROM c.customer_id "
            "UNION "
            "SELECT c.case_id FROM complaint_cases c JOIN ("
            f"  SELECT h.case_id, h.identifier, i.customer_id FROM complaint_case_hints h JOIN {table} i "
            "   ON i.identifier = h.identifier "
            "   QUALIFY row_number() OVER (PARTITION BY h.case_id ORDER BY h.strength, h.identifier) = 1"
            ") best ON best.case_id = c.case_id "
            "WHERE best.identifier IS DISTINCT FROM c.customer_anchor "
            "   OR best.customer_id IS DISTINCT FROM c.customer_id").fetchall()]
