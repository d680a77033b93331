"""The customer-360 pipeline in one process, for unit tests: no Kafka, no registry server.

Plain-JSON events -> ``Catalogue.validate`` -> Confluent-framed Avro on raw partitions ->
the real ``IdentityStage`` -> ``touchstream.customer-events`` (partitioned by key, offsets
increasing) -> the real ``Customer360Sink`` on a DuckDB file. Topics are lists; a consumer
is modelled as any merge of the partitions that keeps each partition's order, cut into
batches, optionally rewinding a partition (a rebalance before the commit: at-least-once).

``expected_fingerprints`` is what a replay from offset 0 computes: the pure resolver over
all events, each event grouped under the final customer of its anchor, the pure fold.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from touchstream.codec.avro_codec import AvroCodec
from touchstream.events.catalogue import Catalogue, ValidEvent
from touchstream.processors.customer_360 import Customer360Sink
from touchstream.processors.identity_resolution import SEQ, IdentityStage
from touchstream.processors.identity_store_sqlite import open_identity_store
from touchstream.processors.records import RawRecord
from touchstream.processors.topic_output import MemoryOutput
from touchstream.projections import customer_360 as c360
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.projections.identity_resolution import IdentityConfig, IdentityResolver
from touchstream.publishing.dead_letters import AlreadySentDeadLetters
from touchstream.topics import CUSTOMER_360_TOPIC, CUSTOMER_EVENTS_TOPIC, key_partition

CAT = Catalogue()
NOW = datetime(2100, 1, 1, tzinfo=timezone.utc)
RAW_PARTITIONS, EVENT_PARTITIONS = 3, 4
NEVER = {"every_seconds": 1e9, "every_records": 10**9}   # saves only when a test says so
Logs = dict[tuple[str, int], list[RawRecord]]


def validated(events: list[dict]) -> list[ValidEvent]:
    return [CAT.validate(e, now=NOW) for e in events]


def partition_of(key: bytes, partitions: int) -> int:
    return key_partition(key, partitions)   # as the producer partitions (and a fold worker expects)


def append(logs: Logs, topic: str, partition: int, key, value, headers) -> None:
    log = logs[(topic, partition)]
    log.append(RawRecord(topic, partition, len(log), key, value, list(headers)))


def raw_logs(events: list[ValidEvent], codec: AvroCodec, logs: Logs | None = None) -> Logs:
    """The raw topics after a producer sent ``events`` in this order (keyed as the collector keys them)."""
    logs = defaultdict(list) if logs is None else logs
    for e in events:
        append(logs, e.topic, partition_of(e.key, RAW_PARTITIONS), e.key, codec.encode(e.schema, e.record), [])
    return logs


def consume(logs: Logs, rnd, *, max_batch: int = 8, rewinds: int = 0) -> list[list[RawRecord]]:
    """Batches as a consumer may receive them: partitions interleaved, each partition in order.

    With ``rewinds``, up to that many times a partition goes back to an earlier offset after a
    batch (redelivery after a rebalance) and is read again from there.
    """
    pos = dict.fromkeys(sorted(logs), 0)
    out: list[list[RawRecord]] = []
    while True:
        batch = []
        for _ in range(rnd.randint(1, max_batch)):
            live = [tp for tp in pos if pos[tp] < len(logs[tp])]
            if not live:
                break
            tp = rnd.choice(live)
            batch.append(logs[tp][pos[tp]])
            pos[tp] += 1
        if not batch:
            return out
        out.append(batch)
        if rewinds and rnd.random() < 0.3:
            rewinds -= 1
            tp = rnd.choice(list(pos))
            pos[tp] = rnd.randint(0, pos[tp])


class CustomerEventsTopic:
    """``touchstream.customer-events`` as the identity stage produced it (partition = key hash)."""

    def __init__(self, output: MemoryOutput):
        self.output, self.logs, self._taken = output, defaultdict(list), 0

    def collect(self) -> None:
        for topic, key, value, headers in self.output.records[self._taken:]:
            if topic == CUSTOMER_EVENTS_TOPIC:
                append(self.logs, topic, partition_of(key, EVENT_PARTITIONS), key, value, headers)
        self._taken = len(self.output.records)


def identity_stage(folder: Path, config: IdentityConfig, codec, output: MemoryOutput) -> IdentityStage:
    """A stage as the identity service starts one: restored from its state store (a fresh epoch)."""
    return IdentityStage.restore(open_identity_store(folder), config, codec, output, AlreadySentDeadLetters(), **NEVER)


def identify(stage: IdentityStage, batches: list[list[RawRecord]], topic: CustomerEventsTopic,
             logs: Logs | None = None) -> None:
    """Hand the stage its batches. With ``logs`` (the raw partitions the batches come from, all assigned)
    the stage sees a partition as caught up, as its consumer would, once it has been handed every record
    of it (the records below the stage's positions were handed to it, or to the run before a restart)."""
    if logs is not None:
        delivered = dict(stage.positions())
        stage.expect(list(logs))
        stage.caught_up = lambda tp: delivered.get(tp, 0) >= len(logs.get(tp, ()))
    for batch in batches:
        if logs is not None:
            for r in batch:
                delivered[(r.topic, r.partition)] = max(delivered.get((r.topic, r.partition), 0), r.offset + 1)
        stage.handle(batch)
    topic.collect()


def resume(logs: Logs, positions: dict) -> Logs:
    """The records a consumer reads after a restart: each partition from ``positions`` on (offsets kept)."""
    return {tp: records[positions.get(tp, 0):] for tp, records in logs.items()}


def seqs(records: list, codec) -> list[int]:
    """The identity sequence numbers of the stage's outputs (event headers, membership and decision bodies)."""
    out = []
    for _topic, _key, value, headers in records:
        head = dict(headers)
        out.append(int(head[SEQ]) if SEQ in head else codec.decode(value).record["seq"])
    return out


class Sink:
    """A ``Customer360Sink`` on a DuckDB file that outlives it; ``restart`` is a crash: cache and connection lost."""

    def __init__(self, path: Path, codec, *, cache_size: int = 20_000, output: MemoryOutput | None = None):
        self.path, self.codec, self.cache_size = path, codec, cache_size
        self.output = MemoryOutput() if output is None else output
        self._open()

    def _open(self) -> None:
        self.db = DuckDBStore(self.path)
        self.store = Customer360Store(self.db)
        self.sink = Customer360Sink(self.store, self.codec, self.output, AlreadySentDeadLetters(),
                                    cache_size=self.cache_size)

    def restart(self) -> None:
        self.db.close()
        self._open()

    def feed(self, batches: list[list[RawRecord]]) -> None:
        for batch in batches:
            self.sink.handle(batch)

    def rows(self) -> dict[str, str]:
        return self.store.fingerprints()

    def events_of(self, customer: str) -> int | None:
        profile = self.store.profile(customer)
        return profile and profile["events"]

    def last_360(self) -> dict[bytes, bytes | None]:
        """The compacted topic as a reader sees it after compaction: the last value per key."""
        return {key: value for topic, key, value, _h in self.output.records if topic == CUSTOMER_360_TOPIC}


def pipeline(folder: Path, events: list[dict], codec, rnd, *, config: IdentityConfig | None = None,
             cache_size: int = 20_000, output: MemoryOutput | None = None) -> tuple[CustomerEventsTopic, Sink]:
    """Identity over interleaved raw batches, then a fresh sink; the caller decides how the sink reads."""
    produced = MemoryOutput()
    topic = CustomerEventsTopic(produced)
    stage = identity_stage(folder / "identity", config or IdentityConfig(), codec, produced)
    identify(stage, consume(raw_logs(validated(events), codec), rnd), topic)
    return topic, Sink(folder / "x.duckdb", codec, cache_size=cache_size, output=output)


class Live:
    """Both stages running side by side: ``send`` publishes events, then each stage reads its topics
    (handing a stage what it already handled is harmless: it skips by offset)."""

    def __init__(self, folder: Path, codec, config: IdentityConfig | None = None):
        self.codec, self.raw = codec, defaultdict(list)
        self.topic = CustomerEventsTopic(MemoryOutput())
        self.stage = identity_stage(folder / "identity", config or IdentityConfig(), codec, self.topic.output)
        self.sink = Sink(folder / "x.duckdb", codec)

    def send(self, *events: dict) -> None:
        raw_logs(validated(list(events)), self.codec, self.raw)
        identify(self.stage, [[r for log in self.raw.values() for r in log]], self.topic)
        self.sink.feed([[r for log in self.topic.logs.values() for r in log]])


def expected_fingerprints(events: list[dict], config: IdentityConfig | None = None) -> dict[str, str]:
    """What a replay computes: the pure resolver over every event, then the pure fold per final customer."""
    resolver = IdentityResolver(config)
    records = [v.record for v in validated(events)]
    anchors = [resolver.observe(r).anchor for r in records]
    by_customer = defaultdict(list)
    for record, anchor in zip(records, anchors):
        if anchor is not None and (customer := resolver.customer_of(anchor.kind, anchor.value)):
            by_customer[customer].append(record)
    def owns(customer: str):
        return lambda key: resolver.customer_of(*key.split(":", 1)) == customer
    return {customer: c360.view_fingerprint(c360.view_json(c360.view(c360.fold(rs, customer), owns(customer))))
            for customer, rs in by_customer.items()}
