"""Fold workers: one customer-360 sink per partition of ``customer-events``, each on its own store.

Why: scaling out moves the 360 fold into workers that own only some partitions, so a
customer's profile can be right only if every event reaches the partition of the customer
that finally holds its anchor, although identity first sent it to another one and merges,
splits and renames move identifiers across partitions while events are in flight. The
workers send such events on (``customer_360_handover``); these properties check that the
union of the partitions' rows is exactly what one sink over every partition computes (a
replay from offset 0, ``expected_fingerprints``), whatever the order in which partitions
are read, the batch sizes, redeliveries and restarts of a partition's worker (a rebalance
moves a partition to a worker that opens the same store).
"""

from __future__ import annotations

from datetime import timedelta
from itertools import count

from hypothesis import given
from hypothesis import strategies as st

from tests.event_builders import plain_event
from tests.local_codec import LocalCodec
from tests.pipeline_harness import (EVENT_PARTITIONS, CustomerEventsTopic, Sink, consume, expected_fingerprints,
                                    identify, identity_stage, raw_logs, validated)
from tests.unit.test_customer_360 import T0
from tests.unit.test_customer_360_pipeline import CACHE_SIZES, PIPELINE, fresh, streams
from tests.unit.test_identity_resolution import configs
from touchstream.processors.customer_360 import Customer360Sink
from touchstream.processors.customer_360_handover import HANDOVER
from touchstream.processors.customer_360_rows import PROFILE_HEADER
from touchstream.processors.identity_resolution import ANCHOR
from touchstream.privacy.keyring import MemoryKeyRing
from touchstream.privacy.sealing import PREFIX
from touchstream.processors.topic_output import MemoryOutput
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.publishing.dead_letters import AlreadySentDeadLetters
from touchstream.topics import CUSTOMER_360_TOPIC, CUSTOMER_EVENTS_TOPIC, key_partition

# With keys, as the services run: identity seals anchors and memberships, workers seal their 360s, profile
# text and hand-over anchors, and every reader opens them; the fingerprints below hold only if that is lossless.
CODEC = LocalCodec(keys=MemoryKeyRing())
KEYLESS = LocalCodec()   # what a subscriber without the keys decodes


class Workers:
    """A sink per partition, each on its own DuckDB file, all producing into one output whose
    customer-events records land on the topic's partitions as the producer would put them."""

    def __init__(self, folder, topic: CustomerEventsTopic, cache_size: int = 20_000):
        self.folder, self.topic, self.cache_size = folder, topic, cache_size
        self.output = MemoryOutput()
        self.sent = CustomerEventsTopic(self.output)
        self.sent.logs = topic.logs
        self.dbs, self.sinks = {}, {}
        for p in range(EVENT_PARTITIONS):
            self.open(p)

    def open(self, p: int) -> None:
        self.dbs[p] = DuckDBStore(self.folder / f"customer-360-p{p}.duckdb")
        self.sinks[p] = Customer360Sink(Customer360Store(self.dbs[p]), CODEC, self.output, AlreadySentDeadLetters(),
                                        cache_size=self.cache_size, partition=(p, EVENT_PARTITIONS))

    def restart(self, p: int) -> None:
        """The partition's worker stops (its cache lost) and the next owner opens the same store."""
        self.dbs[p].close()
        self.open(p)

    def log(self, p: int) -> list:
        return self.topic.logs.get((CUSTOMER_EVENTS_TOPIC, p), [])

    def run(self, rnd, *, restarts: int = 0, redeliveries: int = 0, steps: int | None = None) -> None:
        """Partitions read in a random order, a random number of records at a time, until every record,
        including those the workers send each other, has been handled (or for ``steps`` batches)."""
        for _ in count() if steps is None else range(steps):
            behind = [p for p in range(EVENT_PARTITIONS)
                      if self.sinks[p].committed((CUSTOMER_EVENTS_TOPIC, p)) < len(self.log(p))]
            if not behind:
                return
            p = rnd.choice(behind)
            start = self.sinks[p].committed((CUSTOMER_EVENTS_TOPIC, p))
            if redeliveries and rnd.random() < 0.2:
                redeliveries, start = redeliveries - 1, rnd.randint(0, start)
            self.sinks[p].handle(self.log(p)[start:start + rnd.randint(1, 8)])
            self.sent.collect()
            if restarts and rnd.random() < 0.2:
                restarts -= 1
                self.restart(p)

    def rows(self) -> dict[str, str]:
        rows: dict[str, str] = {}
        for p, sink in self.sinks.items():
            mine = sink.store.fingerprints()
            assert all(key_partition(c, EVENT_PARTITIONS) == p for c in mine), f"partition {p} holds another's customer"
            rows.update(mine)
        return rows

    def assert_copies_name_their_event(self) -> None:
        """A copy a worker sends on carries its event's id as a header, as the raw record did."""
        for topic, _key, value, headers in self.output.records:
            head = dict(headers)
            if topic == CUSTOMER_EVENTS_TOPIC and HANDOVER in head:
                assert head["event_id"].decode() == CODEC.decode(value).record["envelope"]["event_id"]

    def assert_personal_values_travel_sealed(self) -> None:
        """Hand-over anchors, the 360s' identifiers and the profile text beside them: sealed on the topics
        (read without keys, as a subscriber would), while the workers' rows above hold them in clear."""
        anchors, identifiers, texts = [], [], []
        for topic, _key, value, headers in self.output.records:
            head = dict(headers)
            if topic == CUSTOMER_EVENTS_TOPIC and HANDOVER in head:
                anchors.append(head[ANCHOR].decode())
            elif topic == CUSTOMER_360_TOPIC and value is not None:
                identifiers += [i["value"] for i in KEYLESS.decode(value).record["identifiers"]]
                texts.append(head[PROFILE_HEADER].decode())
        assert anchors and identifiers and texts
        assert all(v.startswith(PREFIX) for v in (*anchors, *identifiers, *texts))

    def handed_over(self) -> int:
        return sum(s.handover.stats["handed_over"] + s.handover.stats["forwarded"] for s in self.sinks.values())

    def assert_the_360_topic_agrees(self, rows: dict[str, str]) -> None:
        last = {key.decode(): value for topic, key, value, _h in self.output.records if topic == CUSTOMER_360_TOPIC}
        assert {c for c, v in last.items() if v is not None} == set(rows)
        for customer in rows:
            assert CODEC.decode(last[customer]).record["customer_id"] == customer


