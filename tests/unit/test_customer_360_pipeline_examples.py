"""Worked examples of the in-process customer-360 pipeline: what identity changes do to the 360 rows.

Both stages run for real (``tests.pipeline_harness.Live``): each ``send`` publishes events to
the raw topics, the identity stage re-keys them onto ``touchstream.customer-events``, and the
sink folds them into ``customer_360`` and the compacted ``touchstream.customer-360`` topic.
"""

from __future__ import annotations

from datetime import timedelta

from tests.event_builders import linked, plain_event
from tests.local_codec import LocalCodec
from tests.pipeline_harness import Live, expected_fingerprints
from tests.unit.test_customer_360 import T0

CODEC = LocalCodec()


def test_an_anonymous_cookie_profile_is_renamed_to_the_customer_when_the_cookie_logs_in(tmp_path):
    live = Live(tmp_path, CODEC)
    visit = plain_event("web.page_viewed", T0, {"cookie_id": "ck-1"}, event_id="visit")
    live.send(visit)
    [anonymous] = live.sink.rows()
    assert anonymous.startswith("anon-")          # nobody known yet: a profile keyed by a derived id
    assert live.sink.store.resolve("ck-1") == anonymous

    login = linked(T0 + timedelta(minutes=5), ("customer_id", "CU-42"), ("cookie_id", "ck-1"), reason="login",
                   identity={"customer_id": "CU-42", "cookie_id": "ck-1"}, event_id="login")
    live.send(login)
    assert set(live.sink.rows()) == {"CU-42"}     # the anonymous row is gone ...
    assert live.sink.last_360()[anonymous.encode()] is None   # ... and a tombstone tells the subscribers
    assert live.sink.store.resolve("ck-1") == "CU-42"
    profile = live.sink.store.profile("CU-42")
    assert profile["events"] == 2                 # the cookie's history moved over with it
    assert {i["event_id"] for i in profile["interactions"]} == {"visit"}
    assert {(i["kind"], i["value"]) for i in profile["identifiers"]} == {("cookie_id", "ck-1"),
                                                                        ("customer_id", "CU-42")}
    assert live.sink.rows() == expected_fingerprints([visit, login])


def test_two_customer_ids_merged_by_a_verified_link_are_two_customers_again_after_the_unlink(tmp_path):
    live = Live(tmp_path, CODEC)
    ann = [plain_event("web.page_viewed", T0 + timedelta(hours=i), {"customer_id": "CU-A", "email": "ann@x.example"},
                       event_id=f"ann-{i}") for i in range(3)]
    bob = [plain_event("store.purchase_completed", T0 + timedelta(hours=i), {"customer_id": "CU-B",
                                                                           "loyalty_card": "LC-B"},
                       by="customer", event_id=f"bob-{i}") for i in range(2)]
    live.send(*ann, *bob)
    assert {c: live.sink.events_of(c) for c in live.sink.rows()} == {"CU-A": 3, "CU-B": 2}
    bob_alone = live.sink.rows()["CU-B"]

    # Two accounts merge only by a verified link between the accounts themselves (a steward's merge).
    merge = linked(T0 + timedelta(days=1), ("customer_id", "CU-A"), ("customer_id", "CU-B"), channel="store",
                   reason="merge", event_id="merge")
    live.send(merge)
    assert {c: live.sink.events_of(c) for c in live.sink.rows()} == {"CU-A": 6}   # the smallest id holds all
    assert live.sink.last_360()[b"CU-B"] is None
    assert live.sink.store.resolve("LC-B") == "CU-A"

    undo = linked(T0 + timedelta(days=2), ("customer_id", "CU-A"), ("customer_id", "CU-B"), channel="store",
                  reason="wrong_match", unlink=True, event_id="undo")
    live.send(undo)
    rows = live.sink.rows()
    assert {c: live.sink.events_of(c) for c in rows} == {"CU-A": 5, "CU-B": 2}   # the link and unlink stay with A
    assert rows["CU-B"] == bob_alone              # Bob's 360 is exactly what it was before the wrong merge
    assert live.sink.last_360()[b"CU-B"] is not None
    assert live.sink.store.resolve("LC-B") == "CU-B"
    assert {i["event_id"] for i in live.sink.store.profile("CU-B")["interactions"]} == {"bob-0", "bob-1"}
    assert rows == expected_fingerprints([*ann, *bob, merge, undo])
