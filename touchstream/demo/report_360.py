"""The customer-360 half of the demo report: headline numbers, the PMP, contact findings, a few 360s.

Read-only SQL over the serving process's customer-360 views (``customer_360``,
``customer_channels``, ``contact_findings``, ``customer_timeline``), scoped to the
customers one demo run touched: those holding an event whose id starts with the
run's prefix. Merged-away profiles are deleted by the fold, so every row is a
customer as identity resolution sees them now; ``anon-...`` ids are anonymous, any
other id is a known customer. Deterministic: every list is fully ordered, and times
are the events' own (UTC), never the wall clock. No identifier values are shown
beyond customer ids (the profile JSON carries e-mail addresses and phone numbers;
only its channel, commerce and interaction parts are read).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from touchstream.demo.report import table

LAST_INTERACTIONS = 3
EXAMPLES = 5
KNOWN = "customer_id NOT LIKE 'anon-%'"  # identity resolution names anonymous customers anon-<hash>
# an e-mail address, or a phone number (not the digits inside an id such as CASE-96ec77-0000041)
_PII = re.compile(r"[^\s@,]+@[^\s@,]+|(?<![\w-])\+?\d[\d ()-]{6,}\d(?![\w-])")


def queries(prefix: str) -> dict[str, str]:
    """The 360 sections' statements; ``prefix`` is already checked by ``report.queries``."""
    run = f"""run AS (SELECT DISTINCT customer_id FROM customer_timeline WHERE event_id LIKE '{prefix}%'),
        c AS (SELECT customer_id, {KNOWN} AS known, events, channels, journey_stage,
                     preferred_channel, open_complaints, findings
              FROM customer_360 JOIN run USING (customer_id))"""
    return {
        "c360_totals": f"""WITH {run}
            SELECT count(*) AS profiles, count(*) FILTER (WHERE known) AS known,
                   count(*) FILTER (WHERE NOT known) AS anonymous,
                   printf('%.2f', avg(channels) FILTER (WHERE known)) AS channels_per_known,
                   printf('%.1f', avg(events) FILTER (WHERE known)) AS events_per_known,
                   coalesce(sum(open_complaints), 0) AS open_complaints, coalesce(sum(findings), 0) AS findings
            FROM c""",
        "c360_stages": f"""WITH {run}
            SELECT coalesce(journey_stage, '(none)') AS journey_stage, count(*) FILTER (WHERE known) AS known,
                   printf('%.1f', 100.0 * count(*) FILTER (WHERE known)
                                  / greatest((SELECT count(*) FROM c WHERE known), 1)) AS known_pct,
                   count(*) FILTER (WHERE NOT known) AS anonymous
            FROM c GROUP BY ALL ORDER BY known DESC, anonymous DESC, journey_stage""",
        "pmp": f"""WITH {run},
            k AS (SELECT customer_id, preferred_channel FROM c WHERE known),
            pref AS (SELECT coalesce(preferred_channel, '(none)') AS channel, count(*) AS preferred FROM k GROUP BY ALL),
            ch AS (SELECT channel, count(*) AS customers, avg(pmp_score) AS score, avg(response_rate) AS rate
                   FROM customer_channels JOIN k USING (customer_id) GROUP BY channel)
            SELECT channel, coalesce(preferred, 0) AS preferred,
                   printf('%.1f', 100.0 * coalesce(preferred, 0) / greatest((SELECT count(*) FROM k), 1)) AS share_pct,
                   coalesce(customers, 0) AS customers, printf('%.3f', score) AS mean_pmp_score,
                   printf('%.3f', rate) AS mean_response_rate
            FROM pref FULL JOIN ch USING (channel)
            ORDER BY preferred DESC, customers DESC, channel""",
        "findings": f"""WITH {run}
            SELECT coalesce(kind, 'all kinds') AS kind, count(*) AS findings,
                   count(DISTINCT customer_id) AS customers
            FROM contact_findings JOIN run USING (customer_id)
            GROUP BY GROUPING SETS ((kind), ()) ORDER BY grouping(kind), findings DESC, kind""",
        # picked round by round (each kind's earliest, then each kind's second, ...) so every kind shows
        "finding_examples": f"""WITH {run},
            ranked AS (SELECT *, row_number() OVER (PARTITION BY kind ORDER BY raised_at, finding_id) AS nth
                       FROM contact_findings JOIN run USING (customer_id)),
            picked AS (SELECT * FROM ranked ORDER BY nth, kind LIMIT {EXAMPLES})
            SELECT customer_id, kind, subject, channels, raised_at FROM picked ORDER BY raised_at, finding_id""",
        "c360_examples": f"""WITH {run}
            SELECT customer_id, journey_stage, preferred_channel, open_complaints, findings, profile
            FROM customer_360 JOIN run USING (customer_id) WHERE {KNOWN}
            ORDER BY channels DESC, events DESC, customer_id LIMIT 3""",
    }


