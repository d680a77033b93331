"""The demo report: its statements through the real query endpoint, over the real tables and views.

Small demo runs are written the way the serving process writes them, without Kafka
(``tests.demo_report_fill``: interaction log, customer-360, complaint cases and SLA
clocks). The report is read through ``POST /sql``, so values arrive as JSON exactly as
``touchstream demo`` gets them; every complaint figure is recomputed from the pure fold.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from tests.complaint_fill import later_behaviour, loyalty_path
from tests.demo_report_fill import CUSTOMERS, DAYS, NOW, OTHER_PREFIX, PREFIX, SEED, fill
from touchstream.demo import report
from touchstream.demo.generator import event_id_prefix
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.serving.http_app import build_api

STATS = report.RunStats(1234, 2.0, 1.0, 12)


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """Both runs in every table the report reads (``tests.demo_report_fill``), read through ``POST /sql``."""
    db = DuckDBStore(tmp_path_factory.mktemp("report") / "serving.duckdb")
    events, customers, views, cases = fill(db)
    client = TestClient(build_api(db))

    def query(sql: str) -> dict:
        response = client.post("/sql", json={"sql": sql, "max_rows": 1000})
        assert response.status_code == 200, response.text
        return response.json()

    yield query, events, customers, views, cases
    db.close()


@pytest.fixture(scope="module")
def served(filled):
    return filled[:4]


@pytest.fixture(scope="module")
def complaints(filled):
    return filled[0], filled[4]


def _section(text: str, title: str) -> list[str]:
    """The lines of the table under ``title``: header, rule, rows."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title)) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def test_report_covers_the_interaction_log(served):
    query, events, _, _ = served
    text = report.build(query, PREFIX, STATS)
    assert "Published 1,234 events" in text and "Complaints" in text
    assert "caught up 1.0s after the last acknowledgement (interaction log, identity resolution" in text
    totals = query(report.queries(PREFIX)["identities"])
    customer_ids, events_counted = totals["rows"][0][0], totals["rows"][0][-1]
    assert events_counted == events and 0 < customer_ids <= CUSTOMERS


def test_360_headline_counts_the_profiles_of_the_run(served):
    query, _, customers, views = served
    known = sorted(c for c in customers if not c.startswith("anon-"))
    assert CUSTOMERS - 3 <= len(known) <= CUSTOMERS < len(customers)  # some visitors stay anonymous
    (row,) = query(report.queries(PREFIX)["c360_totals"])["rows"]
    profiles, n_known, anonymous, channels_per_known = row[:4]
    assert (profiles, n_known, anonymous) == (len(customers), len(known), len(customers) - len(known))
    mean = sum(len(views[c]["channels"]) for c in known) / len(known)
    assert float(channels_per_known) == pytest.approx(mean, abs=0.005)
    stages = query(report.queries(PREFIX)["c360_stages"])["rows"]
    assert sum(r[1] for r in stages) == n_known and sum(r[3] for r in stages) == anonymous
    assert {"research", "sale"} <= {r[0] for r in stages}


def test_pmp_distribution_covers_every_known_customer(served):
    query, _, customers, views = served
    rows = query(report.queries(PREFIX)["pmp"])["rows"]
    assert sum(r[1] for r in rows) == sum(1 for c in customers if not c.startswith("anon-"))
    assert sum(float(r[2]) for r in rows) == pytest.approx(100, abs=0.5)
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
    preferred = Counter(v["pmp"][0]["channel"] if v["pmp"] else "(none)" for c, v in views.items()
                        if not c.startswith("anon-"))
    assert {r[0]: r[1] for r in rows if r[1]} == preferred
    assert all(r[4] is None or 0 <= float(r[4]) <= 2 for r in rows)


def test_findings_are_counted_by_kind_with_examples_of_each(served):
    query, _, _, views = served
    rows = query(report.queries(PREFIX)["findings"])["rows"]
    expected = Counter(f["kind"] for v in views.values() for f in v["findings"])
    assert len(expected) >= 2 and rows[-1][0] == "all kinds"
    assert expected["contact_without_consent"] > 0   # e-mails after a withdrawal told to the service line
    assert {r[0]: r[1] for r in rows[:-1]} == expected and rows[-1][1] == sum(expected.values())
    examples = query(report.queries(PREFIX)["finding_examples"])["rows"]
    assert len(examples) == min(5, sum(expected.values())) and {r[1] for r in examples} == set(expected)
    assert [datetime.fromisoformat(r[4]) for r in examples] == sorted(datetime.fromisoformat(r[4]) for r in examples)


def test_a_few_360s_show_the_busiest_known_customers(served):
    query, _, customers, views = served
    text = report.build(query, PREFIX, STATS)
    picked = _section(text, "A few 360s")[2:]
    ranked = sorted((c for c in customers if not c.startswith("anon-")),
                    key=lambda c: (-len(views[c]["channels"]), -len(customers[c]), c))
    assert [line.split()[0] for line in picked] == ranked[:3]
    recent = _section(text, "Their last 3 interactions")[2:]
    assert [line.split()[0] for line in recent] == [c for c in ranked[:3] for _ in range(3)]
    first = views[ranked[0]]
    assert str(first["commerce"]["orders"]) in picked[0].split()
    assert picked[0].split()[1:3] == [first["journey"]["stage"], first["pmp"][0]["channel"]]
    newest = max(first["interactions"], key=lambda i: (datetime.fromisoformat(i["at"]), i["event_id"]))
    assert recent[0].split()[3:5] == [newest["channel"], newest["content"]]


