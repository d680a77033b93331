"""Who may read what from the query service: API-key scopes, and PII masked for analysts without ``pii``.

Why keys: the serving process owns a DuckDB file full of personal data, so every endpoint
names the scope it needs (``require``): ``analyst`` to read, ``pii`` to see personal values,
``admin`` to rebuild or export. Keys are the collector's (``ApiKeyStore``, stored hashed);
``ensure_operator_key`` gives the local CLI and ``touchstream.Client`` one.

The masking itself: ``masked_views``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request

from touchstream.client import API_KEY_ENV, OPERATOR_KEY_FILE, local_key  # noqa: F401  (one home for both)
from touchstream.private_files import secret_file
from touchstream.publishing.api_keys import ApiKeyStore

ACCESS_SCOPES = ("analyst", "pii", "admin")   # api_keys.SCOPES must list "admin" for the operator key
SALT_FILE = "pii.salt"


@dataclass(frozen=True)
class Caller:
    key_id: str
    system: str
    scopes: tuple[str, ...]

    @property
    def sees_pii(self) -> bool:
        return "pii" in self.scopes


OPEN = Caller("-", "unauthenticated", ACCESS_SCOPES)


def key_of(request: Request) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key`` (as the collector reads it)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def require(scope: str, keys: ApiKeyStore | None):
    """A FastAPI dependency returning the ``Caller``: 401 without a known key, 403 without ``scope``.
    ``keys`` None switches authentication off (an API a test builds in-process): every caller is
    ``OPEN``, with every scope. The serving process always passes its key store."""
    if scope not in ACCESS_SCOPES:
        raise ValueError(f"unknown scope {scope!r}; known: {', '.join(ACCESS_SCOPES)}")

    def caller(request: Request) -> Caller:
        if keys is None:
            return OPEN
        key = keys.authenticate(key_of(request))
        if key is None:
            raise HTTPException(401, "missing or unknown API key (Authorization: Bearer <key> or X-API-Key)",
                                headers={"WWW-Authenticate": "Bearer"})
        if scope not in key.scopes:
            raise HTTPException(403, f"key {key.key_id} ({key.system}) lacks the {scope!r} scope")
        return Caller(key.key_id, key.system, key.scopes)

    return caller


def ensure_operator_key(settings) -> str:
    """The local operator's key (system 'operator', every scope): created once, its secret kept in
    ``$TOUCHSTREAM_HOME/operator.key`` (0600) for the CLI and ``touchstream.Client``."""
    def create() -> str:
        return ApiKeyStore(settings.api_keys_path).create("operator", [], list(ACCESS_SCOPES))[0]
    return secret_file(settings.home / OPERATOR_KEY_FILE, create)


def pii_salt(settings) -> str:
    """This installation's pseudonym salt (``$TOUCHSTREAM_HOME/pii.salt``, 0600), created once."""
    return secret_file(settings.home / SALT_FILE, lambda: secrets.token_hex(32))


