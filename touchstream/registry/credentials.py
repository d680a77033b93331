"""Who may change the schema registry: one writer credential per installation.

Why: the registry decides what every consumer can decode. Without a credential any local
process could register a schema under a Touchstream subject, delete a version or set the
compatibility to NONE (the hostile test did the last one). Reading stays open, because every
subscriber's deserializer must fetch schemas by id; registering, deleting and changing the
config need HTTP Basic auth as ``touchstream:<secret>``, the way Confluent's clients send it
(``basic.auth.user.info``). The secret lives in ``$TOUCHSTREAM_HOME/registry.secret`` (0600).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets

from touchstream.config import Settings
from touchstream.private_files import secret_file

WRITER = "touchstream"
SECRET_FILE = "registry.secret"
# The write routes: registering (POST .../versions), deleting, and changing config or mode.
# POST /subjects/{s} (lookup) and POST /compatibility/... only read.
_WRITE_POST = re.compile(r"^/subjects/[^/]+/versions/?$")


def writer_secret(settings: Settings) -> str:
    """This installation's registry writer secret, created once."""
    return secret_file(settings.home / SECRET_FILE, lambda: secrets.token_urlsafe(32))


def client_config(settings: Settings, *, write: bool = False) -> dict:
    """``SchemaRegistryClient`` settings; with ``write`` it carries the writer credential."""
    conf = {"url": settings.registry_url}
    if write:
        conf["basic.auth.user.info"] = f"{WRITER}:{writer_secret(settings)}"
    return conf


def is_write(method: str, path: str) -> bool:
    return method in ("PUT", "DELETE") or (method == "POST" and bool(_WRITE_POST.match(path)))


def authorised(header: str | None, secret: str) -> bool:
    """``Authorization: Basic base64(touchstream:<secret>)``, compared in constant time."""
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        user, _, given = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user.encode(), WRITER.encode()) & hmac.compare_digest(given.encode(), secret.encode())
