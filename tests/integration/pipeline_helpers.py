"""Helpers for pipeline tests: build events, poll the query service."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx

from touchstream.client import auth_headers


def sql(settings, query: str, params: list | None = None) -> list[list]:
    response = httpx.post(f"{settings.query_url}/sql", json={"sql": query, "params": params or []},
                          headers=auth_headers(settings), timeout=30)
    response.raise_for_status()
    return response.json()["rows"]


def wait_for(predicate, *, timeout: float = 60.0, interval: float = 0.25, what: str = "condition"):
    """Poll until ``predicate()`` is truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def wait_count(settings, where: str, params: list, expected: int, timeout: float = 60.0) -> int:
    """Wait until ``count(*)`` over interactions matching ``where`` reaches ``expected``."""
    def count():
        return sql(settings, f"SELECT count(*) FROM interactions WHERE {where}", params)[0][0]

    wait_for(lambda: count() >= expected, timeout=timeout, what=f"{expected} rows where {where}")
    return count()


def page_view(tag: str, n: int = 0, *, event_id: str | None = None, cookie: str | None = None) -> dict:
    at = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc) + timedelta(minutes=n)
    return {
        "envelope": {
            "event_id": event_id or f"{tag}-{n}-{uuid.uuid4().hex[:8]}",
            "event_type": "web.page_viewed",
            "occurred_at": at.isoformat(),
            "channel": "web",
            "content": "inquiry",
            "initiated_by": "customer",
            "identity": {"cookie_id": cookie or f"cookie-{tag}"},
            "correlation_id": tag,
        },
        "url": f"https://shop.example/p/{n}",
    }


def records_matching(settings, topics, match) -> dict[str, int]:
    """Per topic, how many records (offset 0 to the end now) ``match(record)`` says yes to; only topics with some."""
    from touchstream.processors.replay import replay

    found: dict[str, int] = {}
    for topic in topics:
        def handle(records, topic=topic):
            hits = sum(1 for r in records if match(r))
            if hits:
                found[topic] = found.get(topic, 0) + hits
        replay(settings, [topic], handle)
    return found


def record_parts(record) -> list[bytes]:
    """A record's key, value and header values, as bytes ("" for a missing one)."""
    return [record.key or b"", record.value or b"", *(v or b"" for _k, v in record.headers)]
