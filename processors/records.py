"""A record as read from a topic, independent of the client library that read it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from touchstream.projections.interaction_log import Position


@dataclass(frozen=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    # Milliseconds since the epoch: the broker's log-append time on raw topics (trusted, unlike the
    # producer's occurred_at), the producer's create time on topics configured otherwise.
    timestamp: int | None = None

    @property
    def position(self) -> Position:
        return Position(self.topic, self.partition, self.offset)

    @property
    def received_at(self) -> datetime | None:
        """``timestamp`` as an aware datetime (None when the client gave none)."""
        return None if self.timestamp is None or self.timestamp < 0 else datetime.fromtimestamp(self.timestamp / 1000, timezone.utc)


class CommittedOffsets:
    """The next offset a sink applies per partition, as durable as the sink's own state.

    Records below it were applied before a restart or a redelivery and are skipped;
    it advances only after the sink's transaction committed.
    """

    def __init__(self, committed: dict[tuple[str, int], int] | None = None):
        self._next = dict(committed or {})

    def pending(self, records: list[RawRecord]) -> list[RawRecord]:
        return [r for r in records if r.offset >= self._next.get((r.topic, r.partition), 0)]

    def advance(self, offsets: dict[tuple[str, int], int]) -> None:
        for key, offset in offsets.items():
            self._next[key] = max(self._next.get(key, 0), offset)

    def get(self, partition: tuple[str, int]) -> int:
        return self._next.get(partition, 0)

    def as_dict(self) -> dict[tuple[str, int], int]:
        return dict(self._next)
