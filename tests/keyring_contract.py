"""The key ring's contract (``touchstream.privacy.keyring.KeyRing``), run against every store:
``tests/unit/test_keyring_contract.py`` (memory) and ``tests/integration/test_keyring_on_broker.py``
(the Kafka key topic). A subclass gives ``ring(store, master=None)``: a ring on the named store, as
another process would open it (rings on one store see each other's stored keys)."""

from __future__ import annotations

import os
import threading

import pytest

from touchstream.privacy.keyring import MasterKey
from touchstream.privacy.sealing import PREFIX, SealError

MASTER = MasterKey(bytes(range(32)))


class KeyRingContract:
    def ring(self, store: str, master: MasterKey = MASTER):
        raise NotImplementedError

    def test_a_sealed_value_names_no_one_and_opens_in_another_process(self):
        a, b = self.ring("s"), self.ring("s")
        token = a.seal(a.ref("email:alice@example.com"), "alice@example.com")
        a.commit()
        assert token.startswith(PREFIX) and "alice" not in token and "example" not in token
        assert a.unseal(token) == "alice@example.com"
        assert b.unseal(token) == "alice@example.com"

    def test_refs_are_stable_per_master_key_and_differ_between_installations(self):
        subject = "phone:+31612345678"
        assert self.ring("s").ref(subject) == self.ring("t").ref(subject)
        assert self.ring("s").ref(subject) != self.ring("u", MasterKey(os.urandom(32))).ref(subject)
        assert subject.split(":")[1] not in self.ring("s").ref(subject)

    def test_one_subject_keeps_one_key_across_processes(self):
        a = self.ring("s")
        ref = a.ref("email:bob@example.com")
        a.seal(ref, "x")
        a.commit()
        b = self.ring("s")
        b.seal(ref, "y")
        b.commit()
        assert a.kids(ref) == b.kids(ref) and len(b.kids(ref)) == 1

    def test_two_processes_meeting_a_new_subject_at_once_both_stay_readable(self):
        a, b = self.ring("s"), self.ring("s")
        for ring, name in ((a, "warm-a"), (b, "warm-b")):   # both have read the store before the subject is new
            ring.seal(ring.ref(name), "x")
            ring.commit()
        ref = a.ref("email:carol@example.com")
        ta, tb = a.seal(ref, "from a"), b.seal(ref, "from b")
        a.commit(), b.commit()
        c = self.ring("s")
        assert (c.unseal(ta), c.unseal(tb)) == ("from a", "from b")
        assert len(c.kids(ref)) == 2

    def test_erasing_a_subject_deletes_every_key_and_every_process_loses_it(self):
        a, b = self.ring("s"), self.ring("s")
        ref, other = a.ref("email:dave@example.com"), a.ref("email:erin@example.com")
        tokens = [a.seal(ref, "dave"), b.seal(ref, "dave again")]
        kept = a.seal(other, "erin")
        a.commit(), b.commit()
        assert b.unseal(tokens[0]) == "dave"   # b holds the key in memory now
        gone = a.erase([ref])
        assert len(gone) == 2 and a.kids(ref) == []
        assert [a.unseal(t) for t in tokens] == [None, None]
        b.refresh()
        assert [b.unseal(t) for t in tokens] == [None, None]
        assert [self.ring("s").unseal(t) for t in tokens] == [None, None]
        assert self.ring("s").unseal(kept) == "erin"

    def test_a_subject_seen_again_after_erasure_gets_a_new_key(self):
        a = self.ring("s")
        ref = a.ref("email:frank@example.com")
        old = a.seal(ref, "before")
        a.commit()
        a.erase([ref])
        new = a.seal(ref, "after")
        a.commit()
        assert (a.unseal(old), self.ring("s").unseal(new)) == (None, "after")

    def test_a_forged_or_tampered_token_is_refused_not_read_as_erased(self):
        a = self.ring("s")
        token = a.seal(a.ref("email:gina@example.com"), "gina")
        a.commit()
        body = token.rsplit(":", 1)[1]
        flipped = token[: -len(body)] + ("A" if body[0] != "A" else "B") + body[1:]
        for bad in (flipped, token.rsplit(":", 1)[0] + ":not base64!", PREFIX + "nokid"):
            with pytest.raises(SealError):
                a.unseal(bad)

    def test_a_key_wrapped_under_another_master_key_does_not_open(self):
        a = self.ring("s")
        token = a.seal(a.ref("email:hal@example.com"), "hal")
        a.commit()
        with pytest.raises(SealError):
            self.ring("s", MasterKey(os.urandom(32))).unseal(token)

    def test_keys_made_by_concurrent_threads_are_all_stored_by_their_commits(self):
        a = self.ring("s")
        tokens: list[str] = []
        lock = threading.Lock()

        def work(n: int) -> None:
            mine = [a.seal(a.ref(f"email:t{n}-{i}@example.com"), f"t{n}-{i}") for i in range(20)]
            a.commit()
            with lock:
                tokens.extend(mine)
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fresh = self.ring("s")
        assert sorted(fresh.unseal(t) for t in tokens) == sorted(f"t{n}-{i}" for n in range(4) for i in range(20))
