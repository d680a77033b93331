"""The HTTP collector: channel systems publish over HTTP with a key scoped to their channels.

Every event of a request is validated (and scope-checked) before anything is
sent, so a batch is accepted whole or rejected whole; 202 is answered only once
Kafka acknowledged every event. Errors: 400 lists field paths and reasons,
401 is a missing or unknown key, 403 an event outside the key's channels,
503 Kafka or the registry unavailable.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from touchstream.codec.avro_codec import RegistryError
from touchstream.events.validation import EventValidationError
from touchstream.publishing.api_keys import ApiKey, ApiKeyStore
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
    api = FastAPI(
        title="Touchstream collector",
        version="0.1.0",
        description="Publish interaction events. Authenticate with `X-API-Key` or `Authorization: Bearer`.",
    )

    def accept(request: Request, events: list[Any]) -> JSONResponse:
        key: ApiKey | None = keys.authenticate(_key_of(request))
        if key is None:
            return _error(401, "missing or unknown API key")
        if len(events) > MAX_BATCH:
            return _error(413, f"at most {MAX_BATCH} events per batch, got {len(events)}")
        try:
            valid = publisher.catalogue.validate_batch(events, source=key.system)
        except EventValidationError as exc:
            return _error(400, "invalid event(s); nothing was published", problems=exc.as_dicts())
        refused = [(i, v.channel) for i, v in enumerate(valid) if not key.may_publish(v.channel)]
        if refused:
            detail = [{"index": i, "channel": c} for i, c in refused]
            return _error(403, f"key for {key.system} may publish only on: {', '.join(key.channels)}", refused=detail)
        try:
            publisher.deliver(valid)
        except (PublishError, RegistryError) as exc:
            log.error("publish failed for %d event(s) from %s: %s", len(valid), key.system, type(exc).__name__)
            return _error(503, "events could not be stored; retry with the same event ids")
        return JSONResponse({"accepted": len(valid), "event_ids": [v.event_id for v in valid]}, status_code=202)

    async def body_of(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise _BadJson(str(exc)) from None

    @api.exception_handler(Exception)
    async def _bad_json(_request: Request, exc: Exception):
        if isinstance(exc, _BadJson):
            return _error(400, f"body is not valid JSON: {exc}")
        log.exception("collector error")
        return _error(500, "internal error")

    @api.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @api.post("/events", status_code=202, summary="Publish one event", openapi_extra=_doc_body("object", EXAMPLE))
    async def publish_one(request: Request):
        return accept(request, [await body_of(request)])

    @api.post("/events/batch", status_code=202, summary="Publish a batch, all or nothing",
              openapi_extra=_doc_body("array", [EXAMPLE]))
    async def publish_batch(request: Request):
        body = await body_of(request)
        if isinstance(body, dict) and isinstance(body.get("events"), list):
            body = body["events"]
        if not isinstance(body, list):
            return _error(400, "a batch is a JSON array of events")
        return accept(request, body)

    return api


class _BadJson(Exception):
    pass


def _doc_body(kind: str, example: Any) -> dict:
    """OpenAPI request body; the handlers parse the JSON themselves to report field paths."""
    schema = {"type": "object"} if kind == "object" else {"type": "array", "items": {"type": "object"}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema, "example": example}}}}
