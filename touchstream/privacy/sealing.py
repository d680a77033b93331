"""One personal value sealed with its subject's data key: a string that stays valid Avro.

Why a string and not bytes: every personal field is a string (or a map of strings), so a sealed
value keeps the published schemas and every subscriber's decoder unchanged, and a subscriber
without the keys sees a token that names no one. Format: ``tsenc1:<kid>:<base64(nonce | AES-GCM
ciphertext and tag)>``; the kid is the associated data, so a token cannot be moved under another key.
AES-256-GCM from ``cryptography`` (an AEAD; no cipher of our own).
"""

from __future__ import annotations

import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "tsenc1:"
NONCE_BYTES = 12


class SealError(ValueError):
    """A token that is not well formed, or that its key does not open (tampered, or another key)."""


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(cipher: AESGCM, kid: str, text: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    body = cipher.encrypt(nonce, text.encode(), kid.encode())
    return f"{PREFIX}{kid}:{binascii.b2a_base64(nonce + body, newline=False).decode()}"


def kid_of(token: str) -> str:
    """The key id a token names (``SealError`` if it is not a token)."""
    kid, _, blob = token[len(PREFIX):].partition(":")
    if not token.startswith(PREFIX) or not kid or not blob:
        raise SealError("not a sealed value (tsenc1:<kid>:<data>)")
    return kid


def unseal(cipher: AESGCM, token: str) -> str:
    """The plaintext of ``token``; ``SealError`` if it is malformed or ``cipher`` does not open it."""
    kid = kid_of(token)
    blob = token[len(PREFIX) + len(kid) + 1:]
    try:
        raw = binascii.a2b_base64(blob, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise SealError("sealed value is not base64") from exc
    if len(raw) < NONCE_BYTES + 16:
        raise SealError("sealed value is shorter than a nonce and a tag")
    try:
        return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], kid.encode()).decode()
    except (InvalidTag, UnicodeDecodeError) as exc:
        raise SealError(f"sealed value does not open with key {kid}") from exc
