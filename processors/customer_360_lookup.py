"""Serving 360 lookups fast: the live sink behind a lock, and a read-through cache it invalidates.

Why a cache: a representative's screen asks for a 360 on every call, and a DuckDB
point query costs a millisecond or more (more when the machine is busy), while a
dict lookup costs microseconds. Only the customer-360 sink changes profiles, so it
tells the cache after every commit which customers it rewrote or deleted and whose
identifiers moved; a generation counter keeps a lookup that raced with a commit from
caching what it read before the commit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

from touchstream.processors.customer_360 import Customer360Sink
from touchstream.projections.customer_360_store import Customer360Store


class LookupCache:
    def __init__(self, size: int = 50_000):
        self.size = size
        self._customer_of: OrderedDict[str, str] = OrderedDict()   # text as asked -> customer id
        self._profiles: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        self.hits = self.misses = 0

    def lookup(self, text: str, resolve: Callable[[str], str | None], load: Callable[[str], dict | None]):
        with self._lock:
            generation = self._generation
            customer = self._customer_of.get(text)
            profile = self._profiles.get(customer) if customer else None
            if profile is not None:
                self.hits += 1
                self._customer_of.move_to_end(text)
                self._profiles.move_to_end(customer)
                return profile
        self.misses += 1
        customer = customer or resolve(text)
        profile = load(customer) if customer else None
        if profile is not None:
            with self._lock:
                if generation == self._generation:   # nothing committed meanwhile: safe to keep
                    self._put(self._customer_of, text, customer)
                    self._put(self._profiles, customer, profile)
        return profile

    def _put(self, table: OrderedDict, key: str, value) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self.size:
            table.popitem(last=False)

    def invalidate(self, changed: set[str], moved: set[str]) -> None:
        """``changed``: customers rewritten or deleted; ``moved``: customers whose identifiers moved."""
        with self._lock:
            self._generation += 1
            for customer in changed:
                self._profiles.pop(customer, None)
            if moved:
                for text in [t for t, c in self._customer_of.items() if c in moved]:
                    del self._customer_of[text]

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._customer_of.clear()
            self._profiles.clear()


class LiveCustomer360:
    """The customer-360 sink the live agent feeds (a rebuild swaps it under the lock) and its lookups."""

    def __init__(self, sink: Customer360Sink, cache: LookupCache | None = None):
        self.lock = threading.Lock()
        self.cache = cache or LookupCache()
        self.listeners: list[Callable[[set[str], set[str]], None]] = []
        self.sink = sink

    @property
    def sink(self) -> Customer360Sink:
        return self._sink

    @sink.setter
    def sink(self, sink: Customer360Sink) -> None:
        self._sink = sink
        sink.on_commit = self._committed
        self.cache.clear()

    def listen(self, listener: Callable[[set[str], set[str]], None]) -> None:
        """Call ``listener(changed, moved)`` after each commit of the live sink (in the agent's thread)."""
        self.listeners.append(listener)

    def _committed(self, changed: set[str], moved: set[str]) -> None:
        self.cache.invalidate(changed, moved)
        for listener in self.listeners:
            listener(changed, moved)

    @property
    def store(self) -> Customer360Store:
        return self._sink.store

    def committed(self, partition: tuple[str, int]) -> int:
        return self._sink.committed(partition)

    def handle(self, records) -> None:
        with self.lock:
            self._sink.handle(records)

    def forget(self, customers: set[str]) -> None:
        """After an erasure, under ``lock``: no cache may still hold the person, or the next batch would
        write them back; the sink refolds whom it needs from DuckDB, which no longer has them."""
        self._sink.cache.clear()
        self._sink.claim_cache.clear()
        self.cache.clear()

    def lookup(self, text: str) -> dict | None:
        store = self.store
        return self.cache.lookup(text.strip(), store.resolve, store.profile)
