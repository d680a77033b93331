"""The key ring's contract on the in-memory store (the Kafka key topic runs the same suite on the broker)."""

from __future__ import annotations

from touchstream.privacy.keyring import MasterKey, MemoryKeyRing
from tests.keyring_contract import MASTER, KeyRingContract


class TestMemoryKeyRing(KeyRingContract):
    def setup_method(self):
        self.stores: dict[str, dict] = {}

    def ring(self, store: str, master: MasterKey = MASTER):
        return MemoryKeyRing(master, shared=self.stores.setdefault(store, {}))
