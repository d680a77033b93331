"""``python -m touchstream.bench.ingest_load``: the ingest bench's load generator, in a process of its own.

Why its own process: the channel systems are other programs. Run inside the bench, the load
would share the bench's GIL with its probes, and its own cost would hide in the figures.
It reads one JSON job on stdin and prints one JSON result, bounded in events and in seconds:

- ``{"mode": "sdk", "events": [...], "max_seconds": s, "sealed": true}``: the Python SDK's ``Publisher``
  (validate, seal, encode, send) on the stack named by the environment, in batches, then a flush;
  ``"sealed": false`` leaves the values in clear (``UnsealedRing``): the baseline of sealing's cost;
- ``{"mode": "collector", "url": u, "key": k, "clients": n, "batch": b, "events": [...],
  "max_seconds": s}``: ``n`` concurrent HTTP clients, each posting one event (``b`` = 1) or a
  batch of ``b`` at a time over keep-alive connections and timing each request to its 202.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
import time


class UnsealedRing:
    """The baseline of sealing's cost: the SDK's own path with every value left as it is (the record
    key is still an HMAC pseudonym, as with sealing). Bench only: it publishes personal values in clear."""

    def __init__(self) -> None:
        self._key = os.urandom(32)

    def ref(self, subject: str) -> str:
        return hmac.new(self._key, subject.encode(), hashlib.sha256).hexdigest()[:20]

    def seal(self, ref: str, text: str) -> str:
        return text

    def commit(self) -> None:
        return None


def run_sdk(events: list[dict], max_seconds: float, sealed: bool = True) -> dict:
    from touchstream.config import Settings
    from touchstream.publishing.publisher import Publisher

    sent = 0
    with Publisher(Settings.from_env(), source="bench", keys=None if sealed else UnsealedRing()) as publisher:
        getattr(publisher.sealer.ring, "load", lambda: None)()   # the key topic read at start, not timed
        t0 = time.perf_counter()   # connected: the run times publishing, not the start
        deadline = t0 + max_seconds
        for start in range(0, len(events), 500):
            if time.perf_counter() > deadline:
                break
            sent += len(publisher.publish_batch(events[start:start + 500]))
        publisher.flush()
    return {"events": sent, "seconds": time.perf_counter() - t0, "latencies_ms": [], "errors": 0}


def _requests(url: str, key: str, batch: int, events: list[dict]) -> list[tuple[bytes, int]]:
    """Every request's bytes, made before the clock starts (HTTP/1.1, keep-alive), and its event count."""
    host = url.split("://", 1)[1].rstrip("/")
    path = "/events" if batch == 1 else "/events/batch"
    out = []
    for i in range(0, len(events), batch):
        chunk = events[i:i + batch]
        body = json.dumps(chunk[0] if batch == 1 else chunk, default=str).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        out.append((head + body, len(chunk)))
    return out


async def _exchange(reader, writer, request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, await reader.readexactly(length)


async def run_collector(url: str, key: str, clients: int, batch: int, events: list[dict], max_seconds: float) -> dict:
    """``clients`` keep-alive connections, each sending its next request once the last one was answered.
    Raw HTTP/1.1 on asyncio streams: an HTTP client library costs more CPU per request than the
    collector under test, and the load would measure itself."""
    requests, at = _requests(url, key, batch, events), iter(range(10**12))
    latencies, errors, accepted = [], [], [0]
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    deadline = time.perf_counter() + max_seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for index in at:
                if index >= len(requests) or time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                status, body = await _exchange(reader, writer, requests[index][0])
                latencies.append((time.perf_counter() - t0) * 1000)
                if status == 202:
                    accepted[0] += requests[index][1]
                else:
                    errors.append(f"{status}: {body[:200].decode(errors='replace')}")
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return {"events": accepted[0], "seconds": time.perf_counter() - t0, "latencies_ms": latencies,
            "errors": len(errors), "first_errors": errors[:3]}


def main() -> None:
    job = json.load(sys.stdin)
    if job["mode"] == "sdk":
        result = run_sdk(job["events"], job["max_seconds"], job.get("sealed", True))
    else:
        result = asyncio.run(run_collector(job["url"], job["key"], job["clients"], job["batch"], job["events"],
                                           job["max_seconds"]))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