def test_report_is_deterministic_and_shows_no_contact_details(served):
    query, _, _, views = served
    text = report.build(query, PREFIX, STATS)
    assert text == report.build(query, PREFIX, STATS)
    for title in ("Customer 360", "Journey stage", "Preferred media package", "Contact findings",
                  "Examples (up to 5", "A few 360s", "Their last 3 interactions", "Complaints (", "SLA clocks",
                  "Phone tag", "Complaint discovery", "Loyalty in the 90 days"):
        assert len(_section(text, title)) >= 3, title
    identifiers = {i["value"] for v in views.values() for i in v["identifiers"] if i["kind"] in ("email", "phone")}
    assert identifiers and not any(value in text for value in identifiers)
    assert "@" not in text and not re.search(r"\+31\d", text)
    assert f"{NOW.year}-" not in text  # updated_at and ingested_at (NOW here) never show


def test_an_unrelated_run_sees_empty_360_sections(served):
    query = served[0]
    other = event_id_prefix(CUSTOMERS, DAYS, SEED + 1)
    text = report.build(query, other, STATS)
    assert _section(text, "A few 360s")[2:] == []
    assert [line.split() for line in _section(text, "Contact findings")[2:]] == [["all", "kinds", "0", "0"]]
    assert _section(text, "Complaints (")[2].split()[:3] == ["0", "0", "0"]
    for title in ("Open cases", "Phone tag", "Complaint discovery", "Loyalty in the 90 days"):
        assert _section(text, title)[2:] == [], title
    assert [line.split() for line in _section(text, "SLA clocks")[2:]] == \
        [["all", "clocks", "0", "0", "0", "0", "all", "channels", "0", "0", "0"]]   # no rate of nothing


def test_free_text_masks_contact_details_but_not_ids():
    from touchstream.demo.report_360 import _safe

    assert _safe("asked ann.d@x.example and +31 6 1234 5678 / 0612345678") == \
        "asked <redacted> and <redacted> / <redacted>"
    for subject in ("CASE-96ec77-0000041", "demo-96ec7703-00000155", "golden:household_size", "CMP-2026-01"):
        assert _safe(subject) == subject


def _dicts(result: dict) -> list[dict]:
    return [dict(zip(result["columns"], row)) for row in result["rows"]]


def _close(text, want: float | None, places: int) -> None:
    """A printf'd figure equals the Python one to its printed decimals."""
    assert (text is None) if want is None else abs(float(text) - want) <= 0.5 * 10 ** -places + 1e-9, (text, want)


def _pct(part: int, whole: int) -> float | None:
    return 100 * part / whole if whole else None


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _run(cases, prefix: str) -> tuple[list[dict], list[dict]]:
    """The case views and SLA clocks of the cases with an event of the run."""
    ids = {k for k, records in cases.by_case.items() if k in cases.views
           and any(r["envelope"]["event_id"].startswith(prefix) for r in records)}
    return [cases.views[k] for k in sorted(ids)], [c for c in cases.clocks if c["case_id"] in ids]


def _score(v: dict) -> int | None:
    return (v["satisfaction"]["complaint_satisfaction"] or {}).get("score")


@pytest.mark.parametrize("prefix", [PREFIX, OTHER_PREFIX])
def test_complaint_totals_and_open_cases_are_those_of_the_run(complaints, prefix):
    query, cases = complaints
    views, clocks = _run(cases, prefix)
    breached = {c["case_id"] for c in clocks if c["breached"]}
    (got,) = _dicts(query(report.queries(prefix)["complaint_totals"]))
    resolved = [v for v in views if v["resolved_at"]]
    reopened = sum(v["reopen_count"] > 0 for v in resolved)
    scores = [s for s in map(_score, views) if s is not None]
    assert views and [got[k] for k in ("cases", "open", "resolved", "closed", "reopened", "sla_breached", "rated")] \
        == [len(views), sum(v["open"] for v in views), len(resolved), sum(v["state"] == "closed" for v in views),
            reopened, sum(v["case_id"] in breached for v in views), len(scores)]
    _close(got["reopen_pct"], _pct(reopened, len(resolved)), 1)
    _close(got["mean_satisfaction"], _mean(scores), 2)
    groups = defaultdict(list)
    for v in views:
        if v["open"]:
            groups[(v["state"], v["assigned_team"] or "(none)")].append(v)
    rows = _dicts(query(report.queries(prefix)["complaint_open"]))
    assert {(r["state"], r["team"]): (r["cases"], r["sla_breached"], r["oldest_opened"]) for r in rows} == {
        key: (len(vs), sum(v["case_id"] in breached for v in vs),
              min(datetime.fromisoformat(v["opened_at"]) for v in vs).astimezone(timezone.utc).strftime("%Y-%m-%d"))
        for key, vs in groups.items()}
    assert [r["cases"] for r in rows] == sorted((r["cases"] for r in rows), reverse=True)
    assert prefix == PREFIX or len(groups) >= 2   # the second run ends with cases open in several states


