"""One consumer and one decode per raw record for every serving sink that reads the raw topics.

Why: the interaction log and the complaint sink each ran their own consumer over the
same raw partitions and decoded every record again (20–50 µs each, the largest single
cost in serving's profile), and the customer-360 decoded the same bytes a third time
when identity forwarded them on ``customer-events``. Here the raw batch is decoded
once (``decode_batch``: Avro, then the envelope contract) and each sink is handed the
part it has not applied yet (``DecodedBatch.after``). Each sink keeps its own offsets
in the transaction of its own rows, so the shared consumer resumes at the lowest of
them and a sink that is ahead skips what it already has.

``RecentDecodes`` remembers the last decoded records by their bytes, so the 360 sink's
codec (``SharingCodec``) finds an event identity forwarded unchanged without decoding
it again. Keyed by the whole value: equal bytes under an immutable registry id decode
to equal records, so a hit can never be another record's result. Decoded records are
shared read-only between sinks: no fold may mutate one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from touchstream.codec.avro_codec import AvroCodec, Decoded
from touchstream.events.envelope import MAX_CLOCK_SKEW
from touchstream.processors.decoding import decode_batch
from touchstream.processors.records import RawRecord
from touchstream.publishing.dead_letters import DeadLetter

Partition = tuple[str, int]


@dataclass(frozen=True)
class DecodedBatch:
    """A raw batch decoded once: every record, the valid events among them, a dead letter for each other."""

    records: list[RawRecord]
    good: list[tuple[RawRecord, Decoded]]
    letters: list[DeadLetter]

    def after(self, committed) -> "DecodedBatch":
        """The part at or past ``committed(partition)``, the next offset a sink applies."""
        def fresh(r: RawRecord) -> bool:
            return r.offset >= committed((r.topic, r.partition))
        return DecodedBatch([r for r in self.records if fresh(r)], [(r, d) for r, d in self.good if fresh(r)],
                            [letter for letter in self.letters if fresh(letter.record)])


def decoded_batch(codec: AvroCodec, records: list[RawRecord], max_skew: timedelta = MAX_CLOCK_SKEW,
                  recent: "RecentDecodes | None" = None) -> DecodedBatch:
    good, letters = decode_batch(codec, records, max_skew)
    if recent is not None:
        recent.remember((r.value, d) for r, d in good)
    return DecodedBatch(records, good, letters)


class RecentDecodes:
    """The last ``size`` decoded records by value bytes; thread-safe (one source writes, another reads)."""

    def __init__(self, size: int = 20_000):
        self.size = size
        self._by_value: OrderedDict[bytes, Decoded] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def remember(self, pairs) -> None:
        with self._lock:
            for value, decoded in pairs:
                self._by_value[value] = decoded
            while len(self._by_value) > self.size:
                self._by_value.popitem(last=False)

    def get(self, value: bytes | None) -> Decoded | None:
        if value is None:
            return None
        with self._lock:
            hit = self._by_value.get(value)
        if hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return hit


class SharingCodec:
    """An ``AvroCodec`` whose ``decode`` first looks in ``recent``; everything else is the codec's own."""

    def __init__(self, codec: AvroCodec, recent: RecentDecodes):
        self._codec, self.recent = codec, recent

    def decode(self, data: bytes | None) -> Decoded:
        hit = self.recent.get(data)
        return hit if hit is not None else self._codec.decode(data)

    def __getattr__(self, name: str):
        return getattr(self._codec, name)


class RawFanout:
    """The handler of serving's one raw-topic source: decode once, then ``apply`` each sink's part in turn.

    ``sinks``: objects with ``arriving(records)`` (told before the decode, which may wait out a registry
    outage), ``apply(DecodedBatch)`` and ``committed(partition)``. A sink's failure stops
    the batch there (the source retries it on an outage, or the process stops on a bug); sinks that
    applied it already skip it on the retry by their own offsets."""

    def __init__(self, codec: AvroCodec, sinks: list, *, max_skew: timedelta = MAX_CLOCK_SKEW,
                 recent: RecentDecodes | None = None):
        self.codec, self.sinks, self.max_skew, self.recent = codec, sinks, max_skew, recent

    def committed(self, partition: Partition) -> int:
        """Where the shared consumer resumes: the sink furthest behind on that partition."""
        return min(sink.committed(partition) for sink in self.sinks)

    def handle(self, records: list[RawRecord]) -> None:
        todo = [r for r in records if r.offset >= self.committed((r.topic, r.partition))]
        if not todo:
            return
        for sink in self.sinks:
            sink.arriving(todo)
        batch = decoded_batch(self.codec, todo, self.max_skew, self.recent)
        for sink in self.sinks:
            sink.apply(batch.after(sink.committed))