def _utc(value) -> str:
    """An event time (datetime from DuckDB, ISO text through the query service) as UTC minutes."""
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def _safe(value) -> str:
    """Free text (a finding's subject) with anything shaped like an e-mail address or phone number masked."""
    return "" if value is None else _PII.sub("<redacted>", str(value))


def _money(amounts: dict) -> str:
    return ", ".join(f"{currency} {amount}" for currency, amount in sorted(amounts.items())) or "-"


def _profile_rows(rows: list[list]) -> tuple[list[list], list[list]]:
    """Summary rows and last-interaction rows of the picked customers, from their profile JSON."""
    summary, recent = [], []
    for customer, stage, preferred, open_complaints, findings, profile in rows:
        view = json.loads(profile) if isinstance(profile, str) else profile
        channels = sorted(view["channels"], key=lambda ch: (-ch["contacts"], ch["channel"]))
        commerce = view["commerce"]
        summary.append([customer, stage, preferred, " ".join(f"{ch['channel']}:{ch['contacts']}" for ch in channels),
                        commerce["orders"], _money(commerce["revenue_to_date"]), open_complaints, findings])
        last = sorted(view["interactions"], key=lambda i: (datetime.fromisoformat(i["at"]), i["event_id"]),
                      reverse=True)[:LAST_INTERACTIONS]
        recent += [[customer, _utc(i["at"]), i["channel"], i["content"], i["event_type"], i["initiated_by"]]
                   for i in last]
    return summary, recent


def render(results: dict[str, dict]) -> list[str]:
    """The 360 sections as lines, to follow the interaction-log sections."""
    def section(title: str, name: str) -> list[str]:
        return ["", title, table(results[name]["columns"], results[name]["rows"])]

    examples = [[customer, kind, _safe(subject), ",".join(channels or ()), _utc(raised)]
                for customer, kind, subject, channels, raised in results["finding_examples"]["rows"]]
    summary, recent = _profile_rows(results["c360_examples"]["rows"])
    return [
        *section("Customer 360 (profiles of the customers this run touched; anon-... = anonymous)", "c360_totals"),
        *section("Journey stage", "c360_stages"),
        *section("Preferred media package (rank 1 of known customers; score and response rate: mean over "
                 "the customers using the channel)", "pmp"),
        *section("Contact findings", "findings"),
        "",
        f"Examples (up to {EXAMPLES}: the earliest of each kind, then the next of each kind, ...)",
        table(["customer_id", "kind", "subject", "channels", "raised_at"], examples),
        "",
        "A few 360s (known customers with the most channels, then events)",
        table(["customer_id", "stage", "preferred", "channels (contacts)", "orders", "revenue", "open_complaints",
               "findings"], summary),
        "",
        f"Their last {LAST_INTERACTIONS} interactions each",
        table(["customer_id", "at (UTC)", "channel", "content", "event_type", "initiated_by"], recent),
    ]
