"""The ``customer_360`` summary row of one 360 view, with its channel and finding rows.

Why a module of its own: the row is what analysts' SQL reads (counts, stages, the
profile JSON and its fingerprint), so the KPI views and the write path both depend
on its shape; keeping it beside neither lets each change without the other.
Why typed columns beside the profile JSON and the lists (``first_sale_at``, ``known``, the
contact-pressure sums): a view that reads a field out of a million profiles' JSON, tests the
prefix of a million customer ids or sums a million customers' channel lists spends seconds
on it; the row carries what the views ask of every customer.
Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime

from touchstream.projections import customer_360 as c360
from touchstream.projections.customer_360_contract import finding_id

# Identity resolution names a profile it knows only by an anonymous identifier (a cookie, a till
# receipt) "anon-<hash>" (identity_replay); any other customer id is a known customer.
ANONYMOUS_PREFIX = "anon-"
TIMES = ("first_seen", "last_seen", "first_sale_at", "last_contact_at", "raised_at")


def summary_row(customer_id: str, view: dict, now: datetime, text: str | None = None) -> dict:
    """The ``customer_360`` row of one 360, with its channel and finding rows as lists (``text``: the
    view's canonical JSON when the caller has it, e.g. parsed ``view`` from it)."""
    pmp = {p["channel"]: p for p in view["pmp"]}
    top = min(view["pmp"], key=lambda p: p["rank"], default=None)
    attitude, text = view["attitude"], c360.view_json(view) if text is None else text
    summary = {
        "customer_id": customer_id, "events": view["events"], "first_seen": view["first_seen"],
        "last_seen": view["last_seen"], "journey_stage": view["journey"]["stage"],
        "preferred_channel": top and top["channel"], "identifiers": len(view["identifiers"]),
        "channels": len(view["channels"]), "open_complaints": view["complaints"]["open_count"],
        "last_csat": attitude["csat"] and attitude["csat"]["value"],
        "last_nps": attitude["nps"] and attitude["nps"]["value"], "findings": len(view["findings"]),
        "profile": text, "fingerprint": c360.view_fingerprint(text), "updated_at": now,
        "first_sale_at": view["journey"]["first_sale_at"], "known": not customer_id.startswith(ANONYMOUS_PREFIX),
    }
    summary["channel_rows"] = [{
        "channel": ch["channel"], "contacts": ch["contacts"],
        "customer_initiated": ch["by_initiator"].get("customer", {}).get("contacts", 0),
        "company_initiated": ch["by_initiator"].get("company", {}).get("contacts", 0),
        "last_contact_at": ch["last_contact_at"], "pmp_rank": pmp.get(ch["channel"], {}).get("rank"),
        "pmp_score": pmp.get(ch["channel"], {}).get("score"),
        "response_rate": pmp.get(ch["channel"], {}).get("response_rate"),
    } for ch in view["channels"]]
    summary["finding_rows"] = [{"finding_id": finding_id(customer_id, f["id"]), "kind": f["kind"],
                                "raised_at": f["at"], "subject": f["subject"], "channels": list(f["channels"]),
                                "evidence": list(f["evidence"])} for f in view["findings"]]
    summary.update(pressure(summary["channel_rows"], summary["finding_rows"]))
    for row in (summary, *summary["channel_rows"], *summary["finding_rows"]):
        for key in TIMES:
            if isinstance(row.get(key), str):
                row[key] = datetime.fromisoformat(row[key])
    return summary


def pressure(channel_rows: list[dict], finding_rows: list[dict]) -> dict:
    """The contact_pressure view's sums of one customer's channel and finding rows, as typed columns."""
    return {"company_contacts": sum(r["company_initiated"] for r in channel_rows),
            "customer_contacts": sum(r["customer_initiated"] for r in channel_rows),
            "company_channels": sum(r["company_initiated"] > 0 for r in channel_rows),
            "overload_findings": sum(f["kind"] == "overload" for f in finding_rows)}
