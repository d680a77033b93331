"""The analyst views (projections/sql/analyst_views.sql) against figures computed in Python.

Two demo runs are written the way the serving process writes them (``tests.demo_report_fill``:
interaction log, customer-360, complaint cases, SLA clocks), then the views are created as serving
creates them. Every expected figure is recomputed here from the runs' own records, the pure
customer-360 views and the pure complaint fold (case views, SLA clocks, state-machine transitions),
never from the SQL under test, so the views are held to the meaning of the data.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from statistics import mean, median

import pytest

from tests.complaint_fill import PURCHASES, fold_cases, loyalty_path, run_sink, write_log
from tests.demo_report_fill import fill
from tests.event_builders import plain_event
from tests.pipeline_harness import validated
from touchstream.projections.complaint_case_metrics import transitions
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore, load_sql
from touchstream.serving.analyst_api import KPI_VIEWS

ROOT = Path(__file__).resolve().parents[2]
SQL = load_sql("analyst_views")
NAMES = re.findall(r"CREATE OR REPLACE VIEW (\w+)", SQL)
PATHS = ["fcr", "callback", "other_resolved", "unresolved"]
# Decimals a column is rounded to in the views, by name (the first suffix that matches); others are exact.
PLACES = {"handle_minutes_per_case": 1, "handle_minutes": 1, "mean_score": 2, "_pct": 2, "_30d": 2, "_per_case": 2,
          "_ratio": 2, "_rate": 4, "_share": 4, "_seconds": 1}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    db = DuckDBStore(tmp_path_factory.mktemp("analyst_views") / "serving.duckdb")
    _, customers, views, cases = fill(db)
    db.execute_script(load_sql("complaint_customer_360"))
    db.execute_script(SQL)
    records = [e.record for e in cases.valid]   # both runs: everything in the interaction log
    yield db, customers, views, cases, records
    db.close()


def rows(db: DuckDBStore, sql: str) -> list[dict]:
    cur = db.cursor()
    try:
        result = cur.execute(sql if " " in sql else f"SELECT * FROM {sql}")
        return [dict(zip([d[0] for d in result.description], row)) for row in result.fetchall()]
    finally:
        cur.close()


def check(row: dict, want: dict, label=None) -> None:
    """Every figure of ``want`` in ``row``: equal, or within the rounding of its column (PLACES)."""
    for name, value in want.items():
        places = next((p for suffix, p in PLACES.items() if name.endswith(suffix)), None)
        got = row[name]
        if places is None or value is None or got is None:
            assert got == value, (label, name, got, value)
        else:
            assert abs(float(got) - float(value)) <= 0.5 * 10 ** -places + 1e-9, (label, name, got, value)


def rate(part, whole):
    return part / whole if whole else None


def serving_db(path: Path, valid: list = (), ingested_at: datetime | None = None) -> DuckDBStore:
    """A DuckDB with every table serving creates (customer-360, log, complaints) and the analyst views."""
    db = DuckDBStore(path)
    Customer360Store(db)
    if valid:
        write_log(db, valid, ingested_at)
    run_sink(db, list(valid))
    db.execute_script(load_sql("complaint_customer_360"))
    db.execute_script(SQL)
    return db


def _known(customer: str) -> bool:
    return not customer.startswith("anon-")


def _by(initiator: str, channel: dict) -> int:
    return channel["by_initiator"].get(initiator, {}).get("contacts", 0)


def test_channel_reference_is_one_row_per_channel_symbol_and_the_brief_table(run):
    got = {r["channel"]: r for r in rows(run[0], "channel_reference")}
    enum = json.loads((ROOT / "schemas/common/touchstream.common.Channel.avsc").read_text())["symbols"]
    assert sorted(got) == sorted(enum)
    levels = ["low", "medium", "high", "very high"]
    costs = {r["cost_level"]: r["relative_cost"] for r in got.values() if r["cost_level"]}
    assert all((r["cost_level"] is None) == (r["relative_cost"] is None) for r in got.values())
    assert sorted(costs) == sorted(levels) and [costs[level] for level in levels] == sorted(set(costs.values()))
    excerpt = (ROOT / "tests" / "fixtures" / "domain_channels.md").read_text()
    brief = ROOT.parent / "shared" / "domain.md"   # the contributors' brief, beside a working checkout
    if brief.exists():
        lines = brief.read_text().splitlines()
        assert all(line in lines for line in excerpt.splitlines() if line.startswith("|")), \
            "tests/fixtures/domain_channels.md no longer matches the channel table of domain.md"
    symbols = {"web": ["web"], "postal mail": ["postal_mail"], "e-mail": ["email"], "phone": ["phone"],
               "personal selling / store": ["store", "field_sales"]}
    table = [line.strip("| ").split(" | ") for line in excerpt.splitlines()
             if line.split(" | ")[0].lstrip("| ") in symbols]
    assert len(table) == len(symbols)
    for name, *properties in table:
        for channel in symbols[name]:
            check(got[channel], dict(zip(("cost_level", "speed", "tangibility", "control", "personalisation", "source"),
                                         [p.strip() for p in properties] + ["table"])), channel)


def test_channel_mix_counts_the_log_and_costs_the_360_contacts(run):
    db, _, views, _, records = run
    want = defaultdict(Counter)
    for r in records:
        want[r["envelope"]["channel"]].update({"events": 1, f"by_{r['envelope']['initiated_by']}": 1})
    for v in views.values():
        for ch in v["channels"]:
            want[ch["channel"]].update({"customers": 1, "contacts": ch["contacts"], "customer_contacts":
                                        _by("customer", ch), "company_contacts": _by("company", ch)})
    cost = {r["channel"]: r["relative_cost"] for r in rows(db, "channel_reference")}
    costs = {c: w["contacts"] * cost[c] for c, w in want.items() if cost.get(c) is not None}
    got = rows(db, "channel_mix")
    assert [r["channel"] for r in got] == sorted(want, key=lambda c: (-want[c]["events"], c))
    for r in got:
        c = r["channel"]
        check(r, {k: want[c][k] for k in ("events", "by_customer", "by_company", "customers", "contacts",
                                         "customer_contacts", "company_contacts")} | {
            "share_pct": 100 * want[c]["events"] / len(records), "cost_to_serve": costs.get(c),
            "cost_share_pct": rate(100 * costs[c], sum(costs.values())) if c in costs else None}, c)
    assert 0 < len(costs) < len(got)   # a channel the brief gives no cost for shows, uncosted


def test_pmp_distribution_of_known_customers(run):
    db, _, views, _, _ = run
    known = {c: v for c, v in views.items() if _known(c)}
    preferred = Counter(min(v["pmp"], key=lambda p: p["rank"])["channel"] if v["pmp"] else "(none)"
                        for v in known.values())
    using = defaultdict(list)
    for v in known.values():
        pmp = {p["channel"]: p for p in v["pmp"]}
        for ch in v["channels"]:
            using[ch["channel"]].append(pmp.get(ch["channel"], {}))
    got = rows(db, "pmp_distribution")
    assert {r["channel"] for r in got} == set(preferred) | set(using)
    assert [r["preferred"] for r in got] == sorted((r["preferred"] for r in got), reverse=True)
    for r in got:
        p = using.get(r["channel"], [])
        scores, rates = ([x[k] for x in p if x.get(k) is not None] for k in ("score", "response_rate"))
        check(r, {"preferred": preferred[r["channel"]], "customers": len(p),
                  "share_pct": 100 * preferred[r["channel"]] / len(known), "mean_score": mean(scores) if scores else None,
                  "mean_response_rate": mean(rates) if rates else None}, r["channel"])
    assert sum(n > 0 for n in preferred.values()) >= 2


def test_contact_pressure_per_customer_and_its_distribution(run):
    db, _, views, _, _ = run
    until = max(datetime.fromisoformat(v["last_seen"]) for v in views.values())
    want = {}
    for c, v in views.items():
        company, chs = sum(_by("company", ch) for ch in v["channels"]), v["channels"]
        days = (until - datetime.fromisoformat(v["first_seen"])) / timedelta(days=1)
        want[c] = {"known": _known(c), "company_contacts": company, "channels": len(chs),
                   "customer_contacts": sum(_by("customer", ch) for ch in chs),
                   "company_channels": sum(_by("company", ch) > 0 for ch in chs), "findings": len(v["findings"]),
                   "overload_findings": sum(f["kind"] == "overload" for f in v["findings"]),
                   "company_contacts_per_30d": company * 30 / max(days, 30)}
    got = {r["customer_id"]: r for r in rows(db, "contact_pressure")}
    assert set(got) == set(want)
    for c, w in want.items():
        check(got[c], w, c)
    buckets = rows(db, "contact_pressure_distribution")
    assert [b["bucket_order"] for b in buckets] == sorted(b["bucket_order"] for b in buckets)
    assert buckets[0]["low"] is None and buckets[0]["high"] == 0 and buckets[-1]["high"] is None
    assert all(a["high"] == b["low"] for a, b in zip(buckets, buckets[1:]))   # contiguous
    known = [got[c] for c, w in want.items() if w["known"]]   # the view's rounded rate decides the bucket
    for b in buckets:
        x = [w for w in known if (w["company_contacts_per_30d"] == 0 if b["low"] is None else b["low"] <
                                  w["company_contacts_per_30d"] <= (b["high"] if b["high"] is not None else 1e9))]
        check(b, {"customers": len(x), "with_findings": sum(w["findings"] > 0 for w in x),
                  "with_overload": sum(w["overload_findings"] > 0 for w in x), "share_pct": 100 * len(x) / len(known)})
    assert sum(b["customers"] > 0 for b in buckets) >= 3 and any(b["with_findings"] for b in buckets)


def test_journey_funnel_in_the_brief_order(run):
    db, _, views, _, _ = run
    want = defaultdict(lambda: Counter(customers=0, known=0, anonymous=0, with_purchase=0))
    for c, v in views.items():
        want[v["journey"]["stage"] or "(none)"].update({"customers": 1, "known" if _known(c) else "anonymous": 1,
                                                        "with_purchase": v["journey"]["first_sale_at"] is not None})
    got = rows(db, "journey_funnel")
    assert [r["stage"] for r in got] == ["research", "attraction", "sale", "support", "(none)"]
    assert [r["stage_order"] for r in got] == sorted(r["stage_order"] for r in got)
    for r in got:
        check(r, dict(want[r["stage"]]) | {"share_pct": 100 * want[r["stage"]]["customers"] / len(views)}, r["stage"])
    assert sum(r["customers"] > 0 for r in got) >= 4


def machine_stages(valid) -> Counter:
    """Cases per state the pure fold's own state machine took them through (every case opened)."""
    reached = Counter()
    for case in fold_cases(valid).values():
        reached.update({t.after for t in transitions(case)} - {"new"} | {"opened"}
                       | ({"reopened"} if case.reopens else set()))
    return reached


