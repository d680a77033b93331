"""The identity state store's contract, run on every backend: memory and SQLite.

``IdentityStoreContract`` is written once against the ``IdentityStateStore`` port. A
subclass supplies ``open_store(folder)``; calling it again on the same folder plays a
restart. What must hold: every start bumps and persists the epoch; saves add fact rows
(a node's row replaced, a repeated row kept once) with the positions and the counter in
one transaction; a resolver restored from the deltas it journalled equals the live one,
also when the store still holds evidence a later unlink voided; a version-1 JSON
checkpoint is migrated once.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_identity_resolution import (
    BLOCKED, BLOCKING, FAST, linked, seen, specs, stream, unlinked,
)
from touchstream.processors.identity_store import Saved
from touchstream.processors.identity_store_memory import MemoryIdentityStore
from touchstream.processors.identity_store_migration import migrate_json_checkpoint
from touchstream.processors.identity_store_sqlite import SqliteIdentityStore, open_identity_store
from touchstream.projections.identity_journal import FACT_KINDS, Facts
from touchstream.projections.identity_resolution import IdentityConfig, IdentityResolver

ANN, ANN_PHONE, BOB = ("email", "ann@a.example"), ("phone", "+31 6 1234 5601"), ("email", "bob@a.example")
NODE = ["email", "ann@a.example", 100, "claimed", None]
EVIDENCE = ["email", "ann@a.example", "phone", "+31612345601", 100, "e1", "observed", "web:together"]
# a folder per example (uuid); one property run by each backend's class (the examples suit both)
STORED = settings(FAST, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                               HealthCheck.differing_executors])
configs = st.builds(IdentityConfig, max_customers_per_identifier=st.integers(1, 3),
                    merge_customers_min_trust=st.sampled_from(["verified", "observed"]),
                    unlink_separates=st.booleans(), **{k: st.just(v) for k, v in BLOCKING.items()})


def rows(facts: Facts) -> dict[str, list]:
    """Facts comparable whatever the backend's row order and row type."""
    return {kind: sorted(tuple(r) if kind != "events" else r for r in getattr(facts, kind)) for kind in FACT_KINDS}


