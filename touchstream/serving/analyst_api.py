"""The analysts' read endpoints of the query service: a customer's touchmap, complaint lists, KPI views.

Why named endpoints next to ``POST /sql``: a service or a dashboard should not have
to know table names, joins and filters to ask "which cases breached?" or "what did
this customer do?"; the answers are the same rows an analyst gets with SQL (each
endpoint is one read-only query with the service's time and row limits), so the
HTTP API, ``touchstream.Client`` and the CLI cannot drift apart.
"""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, Depends, HTTPException, Query

from touchstream.projections.duckdb_store import DuckDBStore, QueryError
from touchstream.serving.access import OPEN, Caller, require
from touchstream.serving.masked_views import run_masked

# The documented views an analyst reads by name (GET /kpis/{name}); see README "Complaints".
KPI_VIEWS = {
    "complaint_kpis": "per day opened, origin channel, product and team: volumes, FCR, reopens, phone tag, SLA, "
                      "response and resolution times, satisfaction",
    "complaint_causes": "cases by product, cause, category, channel, team and touchpoint, with the repeat share",
    "complaint_sla_compliance": "SLA clocks met, breached and running per clock kind, priority, channel, policy",
    "complaint_breaches": "every breached SLA clock with its case, customer, team and breach event",
    "complaint_loyalty": "purchases, revenue and churn in the 90 days after resolution, by resolution path",
    "complaint_discovery": "share of complaints found by proactive outreach, per origin channel",
    "customer_channels": "contacts and preferred-media rank per customer and channel",
    "contact_findings": "touchmap findings: overload, redundant campaigns, conflicts, repeated questions",
    # projections/sql/analyst_views.sql; docs/views.md has each one's columns and an example query
    "channel_reference": "the brief's channel table: cost level, relative cost, speed, tangibility, control, "
                         "personalisation per channel",
    "channel_mix": "events, customers and contacts per channel, who initiated them, and the cost to serve",
    "pmp_distribution": "known customers by preferred channel (rank 1 of the preferred media package), mean score",
    "contact_pressure": "per customer: company-initiated contacts per 30 days, channels used, touchmap findings",
    "contact_pressure_distribution": "known customers in buckets of company contacts per 30 days, with findings",
    "journey_funnel": "customers by current journey stage: research, attraction, sale, support",
    "complaint_funnel": "complaint cases by the lifecycle stages they reached, opened to reopened",
    "sla_breaches_daily": "breached SLA clocks per UTC day due and clock kind",
    "fcr_by_channel": "first-contact resolution rate per origin channel",
    "fcr_by_dimension": "first-contact resolution rate per channel, product, team, cause and touchpoint",
    "callback_cost": "phone tag: contacts and handle time per case with and without a callback promise",
    "satisfaction_by_path": "complaint satisfaction by resolution path: fcr, callback, other, unresolved",
    "revenue_around_contact": "purchases and revenue 90 days before vs after a complaint, by resolution path",
    "cem_touchpoints": "per touchpoint: responsiveness, availability, consistency and timeliness",
}
CASE_COLUMNS = ("case_id", "customer_id", "state", "is_open", "origin_channel", "channels_touched", "product",
                "category", "cause", "priority", "assigned_team", "opened_at", "resolved_at", "closed_at",
                "reopen_count", "escalation_level", "contacts", "callbacks_promised", "callbacks_missed", "fcr")


