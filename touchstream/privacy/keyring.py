"""The data keys, one or more per subject: the port every sealing and unsealing goes through.

Why a port: producers, the services and tests need the same rules (a key is stored before the
first value it seals is sent; a deleted key is gone for good) over different stores: Kafka's
compacted key topic (``key_topic.TopicKeyRing``) in a stack, memory in a unit test. One contract
suite (``tests/unit/test_keyring_contract.py``) runs against each.

A subject is never stored or sent in clear: the ring names it by ``ref``, an HMAC of it under a
key derived from the master key, and each data key by ``kid`` = ``<ref>.<random>`` (two producers
that create a key for a new subject at once make two keys, both valid, instead of one overwriting
the other). Data keys are stored wrapped (AES-GCM under the master key, the kid as associated data).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from touchstream.privacy.sealing import SealError, kid_of, seal, unseal

REF_HEX = 20   # 80 bits of the HMAC: no two subjects of one installation meet


class KeyRing(Protocol):
    def ref(self, subject: str) -> str: ...
    def seal(self, ref: str, text: str) -> str: ...
    def commit(self) -> None: ...
    def unseal(self, token: str) -> str | None: ...
    def kids(self, ref: str) -> list[str]: ...
    def erase(self, refs: Iterable[str]) -> list[str]: ...
    def refresh(self) -> None: ...


@dataclass(frozen=True)
class MasterKey:
    """The installation's master key (32 bytes): wraps data keys and keys the subject refs."""

    secret: bytes

    def __post_init__(self):
        if len(self.secret) != 32:
            raise ValueError("the master key is 32 bytes (base64 of 32 random bytes)")

    @property
    def ref_key(self) -> bytes:
        return hmac.new(self.secret, b"touchstream subject ref v1", hashlib.sha256).digest()

    def wrap(self, kid: str, ref: str, data_key: bytes) -> bytes:
        nonce = os.urandom(12)
        wrapped = AESGCM(self.secret).encrypt(nonce, data_key, kid.encode())
        return json.dumps({"v": 1, "ref": ref, "wrapped": base64.b64encode(nonce + wrapped).decode()}).encode()

    def unwrap(self, kid: str, value: bytes) -> tuple[str, bytes]:
        """(ref, data key) of a stored key record; ``SealError`` if this master key did not wrap it."""
        try:
            body = json.loads(value)
            raw = base64.b64decode(body["wrapped"])
            return body["ref"], AESGCM(self.secret).decrypt(raw[:12], raw[12:], kid.encode())
        except Exception as exc:   # noqa: BLE001 - JSON, base64 or InvalidTag: one answer
            raise SealError(f"key record {kid} does not open with this master key") from exc


