"""Many partitions' records in one order that depends on what the partitions hold, not on when they arrive.

Why: identity decisions (which event merged whom, which link came first), the sequence
numbers of the routes, and the anon ids minted on the way are a history, and a history
depends on the order it is read in. A consumer interleaves partitions as fetches happen
to complete, so two runs over the same log, a rebuild, or a restart mid-way read them in
different orders and decided differently (issue 14: 1,958 vs 1,965 decisions, 42 routes).

The merge is the classic k-way merge of the partitions by event key (event time, then
event id; ties by topic, partition and offset): a record is released only when it is the
least head of all partitions, and a partition whose buffer is empty holds the merge back
unless it is caught up (it has nothing more to deliver now: its consumer has consumed up
to the high watermark of its last fetch). And a record is released only once it has *settled*: the broker appended it a
moment ago at least (``IdentityStage.settle``), because a producer batches per partition, so
a record sent just before it to a quiet partition may be appended a few milliseconds after
it. The released order is then a function of the partitions' contents alone, whatever the
batching, the interleaving or the restart point; a record appended after the merge passed
its key (a producer sending out of event-time order, or one held up longer than the settle
time) is read where it arrives, and is the one thing that can still differ between two runs.

Each partition's commit position is that of its first record not released yet, so a
restart resumes with exactly the records the merge still held.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Callable, Iterable, NamedTuple

from touchstream.processors.records import RawRecord

Partition = tuple[str, int]


class Item(NamedTuple):
    """A record with its event key; ``key`` None: a record of no order (one that is dead-lettered)."""

    key: tuple | None
    record: RawRecord
    event: dict | None


def sort_key(item: Item) -> tuple:
    r = item.record
    return (0, (), r.topic, r.partition, r.offset) if item.key is None else (1, item.key, r.topic, r.partition, r.offset)


class PartitionMerge:
    """Buffers records per partition and releases them in merged order (see the module doc)."""

    def __init__(self) -> None:
        self._queues: dict[Partition, deque[Item]] = {}
        self._next: dict[Partition, int] = {}   # the offset after the last record buffered or released

    def expect(self, partitions: Iterable[Partition]) -> None:
        """Partitions assigned: each holds the merge until it delivers or is caught up."""
        for tp in partitions:
            self._queues.setdefault(tp, deque())

    def fresh(self, record: RawRecord) -> bool:
        """Not buffered or released before (a consumer may deliver a record twice after a rewind)."""
        return record.offset >= self._next.get((record.topic, record.partition), -1)

    def add(self, items: Iterable[Item]) -> None:
        for item in sorted(items, key=lambda i: (i.record.topic, i.record.partition, i.record.offset)):
            tp = (item.record.topic, item.record.partition)
            if item.record.offset >= self._next.get(tp, -1):
                self._queues.setdefault(tp, deque()).append(item)
                self._next[tp] = item.record.offset + 1

    def release(self, caught_up: Callable[[Partition], bool],
                settled: Callable[[Item], bool] = lambda _item: True) -> list[Item]:
        """Every record that is the least head while no partition still to deliver is empty, in order,
        up to the first one not ``settled`` yet (one that came so recently that a record sent before it
        to another partition may still be on its way)."""
        if any(not q and not caught_up(tp) for tp, q in self._queues.items()):
            return []
        heads = [(sort_key(q[0]), tp) for tp, q in self._queues.items() if q]
        heapq.heapify(heads)
        out = []
        while heads:
            _, tp = heapq.heappop(heads)
            queue = self._queues[tp]
            if not settled(queue[0]):
                break
            out.append(queue.popleft())
            if queue:
                heapq.heappush(heads, (sort_key(queue[0]), tp))
            elif not caught_up(tp):
                break
        return out

    def positions(self) -> dict[Partition, int]:
        """Per partition, the offset to resume at: its first record not released yet."""
        return {tp: (q[0].record.offset if q else self._next[tp])
                for tp, q in self._queues.items() if q or tp in self._next}

    def held_items(self) -> list[Item]:
        """The items buffered, not released yet (an erasure blanks the hints of their events in place)."""
        return [item for queue in self._queues.values() for item in queue]

    def held(self) -> int:
        return sum(len(q) for q in self._queues.values())