def identified(folder, events: list[dict], config, rnd) -> CustomerEventsTopic:
    topic = CustomerEventsTopic(MemoryOutput())
    stage = identity_stage(folder / "identity", config, CODEC, topic.output)
    identify(stage, consume(raw_logs(validated(events), CODEC), rnd), topic)
    return topic


def live(folder, events: list[dict], config, rnd, **faults) -> Workers:
    """Identity and the workers side by side: after each raw batch identity handles, the workers read a
    few batches, so identifiers move while their events are stored, in flight or being handed over."""
    topic = CustomerEventsTopic(MemoryOutput())
    stage = identity_stage(folder / "identity", config, CODEC, topic.output)
    workers = Workers(folder, topic, cache_size=rnd.choice([1, 20_000]))
    for batch in consume(raw_logs(validated(events), CODEC), rnd, max_batch=3):
        identify(stage, [batch], topic)
        workers.run(rnd, steps=rnd.randint(0, 4), **faults)
    workers.run(rnd, **faults)
    return workers


@PIPELINE
@given(events=streams(), config=configs, cache_size=CACHE_SIZES, rnd=st.randoms(use_true_random=False))
def test_workers_per_partition_end_with_the_rows_of_one_sink_over_all(tmp_path, events, config, cache_size, rnd):
    folder = fresh(tmp_path)
    topic = identified(folder, events, config, rnd)
    one = Sink(folder / "one.duckdb", CODEC, cache_size=cache_size)
    one.feed(consume(topic.logs, rnd))
    workers = Workers(folder, topic, cache_size)
    workers.run(rnd)
    rows = workers.rows()
    assert rows == one.rows() == expected_fingerprints(events, config)
    workers.assert_the_360_topic_agrees(rows)


@PIPELINE
@given(events=streams(), config=configs, rnd=st.randoms(use_true_random=False))
def test_workers_beside_identity_end_with_the_rows_of_a_replay(tmp_path, events, config, rnd):
    workers = live(fresh(tmp_path), events, config, rnd)
    rows = workers.rows()
    assert rows == expected_fingerprints(events, config)
    workers.assert_copies_name_their_event()
    workers.assert_the_360_topic_agrees(rows)


@PIPELINE
@given(events=streams(), config=configs, rnd=st.randoms(use_true_random=False))
def test_restarts_and_redeliveries_of_a_partition_change_nothing(tmp_path, events, config, rnd):
    """A partition's worker restarted on its store (a rebalance), and partitions read again from an
    earlier offset (at-least-once), while the workers hand events to each other."""
    workers = live(fresh(tmp_path), events, config, rnd, restarts=1, redeliveries=1)
    rows = workers.rows()
    assert rows == expected_fingerprints(events, config)
    workers.assert_the_360_topic_agrees(rows)


def customers_on_two_partitions() -> tuple[str, str]:
    """Two e-mail addresses whose anonymous customers hash to different partitions."""
    from touchstream.projections.identity_resolution import IdentityResolver
    resolver, seen = IdentityResolver(), {}
    for n in range(100):
        address = f"p{n}@example.com"
        event = validated([plain_event("web.page_viewed", T0, {"email": address})])[0].record
        customer = resolver.observe(event).customer_id
        seen.setdefault(key_partition(customer, EVENT_PARTITIONS), address)
        if len(seen) == 2:
            return tuple(seen.values())
    raise AssertionError("no two customers on different partitions")


def a_merge_across_partitions() -> list[dict]:
    """Two customers on different partitions seen twice each, merged by a verified link, then seen again."""
    a, b = customers_on_two_partitions()
    events = [plain_event("web.page_viewed", T0 + timedelta(minutes=n), {"email": address})
              for n, address in enumerate([a, b, a, b])]
    events.append(plain_event("identity.identifiers_linked", T0 + timedelta(minutes=9), {"email": a},
                              trust="verified", reason="login", identifier_a={"kind": "email", "value": a},
                              identifier_b={"kind": "email", "value": b}))
    events.append(plain_event("web.page_viewed", T0 + timedelta(minutes=10), {"email": b}))
    return events


def test_a_merge_across_partitions_hands_the_history_over(tmp_path):
    """The survivor's partition ends with every event, the other partition with no row, and the events
    travelled between them."""
    import random
    events = a_merge_across_partitions()
    workers = Workers(tmp_path, identified(tmp_path, events, None, random.Random(1)))
    workers.run(random.Random(2))
    rows = workers.rows()
    assert rows == expected_fingerprints(events)
    assert len(rows) == 1 and workers.handed_over() > 0
    workers.assert_copies_name_their_event()
    (customer,) = rows
    owner = workers.sinks[key_partition(customer, EVENT_PARTITIONS)]
    assert owner.store.profile(customer)["events"] == len(events)
    workers.assert_personal_values_travel_sealed()
