"""The 360 lookup cache: read-through, invalidated by the sink's commits, never caching a raced read."""

from __future__ import annotations

from touchstream.processors.customer_360_lookup import LookupCache

PROFILES = {"CU-1": {"customer_id": "CU-1", "events": 1}, "CU-2": {"customer_id": "CU-2", "events": 5}}
HOLDERS = {"ann@example.com": "CU-1", "CU-1": "CU-1", "CU-2": "CU-2"}


class Backend:
    def __init__(self):
        self.profiles, self.holders, self.loads = dict(PROFILES), dict(HOLDERS), 0

    def resolve(self, text):
        return self.holders.get(text)

    def load(self, customer):
        self.loads += 1
        return self.profiles.get(customer)


def test_second_lookup_is_a_hit_and_a_commit_of_that_customer_invalidates_it():
    cache, db = LookupCache(), Backend()
    assert cache.lookup("ann@example.com", db.resolve, db.load)["events"] == 1
    assert cache.lookup("ann@example.com", db.resolve, db.load)["events"] == 1
    assert (cache.hits, db.loads) == (1, 1)
    db.profiles["CU-1"] = {"customer_id": "CU-1", "events": 2}
    cache.invalidate({"CU-1"}, set())
    assert cache.lookup("ann@example.com", db.resolve, db.load)["events"] == 2


def test_an_identifier_that_moved_resolves_again():
    cache, db = LookupCache(), Backend()
    cache.lookup("ann@example.com", db.resolve, db.load)
    db.holders["ann@example.com"] = "CU-2"          # a merge moved ann's e-mail to CU-2, CU-1 is gone
    del db.profiles["CU-1"]
    cache.invalidate({"CU-1", "CU-2"}, {"CU-1", "CU-2"})
    assert cache.lookup("ann@example.com", db.resolve, db.load)["customer_id"] == "CU-2"


def test_a_read_that_raced_with_a_commit_is_served_but_not_cached():
    cache, db = LookupCache(), Backend()

    def load_during_commit(customer):
        profile = db.load(customer)
        db.profiles["CU-1"] = {"customer_id": "CU-1", "events": 9}
        cache.invalidate({"CU-1"}, set())             # the sink committed while we were reading
        return profile

    assert cache.lookup("CU-1", db.resolve, load_during_commit)["events"] == 1
    assert cache.lookup("CU-1", db.resolve, db.load)["events"] == 9


def test_unknown_identifiers_are_not_cached_and_the_size_is_bounded():
    cache, db = LookupCache(size=1), Backend()
    assert cache.lookup("nobody", db.resolve, db.load) is None
    db.holders["nobody"] = "CU-2"
    assert cache.lookup("nobody", db.resolve, db.load)["customer_id"] == "CU-2"
    cache.lookup("CU-1", db.resolve, db.load)
    assert len(cache._profiles) == 1 and len(cache._customer_of) == 1