def test_complaint_funnel_counts_the_states_the_machine_reached(run):
    db, _, _, cases, _ = run
    reached, now = machine_stages(cases.valid), Counter(v["state"] for v in cases.views.values())
    got = rows(db, "complaint_funnel")
    assert [r["stage"] for r in got] == ["opened", "acknowledged", "in_progress", "callback_promised", "resolved",
                                         "closed", "reopened"]
    for r in got:
        check(r, {"cases": reached[r["stage"]], "now_in_stage": now[r["stage"]],
                  "share_pct": 100 * reached[r["stage"]] / len(cases.views)}, r["stage"])
    assert all(r["cases"] > 0 for r in got) and got[0]["cases"] == len(cases.views)


def test_complaint_funnel_follows_the_machine_where_steps_come_out_of_order(tmp_path):
    """What the demo never does: an acknowledgement after work began (K-a), a note after the resolution and
    a promise refused on a resolved case (K-b), a kept callback taking a case back to work (K-c), an
    acknowledgement that opens a case implicitly (K-d)."""
    t0, who = datetime(2026, 3, 2, 9, tzinfo=timezone.utc), {"customer_id": "CU-edge"}
    promise = {"callback_id": "CB-1", "promised_by": (t0 + timedelta(days=1)).isoformat(), "callback_channel": "phone"}

    def step(case: str, minutes: int, kind: str, **fields) -> dict:
        return plain_event(f"complaint.{kind}", t0 + timedelta(minutes=minutes), who, channel="phone", case_id=case,
                           by="customer" if kind == "opened" else "company", **fields)
    valid = validated([
        step("K-a", 0, "opened"), step("K-a", 5, "updated"), step("K-a", 6, "acknowledged"), step("K-a", 9, "resolved"),
        step("K-b", 0, "opened"), step("K-b", 5, "resolved"), step("K-b", 6, "updated"),
        step("K-b", 7, "callback_promised", **promise | {"callback_id": "CB-2"}),
        step("K-c", 0, "opened"), step("K-c", 1, "callback_promised", **promise), step("K-c", 40, "closed"),
        plain_event("phone.callback_made", t0 + timedelta(minutes=30), who, case_id="K-c", callback_id="CB-1",
                    reached=True),
        step("K-d", 0, "acknowledged"), step("K-d", 3, "resolved")])
    db = serving_db(tmp_path / "edge.duckdb", valid, t0 + timedelta(days=30))
    try:
        got = {r["stage"]: r["cases"] for r in rows(db, "complaint_funnel")}
    finally:
        db.close()
    reached = machine_stages(valid)
    assert got == {stage: reached[stage] for stage in got}
    steps = Counter(kind for kind, _ in {(v.event_type.split(".")[1], v.record["case_id"]) for v in valid})
    # the cases matter: counting the cases that merely had the step would differ from the machine
    assert reached["acknowledged"] < steps["acknowledged"] and reached["callback_promised"] < steps["callback_promised"]
    assert reached["in_progress"] < steps["updated"] + steps["callback_made"]


