"""Complaint cases name their canonical customer from the customer-360, whatever the timing.

The complaint sink folds the raw topics and may run far ahead of identity resolution and the
360 (here: all of it before the 360 sees anything). The reconcile the 360 triggers after each
commit must leave every case with the customer a replay gives: the pure resolver over every
event, asked for the case's strongest hint it knows; and FCR judged across that customer's cases.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from tests.complaint_fill import write_log
from tests.complaint_replay import Replayed
from tests.event_builders import linked, plain_event
from tests.local_codec import LocalCodec
from tests.pipeline_harness import consume, pipeline, raw_logs, validated
from touchstream.demo.generator import generate
from touchstream.processors.complaint_customers import Customer360Directory
from touchstream.processors.complaint_resolution import ComplaintSink
from touchstream.processors.customer_360_lookup import LiveCustomer360
from touchstream.projections.duckdb_store import load_sql
from touchstream.projections.identity_resolution import IdentityResolver
from touchstream.publishing.dead_letters import AlreadySentDeadLetters

CODEC = LocalCodec()
T = datetime(2026, 6, 1, 9, tzinfo=timezone.utc)


def email_only_case(tag: str) -> list[dict]:
    """A complaint by e-mail from an address the CRM learns only a day later belongs to CU-<tag>."""
    email, who = f"late.{tag}@example.com", {"email": f"Late.{tag}@Example.com"}
    case = f"K-{tag}"
    opened = plain_event("complaint.opened", T, who, channel="email", by="customer", case_id=case,
                         category="billing", priority="normal", description="charged twice")
    resolved = plain_event("complaint.resolved", T + timedelta(hours=3), who, channel="email", by="company",
                           case_id=case, resolution_code="refund")
    crm = plain_event("commerce.order_placed", T - timedelta(days=3), {"customer_id": f"CU-{tag}"})
    return [crm, opened, resolved, linked(T + timedelta(days=1), ("customer_id", f"CU-{tag}"), ("email", email))]


@pytest.mark.parametrize("seed", [1, 2])
def test_cases_end_with_the_customer_and_fcr_a_replay_gives_though_the_360_lags_behind(tmp_path, seed):
    events = list(generate(30, 20, seed)) + email_only_case("a") + email_only_case("b")
    rnd = random.Random(seed)
    topic, c360 = pipeline(tmp_path, events, CODEC, rnd)
    live = LiveCustomer360(c360.sink)
    complaints = ComplaintSink(c360.db, CODEC, AlreadySentDeadLetters(), customers=Customer360Directory(live))
    live.listen(complaints.reconcile)
    for batch in consume(raw_logs(validated(events), CODEC), rnd, max_batch=500):
        complaints.handle(batch)                      # the 360 has seen nothing yet
    early = dict(c360.db.cursor().execute("SELECT case_id, customer_id FROM complaint_cases").fetchall())
    assert early["K-a"] is None                       # an e-mail only: no customer id yet
    for batch in consume(topic.logs, rnd, max_batch=500):
        live.handle(batch)
    want = Replayed([v.record for v in validated(events)], IdentityResolver()).cases
    got = {k: (c, f) for k, c, f in
           c360.db.cursor().execute("SELECT case_id, customer_id, fingerprint FROM complaint_cases").fetchall()}
    assert got["K-a"][0] == "CU-a" and got["K-b"][0] == "CU-b"
    assert got == want


def test_the_closed_loop_sees_purchases_made_with_any_identifier_of_the_customer(tmp_path):
    """After the case, the customer buys in store with a loyalty card only; the 360 knows the card is
    theirs. The log's own customer_id hint misses the purchase; the 360's touchmap counts it."""
    crm = {"customer_id": "CU-loyal"}
    case = [plain_event("complaint.opened", T, crm, channel="phone", by="customer", case_id="K-loyal",
                        category="delivery", priority="normal", description="late"),
            plain_event("complaint.resolved", T + timedelta(minutes=5), crm, channel="phone", by="company",
                        case_id="K-loyal", resolution_code="explanation")]
    card = linked(T - timedelta(days=1), ("customer_id", "CU-loyal"), ("loyalty_card", "LC-77"), channel="store")
    bought = plain_event("store.purchase_completed", T + timedelta(days=3), {"loyalty_card": "LC-77"},
                         by="customer")
    events = [card, *case, bought]
    topic, c360 = pipeline(tmp_path, events, CODEC, random.Random(1))
    live = LiveCustomer360(c360.sink)
    complaints = ComplaintSink(c360.db, CODEC, AlreadySentDeadLetters(), customers=Customer360Directory(live))
    live.listen(complaints.reconcile)
    complaints.handle([r for log in raw_logs(validated(events), CODEC).values() for r in log])
    live.handle([r for log in topic.logs.values() for r in log])
    write_log(c360.db, validated(events), T + timedelta(days=30))

    def loyalty() -> tuple:
        return c360.db.cursor().execute("SELECT customer_id, path, purchases, revenue FROM complaint_loyalty_cases "
                                        "WHERE case_id = 'K-loyal'").fetchall()[0]

    customer, _, purchases, revenue = loyalty()
    assert (customer, purchases, float(revenue)) == ("CU-loyal", 0, 0.0)
    c360.db.execute_script(load_sql("complaint_customer_360"))
    customer, _, purchases, revenue = loyalty()
    assert (customer, purchases, float(revenue)) == ("CU-loyal", 1, 42.0)


def test_a_stronger_hint_the_360_learns_later_names_the_case(tmp_path):
    """The complaint is folded while the 360 knows only its phone (an anonymous caller); then the 360
    learns its customer id, still apart from that phone. The strongest hint the 360 knows now names
    another customer, though the anchor's (the phone's) owner never changed: the case must move."""
    phone, who = "+31612340077", {"customer_id": "CU-strong", "phone": "+31 6 12340077"}
    call = plain_event("phone.call_ended", T - timedelta(days=2), {"phone": phone}, channel="phone", by="customer")
    order = plain_event("commerce.order_placed", T - timedelta(days=1), {"customer_id": "CU-strong"})
    opened = plain_event("complaint.opened", T, who, channel="phone", by="customer", case_id="K-strong",
                         category="billing", priority="normal", description="charged twice")
    events = [call, order, opened]
    topic, c360 = pipeline(tmp_path, events, CODEC, random.Random(3))
    by_event = {}
    for record in (r for log in topic.logs.values() for r in log):
        body = CODEC.decode(record.value).record
        if "envelope" in body:
            by_event[body["envelope"]["event_id"]] = record
    live = LiveCustomer360(c360.sink)
    complaints = ComplaintSink(c360.db, CODEC, AlreadySentDeadLetters(), customers=Customer360Directory(live))
    live.listen(complaints.reconcile)
    live.handle([by_event[call["envelope"]["event_id"]]])                # the 360 knows the phone only
    complaints.handle([r for log in raw_logs(validated(events), CODEC).values() for r in log])

    def customer() -> str:
        return c360.db.cursor().execute("SELECT customer_id FROM complaint_cases WHERE case_id = 'K-strong'"
                                        ).fetchall()[0][0]

    assert customer().startswith("anon-")
    live.handle([by_event[order["envelope"]["event_id"]]])               # now it knows CU-strong too
    assert customer() == "CU-strong"
