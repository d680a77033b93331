"""Where each partition ends, as the broker said at a known moment: what identity's merge may trust.

Why: the merge (``partition_merge``) releases a record once every partition with nothing buffered
is at its end, and once the record has settled (the broker appended it ``settle`` seconds ago). The
consumer's cached high watermark is only as fresh as that partition's last fetch response. After a
broker restart, librdkafka revalidates each partition's leader epoch and fetches them again one by
one, with back-offs; a partition not fetched yet keeps its end from before the outage, so it looks
caught up while records appended to it since wait on the broker, and the partitions already
fetching deliver records that were appended seconds ago, so they look settled. The merge passed
over the waiting records, and the broker-restart fault case decided in another order (CI, 1 run
in several). So the ends are asked of the broker itself, all partitions in one ListOffsets
request, and the moment the request left is when they are known: a record counts as settled only
if it was appended ``settle`` seconds before that moment, whatever the wall clock says now.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

Partition = tuple[str, int]
Ask = Callable[[list[Partition]], dict[Partition, int]]


class PartitionEnds:
    """The end offset of each partition and the moment (epoch seconds) they were all known at.

    ``ask(partitions)`` returns the end of every partition it could learn; one that is missing from
    its answer, or an exception, leaves the known moment where it was (nothing newer counts as settled)."""

    def __init__(self, ask: Ask, clock: Callable[[], float] = time.time):
        self._ask, self._clock = ask, clock
        self._ends: dict[Partition, int] = {}
        self.known_at: float | None = None

    def refresh(self, partitions: Iterable[Partition]) -> bool:
        """Ask the broker; True when every partition answered (then ``known_at`` moves on)."""
        wanted = sorted(partitions)
        if not wanted:
            return False
        sent = self._clock()
        try:
            ends = self._ask(wanted)
        except Exception:   # noqa: BLE001 - an outage or a timeout: the ends stay as last known
            return False
        self._ends.update(ends)
        if any(tp not in ends for tp in wanted):
            return False
        self.known_at = sent
        return True

    def at_end(self, partition: Partition, consumed: int | None) -> bool:
        """Consumed (the offset after the last record consumed) up to the end the broker last gave."""
        end = self._ends.get(partition)
        return end is not None and consumed is not None and consumed >= end

    def forget(self, partitions: Iterable[Partition]) -> None:
        for tp in partitions:
            self._ends.pop(tp, None)
