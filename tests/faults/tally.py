"""What a fault did to the projections: a snapshot of a settled stack, and the figures against a clean run.

Why a snapshot and not only a hash: a hash says *whether* the projections differ from the
undisturbed run, the id sets say *how* (events lost, counted twice, or derived events a
clean run never publishes), which is what the README quotes and what a failing case must
print. Everything hashed is a function of the events alone (no ingestion times, no Kafka
offsets: a retried send may land a duplicate at another offset, and only the first copy
counts), so two clean runs of the same events hash the same.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from touchstream.bench.pipeline_stages import HASHES
from touchstream.client import Client, local_key
from touchstream.codec.avro_codec import AvroCodec
from touchstream.processors.replay import replay
from touchstream.topics import COMPLAINT_SLA_TOPIC, FINDINGS_TOPIC


def digest_sql(table: str, columns: str) -> str:
    """count(*) and an md5 over every row of ``table`` (``columns`` as text, NULL spelt '~'), in row order."""
    text = " || '|' || ".join(f"coalesce(CAST({c.strip()} AS VARCHAR), '~')" for c in columns.split(","))
    return (f"SELECT count(*), md5(coalesce(string_agg(r, chr(10) ORDER BY r), '')) "
            f"FROM (SELECT {text} AS r FROM {table})")


# The bench's hashes (interactions by payload, 360s and cases by fingerprint) plus every other projection.
DIGESTS = {
    **HASHES,
    "interaction_columns": digest_sql(
        "interactions", "event_id, event_type, occurred_at, recorded_at, channel, content, initiated_by, source, "
        "correlation_id, causation_id, customer_id, email, phone, cookie_id, device_id, loyalty_card, "
        "account_number, amount, currency, schema_id, topic, \"partition\""),
    "case_owners": digest_sql("complaint_cases", "case_id, customer_id, customer_anchor"),
    "complaint_sla": digest_sql(
        "complaint_sla", "case_id, clock, clock_kind, policy_version, priority, channel, started_at, warning_at, "
        "due_at, met_at, state, breached, breached_at, started_by, met_by"),
    "complaint_sla_events": digest_sql(
        "complaint_sla_events", "event_id, case_id, event_type, clock, occurred_at, withdrawn_at IS NOT NULL, "
        "withdrawal_id"),
}
# Identity observes in the order of its partition merge (processors/partition_merge.py), not in arrival
# order, so its decision log and its routes are a function of the events too. Their sequence numbers
# are compared between two clean runs only (``EXACT``): a restarted identity numbers from a new epoch.
DIGESTS.update({
    "identity_decisions": digest_sql(
        "identity_decisions", "decision_id, decision, decided_by, decided_at, customer_id, from_ids, into_ids, "
        "identifiers, trust, reason, rule, evidence_event_id"),
    "routes": digest_sql("customer_identifiers", "kind, value, customer_id"),
})
EXACT = {
    "decision_seqs": digest_sql("identity_decisions", "decision_id, seq"),
    "route_seqs": digest_sql("customer_identifiers", "kind, value, customer_id, seq"),
}
# And one event must never decide the same thing twice (a restart re-deciding what it had decided).
DECISION_KEY = ("SELECT decided_by || '|' || decision || '|' || coalesce(customer_id, '~') || '|' || "
                "from_ids::VARCHAR || '|' || into_ids::VARCHAR || '|' || identifiers::VARCHAR, decided_by "
                "FROM identity_decisions")


@dataclass
class Snapshot:
    """The settled projections of one stack: digests, and the keys the figures count."""

    hashes: dict[str, list]
    interaction_ids: Counter        # event_id -> rows (a primary key: 1 each, unless it was dropped)
    customer_events: Counter        # customer-360: customer_id -> events folded into the profile
    case_contacts: Counter          # complaint case -> contacts counted
    decisions: Counter              # identity decision (event, what, who, from, into, identifiers) -> rows
    decided_by: set[str]            # the events the identity decisions name as their cause
    sla_on_topic: Counter           # event_id on touchstream.complaint-sla -> records (redelivery may repeat one)
    findings_on_topic: Counter      # finding_id on touchstream.contact-findings -> records
    findings_held: set[str] = field(default_factory=set)   # finding_ids the settled 360s hold
    dead_letters: int = 0
    exact: dict[str, list] = field(default_factory=dict)   # EXACT: with identity's sequence numbers


@dataclass
class Figures:
    """lost: facts of the clean run (or published events) missing; double: counted more than once;
    false: derived facts a clean run does not have. ``why`` names every one of them.

    ``transient``: findings on the topic that no settled 360 holds, reported, not judged: a finding
    raised on an intermediate identity state (before a merge) stays on the topic with no retraction,
    and which intermediate states occur depends on arrival order, so a clean run may have them too."""

    lost: int = 0
    double: int = 0
    false: int = 0
    hash_equal: bool = True
    transient: int = 0
    why: list[str] = field(default_factory=list)

    def add(self, kind: str, count: int, what: str) -> None:
        if count > 0:
            setattr(self, kind, getattr(self, kind) + count)
            self.why.append(f"{kind} {count}: {what}")

    def line(self, fault: str, events: int) -> str:
        return (f"fault={fault} events={events} lost={self.lost} double={self.double} false={self.false} "
                f"hash_equal={self.hash_equal} transient_findings={self.transient}")

    @property
    def clean(self) -> bool:
        return self.hash_equal and self.lost == self.double == self.false == 0


def _ids_on_topic(settings, topic: str, key) -> Counter:
    codec = AvroCodec(settings.registry_url, auto_register=False)
    seen: Counter = Counter()

    def handle(records) -> None:
        for record in records:
            if record.value is not None:
                seen[key(codec.decode(record.value).record)] += 1

    replay(settings, [topic], handle)
    return seen


def take(settings) -> Snapshot:
    """Snapshot a running, settled stack (call after ``wait_pipeline`` and ``wait_sla_settled``)."""
    with Client(settings.query_url, api_key=local_key(settings), timeout=120) as client:
        def rows(sql: str) -> list[tuple]:
            return list(zip(*client.sql_arrow(sql, max_rows=5_000_000).to_pydict().values()))

        hashes = {name: [int(r[0]), r[1]] for name, sql in DIGESTS.items() for r in rows(sql)}
        exact = {name: [int(r[0]), r[1]] for name, sql in EXACT.items() for r in rows(sql)}
        decisions = rows(DECISION_KEY)
        return Snapshot(
            hashes=hashes, exact=exact,
            interaction_ids=Counter(r[0] for r in rows("SELECT event_id FROM interactions")),
            customer_events=Counter(dict(rows("SELECT customer_id, events FROM customer_360"))),
            case_contacts=Counter(dict(rows("SELECT case_id, contacts FROM complaint_cases"))),
            decisions=Counter(r[0] for r in decisions),
            decided_by={r[1] for r in decisions},
            sla_on_topic=_ids_on_topic(settings, COMPLAINT_SLA_TOPIC, lambda r: r["envelope"]["event_id"]),
            findings_on_topic=_ids_on_topic(settings, FINDINGS_TOPIC, lambda r: r["finding_id"]),
            findings_held={r[0] for r in rows("SELECT finding_id FROM contact_findings")},
            dead_letters=int(rows("SELECT count(*) FROM dead_letters")[0][0]),
        )


def _more(a: Counter, b: Counter) -> int:
    """How much ``a`` exceeds ``b``, summed over the keys of both (a missing key counts as 0)."""
    return sum(max(0, a.get(k, 0) - b.get(k, 0)) for k in a.keys() | b.keys())


def compare(clean: Snapshot, run: Snapshot, published: set[str]) -> Figures:
    """The figures of ``run`` against the undisturbed ``clean`` run of the same ``published`` event ids."""
    f = Figures(hash_equal=run.hashes == clean.hashes)
    if not f.hash_equal:
        f.why.append("hashes differ: " + ", ".join(k for k in clean.hashes if clean.hashes[k] != run.hashes.get(k)))
    logged = set(run.interaction_ids)
    f.add("lost", len(published - logged), "published events not in the interaction log")
    f.add("lost", run.dead_letters, "records dead-lettered")
    f.add("false", len(logged - published), "interactions nobody published")
    f.add("double", sum(n - 1 for n in run.interaction_ids.values() if n > 1), "interaction rows of one event_id")
    for name, key in (("customer_events", "events in a customer's 360"), ("case_contacts", "contacts of a case")):
        a, b = getattr(clean, name), getattr(run, name)
        f.add("lost", sum(a[k] for k in a.keys() - b.keys()), f"{key}: customers/cases missing")
        f.add("false", len(b.keys() - a.keys()), f"{key}: customers/cases a clean run does not have")
        common = a.keys() & b.keys()
        f.add("lost", _more({k: a[k] for k in common}, {k: b[k] for k in common}), f"{key}: fewer than clean")
        f.add("double", _more({k: b[k] for k in common}, {k: a[k] for k in common}), f"{key}: more than clean")
    a, b = set(clean.sla_on_topic), set(run.sla_on_topic)
    f.add("lost", len(a - b), "SLA events of the clean run missing on complaint-sla")
    f.add("false", len(b - a), "SLA events on complaint-sla a clean run does not publish")
    sent = set(run.findings_on_topic)
    f.add("lost", len((clean.findings_held | run.findings_held) - sent), "findings held by a 360, never published")
    f.add("false", len(run.findings_held - clean.findings_held), "findings held that a clean run does not hold")
    f.transient = len(sent - run.findings_held)
    f.add("double", sum(n - 1 for n in run.decisions.values() if n > 1), "identity decisions one event made twice")
    f.add("false", len(run.decided_by - published), "identity decisions caused by events nobody published")
    return f