def test_sla_breaches_by_day_due_and_clock_kind(run):
    db, _, _, cases, _ = run
    groups = defaultdict(list)
    for c in cases.clocks:
        if c["breached"]:
            groups[(c["due_at"].astimezone(timezone.utc).date(), c["clock_kind"])].append(c["case_id"])
    got = rows(db, "sla_breaches_daily")
    assert [(r["day"], r["clock_kind"]) for r in got] == sorted(groups) and len({k for _, k in groups}) >= 2
    for r in got:
        ids = groups[(r["day"], r["clock_kind"])]
        check(r, {"breaches": len(ids), "cases": len(set(ids)),
                  "open_cases": sum(cases.views[k]["open"] for k in set(ids))})


def test_fcr_by_dimension_and_by_channel(run):
    db, _, _, cases, _ = run
    want = defaultdict(list)
    for v in cases.views.values():
        for dimension, value in (("channel", v["origin_channel"]), ("product", v["product"]),
                                 ("team", v["assigned_team"]), ("cause", v["cause"]),
                                 ("touchpoint", v["about_channel"] or v["origin_channel"])):
            want[(dimension, value)].append(v["fcr"]["fcr"])
    got = rows(db, "fcr_by_dimension")
    assert {(r["dimension"], r["value"]) for r in got} == set(want)
    for r in got:
        verdicts = want[(r["dimension"], r["value"])]
        judged = [j for j in verdicts if j is not None]
        check(r, {"cases": len(verdicts), "fcr": sum(judged), "judged": len(judged),
                  "fcr_rate": rate(sum(judged), len(judged))}, (r["dimension"], r["value"]))
    by_channel = [{"channel": r["value"], **{k: r[k] for k in ("cases", "fcr", "judged", "fcr_rate")}}
                  for r in got if r["dimension"] == "channel"]
    assert rows(db, "fcr_by_channel") == by_channel and 0 < sum(r["fcr"] for r in by_channel)


