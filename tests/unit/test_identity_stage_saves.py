"""The identity stage saves what a batch changed, never its whole state.

Why (issue 15): the stage wrote ``IdentityResolver.to_dict()`` whole every 10 s, 55% of
identity's CPU in the 1M bench, growing with every event seen. Now each save holds the
facts observed since the previous one; a save that fails keeps them for the next.
"""

from __future__ import annotations

import random

import pytest

from tests.local_codec import LocalCodec
from tests.pipeline_harness import consume, raw_logs, validated
from touchstream.demo.generator import generate
from touchstream.processors.identity_resolution import IdentityStage
from touchstream.processors.identity_store import Saved
from touchstream.processors.identity_store_memory import MemoryIdentityStore
from touchstream.processors.topic_output import MemoryOutput
from touchstream.projections.identity_resolution import IdentityConfig, IdentityResolver
from touchstream.publishing.dead_letters import AlreadySentDeadLetters

CODEC = LocalCodec()
EVENTS = list(generate(20, 14, 5))


class RecordingStore(MemoryIdentityStore):
    """Keeps every delta it was handed; ``fail`` saves in a row raise first (a full disk)."""

    def __init__(self, fail: int = 0):
        super().__init__()
        self.deltas: list[Saved] = []
        self.fail = fail

    def save(self, delta: Saved) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError("disk full")
        self.deltas.append(delta)
        super().save(delta)


def stage_on(store) -> IdentityStage:
    """Saving after every batch that released records."""
    return IdentityStage.restore(store, IdentityConfig(), CODEC, MemoryOutput(), AlreadySentDeadLetters(),
                                 every_seconds=1e9, every_records=1)


def batches() -> list:
    return consume(raw_logs(validated(EVENTS), CODEC), random.Random(4), max_batch=60)


def test_each_save_holds_only_what_was_observed_since_the_previous_one(monkeypatch):
    def whole_state(_resolver):
        raise AssertionError("the stage serialised the whole resolver state")

    monkeypatch.setattr(IdentityResolver, "to_dict", whole_state)
    store = RecordingStore()
    stage = stage_on(store)
    for batch in batches():
        stage.handle(batch)
    saved = [event for delta in store.deltas for event in delta.facts.events]
    assert len(store.deltas) > 10 and sorted(saved) == sorted({e["envelope"]["event_id"] for e in EVENTS})
    assert store.deltas[-1].offsets == stage.positions()
    restored = stage_on(store)
    assert restored.resolver.facts() == stage.resolver.facts() and restored.epoch == stage.epoch + 1


def test_a_save_that_failed_goes_with_the_next_one():
    store, todo = RecordingStore(), batches()
    stage = stage_on(store)
    stage.handle(todo[0])
    store.fail = 2
    for batch in todo[1:3]:
        with pytest.raises(OSError):
            stage.handle(batch)
    for batch in todo[3:]:
        stage.handle(batch)
    assert stage_on(store).resolver.facts() == stage.resolver.facts()