class KeyRingCore(ABC):
    """The rules every store shares; a store gives ``_refresh`` (read what others stored) and
    ``_store`` (write key records, or tombstones for None, durably, before returning).

    A key is made in memory where a value first needs it and stored by ``commit``, so a batch of
    events that meets many new subjects costs one durable write, not one per subject."""

    def __init__(self, master: MasterKey):
        self.master = master
        self._ref_key = master.ref_key
        self._records: dict[str, bytes] = {}          # kid -> wrapped key record
        self._by_ref: dict[str, list[str]] = {}       # ref -> its kids, oldest first
        self._erased: set[str] = set()                # kids seen deleted (or missing after a refresh)
        self._pending: dict[str, bytes] = {}          # kid -> key record made here, not stored yet
        self._loaded = False
        self._lock = threading.RLock()
        self._cipher = lru_cache(maxsize=65536)(self._open_key)

    # -- the store's side -----------------------------------------------------------------------
    @abstractmethod
    def _refresh(self) -> None:
        """Read the key records (and tombstones) other rings stored since the last read."""

    @abstractmethod
    def _store(self, records: dict[str, bytes | None]) -> None:
        """Write key records (None: a tombstone) durably before returning; raise if any was refused."""

    def _apply(self, kid: str, value: bytes | None) -> None:
        """One key record (or tombstone) read from the store."""
        with self._lock:
            ref = kid.rpartition(".")[0]
            if value is None:
                self._records.pop(kid, None)
                self._erased.add(kid)
                if kid in self._by_ref.get(ref, ()):
                    self._by_ref[ref].remove(kid)
                return
            if kid not in self._records:
                self._by_ref.setdefault(ref, []).append(kid)
            self._records[kid] = value

    # -- the port ---------------------------------------------------------------------------------
    def ref(self, subject: str) -> str:
        return hmac.new(self._ref_key, subject.encode(), hashlib.sha256).hexdigest()[:REF_HEX]

    def seal(self, ref: str, text: str) -> str:
        """``text`` sealed under ``ref``'s key; a new subject gets a key, stored by the next ``commit``
        (which the caller runs before it sends anything sealed)."""
        kids = self._by_ref.get(ref)
        kid = kids[0] if kids else self._create(ref)
        return seal(self._cipher(kid), kid, text)

    def commit(self) -> None:
        """Store every key made since the last commit, durably, before returning."""
        with self._lock:
            pending = dict(self._pending)
        if pending:
            self._store(pending)
            with self._lock:
                for kid in pending:
                    self._pending.pop(kid, None)

    def load(self) -> None:
        """Read the store now rather than at the first new subject (a publisher about to be timed, or one
        that would rather pay it at start)."""
        if not self._loaded:
            self._refresh()
            self._loaded = True

    def _create(self, ref: str) -> str:
        """A new key for ``ref``. The store is read once first, so a process reuses the keys that exist;
        a subject two processes meet at once gets two keys, both valid (kids never collide)."""
        self.load()   # outside the lock: a store's refresh takes its own I/O lock, then this one
        with self._lock:
            kids = self._by_ref.get(ref)
            if kids:
                return kids[0]
            kid = f"{ref}.{secrets.token_hex(3)}"
            self._pending[kid] = self.master.wrap(kid, ref, os.urandom(32))
            self._apply(kid, self._pending[kid])
            return kid

    def unseal(self, token: str) -> str | None:
        """The plaintext; None when the token's key was erased (or never stored: it can only have been
        deleted since, as keys are stored before use). ``SealError`` for a malformed or forged token."""
        kid = kid_of(token)
        if kid not in self._records and kid not in self._erased:
            self._refresh()
            if kid not in self._records:
                with self._lock:
                    self._erased.add(kid)
        if kid in self._erased:
            return None
        return unseal(self._cipher(kid), token)

    def kids(self, ref: str) -> list[str]:
        return list(self._by_ref.get(ref, ()))

    def refresh(self) -> None:
        """Read what other rings stored or deleted since (an erasure elsewhere: its keys are dropped here)."""
        self._refresh()
        self._cipher.cache_clear()

    def erase(self, refs: Iterable[str]) -> list[str]:
        """Delete every key of ``refs`` (durably, before returning); the kids deleted."""
        self._refresh()
        gone = sorted(k for r in set(refs) for k in self._by_ref.get(r, ()))
        if gone:
            self._store({kid: None for kid in gone})
            for kid in gone:
                self._apply(kid, None)
            self._cipher.cache_clear()
        return gone

    def _open_key(self, kid: str) -> AESGCM:
        _ref, data_key = self.master.unwrap(kid, self._records[kid])
        return AESGCM(data_key)


class MemoryKeyRing(KeyRingCore):
    """Keys in this process only: unit tests, and tools that seal and unseal in one run."""

    def __init__(self, master: MasterKey | None = None, shared: dict | None = None):
        super().__init__(master or MasterKey(os.urandom(32)))
        self.store: dict[str, bytes | None] = {} if shared is None else shared   # rings sharing one dict see each other

    def _refresh(self) -> None:
        for kid, value in list(self.store.items()):
            if (value is None and kid not in self._erased) or (value is not None and kid not in self._records):
                self._apply(kid, value)

    def _store(self, records: dict[str, bytes | None]) -> None:
        self.store.update(records)
