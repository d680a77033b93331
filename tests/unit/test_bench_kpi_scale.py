"""The bench's scale-up keeps the data's shape: ×3 rows, no key conflicts, every KPI figure ×3 or unchanged.

Why: the bench times the analysts' views on a store replicated from a real one
(``touchstream.bench.kpi_scale``); those timings mean something only if the replicas
are the same data again, joined within their own copy. A store is written by the real
sinks (``tests.demo_report_fill``), the views created as serving creates them, then it
is scaled ×3 and every KPI view is compared with the original: views with a row per
entity (customer, case, clock) have each row three times, ids suffixed; aggregate views
have the same rows with counts and sums ×3 and rates, means and medians unchanged.
No timing is asserted.
"""

from __future__ import annotations

import math
import re
import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.demo_report_fill import fill_file
from touchstream.bench.kpi_scale import NOT_REPLICATED, scale_up, time_kpis, time_lookups
from touchstream.serving.analyst_api import KPI_VIEWS

COPIES = 3
# One row per customer, channel, finding or breached clock: each row comes back COPIES times.
ENTITY_VIEWS = {"customer_channels", "contact_findings", "contact_pressure", "complaint_breaches"}
# In aggregate views: counts and sums (integer or decimal columns, and handle_minutes) grow COPIES
# times; INTEGER columns are the views' constants (stage_order, low, high, relative_cost) and
# DOUBLE columns are rates, shares, means and medians, which stay as they were.
ADDITIVE_TYPES = ("BIGINT", "HUGEINT", "DECIMAL")
# handle_minutes: a sum rounded to 1 place; 3 × round(x) and round(3x) differ by at most 4 half units.
ADDITIVE_NAMES = {"handle_minutes": 1}
SUFFIX = re.compile(r"~\d+$")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    base = tmp_path_factory.mktemp("kpi_scale")
    source, target = base / "serving.duckdb", base / "scaled.duckdb"
    fill_file(source)
    result = scale_up(source, target, COPIES)
    original, scaled = (duckdb.connect(str(p), read_only=True) for p in (source, target))
    yield original, scaled, result, target
    original.close()
    scaled.close()


def tables(con) -> dict[str, int]:
    names = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()]
    return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in names}


def test_every_projection_table_has_three_times_its_rows_and_offsets_stay(stores):
    original, scaled, result, _ = stores
    before, after = tables(original), tables(scaled)
    assert set(before) == set(after)
    assert {"sink_offsets", "projection_versions"} <= NOT_REPLICATED
    assert {"interactions", "customer_360_v1", "c360_identity_v1", "c360_events_v1", "complaint_cases",
            "complaint_events", "complaint_sla", "complaint_sla_events"} <= set(before) - NOT_REPLICATED
    assert before["interactions"] > 1000 and before["customer_360_v1"] > 10 and before["complaint_cases"] > 10
    for table, rows in before.items():
        assert after[table] == (rows if table in NOT_REPLICATED else COPIES * rows), table
    assert result["customers"] == COPIES * before["customer_360_v1"]
    assert result["interactions"] == COPIES * before["interactions"]


def test_no_key_is_duplicated(stores):
    scaled = stores[1]
    keys = scaled.execute("SELECT table_name, constraint_column_names FROM duckdb_constraints() "
                          "WHERE schema_name = 'main' AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')").fetchall()
    assert len(keys) >= 10
    for table, columns in keys:
        cols = ", ".join(f'"{c}"' for c in columns)
        total, distinct = scaled.execute(
            f'SELECT count(*), count(DISTINCT ({cols})) FROM "{table}"').fetchone()
        assert total == distinct, (table, columns)


def plain(value):
    """A row value comparable across copies: copy suffixes stripped, lists and structs hashable."""
    if isinstance(value, str):
        return SUFFIX.sub("", value)
    if isinstance(value, (list, tuple)):
        return tuple(plain(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, plain(v)) for k, v in value.items()))
    return value


def same(a, b, places: int | None = None) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        slack = (COPIES + 1) * 0.5 * 10 ** -places if places is not None else 1e-9
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=slack)
    return a == b


def view_rows(con, view: str) -> tuple[list[tuple[str, str]], list[tuple]]:
    result = con.execute(f"SELECT * FROM {view}")
    return [(d[0], str(d[1])) for d in result.description], result.fetchall()


@pytest.mark.parametrize("view", sorted(KPI_VIEWS))
def test_every_kpi_view_keeps_its_shape(stores, view):
    original, scaled = stores[:2]
    columns, before = view_rows(original, view)
    scaled_columns, after = view_rows(scaled, view)
    assert scaled_columns == columns
    if view in ENTITY_VIEWS:   # the same rows, each COPIES times, ids suffixed per copy
        assert len(after) == COPIES * len(before)
        assert Counter(plain(r) for r in after) == Counter({plain(r): COPIES * n
                                                             for r, n in Counter(map(plain, before)).items()})
        return
    assert len(after) == len(before)
    additive = [i for i, (name, dtype) in enumerate(columns)
                if dtype.startswith(ADDITIVE_TYPES) or name in ADDITIVE_NAMES]
    numeric = {i for i, (_, dtype) in enumerate(columns) if dtype.startswith(ADDITIVE_TYPES + ("INTEGER", "DOUBLE"))}
    key = [i for i in range(len(columns)) if i not in numeric]

    def by_key(rows):
        out = {}
        for r in rows:
            k = tuple(plain(r[i]) for i in key)
            assert k not in out, (view, k)   # an aggregate view has one row per key
            out[k] = r
        return out

    want, got = by_key(before), by_key(after)
    assert set(got) == set(want), view
    for k, row in want.items():
        for i in numeric:
            expected = row[i]
            if i in additive and expected is not None:
                expected = expected * (Decimal(COPIES) if isinstance(expected, Decimal) else COPIES)
            places = ADDITIVE_NAMES.get(columns[i][0])
            assert same(got[k][i], expected, places), (view, columns[i][0], k, got[k][i], row[i])


def test_counts_the_views_join_on_grow_with_the_copies(stores):
    """Spot checks of joins through suffixed ids, JSON ids included (calls, replies, anomalies)."""
    original, scaled = stores[:2]
    for sql in ("SELECT sum(events), sum(customers), sum(contacts) FROM channel_mix",
                "SELECT sum(opened), sum(fcr), sum(sla_breached_cases) FROM complaint_kpis",
                "SELECT answered_calls, contact_attempts, replies FROM cem_touchpoints WHERE channel = 'phone'",
                "SELECT sum(replies), sum(customers) FROM cem_touchpoints",
                "SELECT sum(cases) FROM complaint_funnel",
                "SELECT count(*) FROM complaint_customer_interactions"):
        before, after = original.execute(sql).fetchone(), scaled.execute(sql).fetchone()
        assert any(before), sql
        assert after == tuple(None if v is None else COPIES * v for v in before), sql


def test_the_timers_read_the_scaled_store(stores, tmp_path):
    original, _, _, target = stores
    rows = len(original.execute("SELECT * FROM channel_mix").fetchall())
    [line] = time_kpis(target, ["channel_mix"], runs=1)
    assert line == {**line, "view": "channel_mix", "rows": rows} and line["max_ms"] >= line["p50_ms"] > 0
    # the lookup timer opens the store read-write, as serving does: on a copy the read-only connections do not hold
    lookups = time_lookups(Path(shutil.copy(target, tmp_path / "lookups.duckdb")), samples=20)
    assert lookups["samples"] == 20 and lookups["p99_ms"] >= lookups["p50_ms"] > 0
