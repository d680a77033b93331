"""``POST /privacy/open``: sealed values opened for a caller with the ``pii`` scope (the decrypt scope).

Why a service and not the keys: a subscriber given the key topic and the master key could open every
value forever, erased people's included if it kept the keys; one that asks serving opens only what
still has a key, with a key that can be revoked, and never holds a data key itself. Bounded: at most
``MAX_TOKENS`` values per request, each at most ``MAX_TOKEN_CHARS`` long. Nothing opened is logged.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from touchstream.codec.avro_codec import DecodeError
from touchstream.privacy.sealing import SealError, is_sealed
from touchstream.serving.access import require

MAX_TOKENS = 1000
MAX_TOKEN_CHARS = 64 * 1024   # a sealed free text of the largest event field, with its envelope


class OpenRequest(BaseModel):
    values: list[str] = Field(max_length=MAX_TOKENS, description="tsenc1:... tokens; a plain value comes back as it is")


def privacy_router(codec, keys=None) -> APIRouter:
    """``codec``: an ``AvroCodec`` with the key ring (its ``open_text``)."""
    pii = require("pii", keys)
    router = APIRouter()

    @router.post("/privacy/open", dependencies=[Depends(pii)])
    def open_values(body: OpenRequest) -> dict:
        """Each value opened: its plaintext, or null when its key was erased (the person was forgotten)."""
        out = []
        for n, value in enumerate(body.values):
            if len(value) > MAX_TOKEN_CHARS:
                raise HTTPException(422, f"values[{n}]: longer than {MAX_TOKEN_CHARS} characters")
            try:
                out.append(codec.open_text(value) if is_sealed(value) else value)
            except (SealError, DecodeError, ValueError) as exc:
                raise HTTPException(422, f"values[{n}]: not a sealed value this installation made ({exc})") from None
        return {"values": out}

    return router
