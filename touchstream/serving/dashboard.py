"""The dashboard page of the query service: ``GET /`` and its assets under ``/static/``.

Why a static page that fetches JSON, not server-rendered charts: the page reads the
same endpoints as every other client (``GET /kpis/{name}``, ``GET /customers/{x}``,
``.../timeline``), so what an analyst sees on screen cannot drift from what the API,
``touchstream.Client`` and the CLI return; the page holds no data and no personal
values, only code, and the browser re-fetches on its own timer (``?refresh=N``).

Why every asset is served from here: the browsers that look at this have no
internet, so Plotly.js is served from the ``plotly`` package's own bundled copy
(``plotly/package_data/plotly.min.js``), and the page's Content-Security-Policy
only lets it load from and talk to this origin. Asset URLs carry a version
(``?v=``) so they can be cached for a year and still change on an upgrade; the
page itself is never cached. The 4.8 MB library is gzipped once, in memory.

Why a missing ``plotly`` gives 503 on its URL instead of an import error: the
dashboard lives in the serving process next to the sinks, and a missing charting
library must not stop events being applied; the page says what is missing instead.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
from dataclasses import dataclass
from functools import lru_cache

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

ASSETS = "dashboard_static"          # package data of touchstream.serving
LIBRARY = "plotly.min.js"
MEDIA = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}
OWN_FILES = ("dashboard.js", "dashboard.css")
LONG_CACHE = "public, max-age=31536000, immutable"
# Plotly sets inline styles on what it draws, so inline style is allowed; script, data and
# everything else only from this origin (the browser has no internet anyway: fail loudly, not slowly).
CSP = ("default-src 'self'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'self'; form-action 'self'")


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str

    @property
    def version(self) -> str:
        return self.etag.strip('"')[:12]


def _asset(body: bytes, name: str) -> Asset:
    media = MEDIA[name[name.rindex("."):]]
    return Asset(body, media, '"%s"' % hashlib.sha256(body).hexdigest()[:32])


@lru_cache(maxsize=None)
def own_asset(name: str) -> Asset:
    """index.html, dashboard.js or dashboard.css from the package data."""
    return _asset((importlib.resources.files("touchstream.serving") / ASSETS / name).read_bytes(), name)


@lru_cache(maxsize=1)
def plotly_asset() -> Asset | None:
    """The plotly package's bundled plotly.min.js, or None if the package is not installed."""
    try:
        path = importlib.resources.files("plotly") / "package_data" / LIBRARY
        return _asset(path.read_bytes(), LIBRARY)
    except (ModuleNotFoundError, FileNotFoundError):
        return None


@lru_cache(maxsize=None)
def gzipped(name: str) -> bytes:
    asset = plotly_asset() if name == LIBRARY else own_asset(name)
    return gzip.compress(asset.body, compresslevel=6, mtime=0)


def page_html() -> str:
    """index.html with its asset URLs versioned by content (so the assets can be cached for good)."""
    library = plotly_asset()
    html = own_asset("index.html").body.decode()
    return (html.replace("{{plotly_version}}", library.version if library else "missing")
                .replace("{{js_version}}", own_asset("dashboard.js").version)
                .replace("{{css_version}}", own_asset("dashboard.css").version))


def _serve(request: Request, name: str, asset: Asset) -> Response:
    headers = {"Cache-Control": LONG_CACHE, "ETag": asset.etag, "Vary": "Accept-Encoding",
               "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", "") and len(asset.body) > 1024:
        return Response(gzipped(name), media_type=asset.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def dashboard_router() -> APIRouter:
    """``/`` (the page) and ``/static/{plotly.min.js,dashboard.js,dashboard.css}``; include it in the query API."""
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(page_html(), headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP,
                                                  "X-Content-Type-Options": "nosniff",
                                                  "Referrer-Policy": "no-referrer"})

    @router.get("/static/{name}", include_in_schema=False)
    def static(name: str, request: Request) -> Response:
        if name == LIBRARY:
            library = plotly_asset()
            if library is None:
                raise HTTPException(status_code=503, detail="the plotly package is not installed: pip install plotly")
            return _serve(request, name, library)
        if name not in OWN_FILES:
            raise HTTPException(status_code=404, detail="no such dashboard asset")
        return _serve(request, name, own_asset(name))

    return router
