"""The Confluent Schema Registry REST API (the subset clients use), over ``RegistryService``.

Shapes follow Confluent's API reference and what confluent-kafka's
``SchemaRegistryClient`` sends: boolean query flags arrive as ``true`` or as
Python's ``True``/``False``; bodies carry ``schema``, ``schemaType``,
``references`` (always ``[]`` from that client), sometimes ``metadata`` and
``ruleSet`` (accepted and ignored: this registry has no data contracts).
Errors are ``{"error_code": N, "message": "..."}`` with the HTTP status the code
implies (40401 -> 404, 409 -> 409, 42201 -> 422, 50001 -> 500).

Service calls run in the thread pool: a write blocks until Kafka has it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from touchstream.registry.base import AVRO, BadRequest, InvalidSchema, RegistryError, SchemaNotFound, SchemaVersion
from touchstream.registry.credentials import authorised, is_write
from touchstream.registry.schema_forms import SUPPORTED_TYPES
from touchstream.registry.service import RegistryService

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryJSON(JSONResponse):
    media_type = MEDIA_TYPE


def _error(status: int, code: int, message: str) -> RegistryJSON:
    return RegistryJSON({"error_code": code, "message": message}, status_code=status)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").strip().lower() == "true"


def _int(raw: str, not_found: RegistryError) -> int:
    try:
        return int(raw)
    except ValueError:
        raise not_found from None


async def _body(request: Request) -> dict:
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise BadRequest(f"Request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    return body


async def _schema_args(request: Request) -> dict:
    body = await _body(request)
    schema = body.get("schema")
    if not isinstance(schema, str) or not schema:
        raise InvalidSchema("Empty schema")
    return {
        "schema": schema,
        "schema_type": body.get("schemaType") or AVRO,
        "references": body.get("references") or [],
        "normalize": _flag(request, "normalize"),
    }


def _version_body(sv: SchemaVersion) -> dict:
    out = {"subject": sv.subject, "version": sv.version, "id": sv.id, "schema": sv.schema}
    if sv.schema_type != AVRO:
        out["schemaType"] = sv.schema_type
    return out


def _page(items: list, request: Request) -> list:
    try:
        offset = max(int(request.query_params.get("offset", 0) or 0), 0)
        limit = int(request.query_params.get("limit", -1) or -1)
    except ValueError as exc:
        raise BadRequest(f"offset and limit must be integers: {exc}") from exc
    return items[offset:] if limit < 0 else items[offset : offset + limit]


def create_app(service: RegistryService, on_shutdown: Callable[[], None] | None = None, *,
               writer_secret: str | None = None) -> FastAPI:
    """The ASGI app; the caller owns the service and its store, ``on_shutdown`` runs as the server stops.
    ``writer_secret``: registering, deleting and config changes need it (``credentials``); None
    leaves them open (an app a test builds in-process; the registry process always passes one)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        if on_shutdown is not None:
            await run_in_threadpool(on_shutdown)

    app = FastAPI(
        lifespan=lifespan,
        title="Touchstream schema registry",
        default_response_class=RegistryJSON,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    async def call(fn, *args, **kwargs):
        return await run_in_threadpool(partial(fn, *args, **kwargs))

    @app.middleware("http")
    async def writers_only(request: Request, call_next):
        if writer_secret is not None and is_write(request.method, request.url.path) \
                and not authorised(request.headers.get("authorization"), writer_secret):
            log.warning("refused an unauthenticated %s %s", request.method, request.url.path)
            response = _error(401, 40101, "registering, deleting and config changes need the registry "
                                          "writer credential (HTTP Basic)")
            response.headers["WWW-Authenticate"] = 'Basic realm="touchstream-registry"'
            return response
        return await call_next(request)

    @app.exception_handler(RegistryError)
    async def registry_error(_request: Request, exc: RegistryError):
        if exc.http_status >= 500:
            log.error("registry error %d: %s", exc.error_code, exc.message)
        return _error(exc.http_status, exc.error_code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, exc.status_code, f"HTTP {exc.status_code} {exc.detail}")

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception):
        log.exception("unexpected registry failure")
        return _error(500, 50001, f"Error in the backend data store: {type(exc).__name__}")

    @app.get("/")
    async def root():
        return {}

    @app.get("/schemas/types")
    async def schema_types():
        return list(SUPPORTED_TYPES)

    @app.get("/schemas/ids/{schema_id}")
    async def schema_by_id(schema_id: str):
        sv = await call(service.schema_by_id, _int(schema_id, SchemaNotFound("Schema not found")))
        out = {"schema": sv.schema}
        if sv.schema_type != AVRO:
            out["schemaType"] = sv.schema_type
        return out

    @app.get("/schemas/ids/{schema_id}/schema")
    async def raw_schema_by_id(schema_id: str):
        sv = await call(service.schema_by_id, _int(schema_id, SchemaNotFound("Schema not found")))
        return Response(sv.schema, media_type=MEDIA_TYPE)

    @app.get("/schemas/ids/{schema_id}/versions")
    async def id_versions(schema_id: str, request: Request):
        found = await call(
            service.id_versions, _int(schema_id, SchemaNotFound("Schema not found")), _flag(request, "deleted")
        )
        subject = request.query_params.get("subject")
        pairs = [{"subject": sv.subject, "version": sv.version} for sv in found if subject in (None, sv.subject)]
        return _page(pairs, request)

    @app.get("/schemas/ids/{schema_id}/subjects")
    async def id_subjects(schema_id: str, request: Request):
        found = await call(
            service.id_versions, _int(schema_id, SchemaNotFound("Schema not found")), _flag(request, "deleted")
        )
        subject = request.query_params.get("subject")
        names = sorted({sv.subject for sv in found if subject in (None, sv.subject)})
        return _page(names, request)

    @app.get("/subjects")
    async def subjects(request: Request):
        names = await call(
            service.subjects,
            _flag(request, "deleted"),
            _flag(request, "deleted_only"),
            request.query_params.get("subjectPrefix"),
        )
        return _page(names, request)

    @app.post("/subjects/{subject}/versions")
    async def register(subject: str, request: Request):
        sv = await call(service.register, subject, **await _schema_args(request))
        return {"id": sv.id, "subject": sv.subject, "version": sv.version}

    @app.post("/subjects/{subject}")
    async def lookup(subject: str, request: Request):
        args = await _schema_args(request)
        sv = await call(service.lookup, subject, deleted=_flag(request, "deleted"), **args)
        return _version_body(sv)

    @app.get("/subjects/{subject}/versions")
    async def versions(subject: str, request: Request):
        found = await call(service.versions, subject, _flag(request, "deleted"), _flag(request, "deleted_only"))
        return _page(found, request)

    @app.get("/subjects/{subject}/versions/{version}")
    async def get_version(subject: str, version: str, request: Request):
        return _version_body(await call(service.get_version, subject, version, _flag(request, "deleted")))

    @app.get("/subjects/{subject}/versions/{version}/schema")
    async def raw_version_schema(subject: str, version: str, request: Request):
        sv = await call(service.get_version, subject, version, _flag(request, "deleted"))
        return Response(sv.schema, media_type=MEDIA_TYPE)

    @app.get("/subjects/{subject}/versions/{version}/referencedby")
    async def referenced_by(subject: str, version: str):
        await call(service.get_version, subject, version)
        return []  # references are not supported, so nothing refers to anything

    @app.delete("/subjects/{subject}")
    async def delete_subject(subject: str, request: Request):
        return await call(service.delete_subject, subject, _flag(request, "permanent"))

    @app.delete("/subjects/{subject}/versions/{version}")
    async def delete_version(subject: str, version: str, request: Request):
        return await call(service.delete_version, subject, version, _flag(request, "permanent"))

    async def _compat(subject: str, version: str | None, request: Request):
        args = await _schema_args(request)
        reasons = await call(service.check_compatibility, subject, version=version, **args)
        out: dict = {"is_compatible": not reasons}
        if _flag(request, "verbose"):
            out["messages"] = reasons
        return out

    @app.post("/compatibility/subjects/{subject}/versions/{version}")
    async def compat_version(subject: str, version: str, request: Request):
        return await _compat(subject, version, request)

    @app.post("/compatibility/subjects/{subject}/versions")
    async def compat_all(subject: str, request: Request):
        return await _compat(subject, None, request)

    async def _level_from(request: Request) -> object:
        body = await _body(request)
        return body.get("compatibility", body.get("compatibilityLevel"))

    @app.get("/config")
    async def get_global_config():
        return {"compatibilityLevel": await call(service.get_config, None)}

    @app.put("/config")
    async def put_global_config(request: Request):
        return {"compatibility": await call(service.set_config, None, await _level_from(request))}

    @app.delete("/config")
    async def delete_global_config():
        return {"compatibilityLevel": await call(service.delete_config, None)}

    @app.get("/config/{subject}")
    async def get_subject_config(subject: str, request: Request):
        level = await call(service.get_config, subject, _flag(request, "defaultToGlobal"))
        return {"compatibilityLevel": level}

    @app.put("/config/{subject}")
    async def put_subject_config(subject: str, request: Request):
        return {"compatibility": await call(service.set_config, subject, await _level_from(request))}

    @app.delete("/config/{subject}")
    async def delete_subject_config(subject: str):
        return {"compatibilityLevel": await call(service.delete_config, subject)}

    @app.get("/mode")
    async def global_mode():
        return {"mode": "READWRITE"}

    @app.get("/mode/{subject}")
    async def subject_mode(subject: str):
        return {"mode": "READWRITE"}

    return app