def plain(value):
    """One DuckDB value as JSON: exact decimals and timestamps as strings, anything exotic as text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)  # Decimal, UUID, intervals, ...


def read(store: DuckDBStore, sql: str, params: list | None = None, *, caller: Caller = OPEN, max_rows: int = 10_000,
         timeout: float = 30.0, arrow: bool = False):
    """One read-only statement as the caller may see it: as stored with the pii scope, else through the
    masked views (personal values pseudonymised, other tables unreachable). Raises QueryError."""
    if caller.sees_pii:
        run = store.query_arrow if arrow else store.query
        return run(sql, params, max_rows=max_rows, timeout=timeout)
    return run_masked(store, sql, params, max_rows=max_rows, timeout=timeout, arrow=arrow)


def rows_of(store: DuckDBStore, sql: str, params: list, limit: int, caller: Caller = OPEN) -> dict:
    try:
        result = read(store, sql, params, caller=caller, max_rows=limit)
    except QueryError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return {"columns": result.columns, "rows": [dict(zip(result.columns, (plain(v) for v in row)))
                                                for row in result.rows], "truncated": result.truncated}


def analyst_router(store: DuckDBStore, profiles=None, keys=None) -> APIRouter:
    """``profiles``: the live customer-360 (a LiveCustomer360), for the touchmap; ``keys``: the API key
    store (every route needs the analyst scope; None switches authentication off, for tests)."""
    router = APIRouter()
    analyst = require("analyst", keys)

    @router.get("/customers/{identifier}/timeline")
    def timeline(identifier: str, limit: int = Query(200, ge=1, le=10_000),
                 order: str = Query("desc", pattern="^(asc|desc)$"), caller: Caller = Depends(analyst)):
        """Every interaction of the customer on any channel (the touchmap), newest first unless ``order=asc``.
        Without the pii scope only a customer id finds the customer (an e-mail would confirm who it is)."""
        customer = customer_of(store, profiles, identifier.strip(), caller)
        if customer is None:
            raise HTTPException(status_code=404, detail="no customer with that id or identifier")
        events = profiles.store.timeline(customer, limit + 1, newest_first=order == "desc")
        return {"customer_id": customer, "interactions": [{k: plain(v) for k, v in e.items()} for e in events[:limit]],
                "truncated": len(events) > limit}

    @router.get("/complaints")
    def complaints(open: bool | None = None, breached: bool | None = None, channel: str | None = None,
                   customer: str | None = None, limit: int = Query(100, ge=1, le=10_000),
                   caller: Caller = Depends(analyst)):
        """Complaint cases, newest first: ``open`` (true/false), ``breached`` (any SLA clock breached),
        ``channel`` (origin channel), ``customer`` (canonical customer id)."""
        where, params = [], []
        if open is not None:
            where.append("is_open = ?")
            params.append(open)
        if breached is not None:
            where.append("(coalesce(sla_breaches, 0) > 0) = ?")
            params.append(breached)
        for column, value in (("origin_channel", channel), ("customer_id", customer)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = (f"SELECT {', '.join(CASE_COLUMNS)}, coalesce(sla_breaches, 0) AS sla_breaches FROM complaint_cases "
               "LEFT JOIN (SELECT case_id, count(*) FILTER (WHERE breached) AS sla_breaches FROM complaint_sla "
               "GROUP BY case_id) USING (case_id) " + ("WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY opened_at DESC NULLS LAST, case_id")
        return rows_of(store, sql, params, limit, caller)

    @router.get("/kpis", dependencies=[Depends(analyst)])
    def kpis() -> dict:
        """The KPI views that can be read by name, with what each answers."""
        return {"views": [{"name": n, "answers": a, "path": f"/kpis/{n}"} for n, a in KPI_VIEWS.items()]}

    @router.get("/kpis/{name}")
    def kpi(name: str, limit: int = Query(1000, ge=1, le=100_000), caller: Caller = Depends(analyst)):
        """The rows of one KPI view (see ``GET /kpis``)."""
        if name not in KPI_VIEWS:
            raise HTTPException(status_code=404, detail=f"no KPI view {name!r}; see GET /kpis")
        return rows_of(store, f"SELECT * FROM {name}", [], limit, caller)

    return router


def customer_of(store: DuckDBStore, profiles, text: str, caller: Caller) -> str | None:
    """The canonical customer id ``text`` names: by any identifier with the pii scope; else only a
    customer id as it stands (asking by e-mail or phone would confirm whose it is)."""
    if profiles is None:
        return None
    if caller.sees_pii:
        return profiles.store.resolve(text)
    found = read(store, "SELECT customer_id FROM customer_360 WHERE customer_id = ?", [text], caller=caller)
    return found.rows[0][0] if found.rows else None
