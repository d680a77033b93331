"""The ingest stage of the bench: what a channel system gets through the SDK and the HTTP collector.

Why beside the pipeline: channel systems publish while identity and serving work, so the
stage runs with every service up, as the end-to-end stage does. Each level gets its own
fresh demo events (ids of their own, so the pipeline folds them like any other traffic) and
is bounded in events and seconds. The load runs in its own process (``ingest_load``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from touchstream.bench.base import Figure, percentile, rate
from touchstream.bench.traffic_producer import demo_events
from touchstream.config import Settings
from touchstream.publishing.api_keys import ApiKeyStore

LEVELS = (("collector_1", 1, 1), ("collector_8", 8, 1), ("collector_32", 32, 1), ("collector_batch100", 4, 100))


def events_for(count: int, seed: int, tag: str) -> list[dict]:
    """``count`` demo events whose ids are this level's own, of enough customers that the days they
    span stay in the past (the publishers refuse a future ``occurred_at``)."""
    stream, _days = demo_events(count, max(100, count // 20), seed)
    out = []
    for event in stream:
        event["envelope"]["event_id"] = f"{tag}-{event['envelope']['event_id']}"
        out.append(event)
    return out


def _load(settings: Settings, job: dict) -> dict:
    env = dict(os.environ, TOUCHSTREAM_HOME=str(settings.home), TOUCHSTREAM_BOOTSTRAP=settings.bootstrap_servers,
               TOUCHSTREAM_REGISTRY_URL=settings.registry_url,
               TOUCHSTREAM_KAFKA_AUTH="true" if settings.kafka_auth else "false")
    done = subprocess.run([sys.executable, "-m", "touchstream.bench.ingest_load"], input=json.dumps(job, default=str),
                          env=env, capture_output=True, text=True, timeout=job["max_seconds"] + 300)
    if done.returncode != 0:
        raise RuntimeError(f"ingest load ({job['mode']}) failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    if result["errors"]:
        raise RuntimeError(f"ingest load: {result['errors']} request(s) refused: {result['first_errors']}")
    return result


def measure(settings: Settings, count: int, seed: int, seconds: float) -> dict:
    """The SDK, then the collector at each level of ``LEVELS``; per level: events, seconds, rate, p50/p99."""
    secret, _key = ApiKeyStore(settings.api_keys_path).create("bench-ingest", ["*"])
    out = {}
    jobs = [("sdk", {"mode": "sdk"}), ("sdk_unsealed", {"mode": "sdk", "sealed": False})] + [(name, {"mode": "collector", "url": settings.collector_url, "key": secret,
                                                 "clients": clients, "batch": batch})
                                          for name, clients, batch in LEVELS]
    for n, (name, job) in enumerate(jobs):
        events = events_for(count, seed + 10 + n, f"ingest{n}")
        result = _load(settings, {**job, "events": events, "max_seconds": seconds})
        latencies = result.pop("latencies_ms")
        out[name] = {**{k: v for k, v in job.items() if k in ("clients", "batch")}, **result,
                     "rate": rate(result["events"], result["seconds"]),
                     "p50_ms": percentile(latencies, 50) if latencies else None,
                     "p99_ms": percentile(latencies, 99) if latencies else None}
    return out


def figures(results: dict) -> list[Figure]:
    sdk = results["sdk"]
    out = [Figure("ingest.sdk", "SDK publish: validate + seal + encode + send", sdk["rate"], "ev/s",
                  baseline="limits.kafka_produce", detail=f"{sdk['events']:,} events, batches of 500")]
    plain = results.get("sdk_unsealed")
    if plain:   # the same path with values left in clear: sealing's share of publishing, in one run
        out += [Figure("ingest.sdk_unsealed", "SDK publish without sealing (baseline)", plain["rate"], "ev/s",
                       detail=f"{plain['events']:,} events, values left in clear"),
                Figure("privacy.publish_sealed", "SDK publish with sealing, against without", sdk["rate"], "ev/s",
                       baseline="ingest.sdk_unsealed"),
                Figure("privacy.publish_cost", "sealing's cost per event published (SDK wall time, sealed - unsealed)",
                       (1 / sdk["rate"] - 1 / plain["rate"]) * 1e6, "µs", higher_is_better=False)]
    for name, clients, batch in LEVELS:
        r = results[name]
        what = f"{clients} client(s), " + ("single events" if batch == 1 else f"batches of {batch}")
        out += [Figure(f"ingest.{name}", f"collector: {what}", r["rate"], "ev/s",
                       baseline=None if name == "collector_1" else "ingest.collector_1",
                       detail=f"{r['events']:,} events"),
                Figure(f"ingest.{name}_p50", f"collector p50 to the 202: {what}", r["p50_ms"], "ms",
                       higher_is_better=False),
                Figure(f"ingest.{name}_p99", f"collector p99 to the 202: {what}", r["p99_ms"], "ms",
                       higher_is_better=False)]
    return out
