"""A membership change is keyed by every customer it touches, so each of their partitions hears it.

Why: a fold worker owns the customers of its partitions only. When a merge or a split moves an
identifier from customer OLD to customer NEW, the worker holding OLD's events must learn that
NEW holds the identifier now, and OLD's partition only hears records keyed by OLD.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from tests.event_builders import plain_event
from tests.local_codec import LocalCodec
from tests.pipeline_harness import CustomerEventsTopic, consume, identify, identity_stage, raw_logs, validated
from tests.unit.test_customer_360_pipeline import PIPELINE, streams
from tests.unit.test_identity_resolution import configs
from touchstream.processors.identity_resolution import KIND
from touchstream.processors.topic_output import MemoryOutput
from touchstream.topics import CUSTOMER_EVENTS_TOPIC

CODEC = LocalCodec()


def memberships(output: MemoryOutput) -> list[tuple[str, dict]]:
    """(key, body) of every membership record identity sent, in order."""
    return [(key.decode(), CODEC.decode(value).record) for topic, key, value, headers in output.records
            if topic == CUSTOMER_EVENTS_TOPIC and dict(headers).get(KIND) == b"membership"]


def losses(records: list[tuple[str, dict]]) -> list[tuple[str, str, str, int]]:
    """(identifier, old customer, new customer, seq) for every identifier a membership record moves."""
    holder: dict[str, str] = {}
    seen: set[int] = set()
    out = []
    for _key, body in records:
        if body["seq"] in seen:
            continue   # a copy keyed by another customer of the same change
        seen.add(body["seq"])
        for ident in body["identifiers"]:
            node = f"{ident['kind']}:{ident['value']}"
            old = holder.get(node)
            if old is not None and old != body["customer_id"]:
                out.append((node, old, body["customer_id"], body["seq"]))
            holder[node] = body["customer_id"]
    return out


@PIPELINE
@given(events=streams(), config=configs, rnd=st.randoms(use_true_random=False))
def test_the_partition_of_a_customer_that_lost_an_identifier_hears_who_holds_it(tmp_path_factory, events, config,
                                                                                 rnd):
    produced = MemoryOutput()
    stage = identity_stage(tmp_path_factory.mktemp("identity"), config, CODEC, produced)
    logs = raw_logs(validated(events), CODEC)
    identify(stage, consume(logs, rnd, max_batch=rnd.choice([1, 7, 50])), CustomerEventsTopic(produced))
    records = memberships(produced)
    heard = defaultdict(set)   # key -> seqs of the membership records keyed by it
    by_seq = {}
    for key, body in records:
        heard[key].add(body["seq"])
        by_seq[body["seq"]] = body
    for node, old, new, seq in losses(records):
        assert seq in heard[old], f"{old} lost {node} to {new}, but no record keyed {old} says so"
    for seq, body in by_seq.items():   # every record also reaches its own customer's partition
        assert seq in heard[body["customer_id"]]


def test_a_merge_is_heard_on_both_customers_partitions(tmp_path):
    at = datetime(2026, 3, 1, tzinfo=timezone.utc)
    events = [plain_event("web.page_viewed", at, {"email": "a@example.com"}),
              plain_event("web.page_viewed", at + timedelta(minutes=1), {"phone": "+31612345678"}),
              plain_event("identity.identifiers_linked", at + timedelta(minutes=2), {"email": "a@example.com"},
                          trust="verified", reason="login",
                          identifier_a={"kind": "email", "value": "a@example.com"},
                          identifier_b={"kind": "phone", "value": "+31612345678"})]
    produced = MemoryOutput()
    stage = identity_stage(tmp_path / "identity", None, CODEC, produced)
    identify(stage, [[r for log in raw_logs(validated(events), CODEC).values() for r in log]],
             CustomerEventsTopic(produced))
    merged = [(key, body["customer_id"]) for key, body in memberships(produced)]
    owners = {customer for _key, customer in merged}
    assert len(owners) == 2   # the survivor with both identifiers, the customer merged away with none
    assert {(key, customer) for key in owners for customer in owners} <= set(merged)
