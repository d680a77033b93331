"""Reading a collector request body without trusting its sender.

Why each limit: the body is read only after the key was checked (a stranger's
50 MB costs nothing), up to a cap (Content-Length is a claim, so the stream is
cut off too); nesting is measured before ``json.loads`` (5,000 levels would
raise RecursionError in the parser and in every walk after it). NUL and lone
surrogates are the publisher's to refuse (``validation.text_problems``), as for
the SDK. Every refusal is a ``BodyError`` with the HTTP status the collector answers.
"""

from __future__ import annotations

import json
import re
from typing import Any, AsyncIterator

MAX_DEPTH = 32
JSON_TYPES = frozenset({"application/json"})
# A JSON string, escapes included (unrolled: linear time on any input).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class BodyError(Exception):
    """The body is refused before validation: ``status`` is 400, 413 or 415."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def check_content_type(header: str | None) -> None:
    """Only JSON in UTF-8 (RFC 8259): a form post or text/plain is a client bug, not an event."""
    media, _, params = (header or "").partition(";")
    charset = dict(p.strip().lower().partition("=")[::2] for p in params.split(";") if "=" in p).get("charset")
    if media.strip().lower() not in JSON_TYPES or charset not in (None, "utf-8", '"utf-8"'):
        raise BodyError(415, f"send content-type application/json (UTF-8); got {(header or 'none')[:60]!r}")


def check_declared_length(header: str | None, limit: int) -> None:
    """Refuse by Content-Length before reading a byte."""
    if header is None:
        return
    try:
        declared = int(header)
    except ValueError:
        raise BodyError(400, "content-length is not a number") from None
    if declared > limit:
        raise BodyError(413, f"body is {declared} bytes; at most {limit} per request")


async def read_capped(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The body, or 413 as soon as more than ``limit`` bytes arrived (whatever Content-Length said)."""
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyError(413, f"body is over {limit} bytes; at most {limit} per request")
        parts.append(chunk)
    return b"".join(parts)


def nesting_depth(body: bytes, stop_after: int = MAX_DEPTH) -> int:
    """How deep ``[``/``{`` nest outside strings (counting stops past ``stop_after``)."""
    depth = deepest = 0
    for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > stop_after:
                break
    return deepest


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> Any:
    """Parse a body that passed the size cap: depth first, so the parser never recurses deeply."""
    if nesting_depth(body) > MAX_DEPTH:
        raise BodyError(400, f"JSON nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(400, f"body is not valid JSON: {exc}") from None


def event_size(event: Any) -> int:
    """Bytes of the event as compact UTF-8 JSON: about what its Avro record will weigh, never much less."""
    return len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
