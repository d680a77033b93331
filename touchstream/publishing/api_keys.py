"""API keys for channel systems: each key names its system and the channels it may publish on.

Keys are stored hashed (sha256) in ``$TOUCHSTREAM_HOME/api_keys.json`` (0600); the key
itself is shown once, when created. A web key cannot publish store events.

Why a lock: ``create`` and ``revoke`` read the file, change it and write it back. Two
``touchstream keys create`` at once would each write their own list, and the key of the
slower one would be printed but never work. Writers take an exclusive ``flock`` on a lock
file beside the store and replace the store atomically (``write_private``), so readers
(the collector and the query service read it at every request) need no lock: they see the
old list or the new one, never half of either.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from touchstream.private_files import FILE_MODE, private_dir, write_private

SCOPES = ("publish", "analyst", "pii", "admin")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    system: str
    channels: tuple[str, ...]
    scopes: tuple[str, ...] = ("publish",)
    sha256: str = field(default="", repr=False)

    def may_publish(self, channel: str) -> bool:
        return "publish" in self.scopes and (channel in self.channels or "*" in self.channels)

    def matches(self, secret: str) -> bool:
        """True when ``secret`` is this key's (compared in constant time)."""
        return secrets.compare_digest(self.sha256, _digest(secret))


class UnknownKeyError(LookupError):
    """No key with that id (revoked already, or never made)."""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._parsed: tuple[tuple, list[ApiKey]] | None = None   # (the file's identity, its keys)

    def _load(self) -> list[ApiKey]:
        """The keys in the file. Parsed again only when the file changed: every write replaces it
        (a new inode), so a created or revoked key counts from the next request, while a request
        costs one ``stat`` instead of a read and a JSON parse (15 % of the collector's loop)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        parsed = self._parsed
        if parsed is not None and parsed[0] == identity:
            return parsed[1]
        raw = json.loads(self.path.read_text())
        keys = [ApiKey(k["key_id"], k["system"], tuple(k["channels"]), tuple(k.get("scopes", ["publish"])), k["sha256"])
                for k in raw["keys"]]
        self._parsed = (identity, keys)
        return keys

    def _save(self, keys: list[ApiKey]) -> None:
        write_private(self.path, json.dumps({"keys": [asdict(k) for k in keys]}, indent=2))

    @contextmanager
    def _locked(self) -> Iterator[list[ApiKey]]:
        """The current keys, with every other writer (thread or process) kept out until the block ends."""
        private_dir(self.path.parent)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)   # released when fd is closed
            yield self._load()
        finally:
            os.close(fd)

    def all(self) -> list[ApiKey]:
        return list(self._load())   # a copy: the parsed list is shared by later calls

    def create(self, system: str, channels: list[str], scopes: list[str] | None = None) -> tuple[str, ApiKey]:
        """Create a key; returns (secret, record). Only the hash is stored."""
        scopes = list(scopes or ["publish"])
        unknown = set(scopes) - set(SCOPES)
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}; known: {', '.join(SCOPES)}")
        secret = "ts_" + secrets.token_urlsafe(24)
        with self._locked() as keys:
            taken = {k.key_id for k in keys}
            key_id = secrets.token_hex(4)
            while key_id in taken:   # ids name keys to revoke: never two alike
                key_id = secrets.token_hex(4)
            record = ApiKey(key_id, system, tuple(channels), tuple(scopes), _digest(secret))
            self._save(keys + [record])
        return secret, record

    def revoke(self, key_id: str) -> ApiKey:
        """Delete the key ``key_id``; the next request with its secret gets 401. Raises UnknownKeyError."""
        with self._locked() as keys:
            gone = [k for k in keys if k.key_id == key_id]
            if not gone:
                raise UnknownKeyError(key_id)
            self._save([k for k in keys if k.key_id != key_id])
        return gone[0]

    def authenticate(self, secret: str | None) -> ApiKey | None:
        if not secret:
            return None
        digest = _digest(secret)
        for key in self._load():
            if secrets.compare_digest(key.sha256, digest):
                return key
        return None
