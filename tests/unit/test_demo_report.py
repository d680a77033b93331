"""The demo report: its statements through the real query endpoint, over the real tables and views.

A small demo run is written the way the serving process writes it, without Kafka:
the interaction log by the store's own batch write; the customer-360 by resolving
identities with ``IdentityResolver``, folding each customer and storing the rows the
sink stores (``summary_row``, claims, the fold's event index). The report is read
through ``POST /sql``, so values arrive as JSON exactly as ``touchstream demo`` gets them.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from touchstream.demo import report
from touchstream.demo.generator import DEFAULT_START, event_id_prefix, generate
from touchstream.events.catalogue import Catalogue
from touchstream.processors.customer_360 import summary_row
from touchstream.projections.customer_360 import fold, view
from touchstream.projections.customer_360_routing import Claim
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.projections.identity_resolution import IdentityResolver
from touchstream.projections.interaction_log import Position, to_row
from touchstream.serving.http_app import build_api

CUSTOMERS, DAYS, SEED = 40, 30, 7  # small, yet with findings of two kinds
PREFIX = event_id_prefix(CUSTOMERS, DAYS, SEED)
NOW = DEFAULT_START + timedelta(days=400)  # later than every event
STATS = report.RunStats(1234, 2.0, 1.0, 12)


def _fill(db: DuckDBStore) -> tuple[int, dict[str, list[dict]], dict[str, dict]]:
    """Write the run; returns its event count, its records and its 360 views by customer."""
    catalogue, resolver = Catalogue(), IdentityResolver()
    rows, positions, index = [], [], []
    for n, event in enumerate(generate(CUSTOMERS, DAYS, SEED)):
        valid = catalogue.validate(event, now=NOW)
        positions.append(Position(valid.topic, 0, n))
        rows.append(to_row(valid.event_type, valid.record, 1, positions[-1], NOW))
        env = valid.record["envelope"]
        index.append({"event_id": env["event_id"], "anchor": str(resolver.observe(valid.record).anchor),
                      "occurred_at": env["occurred_at"], "value": b"", "record": valid.record})
    db.apply_interactions("interaction_log", rows, positions)
    owner = resolver.assignment()
    customers: dict[str, list[dict]] = defaultdict(list)
    for e in index:
        customers[owner[e["anchor"]]].append(e.pop("record"))
    views = {c: view(fold(rs, c)) for c, rs in sorted(customers.items())}
    store = Customer360Store(db)
    with db.transaction() as con:
        store.add_events(con, index)
        store.put_claims(con, [Claim(identifier, customer, 1) for identifier, customer in owner.items()])
        store.put_profiles(con, [summary_row(c, v, NOW) for c, v in views.items()], [])
    return len(rows), customers, views


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = DuckDBStore(tmp_path_factory.mktemp("report") / "serving.duckdb")
    events, customers, views = _fill(db)
    client = TestClient(build_api(db))

    def query(sql: str) -> dict:
        response = client.post("/sql", json={"sql": sql, "max_rows": 1000})
        assert response.status_code == 200, response.text
        return response.json()

    yield query, events, customers, views
    db.close()


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
                  "Examples (up to 5", "A few 360s", "Their last 3 interactions"):
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


def test_free_text_masks_contact_details_but_not_ids():
    from touchstream.demo.report_360 import _safe

    assert _safe("asked ann.d@x.example and +31 6 1234 5678 / 0612345678") == \
        "asked <redacted> and <redacted> / <redacted>"
    for subject in ("CASE-96ec77-0000041", "demo-96ec7703-00000155", "golden:household_size", "CMP-2026-01"):
        assert _safe(subject) == subject
