"""The Touchstream stages of the bench, against the bench's own running stack.

End to end: publish to the raw topics until every projection (interaction log,
complaints, identity, 360, decisions) has committed the last record in DuckDB.
Freshness: a fixed offered load, each probe event timed from the producer's send
to the first query that sees it. Rebuild: serving restarted on an empty DuckDB
file and a deleted consumer group, so it replays every topic from offset 0; the
rebuilt rows are compared with the live ones by hash. HTTP probes: the 360 lookup
and the KPI views as a service caller sees them.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from pathlib import Path

import duckdb
import httpx

from touchstream.bench import bench_stack
from touchstream.bench.base import percentile
from touchstream.bench.traffic_producer import Encoded, TrafficProducer
from touchstream.client import auth_headers
from touchstream.config import Settings
from touchstream.kafka_access import kafka_access
from touchstream.serving.catchup import end_offsets, wait_pipeline, wait_sla_settled
from touchstream.topics import CUSTOMER_360_TOPIC, CUSTOMER_EVENTS_TOPIC

WAIT = 6 * 3600.0
# One hash per projection, over rows that a replay must reproduce exactly (no ingestion times).
HASHES = {
    "interactions": "SELECT count(*), md5(coalesce(string_agg(event_id || '|' || md5(payload::VARCHAR), ',' "
                    "ORDER BY event_id), '')) FROM interactions",
    "customer_360": "SELECT count(*), md5(coalesce(string_agg(customer_id || '|' || fingerprint, ',' "
                    "ORDER BY customer_id), '')) FROM customer_360",
    "complaint_cases": "SELECT count(*), md5(coalesce(string_agg(case_id || '|' || fingerprint, ',' "
                       "ORDER BY case_id), '')) FROM complaint_cases",
}


def _sql(settings: Settings, sql: str, max_rows: int = 10_000) -> list[list]:
    response = httpx.post(f"{settings.query_url}/sql", json={"sql": sql, "max_rows": max_rows},
                          headers=auth_headers(settings), timeout=60)
    response.raise_for_status()
    return response.json()["rows"]


def raw_records(settings: Settings) -> int:
    return sum(end_offsets(settings).values())


def end_to_end(settings: Settings, events: list[Encoded]) -> dict:
    """Seconds from the first send until every projection has applied the last record."""
    producer = TrafficProducer(settings)
    t0 = time.perf_counter()
    published = producer.send_all(events)
    wait_pipeline(settings, timeout=WAIT)
    seconds = time.perf_counter() - t0
    return {"events": len(events), "seconds": seconds, "publish_seconds": published}


def rebuild(settings: Settings, keep: Path, watch=lambda since: contextlib.nullcontext()) -> dict:
    """Restart serving (and its fold workers) on nothing; seconds until it has re-applied every topic from offset 0
    (start-up included; ``ready_seconds`` says how much of it was start-up). ``watch(t0)`` is a
    context (the profiler) entered once the new serving process runs, told when the restart began.
    Both sides are compared once
    their SLA watermark has settled (not timed): a complaint case judges its callbacks at it."""
    wait_sla_settled(settings, timeout=WAIT)
    bench_stack.down(settings, "serving")   # and the fold workers, when it runs them
    bench_stack.forget_serving(settings, keep)
    if settings.fold_workers:
        bench_stack.forget_workers(settings)
    t0 = time.perf_counter()
    bench_stack.up(settings, "serving")
    ready = time.perf_counter() - t0
    with watch(t0):
        wait_pipeline(settings, timeout=WAIT)
    seconds = time.perf_counter() - t0
    wait_sla_settled(settings, timeout=WAIT)
    return {"events": raw_records(settings), "seconds": seconds, "ready_seconds": ready}


def projection_hashes_live(settings: Settings) -> dict[str, list]:
    return {name: _sql(settings, sql)[0] for name, sql in HASHES.items()}


def projection_hashes_file(path: Path) -> dict[str, list]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {name: list(con.execute(sql).fetchall()[0]) for name, sql in HASHES.items()}
    finally:
        con.close()


class _Probe:
    """When each probe event became visible in each projection, judged by offsets: a sink has applied a
    record once the next offset it committed in DuckDB (with its rows) is past the record's offset.
    One small query per poll (``GET /offsets``) whatever the store's size, so the probe costs the
    pipeline almost nothing. The 360 reads ``customer-events``: a tail consumer learns where the
    identity stage put each probe (it keeps the ``event_id`` header)."""

    SINKS = {"interaction_log": "raw", "complaint_resolution": "raw", "customer_360": "customer-events"}

    def __init__(self, settings: Settings, interval: float):
        self.settings, self.interval = settings, interval
        self.sent: dict[str, float] = {}
        self.where: dict[str, dict[str, tuple[str, int, int]]] = {"raw": {}, "customer-events": {}}
        self.seen: dict[str, dict[str, float]] = {name: {} for name in self.SINKS}
        self._lock = threading.Lock()

    def mark(self, event_id: str, at: float) -> None:
        with self._lock:
            self.sent[event_id] = at

    def placed(self, kind: str, event_id: str, position: tuple[str, int, int]) -> None:
        """Where a probe landed. A second place on customer-events is a fold worker's hand-over copy (it
        keeps the ``event_id`` header): the probe is in its 360 only once the copy has been applied."""
        with self._lock:
            if kind == "customer-events" and event_id in self.where[kind]:
                self.seen["customer_360"].pop(event_id, None)
            self.where[kind][event_id] = position

    def run(self, expected: int, timeout: float, client: httpx.Client) -> None:
        deadline = time.perf_counter() + timeout
        workers = _FoldProgress(self.settings) if self.settings.fold_workers else None
        try:
            while time.perf_counter() < deadline and not all(len(v) >= expected for v in self.seen.values()):
                t0 = time.perf_counter()
                applied = client.get("/offsets").raise_for_status().json()
                if workers:   # the 360 is the workers' fold, then serving's read of the 360s they published
                    applied["customer_360"] = workers.visible(applied.get("customer_360_rows", []))
                self._note(applied, time.perf_counter())
                time.sleep(max(0.0, self.interval - (time.perf_counter() - t0)))
        finally:
            if workers:
                workers.close()

    def _note(self, applied: dict, at: float) -> None:
        with self._lock:
            for sink, kind in self.SINKS.items():
                done = {(r["topic"], r["partition"]): r["next_offset"] for r in applied.get(sink, [])}
                for event_id, (topic, partition, offset) in self.where[kind].items():
                    if event_id not in self.seen[sink] and done.get((topic, partition), 0) > offset:
                        self.seen[sink][event_id] = at


class _FoldProgress:
    """How far the fold workers' 360s are visible, as ``customer-events`` offsets: a worker commits its
    group offset only after its batch's 360s were flushed to the 360 topic, so once serving's query tier
    has read that topic to the end it had when the commit was seen, everything before the commit is
    visible (judged late by at most one poll; a probe handed over is judged at its copy, ``_Probe.placed``)."""

    def __init__(self, settings: Settings):
        from confluent_kafka import Consumer

        from touchstream.serving.catchup import FOLD_GROUP

        self.consumer = Consumer(kafka_access(settings, "admin").confluent(**{"group.id": FOLD_GROUP,
                                                                              "enable.auto.commit": False}))
        self.pending: list[tuple[dict, dict]] = []   # (fold commits seen, 360 topic ends just after)
        self.visible_at: dict[tuple[str, int], int] = {}

    def _read(self, topic: str, committed: bool) -> dict[tuple[str, int], int]:
        from confluent_kafka import TopicPartition

        parts = [TopicPartition(topic, p) for p in self.consumer.list_topics(topic, timeout=10).topics[topic].partitions]
        if committed:
            return {(tp.topic, tp.partition): tp.offset for tp in self.consumer.committed(parts, timeout=10)
                    if tp.offset >= 0}
        return {(tp.topic, tp.partition): self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1]
                for tp in parts}

    def visible(self, rows_applied: list[dict]) -> list[dict]:
        commits = self._read(CUSTOMER_EVENTS_TOPIC, committed=True)
        self.pending.append((commits, self._read(CUSTOMER_360_TOPIC, committed=False)))
        read = {(r["topic"], r["partition"]): r["next_offset"] for r in rows_applied}
        while self.pending and all(read.get(tp, 0) >= end for tp, end in self.pending[0][1].items()):
            self.visible_at.update(self.pending.pop(0)[0])
        return [{"topic": t, "partition": p, "next_offset": o} for (t, p), o in self.visible_at.items()]

    def close(self) -> None:
        self.consumer.close()


def _tail(settings: Settings, probe: _Probe, wanted: set[str], stop: threading.Event) -> None:
    """Follow customer-events from its current end; note where each wanted event landed."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(kafka_access(settings, "admin").confluent(**{"group.id": "touchstream-bench-tail",
                                                            "enable.auto.commit": False}))
    try:
        ends = end_offsets(settings, [CUSTOMER_EVENTS_TOPIC])
        consumer.assign([TopicPartition(t, p, o) for (t, p), o in ends.items()])
        while not stop.is_set():
            for msg in consumer.consume(1000, timeout=0.05):
                if msg.error() is None:
                    event_id = dict(msg.headers() or []).get("event_id", b"").decode()
                    if event_id in wanted:
                        probe.placed("customer-events", event_id, (msg.topic(), msg.partition(), msg.offset()))
    finally:
        consumer.close()


