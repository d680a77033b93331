"""A record as read from a topic, independent of the client library that read it."""

from __future__ import annotations

from dataclasses import dataclass

from touchstream.projections.interaction_log import Position


@dataclass(frozen=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @property
    def position(self) -> Position:
        return Position(self.topic, self.partition, self.offset)
