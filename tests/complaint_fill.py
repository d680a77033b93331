"""Complaint tables filled the way the serving process fills them, for unit tests without Kafka.

Why the real sink and not hand-made rows: the KPI views read ``complaint_cases`` and its
``case_view`` JSON exactly as the sink writes them, so a column renamed or a view field
moved breaks these tests and not only production. The raw records are Confluent-framed
Avro (``LocalCodec``), fed in interleaved batches as a consumer receives them.

SLA clocks are written from the pure ``complaint_sla.clocks`` at one ``as_of`` (the
run's last event time, the sink's watermark after the run), replacing what the sink's
timer wrote (each case as of the watermark when it was last evaluated), so the tests
know every clock exactly. The breach events
are ``complaint_sla.due_events`` as the timer would have published them.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta

import pyarrow as pa

from tests.local_codec import LocalCodec
from tests.pipeline_harness import consume, raw_logs
from touchstream.events.catalogue import ValidEvent
from touchstream.processors.complaint_resolution import ComplaintSink, case_key
from touchstream.projections import complaint_resolution as cases
from touchstream.projections import complaint_sla as sla
from touchstream.projections.complaint_case_metrics import opening
from touchstream.projections.duckdb_store import DuckDBStore, load_sql
from touchstream.projections.interaction_log import Position, to_row
from touchstream.publishing.dead_letters import AlreadySentDeadLetters

CODEC = LocalCodec()
POLICIES = sla.load_policies()
PURCHASES = ("commerce.order_placed", "store.purchase_completed")


def write_log(db: DuckDBStore, events: list[ValidEvent], ingested_at: datetime) -> None:
    """The interaction log rows of the events, one partition per topic, as the log sink writes them."""
    positions = [Position(e.topic, 0, n) for n, e in enumerate(events)]
    rows = [to_row(e.event_type, e.record, 1, p, ingested_at) for e, p in zip(events, positions)]
    db.apply_interactions("interaction_log", rows, positions)


def run_sink(db: DuckDBStore, events: list[ValidEvent], seed: int = 5, max_batch: int = 2000) -> None:
    """The complaint sink over the events' raw records, then the SLA tables and the KPI views."""
    sink = ComplaintSink(db, CODEC, AlreadySentDeadLetters())
    for batch in consume(raw_logs(events, CODEC), random.Random(seed), max_batch=max_batch):
        sink.handle(batch)
    for name in ("complaint_sla", "complaint_kpis"):   # idempotent, whether or not the sink ran them
        db.execute_script(load_sql(name))


def case_events(events: list[ValidEvent]) -> dict[str, list[dict]]:
    """The records of each case key (what the sink stores in complaint_events), in event order."""
    by_case: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        key = case_key(e.record)
        if key:
            by_case[key].append(e.record)
    return by_case


def fold_cases(events: list[ValidEvent]) -> dict[str, cases.Case]:
    """The pure fold of every case (what a replay computes), as the sink keeps it without a customer-360:
    customer id from the events' hint, SLA policy pinned. Correlation ids that never open a case drop out."""
    folded = {key: cases.fold(records, key) for key, records in case_events(events).items()}
    out = {}
    for key, case in sorted(folded.items()):
        if case.steps:
            case.customer_id = cases.customer_hint(case)
            sla.pin_policy(case, POLICIES)
            out[key] = case
    return out


def case_views(folded: dict[str, cases.Case]) -> dict[str, dict]:
    """The case views the sink writes (FCR judged across each customer's cases), by case id."""
    return {v["case_id"]: v for v in cases.views(folded.values())}


def write_sla(db: DuckDBStore, folded: dict[str, cases.Case], as_of: datetime,
              published_at: datetime) -> tuple[list[dict], list[dict]]:
    """Every case's clocks at ``as_of`` into complaint_sla, its due breach events into complaint_sla_events.

    Returns (clock rows, SLA event rows) as written.
    """
    clock_rows, sent = [], []
    for case_id, case in folded.items():
        policy = sla.pin_policy(case, POLICIES)   # pinned by fold_cases already: no change
        if policy is None:
            continue
        opened = opening(case) or case.steps[0]
        for c in sla.clocks(case, policy, as_of):
            clock_rows.append({
                "case_id": case_id, "clock": c.name, "clock_kind": c.kind, "policy_version": policy.version,
                "priority": opened.info.get("priority"), "channel": opened.channel, "started_at": c.started_at,
                "warning_at": c.warning_at, "due_at": c.due_at, "met_at": c.met_at, "state": c.state,
                "breached": c.state == sla.BREACHED, "breached_at": c.breached_at, "started_by": c.started_by,
                "met_by": c.met_by, "as_of": as_of})
        for event in sla.due_events(case, policy, as_of):
            env = event["envelope"]
            sent.append({"event_id": env["event_id"], "case_id": case_id, "event_type": env["event_type"],
                         "clock": event.get("clock"), "occurred_at": datetime.fromisoformat(env["occurred_at"]),
                         "published_at": published_at})
    with db.transaction() as con:
        con.execute("DELETE FROM complaint_sla")
        con.execute("DELETE FROM complaint_sla_events")
        _insert(con, "complaint_sla", clock_rows)
        _insert(con, "complaint_sla_events", sent)
    return clock_rows, sent


def _insert(con, table: str, rows: list[dict]) -> None:
    """INSERT BY NAME of the columns the table has (the SLA tables' DDL is still moving)."""
    if not rows:
        return
    columns = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    kept = [{k: v for k, v in row.items() if k in columns} for row in rows]
    con.register("_sla_rows", pa.Table.from_pylist(kept))
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _sla_rows")
    finally:
        con.unregister("_sla_rows")


def loyalty_path(view: dict) -> str:
    """The case's path to resolution, as complaint_loyalty_cases names it."""
    if view["resolved_at"] is None:
        return "unresolved"
    if view["fcr"]["fcr"]:
        return "fcr"
    return "callback" if view["metrics"]["callbacks_promised"] > 0 else "other_resolved"


def later_behaviour(events: list[ValidEvent], view: dict, own: set[str], last: datetime, days: int = 90) -> dict:
    """The customer's events in the ``days`` after resolution (after the open if unresolved), ``own``
    (the case's own event ids) left out: what complaint_loyalty_cases should find in the interaction log."""
    since = datetime.fromisoformat(view["resolved_at"] or view["opened_at"])
    later = [e.record for e in events
             if e.record["envelope"]["identity"].get("customer_id") == view["customer_id"]
             and since < e.record["envelope"]["occurred_at"] <= since + timedelta(days=days)
             and e.record["envelope"]["event_id"] not in own]
    bought = [r for r in later if r["envelope"]["event_type"] in PURCHASES]
    return {"path": loyalty_path(view), "interactions": len(later),
            "inbound": sum(r["envelope"]["initiated_by"] == "customer" for r in later),
            "purchases": len(bought), "revenue": sum((r["total"]["amount"] for r in bought), 0),
            "churned": not later, "full_window": since + timedelta(days=days) <= last}