def legacy_checkpoint(folder: Path, resolver: IdentityResolver, *, epoch: int, counter: int, epoch_file: int) -> None:
    """The two files the version-1 ``IdentityCheckpoint`` wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {"version": 1, "epoch": epoch, "counter": counter, "offsets": [["touchstream.raw.web", 0, 42]],
            "resolver": resolver.to_dict()}
    (folder / "checkpoint.json").write_text(json.dumps(data, separators=(",", ":")))
    (folder / "epoch").write_text(str(epoch_file))


def observed(events: list[dict], config: IdentityConfig | None = None) -> IdentityResolver:
    resolver = IdentityResolver(config, journal=True)
    for event in events:
        resolver.observe(event)
    return resolver


class IdentityStoreContract:
    """Behaviour every ``IdentityStateStore`` must give the identity stage. Subclasses define ``open_store``."""

    def open_store(self, folder: Path):
        raise NotImplementedError

    def restart(self, store, folder: Path):
        store.close()
        return self.open_store(folder)

    def test_a_first_start_finds_nothing_and_persists_epoch_one(self, tmp_path):
        store = self.open_store(tmp_path)
        assert store.empty()
        loaded = store.load()
        assert (loaded.epoch, loaded.counter, loaded.offsets, rows(loaded.facts)) == (1, 0, {}, rows(Facts()))
        assert not store.empty()

    def test_every_start_bumps_the_epoch_also_a_start_that_never_saved(self, tmp_path):
        store = self.open_store(tmp_path)
        assert store.load().epoch == 1
        store = self.restart(store, tmp_path)
        assert store.load().epoch == 2
        store.save(Saved(2, 9, {("t", 0): 3}))
        store = self.restart(store, tmp_path)
        assert store.load().epoch == 3

    def test_a_save_is_restored_with_its_positions_and_a_fresh_epoch_and_counter(self, tmp_path):
        store = self.open_store(tmp_path)
        epoch = store.load().epoch
        facts = Facts(["e1"], [NODE], [EVIDENCE], [EVIDENCE[:5] + ["u1", "verified", "unlinked"]],
                      [["blocked_value", "phone", "+31201234567"]])
        store.save(Saved(epoch, 17, {("t", 0): 5, ("t", 1): 2}, facts))
        loaded = self.restart(store, tmp_path).load()
        assert (loaded.epoch, loaded.counter, loaded.offsets) == (epoch + 1, 0, {("t", 0): 5, ("t", 1): 2})
        assert rows(loaded.facts) == rows(facts)

    def test_saves_add_rows_a_node_row_is_replaced_a_repeated_row_kept_once_other_offsets_kept(self, tmp_path):
        store = self.open_store(tmp_path)
        store.load()
        store.save(Saved(1, 1, {("t", 0): 5, ("t", 1): 1}, Facts(["e1"], [NODE], [EVIDENCE])))
        earlier = NODE[:2] + [50, "verified", "odd_phone"]
        store.save(Saved(1, 2, {("t", 0): 9}, Facts(["e1", "e2"], [earlier], [EVIDENCE])))
        loaded = self.restart(store, tmp_path).load()
        assert loaded.offsets == {("t", 0): 9, ("t", 1): 1}
        assert rows(loaded.facts) == rows(Facts(["e1", "e2"], [earlier], [EVIDENCE]))

    @STORED
    @given(spec_list=specs(BLOCKED, max_size=24), config=configs, data=st.data())
    def test_a_resolver_restored_from_its_saved_deltas_equals_the_live_one(self, tmp_path, spec_list, config, data):
        """Saved at any points, restored, then fed the rest: the same facts, customers and findings as a run
        that never stopped (the restored resolver journals what it observes next)."""
        events, folder = stream(spec_list), tmp_path / uuid.uuid4().hex
        cuts = sorted(data.draw(st.lists(st.integers(0, len(events)), max_size=4), "saves after"))
        stop = data.draw(st.integers(0, len(events)), "restart after")
        store, live = self.open_store(folder), IdentityResolver(config, journal=True)
        store.load()
        for i, event in enumerate(events[:stop]):
            live.observe(event)
            if i + 1 in cuts:
                store.save(Saved(1, 0, {}, live.changes()))
        store.save(Saved(1, 0, {}, live.changes()))
        restored = IdentityResolver.from_facts(self.restart(store, folder).load().facts, config, journal=True)
        assert restored.to_dict() == live.to_dict()
        assert (restored.assignment(), restored.findings(), restored.notes()) == \
               (live.assignment(), live.findings(), live.notes())
        for event in events[stop:]:
            assert restored.observe(event).decisions == live.observe(event).decisions
        assert restored.changes() == live.changes()

    @pytest.mark.parametrize("late", [False, True], ids=["voided-after-saving", "arrived-after-its-unlink"])
    def test_evidence_a_later_unlink_voided_stays_stored_and_is_refused_again_on_restore(self, tmp_path, late):
        """The store never deletes evidence: restoring separations before evidence gives the live state."""
        link, undo = linked(ANN, BOB, "observed", 5, "link"), unlinked(ANN, BOB, 9, "undo")
        first, second = ([undo], [link]) if late else ([link], [undo])
        store = self.open_store(tmp_path)
        store.load()
        live = observed(first + [seen(ANN_PHONE, "claimed", 1, "other")])
        store.save(Saved(1, 0, {}, live.changes()))
        for event in second:
            live.observe(event)
        store.save(Saved(1, 0, {}, live.changes()))
        stored = self.restart(store, tmp_path).load().facts
        stored.evidence = list(stored.evidence)
        voided = [r for r in stored.evidence if r[5] == "link"]
        assert voided and not [r for r in live.to_dict()["evidence"] if r[5] == "link"]
        restored = IdentityResolver.from_facts(stored)
        assert restored.to_dict() == live.to_dict() and restored.assignment() == live.assignment()
        assert restored.customer_of(*ANN) != restored.customer_of(*BOB)

    def test_a_json_checkpoint_is_migrated_once_and_kept_renamed(self, tmp_path):
        events = [linked(ANN, ANN_PHONE, "verified", 1, "a"), seen(BOB, "observed", 2, "b"),
                  unlinked(ANN, BOB, 3, "c"), seen(("phone", "020-123 4567"), "observed", 4, "d")]
        old = observed(events, IdentityConfig(**BLOCKING))
        legacy_checkpoint(tmp_path, old, epoch=3, counter=7, epoch_file=5)
        store = self.open_store(tmp_path)
        assert migrate_json_checkpoint(tmp_path, store)
        assert sorted(p.name for p in tmp_path.iterdir() if "migrated" in p.name) == \
               ["checkpoint.json.migrated", "epoch.migrated"]
        loaded = store.load()
        assert (loaded.epoch, loaded.offsets) == (6, {("touchstream.raw.web", 0): 42})   # the epoch file's 5, bumped
        restored = IdentityResolver.from_facts(loaded.facts, IdentityConfig(**BLOCKING))
        assert restored.to_dict() == old.to_dict() and restored.assignment() == old.assignment()
        store = self.restart(store, tmp_path)
        assert not migrate_json_checkpoint(tmp_path, store) and store.load().epoch == 7

    def test_a_store_already_holding_state_is_not_overwritten_by_a_json_checkpoint(self, tmp_path):
        """A crash between the migrating save and the renames: the files are only renamed the next time."""
        store = self.open_store(tmp_path)
        store.save(Saved(4, 1, {("t", 0): 8}, Facts(["kept"])))
        legacy_checkpoint(tmp_path, observed([seen(ANN, "observed", 1, "old")]), epoch=1, counter=1, epoch_file=1)
        assert migrate_json_checkpoint(tmp_path, store)
        loaded = store.load()
        assert (loaded.epoch, loaded.offsets, list(loaded.facts.events)) == (5, {("t", 0): 8}, ["kept"])
        assert not (tmp_path / "checkpoint.json").exists()


class TestMemoryIdentityStore(IdentityStoreContract):
    def setup_method(self):
        self.stores: dict[Path, MemoryIdentityStore] = {}

    def open_store(self, folder: Path):
        return self.stores.setdefault(folder, MemoryIdentityStore())


class TestSqliteIdentityStore(IdentityStoreContract):
    def open_store(self, folder: Path):
        return SqliteIdentityStore(folder)

    def test_a_save_that_fails_midway_leaves_nothing_of_it(self, tmp_path):
        store = self.open_store(tmp_path)
        store.load()
        store.save(Saved(1, 1, {("t", 0): 1}, Facts(["e1"])))
        with pytest.raises(Exception):
            store.save(Saved(1, 2, {("t", 0): 2}, Facts(["e2"], [NODE], [EVIDENCE[:3]])))   # a short evidence row
        loaded = self.restart(store, tmp_path).load()
        assert (list(loaded.facts.events), list(loaded.facts.nodes), loaded.offsets) == (["e1"], [], {("t", 0): 1})

    def test_the_service_opens_its_store_with_the_json_checkpoint_migrated(self, tmp_path):
        old = observed([linked(ANN, BOB, "verified", 1, "a")])
        legacy_checkpoint(tmp_path, old, epoch=2, counter=3, epoch_file=2)
        loaded = open_identity_store(tmp_path).load()
        assert loaded.epoch == 3 and IdentityResolver.from_facts(loaded.facts).to_dict() == old.to_dict()
        assert (tmp_path / "identity.sqlite").exists() and (tmp_path / "checkpoint.json.migrated").exists()