def test_callback_cost_compares_cases_with_and_without_a_promise(run):
    db, _, _, cases, _ = run
    got = {r["phone_tag"]: r for r in rows(db, "callback_cost")}
    assert list(got) == [True, False]
    want = {}
    for tag in got:
        mine = [v for v in cases.views.values() if v["metrics"]["phone_tag"] == tag]
        m = [v["metrics"] for v in mine]
        want[tag] = {"cases": len(m), "open_cases": sum(v["open"] for v in mine),
                     **{k: sum(x[k] for x in m) for k in ("callbacks_promised", "callbacks_missed", "contacts",
                                                          "extra_contacts")},
                     "contacts_per_case": mean(x["contacts"] for x in m),
                     "extra_contacts_per_case": mean(x["extra_contacts"] for x in m),
                     "handle_minutes": sum(x["handle_seconds"] for x in m) / 60,
                     "handle_minutes_per_case": mean(x["handle_seconds"] for x in m) / 60}
    for tag, w in want.items():
        check(got[tag], w | {"contacts_ratio": w["contacts_per_case"] / want[False]["contacts_per_case"],
                             "handle_ratio": w["handle_minutes_per_case"] / want[False]["handle_minutes_per_case"]}, tag)


def _paths(cases) -> dict[str, list[dict]]:
    """The case views by resolution path, as complaint_loyalty_cases has them (cases with a customer)."""
    paths = {p: [] for p in PATHS}
    for v in cases.views.values():
        if v["customer_id"] and v["opened_at"]:
            paths[loyalty_path(v)].append(v)
    return paths