@pytest.mark.parametrize("prefix", [PREFIX, OTHER_PREFIX])
def test_sla_by_clock_kind_and_fcr_by_origin_channel(complaints, prefix):
    query, cases = complaints
    views, clocks = _run(cases, prefix)
    kinds = defaultdict(list, {"all clocks": clocks})
    for c in clocks:
        kinds[c["clock_kind"]].append(c)
    rows = _dicts(query(report.queries(prefix)["complaint_sla"]))
    assert {r["kind"] for r in rows} == set(kinds) and rows[-1]["kind"] == "all clocks"
    for r in rows:
        mine = kinds[r["kind"]]
        met, late = sum(c["state"] == "met" for c in mine), sum(c["breached"] for c in mine)
        assert (r["clocks"], r["met"], r["breached"], r["running"]) == \
            (len(mine), met, late, sum(c["state"] in ("running", "warning") for c in mine))
        _close(r["compliance_pct"], _pct(met, met + late), 1)
    channels = defaultdict(list, {"all channels": views})
    for v in views:
        channels[v["origin_channel"]].append(v)
    rows = _dicts(query(report.queries(prefix)["complaint_fcr"]))
    assert {r["channel"] for r in rows} == set(channels) and rows[-1]["channel"] == "all channels"
    for r in rows:
        judged = [v["fcr"]["fcr"] for v in channels[r["channel"]] if v["fcr"]["fcr"] is not None]
        assert (r["cases"], r["fcr"], r["judged"]) == (len(channels[r["channel"]]), sum(judged), len(judged))
        _close(r["fcr_pct"], _pct(sum(judged), len(judged)), 1)


@pytest.mark.parametrize("prefix", [PREFIX, OTHER_PREFIX])
def test_phone_tag_cost_and_discovery_share(complaints, prefix):
    query, cases = complaints
    views, _ = _run(cases, prefix)
    for r in _dicts(query(report.queries(prefix)["complaint_phone_tag"])):
        mine = [v for v in views if v["metrics"]["phone_tag"] == (r["cases_with"] == "callback promised")]
        m = [v["metrics"] for v in mine]
        assert [r[k] for k in ("cases", "callbacks", "missed", "extra_contacts")] == [
            len(mine), sum(x["callbacks_promised"] for x in m), sum(x["callbacks_missed"] for x in m),
            sum(x["extra_contacts"] for x in m)]
        _close(r["contacts_per_case"], _mean(x["contacts"] for x in m), 2)
        _close(r["handle_minutes_per_case"], _mean(x["handle_seconds"] for x in m) / 60, 1)
    labels = {"company": "found by outreach", "customer": "raised by the customer", None: "(no complaint.opened)"}
    rows = _dicts(query(report.queries(prefix)["complaint_discovery"]))
    assert {r["discovery"]: r["cases"] for r in rows} == Counter(labels[v["initiated_by"]] for v in views)
    assert any(r["discovery"] == "found by outreach" for r in rows)
    for r in rows:
        mine = [v for v in views if labels[v["initiated_by"]] == r["discovery"]]
        judged = [v["fcr"]["fcr"] for v in mine if v["fcr"]["fcr"] is not None]
        _close(r["share_pct"], _pct(len(mine), len(views)), 1)
        _close(r["fcr_pct"], _pct(sum(judged), len(judged)), 1)
        _close(r["mean_satisfaction"], _mean(map(_score, mine)), 2)


@pytest.mark.parametrize("prefix", [PREFIX, OTHER_PREFIX])
def test_loyalty_after_the_complaint_by_path(complaints, prefix):
    query, cases = complaints
    views, _ = _run(cases, prefix)
    later = [later_behaviour(cases.valid, v, {r["envelope"]["event_id"] for r in cases.by_case[v["case_id"]]},
                             cases.last) for v in views if v["customer_id"]]
    rows = _dicts(query(report.queries(prefix)["complaint_loyalty"]))
    order = ["fcr", "callback", "other_resolved", "unresolved"]
    assert [r["path"] for r in rows] == [p for p in order if any(w["path"] == p for w in later)]
    for r in rows:
        mine = [w for w in later if w["path"] == r["path"]]
        assert (r["cases"], r["customers"], r["full_90_days"]) == (len(mine), len(
            {v["customer_id"] for v in views if v["customer_id"] and loyalty_path(v) == r["path"]}),
            sum(w["full_window"] for w in mine))
        _close(r["purchases_per_case"], _mean(w["purchases"] for w in mine), 2)
        _close(r["revenue_per_case"], float(sum(w["revenue"] for w in mine)) / len(mine), 2)
        _close(r["inbound_per_case"], _mean(w["inbound"] for w in mine), 1)
        _close(r["churn_pct"], _pct(sum(w["churned"] for w in mine), len(mine)), 1)