def freshness(settings: Settings, events: list[Encoded], per_second: float, *, probes: int = 400,
              interval: float = 0.05) -> dict:
    """Offer ``events`` at ``per_second``; every k-th one is a probe. Latency per projection: from the
    send to the first poll showing it applied (so it errs late by at most one poll interval)."""
    probe = _Probe(settings, interval)
    step = max(1, len(events) // probes)
    chosen = {e.event_id for e in events[::step]}
    stop = threading.Event()
    tail = threading.Thread(target=_tail, args=(settings, probe, chosen, stop), daemon=True)
    tail.start()
    time.sleep(1.0)   # the tail consumer is assigned before the first probe goes out
    with httpx.Client(base_url=settings.query_url, headers=auth_headers(settings), timeout=30) as client:
        poller = threading.Thread(target=probe.run, args=(len(chosen), len(events) / per_second + 300, client),
                                  daemon=True)
        poller.start()
        producer = TrafficProducer(settings)

        def sent(event: Encoded, at: float) -> None:
            if event.event_id in chosen:
                probe.mark(event.event_id, at)

        def delivered(event: Encoded, msg) -> None:
            if event.event_id in chosen:
                probe.placed("raw", event.event_id, (msg.topic(), msg.partition(), msg.offset()))

        offered = producer.send_paced(events, per_second, sent, delivered)
        poller.join()
    stop.set()
    tail.join(timeout=10)
    result = {"events": len(events), "offered_per_s": per_second, "achieved_per_s": len(events) / offered,
              "probes": len(chosen), "poll_interval_ms": interval * 1000}
    for name, seen in probe.seen.items():
        missing = len(chosen) - len(seen)
        if missing:
            raise RuntimeError(f"freshness: {missing} probe event(s) never became visible in {name}")
        latencies = [(seen[e] - probe.sent[e]) * 1000 for e in seen]
        result[name] = {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
                        "max_ms": max(latencies)}
    return result


def http_lookups(settings: Settings, samples: int, seed: int = 1) -> dict:
    """GET /customers/{id} for random customers, as a service would call it (keep-alive client)."""
    ids = [r[0] for r in _sql(settings, "SELECT customer_id FROM customer_360 ORDER BY customer_id",
                              max_rows=100_000)]
    if not ids:
        raise RuntimeError("no customer-360 profiles to look up")
    picks = random.Random(seed).choices(ids, k=samples)
    times = []
    with httpx.Client(base_url=settings.query_url, headers=auth_headers(settings), timeout=30) as client:
        client.get(f"/customers/{picks[0]}").raise_for_status()   # warm-up
        for customer in picks:
            t0 = time.perf_counter()
            client.get(f"/customers/{customer}").raise_for_status()
            times.append((time.perf_counter() - t0) * 1000)
    return {"samples": samples, "p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}


def http_kpis(settings: Settings, views: list[str], runs: int = 3) -> list[dict]:
    """Every KPI view over HTTP (all rows, up to the endpoint's limit), median of ``runs`` after a warm-up."""
    out = []
    with httpx.Client(base_url=settings.query_url, headers=auth_headers(settings), timeout=300) as client:
        for view in views:
            times, rows = [], 0
            for i in range(runs + 1):
                t0 = time.perf_counter()
                response = client.get(f"/kpis/{view}", params={"limit": 100_000})
                response.raise_for_status()
                if i:
                    times.append((time.perf_counter() - t0) * 1000)
                rows = len(response.json()["rows"])
            out.append({"view": view, "rows": rows, "p50_ms": percentile(times, 50), "max_ms": max(times)})
    return out