def test_satisfaction_by_resolution_path(run):
    db, _, _, cases, _ = run
    got = rows(db, "satisfaction_by_path")
    assert [r["path"] for r in got] == PATHS
    for r, views in zip(got, _paths(cases).values()):
        scores = [s for s in ((v["satisfaction"]["complaint_satisfaction"] or {}).get("score") for v in views)
                  if s is not None]
        check(r, {"cases": len(views), "rated": len(scores), "satisfied": sum(s >= 4 for s in scores),
                  "mean_score": mean(scores) if scores else None,
                  "satisfied_share": rate(sum(s >= 4 for s in scores), len(scores))}, r["path"])
    assert sum(r["rated"] > 0 for r in got) >= 2


def test_revenue_in_the_90_days_before_and_after_the_complaint(run):
    db, customers, _, cases, records = run
    first, last = (f(r["envelope"]["occurred_at"] for r in records) for f in (min, max))
    window = timedelta(days=90)
    got = rows(db, "revenue_around_contact")
    assert [r["path"] for r in got] == PATHS
    for r, views in zip(got, _paths(cases).values()):
        sums = Counter(purchases_before=0, purchases_after=0, revenue_before=0, revenue_after=0, full_window=0)
        for v in views:   # every event of the canonical customer in the 360 (its touchmap)
            opened = datetime.fromisoformat(v["opened_at"])
            for e in customers.get(v["customer_id"], []):
                at = e["envelope"]["occurred_at"]
                if e["envelope"]["event_type"] in PURCHASES and opened - window < at <= opened + window:
                    side = "after" if at > opened else "before"
                    sums.update({f"purchases_{side}": 1, f"revenue_{side}": e["total"]["amount"]})
            sums["full_window"] += opened - window >= first and opened + window <= last
        change = sums["revenue_after"] - sums["revenue_before"]
        check(r, {k: sums[k] for k in ("purchases_before", "purchases_after", "revenue_before", "revenue_after")} | {
            "cases": len(views), "customers": len({v["customer_id"] for v in views}), "revenue_change": change,
            "full_window_cases": sums["full_window"], "revenue_change_pct": rate(100 * change, sums["revenue_before"])},
            r["path"])
    assert sum(r["purchases_before"] for r in got) > 0 and sum(r["purchases_after"] for r in got) > 0


