"""The complaint KPI views (projections/sql/complaint_kpis.sql) against figures computed in Python.

A demo run goes through the real complaint sink into a real DuckDB (``tests.complaint_fill``),
with the interaction log beside it and SLA clocks from the pure ``complaint_sla.clocks``.
Every expected figure is recomputed here from the pure fold's case views (and, where the
KPI spans cases, checked against ``complaint_case_fcr.summarise``), never written down, so
the views are held to the meaning of the case view rather than to a snapshot of numbers.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from statistics import mean, median
from types import SimpleNamespace

import pytest

from tests.complaint_fill import (
    case_events, case_views, fold_cases, later_behaviour, run_sink, write_log, write_sla,
)
from tests.pipeline_harness import validated
from touchstream.demo.generator import DEFAULT_START, generate
from touchstream.projections import complaint_resolution as cases
from touchstream.projections.customer_360 import view_fingerprint, view_json
from touchstream.projections.duckdb_store import DuckDBStore, load_sql

CUSTOMERS, DAYS, SEED = 80, 120, 3  # ~60 cases in 4 months: every path, outreach, breaches; the 90 days bind
NOW = DEFAULT_START + timedelta(days=400)
VIEWS = ("complaint_case_facts", "complaint_kpis", "complaint_causes", "complaint_sla_compliance",
         "complaint_breaches", "complaint_loyalty_cases", "complaint_loyalty", "complaint_discovery")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    events = validated(list(generate(CUSTOMERS, DAYS, SEED)))
    db = DuckDBStore(tmp_path_factory.mktemp("kpis") / "serving.duckdb")
    write_log(db, events, NOW)
    run_sink(db, events)
    folded = fold_cases(events)
    last = max(e.record["envelope"]["occurred_at"] for e in events)
    clocks, sent = write_sla(db, folded, last, NOW)
    yield SimpleNamespace(db=db, events=events, folded=folded, views=case_views(folded),
                          clocks=clocks, sent=sent, by_case=case_events(events), last=last)
    db.close()


def rows(db: DuckDBStore, view: str) -> list[dict]:
    cur = db.cursor()
    try:
        result = cur.execute(f"SELECT * FROM {view}")
        names = [d[0] for d in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]
    finally:
        cur.close()


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _avg(values) -> float | None:
    present = [v for v in values if v is not None]
    return mean(present) if present else None


def _same(got: dict, want: dict, places: dict[str, int]) -> None:
    """Equal, floats within the rounding of their column (``places`` decimals in the view)."""
    for name, value in want.items():
        if isinstance(value, float) and got[name] is not None:
            assert abs(float(got[name]) - value) <= 0.5 * 10 ** -places[name] + 1e-9, (name, got[name], value)
        else:
            assert got[name] == value, (name, got[name], value)


def _score(view: dict) -> int | None:
    rating = view["satisfaction"]["complaint_satisfaction"]
    return rating["score"] if rating else None


def _kpis(views: list[dict], breached: set[str]) -> dict:
    metrics = [v["metrics"] for v in views]
    judged = [v["fcr"]["fcr"] for v in views if v["fcr"]["fcr"] is not None]
    scores = [s for s in map(_score, views) if s is not None]
    first = [m["first_response_seconds"] for m in metrics if m["first_response_seconds"] is not None]
    resolution = [m["resolution_seconds"] for m in metrics if m["resolution_seconds"] is not None]
    return {
        "opened": len(views), "resolved": sum(v["resolved_at"] is not None for v in views),
        "closed": sum(v["state"] == "closed" for v in views), "still_open": sum(v["open"] for v in views),
        "reopened_cases": sum(v["reopen_count"] > 0 for v in views), "reopens": sum(v["reopen_count"] for v in views),
        "fcr": sum(judged), "fcr_judged": len(judged), "fcr_rate": _rate(sum(judged), len(judged)),
        "callbacks_promised": sum(m["callbacks_promised"] for m in metrics),
        "callbacks_missed": sum(m["callbacks_missed"] for m in metrics),
        "phone_tag_cases": sum(m["phone_tag"] for m in metrics),
        "extra_contacts": sum(m["extra_contacts"] for m in metrics),
        "sla_breached_cases": sum(v["case_id"] in breached for v in views),
        "mean_wait_seconds": _avg(m["wait_seconds"] for m in metrics),
        "mean_first_response_seconds": _avg(first), "median_first_response_seconds": median(first) if first else None,
        "mean_resolution_seconds": _avg(resolution),
        "median_resolution_seconds": median(resolution) if resolution else None,
        "mean_handle_seconds": _avg(m["handle_seconds"] for m in metrics),
        "rated": len(scores), "mean_satisfaction": _avg(scores),
        "satisfied_share": _rate(sum(s >= 4 for s in scores), len(scores)),
    }


KPI_PLACES = {"fcr_rate": 4, "satisfied_share": 4, "mean_satisfaction": 2, **{
    f"{stat}_{name}_seconds": 1 for stat in ("mean", "median") for name in ("wait", "first_response", "resolution",
                                                                              "handle")}}


def test_the_run_has_every_kind_of_case(run):
    stored = {r["case_id"]: r["fingerprint"] for r in rows(run.db, "complaint_cases")}
    assert stored == {k: view_fingerprint(view_json(v)) for k, v in run.views.items()}   # the sink's views
    paths = {r["path"] for r in rows(run.db, "complaint_loyalty_cases")}
    assert paths == {"fcr", "callback", "other_resolved", "unresolved"}
    assert any(v["initiated_by"] == "company" for v in run.views.values())
    assert any(r["breached"] for r in run.clocks) and any(_score(v) for v in run.views.values())


def test_daily_kpis_by_channel_product_and_team(run):
    breached = {r["case_id"] for r in run.clocks if r["breached"]}
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for v in run.views.values():
        day = _at(v["opened_at"]).astimezone(timezone.utc).date()
        groups[(day, v["origin_channel"], v["product"], v["assigned_team"])].append(v)
    got = {(r["day"], r["origin_channel"], r["product"], r["assigned_team"]): r for r in rows(run.db, "complaint_kpis")}
    assert set(got) == set(groups)
    for key, views in groups.items():
        _same(got[key], _kpis(views, breached), KPI_PLACES)
    whole = cases.summarise(run.folded.values())
    totals = _kpis(list(run.views.values()), breached)
    assert (totals["opened"], totals["resolved"], totals["fcr_judged"], totals["fcr"]) == \
        (whole["cases"], whole["resolved"], whole["fcr_judged"], whole["fcr"])
    assert totals["extra_contacts"] == whole["extra_contacts_from_phone_tag"]
    assert round(totals["phone_tag_cases"] / totals["opened"], 4) == whole["phone_tag_rate"]
    assert sum(r["opened"] for r in got.values()) == len(run.views)


def test_causes_by_product_cause_channel_team_and_touchpoint(run):
    seen, repeat = set(), set()
    ordered = sorted(run.views.values(), key=lambda v: (_at(v["opened_at"]), v["case_id"]))
    for v in ordered:
        issue = (v["customer_id"], v["product"], v["category"], v["cause"])
        if v["customer_id"] is not None and issue in seen:
            repeat.add(v["case_id"])
        seen.add(issue)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for v in ordered:
        touchpoint = v["about_channel"] or v["origin_channel"]
        groups[(v["product"], v["cause"], v["category"], v["origin_channel"], v["assigned_team"], touchpoint)].append(v)
    got = rows(run.db, "complaint_causes")
    assert [r["cases"] for r in got] == sorted((r["cases"] for r in got), reverse=True)
    by_key = {tuple(r[k] for k in ("product", "cause", "category", "origin_channel", "assigned_team", "touchpoint")): r
              for r in got}
    assert set(by_key) == set(groups)
    for key, views in groups.items():
        reps = sum(v["case_id"] in repeat for v in views)
        _same(by_key[key], {
            "cases": len(views), "customers": len({v["customer_id"] for v in views} - {None}),
            "share_of_cases": len(views) / len(run.views), "repeat_cases": reps, "repeat_share": reps / len(views),
            "reopened_cases": sum(v["reopen_count"] > 0 for v in views),
            "first_opened_at": _at(views[0]["opened_at"]), "last_opened_at": _at(views[-1]["opened_at"]),
        }, {"share_of_cases": 4, "repeat_share": 4})


def test_sla_compliance_by_clock_kind_priority_channel_and_policy(run):
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for c in run.clocks:
        groups[(c["clock_kind"], c["priority"], c["channel"], c["policy_version"])].append(c)
    got = {(r["clock_kind"], r["priority"], r["channel"], r["policy_version"]): r
           for r in rows(run.db, "complaint_sla_compliance")}
    assert set(got) == set(groups)
    for key, clocks in groups.items():
        met = sum(c["state"] == "met" for c in clocks)
        breached = sum(c["breached"] for c in clocks)
        _same(got[key], {"clocks": len(clocks), "met": met, "breached": breached,
                         "running": sum(c["state"] in ("running", "warning") for c in clocks),
                         "warning": sum(c["state"] == "warning" for c in clocks),
                         "compliance_rate": _rate(met, met + breached)}, {"compliance_rate": 4})


def test_breaches_list_every_breached_clock_newest_first_with_its_case(run):
    published = {}
    for e in run.sent:
        if e["event_type"] == "complaint.sla_breached":
            key = (e["case_id"], e["clock"])
            published[key] = max(published.get(key, ""), e["event_id"])
    want = sorted((c for c in run.clocks if c["breached"]), key=lambda c: (c["case_id"], c["clock"]))
    want.sort(key=lambda c: c["due_at"], reverse=True)
    got = rows(run.db, "complaint_breaches")
    assert [(r["case_id"], r["clock"]) for r in got] == [(c["case_id"], c["clock"]) for c in want]
    for r, c in zip(got, want):
        v = run.views[c["case_id"]]
        assert (r["due_at"], r["met_at"], r["breached_at"]) == (c["due_at"], c["met_at"], c["due_at"])
        assert (r["customer_id"], r["case_state"], r["is_open"], r["assigned_team"]) == \
            (v["customer_id"], v["state"], v["open"], v["assigned_team"])
        assert r["breach_event_id"] == published.get((c["case_id"], c["clock"]))
    assert any(r["breach_event_id"] for r in got)


def test_loyalty_after_the_complaint_by_resolution_path(run):
    want = {k: later_behaviour(run.events, v, {r["envelope"]["event_id"] for r in run.by_case[k]}, run.last)
            for k, v in run.views.items() if v["customer_id"] and v["opened_at"]}
    got = {r["case_id"]: r for r in rows(run.db, "complaint_loyalty_cases")}
    assert set(got) == set(want)
    for key, expected in want.items():
        _same(got[key], expected, {})
    assert sum(w["purchases"] for w in want.values()) > 0 and any(w["inbound"] for w in want.values())
    paths = {r["path"]: r for r in rows(run.db, "complaint_loyalty")}
    assert list(paths) == ["fcr", "callback", "other_resolved", "unresolved"]
    for path, row in paths.items():
        mine = [(k, w) for k, w in want.items() if w["path"] == path]
        n = len(mine)
        _same(row, {
            "cases": n, "customers": len({run.views[k]["customer_id"] for k, _ in mine}),
            "purchases_per_case": sum(w["purchases"] for _, w in mine) / n,
            "revenue_per_case": float(sum(w["revenue"] for _, w in mine)) / n,
            "inbound_per_case": sum(w["inbound"] for _, w in mine) / n,
            "inbound_share": sum(w["inbound"] > 0 for _, w in mine) / n,
            "churned": sum(w["churned"] for _, w in mine), "churn_rate": sum(w["churned"] for _, w in mine) / n,
            "full_window_cases": sum(w["full_window"] for _, w in mine),
        }, {"purchases_per_case": 4, "revenue_per_case": 2, "inbound_per_case": 4, "inbound_share": 4,
            "churn_rate": 4})


def test_discovery_share_overall_and_by_origin_channel(run):
    groups: dict[str, list[dict]] = defaultdict(list)
    for v in run.views.values():
        groups[v["origin_channel"]].append(v)
        groups["all channels"].append(v)
    got = rows(run.db, "complaint_discovery")
    assert got[-1]["origin_channel"] == "all channels" and len(got) == len(groups)
    for r in got:
        views = groups[r["origin_channel"]]
        company = sum(v["initiated_by"] == "company" for v in views)
        _same(r, {"cases": len(views), "by_company": company,
                  "by_customer": sum(v["initiated_by"] == "customer" for v in views),
                  "company_share": company / len(views)}, {"company_share": 4})
    assert 0 < got[-1]["by_company"] < got[-1]["cases"]


def test_every_view_answers_on_an_empty_database(tmp_path):
    db = DuckDBStore(tmp_path / "empty.duckdb")
    try:
        run_sink(db, [])
        db.execute_script(load_sql("complaint_kpis"))          # and again: CREATE OR REPLACE only
        for view in VIEWS:
            got = rows(db, view)
            if view == "complaint_discovery":
                assert [(r["origin_channel"], r["cases"], r["company_share"]) for r in got] == \
                    [("all channels", 0, None)]
            else:
                assert got == [], view
    finally:
        db.close()
