"""The HTTP collector: channel systems publish over HTTP with a key scoped to their channels.

Every event of a request is validated (and scope-checked) before anything is
sent, so a batch is accepted whole or rejected whole; 202 is answered only once
Kafka acknowledged every event. Statuses: 400 lists field paths and reasons (bad
JSON, nesting, NUL, out-of-range or future times, an event_id reused for other
contents), 401 is a missing or unknown key, 403 an event outside the key's
channels, 413 too big (checked before Kafka could refuse it, so never a 503 that
a retry cannot fix), 415 not JSON, 503 Kafka or the registry unavailable.

The order is what makes abuse cheap to refuse: the key is checked from the
headers before a byte of body is read; the body is read up to a cap; parsing,
validation and encoding run in a worker thread, and the wait for Kafka is an
asyncio future resolved by the delivery reports (``touchstream.publishing.delivery``),
so ``/health`` and other requests never wait on a broker outage, and concurrent
requests do not queue behind each other's waits. recorded_at is the collector's
clock: a channel key cannot replay time.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from touchstream.codec.avro_codec import RegistryError
from touchstream.events.validation import EventValidationError
from touchstream.publishing.api_keys import ApiKey, ApiKeyStore
from touchstream.publishing.delivery import AsyncDelivery
from touchstream.publishing.http_body import (
    BodyError, check_content_type, check_declared_length, event_size, parse_json, read_capped,
)
from touchstream.publishing.publisher import PublishError, Publisher

log = logging.getLogger(__name__)
MAX_BATCH = 1000
EXAMPLE = {
    "envelope": {
        "event_type": "web.page_viewed", "event_id": "web-shop:pv:1", "occurred_at": "2026-01-31T09:30:00Z",
        "channel": "web", "content": "inquiry", "initiated_by": "customer", "identity": {"cookie_id": "c-123"},
    },
    "url": "https://shop.example/products/42",
}


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _key_of(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def build_collector(publisher: Publisher, keys: ApiKeyStore) -> FastAPI:
    """The app; its shutdown stops the poll thread and flushes and closes ``publisher``."""
    delivery = AsyncDelivery(publisher)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await asyncio.to_thread(delivery.close)

    api = FastAPI(
        title="Touchstream collector",
        version="0.1.0",
        description="Publish interaction events. Authenticate with `X-API-Key` or `Authorization: Bearer`.",
        lifespan=lifespan,
    )
    api.state.delivery = delivery
    settings = publisher.settings
    max_body, max_event = settings.collector_max_body_bytes, settings.collector_max_event_bytes

    def accept(key: ApiKey, body: bytes, batch: bool, loop: asyncio.AbstractEventLoop) \
            -> JSONResponse | tuple[list, asyncio.Future]:
        """Everything after the body was read up to queueing the events (parse, validate, encode: blocking,
        so in a worker thread); a refusal, or the events and the future their acknowledgements resolve."""
        events = parse_json(body)
        if batch:
            if isinstance(events, dict) and isinstance(events.get("events"), list):
                events = events["events"]
            if not isinstance(events, list):
                return _error(400, "a batch is a JSON array of events")
        else:
            events = [events]
        if len(events) > MAX_BATCH:
            return _error(413, f"at most {MAX_BATCH} events per batch, got {len(events)}")
        too_big = [{"index": i, "bytes": n} for i, n in enumerate(map(event_size, events)) if n > max_event]
        if too_big:
            return _error(413, f"an event may be at most {max_event} bytes as JSON", too_big=too_big[:50])
        try:
            valid = publisher.validate_batch(events, source=key.system, keep_recorded_at=False)
        except EventValidationError as exc:
            return _error(400, "invalid event(s); nothing was published", problems=exc.as_dicts())
        refused = [(i, v.channel) for i, v in enumerate(valid) if not key.may_publish(v.channel)]
        if refused:
            detail = [{"index": i, "channel": c} for i, c in refused]
            return _error(403, f"key for {key.system} may publish only on: {', '.join(key.channels)}", refused=detail)
        try:
            return valid, delivery.send(valid, loop)
        except (PublishError, RegistryError) as exc:
            return _unstored(key, len(valid), exc)

    async def acknowledged(key: ApiKey, valid: list, acks: asyncio.Future) -> JSONResponse:
        try:
            await delivery.wait(acks)
        except PublishError as exc:
            return _unstored(key, len(valid), exc)
        return JSONResponse({"accepted": len(valid), "event_ids": [v.event_id for v in valid]}, status_code=202)

    async def receive(request: Request, batch: bool) -> JSONResponse:
        key = keys.authenticate(_key_of(request))   # headers only: nothing read for a stranger
        if key is None:
            return _error(401, "missing or unknown API key")
        try:
            check_content_type(request.headers.get("content-type"))
            check_declared_length(request.headers.get("content-length"), max_body)
            body = await read_capped(request.stream(), max_body)
            answer = await run_in_threadpool(accept, key, body, batch, asyncio.get_running_loop())
        except BodyError as exc:
            return _error(exc.status, exc.message)
        return answer if isinstance(answer, JSONResponse) else await acknowledged(key, *answer)

    @api.exception_handler(Exception)
    async def _unexpected(_request: Request, _exc: Exception):
        log.exception("collector error")
        return _error(500, "internal error")

    @api.get("/health")
    async def health() -> dict:
        """Async on purpose: it needs no worker thread, so it answers while every thread is busy."""
        return {"status": "ok"}

    @api.post("/events", status_code=202, summary="Publish one event", openapi_extra=_doc_body("object", EXAMPLE))
    async def publish_one(request: Request):
        return await receive(request, batch=False)

    @api.post("/events/batch", status_code=202, summary="Publish a batch, all or nothing",
              openapi_extra=_doc_body("array", [EXAMPLE]))
    async def publish_batch(request: Request):
        return await receive(request, batch=True)

    return api


def _unstored(key: ApiKey, count: int, exc: Exception) -> JSONResponse:
    """Kafka refused or did not acknowledge in time, or the registry failed: the same ids may be retried.
    Kafka's reasons are logged (never the event ids or contents)."""
    reasons = sorted(set(exc.failed.values()))[:3] if isinstance(exc, PublishError) else []
    log.error("publish failed for %d event(s) from %s: %s %s", count, key.system, type(exc).__name__,
              "; ".join(reasons))
    return _error(503, "events could not be stored; retry with the same event ids")


def _doc_body(kind: str, example: Any) -> dict:
    """OpenAPI request body; the handlers parse the JSON themselves to report field paths."""
    schema = {"type": "object"} if kind == "object" else {"type": "array", "items": {"type": "object"}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema, "example": example}}}}