ASKED = ("email.received", "sms.received", "postal.mail_received", "social.comment_posted", "social.review_posted")
REPLIES = ("email.sent", "sms.sent", "postal.mail_sent", "social.reply_sent")


def _cem(records, views, cases):
    """Per channel, the reliability figures cem_touchpoints should show (its comment defines them)."""
    inbound, answered, ended, chats, asked, replied = set(), {}, set(), defaultdict(set), {}, {}
    replies = defaultdict(list)
    for r in records:
        kind, at, channel = (r["envelope"][k] for k in ("event_type", "occurred_at", "channel"))
        if kind in ("phone.call_started", "phone.call_ended") and r["direction"] == "inbound":
            inbound.add(r["call_id"])
        if kind == "phone.call_answered":
            answered[r["call_id"]] = min(answered.get(r["call_id"], r["wait_seconds"]), r["wait_seconds"])
        if kind == "phone.call_ended":
            ended.add(r["call_id"])
        if kind == "web.chat_message_sent":
            chats[r["conversation_id"]].add(r["sender"])
            if r["sender"] == "agent" and r["response_seconds"] is not None:
                replies["web"].append(r["response_seconds"])
        if kind in ASKED:
            key = (channel, next(r[k] for k in ("message_id", "mail_id", "comment_id", "review_id") if k in r))
            asked[key] = min(asked.get(key, at), at)
        if kind in REPLIES and r.get("in_reply_to"):
            replied[(channel, r["in_reply_to"])] = min(replied.get((channel, r["in_reply_to"]), at), at)
    for key, at in replied.items():
        if key in asked:
            replies[key[0]].append((at - asked[key]).total_seconds())
    waits = [answered[c] for c in inbound if c in answered]
    talks = [senders for senders in chats.values() if "customer" in senders]
    tries = {"phone": (len(waits), len(waits) + len(inbound & ended - set(answered))),
             "web": (sum("agent" in s for s in talks), len(talks))}
    users, odd, found = defaultdict(set), defaultdict(set), defaultdict(Counter)
    for c, v in views.items():
        mine = {ch["channel"] for ch in v["channels"]}
        for ch in mine:
            users[ch].add(c)
        for f in (f for f in v["findings"] if f["kind"] in ("conflict", "repeat_question", "repeated_request")):
            for ch in f["channels"]:
                found[ch][f["kind"] == "conflict"] += 1
                if ch in mine:   # a share of the channel's customers
                    odd[ch].add(c)
    first, clocks = defaultdict(list), defaultdict(Counter)
    for v in cases.views.values():
        first[v["origin_channel"]].append(v["metrics"]["first_response_seconds"])
    for c in cases.clocks:
        clocks[c["channel"]].update({"met": c["state"] == "met", "decided": c["state"] == "met" or c["breached"]})

    def of(channel: str) -> dict:
        phone, reply, f = channel == "phone", replies.get(channel, []), [x for x in first[channel] if x is not None]
        reached, attempts = tries.get(channel, (None, None))
        return {"answered_calls": len(waits) if phone else None, "mean_wait_seconds": mean(waits) if phone else None,
                "median_wait_seconds": median(waits) if phone else None,
                "replies": len(reply) if channel in ("web", "email", "sms", "postal_mail", "social") else None,
                "mean_reply_seconds": mean(reply) if reply else None,
                "median_reply_seconds": median(reply) if reply else None,
                "complaint_cases": len(first[channel]), "mean_first_response_seconds": mean(f) if f else None,
                "median_first_response_seconds": median(f) if f else None,
                "contact_attempts": attempts, "contacts_reached": reached,
                "availability_rate": rate(reached, attempts) if attempts is not None else None,
                "customers": len(users[channel]), "customers_with_inconsistency": len(odd[channel]),
                "conflict_findings": found[channel][True], "repeat_findings": found[channel][False],
                "consistency_rate": rate(len(users[channel]) - len(odd[channel]), len(users[channel])),
                "sla_decided": clocks[channel]["decided"], "sla_met": clocks[channel]["met"],
                "sla_met_share": rate(clocks[channel]["met"], clocks[channel]["decided"])}
    return of


