"""The dashboard page as the query service serves it: local assets only, the library, the KPI views it reads.

The browser that opens the page has no internet, so a single absolute URL in the page
or its code would be a panel that never loads; and the page's KPI names are the
contract with the views another module defines, so they are checked by name.
"""

from __future__ import annotations

import importlib.resources
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from touchstream.serving import dashboard
from touchstream.serving.dashboard import dashboard_router

KPI_NAMES = {"channel_mix", "complaint_funnel", "sla_breaches_daily", "fcr_by_channel",
             "contact_pressure_distribution", "journey_funnel"}
ABSOLUTE = re.compile(r"(?i)\b(?:https?:|ftp:|wss?:)//|(?:src|href)\s*=\s*[\"']//")


@pytest.fixture()
def client() -> TestClient:
    app = FastAPI()
    app.include_router(dashboard_router())
    return TestClient(app)


def asset_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)


def test_page_is_html_with_versioned_local_assets_only(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp and "script-src 'self'" in csp
    html = response.text
    assert "{{" not in html and not ABSOLUTE.search(html)
    urls = asset_urls(html)
    assert sorted(u.split("?")[0] for u in urls) == ["static/dashboard.css", "static/dashboard.js",
                                                     "static/plotly.min.js"]
    for url in urls:
        assert re.fullmatch(r"static/[a-z.]+\?v=[0-9a-f]{12}", url), url
        served = client.get("/" + url)
        assert served.status_code == 200, url
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert 'id="search-input"' in html and "<script>" not in html  # no inline script: the CSP forbids it


def test_own_code_names_no_outside_url(client):
    for name in ("dashboard.js", "dashboard.css"):
        text = client.get(f"/static/{name}").text
        assert text and not ABSOLUTE.search(text), name


def test_the_plotly_library_is_served_from_the_package(client):
    bundled = (importlib.resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    plain = client.get("/static/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and plain.content == bundled
    assert plain.headers["content-type"].startswith("text/javascript")
    assert b"plotly.js v" in plain.content[:200]
    zipped = client.get("/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == bundled  # httpx decodes it
    assert int(zipped.headers["content-length"]) < len(bundled) // 2
    etag = plain.headers["etag"]
    again = client.get("/static/plotly.min.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.content


def test_the_version_in_the_page_follows_the_content(client):
    js_url = next(u for u in asset_urls(client.get("/").text) if u.startswith("static/dashboard.js"))
    body = client.get("/static/dashboard.js").content
    assert js_url.endswith(dashboard.own_asset("dashboard.js").version)
    assert dashboard.own_asset("dashboard.js").etag.strip('"').startswith(js_url.rsplit("=", 1)[1])
    assert body == dashboard.own_asset("dashboard.js").body


@pytest.mark.parametrize("name", ["index.html", "dashboard.py", "..%2Fdashboard.py", "plotly.js", ""])
def test_only_the_listed_assets_are_served(client, name):
    assert client.get(f"/static/{name}").status_code == 404


def test_missing_plotly_is_a_503_not_a_broken_service(client, monkeypatch):
    monkeypatch.setattr(dashboard, "plotly_asset", lambda: None)
    response = client.get("/static/plotly.min.js")
    assert response.status_code == 503 and "pip install plotly" in response.json()["detail"]
    assert "plotly.min.js?v=missing" in client.get("/").text


def test_the_page_reads_exactly_the_documented_kpi_views(client):
    js = client.get("/static/dashboard.js").text
    start = js.index("const KPI_PANELS = [")
    panels = js[start:js.index("\n];", start)]
    views = re.findall(r'\bview:\s*"([a-z_0-9]+)"', panels)
    assert len(views) == len(set(views)) and set(views) == KPI_NAMES
    # Every KPI request goes through the panel list: no other view is named anywhere in the code.
    code = re.sub(r"(?m)^\s*//.*$", "", js)
    assert re.findall(r"kpis/[^`\"']*", code) == ["kpis/${encodeURIComponent(panel.view)}",
                                                  "kpis/${panel.view}: HTTP ${status}"]
    html = client.get("/").text
    for plot in re.findall(r'\bplot:\s*"([a-z-]+)"', panels) + ["plot-touchmap"]:
        assert f'id="{plot}"' in html, plot


def test_the_customer_search_reads_the_360_and_its_timeline(client):
    js = client.get("/static/dashboard.js").text
    assert "customers/${encodeURIComponent(identifier)}" in js
    assert "/timeline?limit=${TIMELINE_LIMIT}&order=asc" in js
    assert "innerHTML" not in js  # values from the service are put in the page as text, never as markup
