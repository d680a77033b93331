"""The fault figures can fail: fabricated losses, double counts and false events are each counted.

Why: every fault case asserts ``lost == double == false == 0``; a counting helper that
always said 0 would pass them all. These checks feed it snapshots with one defect each.
"""

from __future__ import annotations

from collections import Counter
from copy import deepcopy

import duckdb
import pytest

from tests.faults.tally import Snapshot, compare, digest_sql

PUBLISHED = {"e1", "e2", "e3"}


def snapshot() -> Snapshot:
    return Snapshot(
        hashes={"interactions": [3, "abc"]},
        interaction_ids=Counter({"e1": 1, "e2": 1, "e3": 1}),
        customer_events=Counter({"CU-1": 2, "anon-1": 1}),
        case_contacts=Counter({"CASE-1": 2}),
        decisions=Counter({"e1|identity.linked|CU-1": 1}),
        decided_by={"e1"},
        sla_on_topic=Counter({"sla-1": 1}),
        findings_on_topic=Counter({"f-1": 1}),
        findings_held={"f-1"},
    )


def test_an_identical_run_is_clean():
    figures = compare(snapshot(), snapshot(), PUBLISHED)
    assert figures.clean and (figures.lost, figures.double, figures.false) == (0, 0, 0)
    assert figures.line("none", 3) == \
        "fault=none events=3 lost=0 double=0 false=0 hash_equal=True transient_findings=0"


def defect(**changes) -> Snapshot:
    run = deepcopy(snapshot())
    for name, value in changes.items():
        setattr(run, name, value)
    return run


@pytest.mark.parametrize("run, expected", [
    (defect(interaction_ids=Counter({"e1": 1, "e2": 1})), (1, 0, 0)),                       # e3 never logged
    (defect(dead_letters=1), (1, 0, 0)),                                                      # dead-lettered
    (defect(customer_events=Counter({"CU-1": 3, "anon-1": 1})), (0, 1, 0)),                   # an event folded twice
    (defect(customer_events=Counter({"CU-1": 2, "anon-1": 1, "anon-2": 1})), (0, 0, 1)),      # a customer too many
    (defect(customer_events=Counter({"CU-1": 3})), (1, 1, 0)),                                # anon-1 folded into CU-1
    (defect(case_contacts=Counter({"CASE-1": 3})), (0, 1, 0)),                                # a contact counted twice
    (defect(sla_on_topic=Counter({"sla-1": 1, "sla-2": 1})), (0, 0, 1)),                      # a false breach
    (defect(sla_on_topic=Counter()), (1, 0, 0)),                                              # a breach never sent
    (defect(findings_on_topic=Counter({"f-1": 1, "f-2": 1}), findings_held={"f-1", "f-2"}), (0, 0, 1)),
    (defect(findings_on_topic=Counter()), (1, 0, 0)),                                         # held, never sent
    (defect(decisions=Counter({"e1|identity.linked|CU-1": 2})), (0, 1, 0)),                   # one event decided twice
    (defect(decided_by={"e1", "ghost"}), (0, 0, 1)),
    (defect(interaction_ids=Counter({"e1": 1, "e2": 1, "e3": 1, "e4": 1})), (0, 0, 1)),       # nobody published e4
])
def test_each_defect_is_counted(run, expected):
    figures = compare(snapshot(), run, PUBLISHED)
    assert (figures.lost, figures.double, figures.false) == expected, figures.why
    assert not figures.clean and figures.why


def test_a_redelivered_sla_event_is_harmless():
    """Deterministic ids: a subscriber ignores an id seen before, so a repeat is not a double count."""
    assert compare(snapshot(), defect(sla_on_topic=Counter({"sla-1": 2})), PUBLISHED).clean


def test_a_finding_no_settled_360_holds_is_reported_not_judged():
    figures = compare(snapshot(), defect(findings_on_topic=Counter({"f-1": 1, "f-0": 1})), PUBLISHED)
    assert figures.clean and figures.transient == 1


def test_a_different_hash_alone_fails():
    figures = compare(snapshot(), defect(hashes={"interactions": [3, "abd"]}), PUBLISHED)
    assert not figures.hash_equal and not figures.clean
    assert "interactions" in figures.why[0]


def test_digest_ignores_row_order_but_not_content():
    con = duckdb.connect()
    con.execute("CREATE TABLE t (k VARCHAR, v INTEGER)")
    con.execute("INSERT INTO t VALUES ('a', 1), ('b', NULL)")
    first = con.execute(digest_sql("t", "k, v")).fetchone()
    con.execute("DELETE FROM t")
    con.execute("INSERT INTO t VALUES ('b', NULL), ('a', 1)")
    assert con.execute(digest_sql("t", "k, v")).fetchone() == first
    con.execute("UPDATE t SET v = 0 WHERE k = 'b'")
    assert con.execute(digest_sql("t", "k, v")).fetchone() != first
    con.execute("INSERT INTO t VALUES ('a', 1)")
    assert con.execute(digest_sql("t", "k, v")).fetchone()[0] == 3
