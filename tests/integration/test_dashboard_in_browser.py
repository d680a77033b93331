"""The dashboard in a real browser against the real stack: plots from the KPI views, the 360 search, no internet.

A deterministic demo run goes through the whole stack; headless Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright, no browser download) opens the query
service's ``/`` and reads what Plotly drew from the plot elements themselves. The
searched customer and the touchmap's points are expected from the run's own events
through the pure identity resolver, not from the endpoints the page reads. Every
request the page makes must go to the query service (the browser has no internet).

Polling is done with ``page.evaluate`` in a loop: ``page.wait_for_function`` evaluates
strings with eval, which the page's Content-Security-Policy rightly forbids.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.event_builders import CAT
from tests.integration.test_customer_360_on_broker import publish
from touchstream.demo.generator import generate
from touchstream.identity.config_file import load_identity_config
from touchstream.projections.identity_resolution import IdentityResolver
from touchstream.serving.catchup import wait_pipeline, wait_sla_settled

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN = (60, 30, 29)   # customers, days, seed: 8 complaint cases, SLA clocks breached, findings
KPI_PLOTS = ("plot-channel-mix", "plot-journey-funnel", "plot-complaint-funnel", "plot-sla-breaches",
             "plot-fcr", "plot-contact-pressure")
SCREENSHOT = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard.png"
POINTS = "id => { const el = document.getElementById(id); " \
         "return el && el.data ? el.data.map(t => (t.values || t.x || []).length) : []; }"
FAR = datetime(2100, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Checked before the stack starts: no browser, no point in starting it for this test."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("playwright is not installed: pip install -e '.[test]'")
    return CHROMIUM


@pytest.fixture(scope="module")
def demo(stack) -> dict:
    """The run published and applied everywhere; its most seen e-mail, that customer and their events."""
    events = list(generate(*RUN))
    publish(stack, events)
    wait_pipeline(stack, timeout=300)
    wait_sla_settled(stack, timeout=180)
    email = Counter(e["envelope"]["identity"]["email"] for e in events
                    if e["envelope"].get("identity", {}).get("email")).most_common(1)[0][0]
    resolver = IdentityResolver(load_identity_config(stack.identity_config_path))
    observed = [(record, resolver.observe(record).anchor)
                for record in (CAT.validate(e, now=FAR).record for e in events)]
    customer = resolver.customer_of("email", email)
    mine = [r for r, a in observed if a is not None and resolver.customer_of(a.kind, a.value) == customer]
    return {"email": email, "customer": customer, "events": mine}


def wait_js(page, expression: str, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


@pytest.mark.timeout(900)
def test_dashboard_plots_the_views_and_opens_the_360_of_a_searched_customer(chromium, demo, stack):
    from playwright.sync_api import sync_playwright

    origin = stack.query_url.rstrip("/")
    requests, errors = [], []
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        browser = pw.chromium.launch_persistent_context(profile, executable_path=str(chromium), headless=True,
                                                       args=ARGS, viewport={"width": 1400, "height": 1000})
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
            response = page.goto(origin + "/?refresh=2")
            assert response is not None and response.status == 200, \
                f"the query service does not serve the dashboard at / (HTTP {response and response.status})"

            drawn = "(ids => ids.every(id => { const el = document.getElementById(id); " \
                    f"return el.data && el.data.some(t => (t.values || t.x || []).length > 0); }}))({list(KPI_PLOTS)!r})"
            asked = "!document.getElementById('key-form').hidden"
            if wait_js(page, f"({drawn}) ? 'drawn' : ({asked}) ? 'asked' : ''", 120, "the plots or a key request") \
                    == "asked":   # the service wants an API key: enter the local operator's, as a person would
                from touchstream.client import local_key

                key = local_key(stack)
                assert key, "the query service asks for an API key but there is no local operator key"
                page.fill("#key-input", key)
                page.press("#key-input", "Enter")
            wait_js(page, drawn, 120, "every KPI plot to have points")
            for plot in KPI_PLOTS:
                assert sum(page.evaluate(POINTS, plot)) > 0, plot
                assert page.is_hidden(f"#{plot} + .empty"), plot   # no "no data yet" next to a drawn plot

            # Auto-refresh redraws in place: the same element, more refreshes, still drawn.
            page.evaluate("document.getElementById('plot-fcr').dataset.seen = 'yes'")
            before = int(page.evaluate("document.body.dataset.refreshes"))
            wait_js(page, f"Number(document.body.dataset.refreshes) > {before}", 30, "an automatic refresh")
            assert page.evaluate("document.getElementById('plot-fcr').dataset.seen") == "yes"
            assert sum(page.evaluate(POINTS, "plot-fcr")) > 0

            page.fill("#search-input", demo["email"])
            page.press("#search-input", "Enter")
            wait_js(page, "document.getElementById('customer-id').textContent", 30, "the 360 panel")
            assert page.inner_text("#customer-id") == demo["customer"]
            assert demo["email"] in page.inner_text("#customer-summary")
            wait_js(page, "(document.getElementById('plot-touchmap').data || []).length", 30, "the touchmap")
            points = page.evaluate("Array.from(document.getElementById('plot-touchmap').data, t => t.y).flat()")
            assert len(points) == min(500, len(demo["events"])) > 0
            assert set(points) == {r["envelope"]["channel"] for r in demo["events"]}
            assert demo["email"] not in page.url   # only the canonical id goes into the address

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    foreign = sorted({u for u in requests if not u.startswith(origin + "/")})
    assert not foreign, f"the page asked for something outside the query service: {foreign}"
    assert any("/static/plotly.min.js" in u for u in requests)
