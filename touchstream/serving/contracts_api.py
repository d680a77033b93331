"""The query service's contract endpoints: the AsyncAPI document of every topic.

Downstream teams fetch the contract from the running service, so what they read describes the
deployment they subscribe to: its topic catalogue (``TOUCHSTREAM_TOPICS``), its bootstrap address
and its registry, not the local defaults ``docs/asyncapi.yaml`` carries. The document is built
once per router and kept as text: it only changes with a new release.

Include it with ``api.include_router(router)`` (or ``contracts_router(settings)`` for explicit settings).
``/asyncapi.yaml`` exists only where PyYAML is installed; ``/asyncapi.json`` always does.
"""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter
from fastapi.responses import Response

from touchstream.config import Settings
from touchstream.contracts import asyncapi, render_json, render_yaml, yaml_available
from touchstream.topics import load_topics

YAML_MEDIA_TYPE = "application/yaml"


def contracts_router(settings: Settings | None = None) -> APIRouter:
    """A router serving the AsyncAPI document; ``settings`` default to ``Settings.from_env()`` at first request."""
    router = APIRouter(tags=["contracts"])

    @lru_cache(maxsize=1)
    def document() -> dict:
        s = settings or Settings.from_env()
        return asyncapi(load_topics(s.topic_config), bootstrap=s.bootstrap_servers, registry_url=s.registry_url)

    @lru_cache(maxsize=1)
    def as_json() -> str:
        return render_json(document())

    @router.get("/asyncapi.json", summary="AsyncAPI 3.0 document of every topic (JSON)")
    def asyncapi_json() -> Response:
        return Response(as_json(), media_type="application/json")

    if yaml_available():
        @lru_cache(maxsize=1)
        def as_yaml() -> str:
            return render_yaml(document())

        @router.get("/asyncapi.yaml", summary="AsyncAPI 3.0 document of every topic (YAML)")
        def asyncapi_yaml() -> Response:
            return Response(as_yaml(), media_type=YAML_MEDIA_TYPE)

    return router


router = contracts_router()
