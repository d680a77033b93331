"""The demo report's runs written the way the serving process writes them, without Kafka.

Why in one place: the report tests read every table the report reads, so they need
the interaction log, the customer-360 and the complaint tables of the same runs. The
interaction log by the store's own batch write; the customer-360 by resolving
identities with ``IdentityResolver``, folding each customer and storing the rows the
sink stores (``summary_row``, claims, the fold's event index); the complaint cases by
the real complaint sink over the Avro records, SLA clocks from the pure clocks
(``tests.complaint_fill``). A second run (log and complaint tables only) ends with
open cases, and shows that each run's report sees only its own cases.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from tests.complaint_fill import case_events, case_views, fold_cases, run_sink, write_log, write_sla
from touchstream.demo.generator import DEFAULT_START, event_id_prefix, generate
from touchstream.events.catalogue import Catalogue, ValidEvent
from touchstream.projections.customer_360_summary import summary_row
from touchstream.projections.customer_360 import fold, view
from touchstream.projections.customer_360_routing import Claim
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore, load_sql
from touchstream.projections.identity_resolution import IdentityResolver
from touchstream.projections.interaction_log import Position, to_row

CUSTOMERS, DAYS, SEED = 40, 30, 7  # small, yet with findings of two kinds
PREFIX = event_id_prefix(CUSTOMERS, DAYS, SEED)
OTHER = (90, 35, 4)  # a second run, complaint tables and log only: open cases, outreach (its cases are its own)
OTHER_PREFIX = event_id_prefix(*OTHER)
NOW = DEFAULT_START + timedelta(days=400)  # later than every event


def _fill_run(db: DuckDBStore) -> tuple[int, dict[str, list[dict]], dict[str, dict], list[ValidEvent]]:
    """Write the run; returns its event count, its records and its 360 views by customer, its valid events."""
    catalogue, resolver = Catalogue(), IdentityResolver()
    rows, positions, index, valid_events = [], [], [], []
    for n, event in enumerate(generate(CUSTOMERS, DAYS, SEED)):
        valid = catalogue.validate(event, now=NOW)
        valid_events.append(valid)
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
    return len(rows), customers, views, valid_events



def fill(db: DuckDBStore) -> tuple[int, dict[str, list[dict]], dict[str, dict], SimpleNamespace]:
    """Both runs; returns the first run's event count, records and 360 views by customer, and the
    complaint side of both runs: case views, SLA clock rows, valid events, records by case, last event time."""
    events, customers, views, valid = _fill_run(db)
    other = [Catalogue().validate(e, now=NOW) for e in generate(*OTHER)]
    write_log(db, other, NOW)
    valid += other
    run_sink(db, valid)   # one sink over both runs' raw records (one set of offsets)
    folded = fold_cases(valid)
    last = max(e.record["envelope"]["occurred_at"] for e in valid)
    clocks, _ = write_sla(db, folded, last, NOW)
    # The analysts' views, as serving creates them. Not complaint_customer_360: the second run has no
    # 360 tables, so its closed loop is measured on the log's own customer ids (complaint_fill).
    db.execute_script(load_sql("analyst_views"))
    cases = SimpleNamespace(views=case_views(folded), clocks=clocks, valid=valid,
                            by_case=case_events(valid), last=last)
    return events, customers, views, cases


def fill_file(path: Path) -> None:
    """A DuckDB file with both runs and every view, as the serving process leaves it (closed)."""
    db = DuckDBStore(path)
    fill(db)
    for name in ("identity_decisions", "complaint_customer_360", "analyst_views"):   # as serving runs them
        db.execute_script(load_sql(name))
    db.close()
