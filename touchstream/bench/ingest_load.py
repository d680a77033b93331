"""``python -m touchstream.bench.ingest_load``: the ingest bench's load generator, in a process of its own.

Why its own process: the channel systems are other programs. Run inside the bench, the load
would share the bench's GIL with its probes, and its own cost would hide in the figures.
It reads one JSON job on stdin and prints one JSON result, bounded in events and in seconds:

- ``{"mode": "sdk", "events": [...], "max_seconds": s}``: the Python SDK's ``Publisher``
  (validate, encode, send) on the stack named by the environment, in batches, then a flush;
- ``{"mode": "collector", "url": u, "key": k, "clients": n, "batch": b, "events": [...],
  "max_seconds": s}``: ``n`` concurrent HTTP clients, each posting one event (``b`` = 1) or a
  batch of ``b`` at a time and timing each request to its 202.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


def run_sdk(events: list[dict], max_seconds: float) -> dict:
    from touchstream.config import Settings
    from touchstream.publishing.publisher import Publisher

    sent = 0
    with Publisher(Settings.from_env(), source="bench") as publisher:
        t0 = time.perf_counter()   # connected: the run times publishing, not the start
        deadline = t0 + max_seconds
        for start in range(0, len(events), 500):
            if time.perf_counter() > deadline:
                break
            sent += len(publisher.publish_batch(events[start:start + 500]))
        publisher.flush()
    return {"events": sent, "seconds": time.perf_counter() - t0, "latencies_ms": [], "errors": 0}


async def run_collector(url: str, key: str, clients: int, batch: int, events: list[dict], max_seconds: float) -> dict:
    chunks = [events[i:i + batch] for i in range(0, len(events), batch)]
    path = "/events" if batch == 1 else "/events/batch"
    latencies, errors, accepted, at = [], [], [0], iter(range(len(chunks)))
    deadline = time.perf_counter() + max_seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        for index in at:
            if time.perf_counter() > deadline:
                return
            body = chunks[index][0] if batch == 1 else chunks[index]
            t0 = time.perf_counter()
            response = await http.post(path, json=body)
            latencies.append((time.perf_counter() - t0) * 1000)
            if response.status_code == 202:
                accepted[0] += response.json()["accepted"]
            else:
                errors.append(f"{response.status_code}: {response.text[:200]}")

    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                 limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return {"events": accepted[0], "seconds": time.perf_counter() - t0, "latencies_ms": latencies,
            "errors": len(errors), "first_errors": errors[:3]}


def main() -> None:
    job = json.load(sys.stdin)
    if job["mode"] == "sdk":
        result = run_sdk(job["events"], job["max_seconds"])
    else:
        result = asyncio.run(run_collector(job["url"], job["key"], job["clients"], job["batch"], job["events"],
                                           job["max_seconds"]))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
