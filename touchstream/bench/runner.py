"""One bench run: limits, Touchstream and peers on the same traffic, in one process tree.

Order matters on a 2-core machine. The limits run while nothing else works; the
end-to-end run starts on empty topics with every service up; the Python limit
is read after it, from the same raw topics, while the services idle; the peers
run with the services stopped; the rebuild restarts serving alone. Every stage
leaves its figures in ``Run.figures`` and its details in ``Run.details``.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from touchstream.bench import bench_stack, pipeline_stages
from touchstream.bench.base import Figure, rate
from touchstream.bench.stage_cpu import Profiled, services
from touchstream.bench import privacy_cost
from touchstream.bench.traffic_producer import encode_traffic
from touchstream.config import Settings
from touchstream.serving.analyst_api import KPI_VIEWS
from touchstream.serving.catchup import wait_pipeline
from touchstream.topics import CUSTOMER_EVENTS_TOPIC, load_topics, raw_topics


@dataclass(frozen=True)
class Params:
    events: int = 100_000
    customers: int = 10_000
    seed: int = 7
    freshness_rate: float = 2000.0
    freshness_seconds: float = 30.0
    lookups: int = 1000
    kpi_interactions: int = 10_000_000   # the scale the KPI queries are timed at (by replicating the store)
    peers: bool = True
    peer_records: int = 0                # 0: the peers fold the whole topic; else only its first N records
    perf_tools: bool = True
    profile: bool = True
    workers: int = 0                     # > 0: the 360 is folded by this many fold workers (up --workers N)
    ingest_seconds: float = 10.0         # per ingest level (SDK, collector at 1/8/32 clients, batches); 0: skip
    ingest_events: int = 20_000          # at most this many events per ingest level


@dataclass
class Run:
    params: Params
    settings: Settings
    work: Path
    log: Callable[[str], None]
    figures: list[Figure] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)

    def stage(self, name: str):
        return _Stage(self, name)


class _Stage:
    def __init__(self, run: Run, name: str):
        self.run, self.name = run, name

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.run.log(f"bench: {self.name} ...")
        return self

    def __exit__(self, *exc):
        seconds = time.perf_counter() - self.t0
        self.run.details.setdefault("stage_seconds", {})[self.name] = round(seconds, 1)
        self.run.log(f"bench: {self.name} done in {seconds:.1f}s")


def execute(run: Run) -> None:
    """Every stage, the stack torn down whatever happens."""
    p, s = run.params, run.settings
    bench_stack.fresh(s)
    try:
        with run.stage("broker and registry"):
            bench_stack.up(s, "broker,registry")
        with run.stage("traffic"):
            traffic = encode_traffic(s, p.events, p.customers, p.seed)
            run.details["traffic"] = {"events": len(traffic.events), "customers": traffic.customers,
                                      "days": traffic.days, "mean_bytes": traffic.mean_size,
                                      "encode_seconds": round(traffic.seconds, 1)}
            run.add(*privacy_cost.figures(s, traffic))
        if p.perf_tools:
            _kafka_tools(run, traffic.mean_size)
        _touchstream(run, traffic)
        raw = _python_limit(run)
        _freshness_and_probes(run)
        if p.ingest_seconds > 0:
            _ingest(run)
        _record_rss(run, services(s, "broker", "registry", "identity", "serving"))
        bench_stack.down(s, "identity")
        if p.peers:
            _peers(run)
        _rebuild(run, raw)
        _in_process(run)
    finally:
        bench_stack.down(s)
    run.add(Figure("rss.bench", "peak RSS: bench process (producer, probes)",
                   resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "MB", higher_is_better=False))


def _kafka_tools(run: Run, record_size: int) -> None:
    from touchstream.bench import kafka_perf_tools as tools

    with run.stage("kafka perf tools"):
        produced, consumed = tools.run_pair(run.settings, run.params.events, record_size)
    run.details["kafka_tools"] = {"producer": produced, "consumer": consumed}
    run.add(Figure("limits.kafka_produce", "Kafka producer-perf-test", produced["rate"], "ev/s",
                   detail=f"{record_size} B records, acks=all, lz4"),
            Figure("limits.kafka_consume", "Kafka consumer-perf-test", consumed["rate"], "ev/s"))


def _touchstream(run: Run, traffic) -> None:
    s = run.settings
    with run.stage("services up"):
        bench_stack.up(s, "identity,serving")
    with run.stage("end to end"):
        with Profiled(run, "end_to_end", services(s, "identity", "serving"),
                      sampled=("identity", "serving", "fold-1")):
            e2e = pipeline_stages.end_to_end(s, traffic.events)
    run.details["end_to_end"] = e2e
    run.add(Figure("touchstream.publish", "publish (confluent-kafka, pre-encoded)",
                   rate(e2e["events"], e2e["publish_seconds"]), "ev/s", baseline="limits.kafka_produce",
                   detail="while the pipeline runs"),
            Figure("touchstream.end_to_end", "end to end: publish -> every projection in DuckDB",
                   rate(e2e["events"], e2e["seconds"]), "ev/s", baseline="limits.raw_decode_best",
                   detail="interaction log, identity, 360, complaints, decisions"))


def _python_limit(run: Run) -> dict:
    from touchstream.bench import raw_consume

    s, topics = run.settings, raw_topics(load_topics(run.settings.topic_config))
    expected = pipeline_stages.raw_records(s)
    results = {}
    with run.stage("python limit"):
        for client in ("kafka-python", "confluent-kafka"):
            results[client] = {"consume": raw_consume.consume_only(s, topics, expected, client),
                               "decode": raw_consume.consume_decode(s, topics, expected, client)}
    run.details["python_limit"] = results
    for client, short in (("kafka-python", "kp"), ("confluent-kafka", "ck")):
        run.add(Figure(f"limits.raw_consume_{short}", f"{client}: consume only", results[client]["consume"]["rate"],
                       "ev/s"),
                Figure(f"limits.raw_decode_{short}", f"{client}: consume + fastavro decode",
                       results[client]["decode"]["rate"], "ev/s"))
    best = max(results, key=lambda c: results[c]["decode"]["rate"])
    run.add(Figure("limits.raw_decode_best", "raw limit: fastest client, consume + decode",
                   results[best]["decode"]["rate"], "ev/s", detail=best))
    return results[best]["decode"]


def _freshness_and_probes(run: Run) -> None:
    p, s = run.params, run.settings
    count = max(1, int(p.freshness_rate * p.freshness_seconds))
    with run.stage("freshness traffic"):
        traffic = encode_traffic(s, count, max(10, p.customers // 10), p.seed + 1)
    with run.stage(f"freshness at {p.freshness_rate:,.0f} ev/s"):
        fresh = pipeline_stages.freshness(s, traffic.events, p.freshness_rate)
    run.details["freshness"] = fresh
    for name, short, label in (("interaction_log", "log", "interaction log"), ("customer_360", "360", "customer-360")):
        for q in ("p50", "p99"):
            run.add(Figure(f"touchstream.freshness_{short}_{q}", f"freshness {q}: produce -> visible, {label}",
                           fresh[name][f"{q}_ms"], "ms", higher_is_better=False,
                           detail=f"{fresh['achieved_per_s']:,.0f} ev/s achieved, {fresh['probes']} probes"))
    with run.stage("HTTP probes"):
        lookups = pipeline_stages.http_lookups(s, p.lookups)
        kpis = pipeline_stages.http_kpis(s, list(KPI_VIEWS))
    run.details["http"] = {"lookups": lookups, "kpis": kpis}
    worst = max(kpis, key=lambda k: k["p50_ms"])
    run.add(Figure("touchstream.lookup_http_p50", "360 lookup p50, HTTP", lookups["p50_ms"], "ms",
                   higher_is_better=False),
            Figure("touchstream.lookup_http_p99", "360 lookup p99, HTTP", lookups["p99_ms"], "ms",
                   higher_is_better=False, detail=f"{lookups['samples']} random customers"),
            Figure("touchstream.kpi_http_worst", "slowest KPI view, HTTP, bench scale", worst["p50_ms"], "ms",
                   higher_is_better=False, detail=worst["view"]))


def _ingest(run: Run) -> None:
    from touchstream.bench import ingest

    p, s = run.params, run.settings
    with run.stage("collector up"):
        bench_stack.up(s, "collector")
    with run.stage("ingest: SDK and collector"):
        results = ingest.measure(s, p.ingest_events, p.seed, p.ingest_seconds)
    run.details["ingest"] = results
    run.add(*ingest.figures(results))
    _record_rss(run, ("collector",))
    bench_stack.down(s, "collector")
    wait_pipeline(s, timeout=pipeline_stages.WAIT)   # not timed: the live run has it all before the rebuild


def _record_rss(run: Run, services, during: str = "") -> None:
    for name in services:
        mb = bench_stack.peak_rss_mb(bench_stack.pid(run.settings, name))
        if mb is not None:
            key, label = (f"rss.{name}_{during}", f"peak RSS: {name} ({during})") if during else \
                (f"rss.{name}", f"peak RSS: {name}")
            run.add(Figure(key, label, mb, "MB", higher_is_better=False))


def _peers(run: Run) -> None:
    from touchstream.bench import peer_runs

    s = run.settings
    total = sum(pipeline_stages.end_offsets(s, [CUSTOMER_EVENTS_TOPIC]).values())
    expected = min(total, run.params.peer_records or total)
    results = {}
    with run.stage("peer: faust per event"):
        results["faust"] = peer_runs.faust(s, run.work / "peers", expected)
    with run.stage("peer: quixstreams"):
        results["quix"] = peer_runs.quix(s, run.work / "peers", expected)
    run.details["peers"] = results
    for key, label in (("faust", "faust-streaming agent, one event at a time (Table)"),
                       ("quix", "quixstreams: fold (state) + DuckDB sink")):
        r = results[key]
        run.add(Figure(f"peers.{key}", label, r["rate"], "ev/s", baseline="limits.raw_decode_best",
                       detail=f"{r['records']:,} of {total:,} customer-events records"),
                Figure(f"rss.peer_{key}", f"peak RSS: {key} peer", r["peak_rss_mb"], "MB", higher_is_better=False))
    e2e = next(f for f in run.figures if f.key == "touchstream.end_to_end")
    for key in results:
        run.add(Figure(f"ratios.e2e_vs_{key}", f"Touchstream end to end vs {key} peer", e2e.value, "ev/s",
                       baseline=f"peers.{key}"))


def _rebuild(run: Run, raw: dict) -> None:
    s = run.settings
    live_file = run.work / "live.duckdb"
    with run.stage("rebuild from offset 0"):
        rebuilt = pipeline_stages.rebuild(s, live_file, lambda since: Profiled(
            run, "rebuild", services(s, "serving"), sampled=("serving", "fold-1"), since=since))
    rebuilt_hashes = pipeline_stages.projection_hashes_live(s)
    live_hashes = pipeline_stages.projection_hashes_file(live_file)
    rebuilt["identical"] = rebuilt_hashes == live_hashes
    rebuilt["hashes"] = {"live": live_hashes, "rebuilt": rebuilt_hashes}
    run.details["rebuild"] = rebuilt
    _record_rss(run, services(s, "serving"), "rebuild")   # the rebuild's own serving process (and workers)
    run.add(Figure("touchstream.rebuild", "rebuild every projection from offset 0", rate(rebuilt["events"],
                   rebuilt["seconds"]), "ev/s", baseline="limits.raw_decode_best",
                   detail=f"start-up {rebuilt['ready_seconds']:.1f}s incl.; replay == live: "
                          f"{'yes' if rebuilt['identical'] else 'NO'}"))
    bench_stack.down(s, "serving")


def _in_process(run: Run) -> None:
    from touchstream.bench import kpi_scale

    p, s = run.params, run.settings
    with run.stage("lookups in process"):
        lookups = kpi_scale.time_lookups(s.duckdb_path, samples=p.lookups)
    run.add(Figure("touchstream.lookup_inproc_p50", "360 lookup p50, in process", lookups["p50_ms"], "ms",
                   higher_is_better=False),
            Figure("touchstream.lookup_inproc_p99", "360 lookup p99, in process", lookups["p99_ms"], "ms",
                   higher_is_better=False))
    interactions = run.details["rebuild"]["hashes"]["rebuilt"]["interactions"][0]
    copies = max(1, -(-p.kpi_interactions // max(1, interactions)))
    scaled = run.work / "scaled.duckdb"
    with run.stage(f"KPI store x{copies}"):
        size = kpi_scale.scale_up(s.duckdb_path, scaled, copies)
    with run.stage("KPI queries at scale"):
        kpis = kpi_scale.time_kpis(scaled, list(KPI_VIEWS))
        scaled_lookups = kpi_scale.time_lookups(scaled, samples=p.lookups)
    run.details["kpi_scale"] = {"copies": copies, **size, "views": kpis, "lookups": scaled_lookups}
    worst = max(kpis, key=lambda k: k["p50_ms"])
    scale = f"{size['customers']:,} customers, {size['interactions']:,} interactions"
    run.add(Figure("touchstream.kpi_scaled_worst", "slowest KPI view, in process, at scale", worst["p50_ms"], "ms",
                   higher_is_better=False, detail=f"{worst['view']}; {scale}"),
            Figure("touchstream.lookup_scaled_p99", "360 lookup p99, in process, at scale", scaled_lookups["p99_ms"],
                   "ms", higher_is_better=False, detail=scale))
    scaled.unlink(missing_ok=True)
