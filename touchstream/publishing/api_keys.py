"""API keys for channel systems: each key names its system and the channels it may publish on.

Keys are stored hashed (sha256) in ``$TOUCHSTREAM_HOME/api_keys.json``; the key
itself is shown once, when created. A web key cannot publish store events.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

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


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _load(self) -> list[ApiKey]:
        if not self.path.exists():
            return []
        raw = json.loads(self.path.read_text())
        return [ApiKey(k["key_id"], k["system"], tuple(k["channels"]), tuple(k.get("scopes", ["publish"])), k["sha256"]) for k in raw["keys"]]

    def all(self) -> list[ApiKey]:
        return self._load()

    def create(self, system: str, channels: list[str], scopes: list[str] | None = None) -> tuple[str, ApiKey]:
        """Create a key; returns (secret, record). Only the hash is stored."""
        scopes = list(scopes or ["publish"])
        unknown = set(scopes) - set(SCOPES)
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}; known: {', '.join(SCOPES)}")
        secret = "ts_" + secrets.token_urlsafe(24)
        record = ApiKey(secrets.token_hex(4), system, tuple(channels), tuple(scopes), _digest(secret))
        keys = self._load() + [record]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": [asdict(k) for k in keys]}, indent=2))
        tmp.chmod(0o600)
        tmp.replace(self.path)
        return secret, record

    def authenticate(self, secret: str | None) -> ApiKey | None:
        if not secret:
            return None
        digest = _digest(secret)
        for key in self._load():
            if secrets.compare_digest(key.sha256, digest):
                return key
        return None