def test_cem_touchpoints_per_channel(run):
    db, _, views, cases, records = run
    want = _cem(records, views, cases)
    got = {r["channel"]: r for r in rows(db, "cem_touchpoints")}
    assert set(got) == {r["channel"] for r in rows(db, "channel_reference")}
    for channel, r in got.items():
        check(r, want(channel), channel)
    assert got["phone"]["answered_calls"] > 0 and got["email"]["replies"] > 0 and got["web"]["contact_attempts"] > 0
    assert got["store"]["answered_calls"] is None and got["store"]["availability_rate"] is None
    assert any(r["customers_with_inconsistency"] for r in got.values())


def test_every_view_answers_on_an_empty_database(tmp_path):
    db = serving_db(tmp_path / "empty.duckdb")
    try:
        db.execute_script(SQL)   # CREATE OR REPLACE only: a second run changes nothing
        fixed = {"channel_reference": 11, "contact_pressure_distribution": 6, "journey_funnel": 5,
                 "complaint_funnel": 7, "callback_cost": 2, "satisfaction_by_path": 4, "revenue_around_contact": 4,
                 "cem_touchpoints": 11}
        for name in NAMES:
            got = rows(db, name)
            assert len(got) == fixed.get(name, 0), name
            assert all(r.get(k) in (0, None) for r in got for k in ("customers", "cases", "answered_calls")), name
        phone = rows(db, "SELECT * FROM cem_touchpoints WHERE channel = 'phone'")[0]
        assert (phone["answered_calls"], phone["availability_rate"], phone["sla_met_share"]) == (0, None, None)
    finally:
        db.close()


def test_every_view_is_documented_with_a_question_and_an_example_that_runs(run):
    db = run[0]
    docs = (ROOT / "docs/views.md").read_text()
    asked = {"channel_reference", "channel_mix", "pmp_distribution", "contact_pressure", "contact_pressure_distribution",
             "journey_funnel", "complaint_funnel", "sla_breaches_daily", "fcr_by_channel", "fcr_by_dimension",
             "callback_cost", "satisfaction_by_path", "revenue_around_contact", "cem_touchpoints"}
    assert len(NAMES) == len(set(NAMES)) and asked <= set(NAMES) <= set(KPI_VIEWS)
    for name in NAMES:
        head = SQL[:SQL.index(f"CREATE OR REPLACE VIEW {name} AS")].rstrip("\n").splitlines()
        comment = []
        while head and head[-1].startswith("--"):
            comment.insert(0, head.pop())
        assert any(line.startswith("-- Question: ") for line in comment), name
        example = [line[len("-- Example: "):] for line in comment if line.startswith("-- Example: ")]
        assert len(example) == 1 and re.search(rf"\bFROM {name}\b", example[0]), name
        assert rows(db, example[0].rstrip(";")), name   # it runs, and answers on the demo runs
        section = docs.split(f"## `{name}`")[1].split("\n## ")[0]
        assert example[0] in section, name
        for column in (r["column_name"] for r in rows(db, f"DESCRIBE {name}")):
            assert f"`{column}`" in section, (name, column)
