"""The complaints section of the demo report: cases, SLA, FCR, reopens, phone tag, discovery, loyalty.

Why cases and not complaint events: a count of complaint.* events says the events
arrived; the case tables say what the complaint handling achieved (domain.md
section 5), and they prove the complaint sink folded the run. Read-only SQL over
the complaint sink's tables and the KPI views (``complaint_case_facts``,
``complaint_sla``, ``complaint_loyalty_cases``, see projections/sql/complaint_kpis.sql),
scoped to the cases one demo run touched: those with an event in
``complaint_events`` whose id starts with the run's prefix (case ids carry only
part of the run tag, event ids all of it). Percentages are printed with one
decimal, means as the SQL rounds them, so the section is deterministic text.
"""

from __future__ import annotations

from touchstream.demo.report import _side_by_side, table

PATHS = "['fcr', 'callback', 'other_resolved', 'unresolved']"   # the loyalty table's row order


def _pct(part: str, whole: str) -> str:
    return f"printf('%.1f', 100.0 * ({part}) / nullif({whole}, 0))"


def queries(prefix: str) -> dict[str, str]:
    """The section's statements; ``prefix`` is already checked by ``report.queries``."""
    run = f"""run AS (SELECT DISTINCT case_id FROM complaint_events WHERE event_id LIKE '{prefix}%'),
        f AS (SELECT * FROM complaint_case_facts JOIN run USING (case_id))"""
    return {
        "complaint_totals": f"""WITH {run}
            SELECT count(*) AS cases, count(*) FILTER (WHERE is_open) AS open,
                   count(resolved_at) AS resolved, count(*) FILTER (WHERE state = 'closed') AS closed,
                   count(*) FILTER (WHERE resolved_at IS NOT NULL AND reopen_count > 0) AS reopened,
                   {_pct("count(*) FILTER (WHERE resolved_at IS NOT NULL AND reopen_count > 0)",
                         "count(resolved_at)")} AS reopen_pct,
                   count(*) FILTER (WHERE sla_breached) AS sla_breached,
                   count(satisfaction_score) AS rated, printf('%.2f', avg(satisfaction_score)) AS mean_satisfaction
            FROM f""",
        "complaint_open": f"""WITH {run}
            SELECT state, coalesce(assigned_team, '(none)') AS team, count(*) AS cases,
                   count(*) FILTER (WHERE sla_breached) AS sla_breached,
                   strftime(timezone('UTC', min(opened_at)), '%Y-%m-%d') AS oldest_opened
            FROM f WHERE is_open
            GROUP BY ALL ORDER BY cases DESC, state, team""",
        "complaint_sla": f"""WITH {run}
            SELECT CASE WHEN grouping(clock_kind) = 1 THEN 'all clocks' ELSE clock_kind END AS kind, count(*) AS clocks,
                   count(*) FILTER (WHERE state = 'met') AS met, count(*) FILTER (WHERE breached) AS breached,
                   count(*) FILTER (WHERE state IN ('running', 'warning')) AS running,
                   {_pct("count(*) FILTER (WHERE state = 'met')",
                         "count(*) FILTER (WHERE state = 'met' OR breached)")} AS compliance_pct
            FROM complaint_sla JOIN run USING (case_id)
            GROUP BY GROUPING SETS ((clock_kind), ()) ORDER BY grouping(clock_kind), breached DESC, kind""",
        "complaint_fcr": f"""WITH {run}
            SELECT CASE WHEN grouping(origin_channel) = 1 THEN 'all channels' ELSE origin_channel END AS channel,
                   count(*) AS cases,
                   count(*) FILTER (WHERE fcr) AS fcr, count(fcr) AS judged,
                   {_pct("count(*) FILTER (WHERE fcr)", "count(fcr)")} AS fcr_pct
            FROM f GROUP BY GROUPING SETS ((origin_channel), ())
            ORDER BY grouping(origin_channel), cases DESC, channel""",
        "complaint_phone_tag": f"""WITH {run}
            SELECT CASE WHEN phone_tag THEN 'callback promised' ELSE 'no callback' END AS cases_with,
                   count(*) AS cases, sum(callbacks_promised) AS callbacks, sum(callbacks_missed) AS missed,
                   sum(extra_contacts) AS extra_contacts, printf('%.2f', avg(contacts)) AS contacts_per_case,
                   printf('%.1f', avg(handle_seconds) / 60) AS handle_minutes_per_case
            FROM f GROUP BY phone_tag ORDER BY phone_tag DESC""",
        "complaint_discovery": f"""WITH {run}
            SELECT CASE initiated_by WHEN 'company' THEN 'found by outreach'
                                     WHEN 'customer' THEN 'raised by the customer'
                                     ELSE '(no complaint.opened)' END AS discovery,
                   count(*) AS cases, {_pct("count(*)", "(SELECT count(*) FROM f)")} AS share_pct,
                   {_pct("count(*) FILTER (WHERE fcr)", "count(fcr)")} AS fcr_pct,
                   printf('%.2f', avg(satisfaction_score)) AS mean_satisfaction
            FROM f GROUP BY ALL ORDER BY cases DESC, discovery""",
        "complaint_loyalty": f"""WITH {run}
            SELECT path, count(*) AS cases, count(DISTINCT customer_id) AS customers,
                   printf('%.2f', avg(purchases)) AS purchases_per_case,
                   printf('%.2f', CAST(sum(revenue) AS DOUBLE) / count(*)) AS revenue_per_case,
                   printf('%.1f', avg(inbound)) AS inbound_per_case,
                   {_pct("count(*) FILTER (WHERE churned)", "count(*)")} AS churn_pct,
                   count(*) FILTER (WHERE full_window) AS full_90_days
            FROM complaint_loyalty_cases JOIN run USING (case_id)
            GROUP BY path ORDER BY list_position({PATHS}, path), path""",
    }


def render(results: dict[str, dict]) -> list[str]:
    """The complaints section as lines, between the interaction-log and the customer-360 sections."""
    def t(name: str) -> str:
        return table(results[name]["columns"], results[name]["rows"])

    return [
        "",
        "Complaints (cases this run touched; reopen_pct of resolved cases; satisfaction 1-5)",
        t("complaint_totals"),
        "",
        "Open cases by state and team",
        t("complaint_open"),
        "",
        _side_by_side("SLA clocks (compliance: met in time / decided)\n" + t("complaint_sla"),
                      "First-contact resolution by origin channel\n" + t("complaint_fcr")),
        "",
        "Phone tag: what a callback promise costs (contacts and handle time per case)",
        t("complaint_phone_tag"),
        "",
        "Complaint discovery (proactive outreach vs raised by the customer)",
        t("complaint_discovery"),
        "",
        "Loyalty in the 90 days after resolution (after the open if unresolved; churn: no interaction at all)",
        t("complaint_loyalty"),
    ]
