"""The bench at a tiny size, end to end: every stage runs on its own real stack and reports.

Figures are never judged here (speed lives in the bench's own output, not in
tests); what must hold is that each stage measured what it claims: every event
reached every projection, the rebuild equals the live run, the peers folded
every record, the KPI store was really scaled, and the report carries a ratio
for every figure that names a baseline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import free_ports

pytestmark = pytest.mark.timeout(1800)
EVENTS, CUSTOMERS = 1500, 150


def run_bench(home, *options: str) -> dict:
    """``touchstream bench`` at the tiny size on a stack of its own (free ports); its JSON result."""
    ports = free_ports(5)
    env = dict(os.environ, TOUCHSTREAM_HOME=str(home / "user"))
    for name in ("TOUCHSTREAM_BOOTSTRAP", "TOUCHSTREAM_REGISTRY_URL", "TOUCHSTREAM_QUERY_URL"):
        env.pop(name, None)
    env.update(zip(("TOUCHSTREAM_KAFKA_PORT", "TOUCHSTREAM_CONTROLLER_PORT", "TOUCHSTREAM_REGISTRY_PORT",
                    "TOUCHSTREAM_COLLECTOR_PORT", "TOUCHSTREAM_QUERY_PORT"), map(str, ports)))
    output = home / "result.json"
    done = subprocess.run(
        [sys.executable, "-m", "touchstream.cli", "bench", "--events", str(EVENTS), "--customers", str(CUSTOMERS),
         "--freshness-seconds", "2", "--lookups", "50", *options,
         "--home", str(home / "bench"), "--port-offset", "0", "--output", str(output)],
        env=env, capture_output=True, text=True, timeout=1700)
    assert done.returncode == 0, done.stderr[-4000:]
    doc = json.loads(output.read_text())
    doc["stdout"] = done.stdout
    return doc


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> dict:
    return run_bench(tmp_path_factory.mktemp("bench"), "--kpi-interactions", "20000", "--ingest-seconds", "3",
                     "--ingest-events", "400")


@pytest.fixture(scope="module")
def bench_workers(tmp_path_factory) -> dict:
    """The same with the 360 folded by two fold workers (``--workers 2``), peers and Kafka's tools left out."""
    return run_bench(tmp_path_factory.mktemp("bench-workers"), "--workers", "2", "--kpi-interactions", "5000",
                     "--no-peers", "--no-kafka-tools", "--ingest-seconds", "0")


def figures(doc: dict) -> dict:
    return {f["key"]: f for f in doc["figures"]}


def test_every_stage_reports_a_figure(bench):
    keys = set(figures(bench))
    for key in ("limits.kafka_produce", "limits.kafka_consume", "limits.raw_decode_kp", "limits.raw_decode_ck",
                "limits.raw_decode_best", "touchstream.end_to_end", "touchstream.rebuild",
                "touchstream.freshness_log_p99", "touchstream.freshness_360_p99", "touchstream.lookup_http_p99",
                "touchstream.lookup_inproc_p99", "touchstream.kpi_scaled_worst", "peers.faust", "peers.quix",
                "ratios.e2e_vs_faust", "ratios.e2e_vs_quix", "rss.serving", "rss.identity", "rss.broker",
                "privacy.seal", "privacy.open"):
        assert key in keys, key
    for figure in bench["figures"]:
        assert figure["value"] > 0, figure
        if figure["baseline"]:
            assert figure["ratio"] is not None and figure["ratio"] > 0, figure


def test_every_target_is_judged(bench):
    assert len(bench["targets"]) == 16
    assert all(t["met"] is not None for t in bench["targets"]), bench["targets"]


def test_the_pipeline_applied_every_event_and_the_rebuild_equals_live(bench):
    details = bench["details"]
    assert details["end_to_end"]["events"] == EVENTS
    fresh = details["freshness"]
    assert fresh["events"] == 2 * 2000 and fresh["probes"] > 0
    rebuilt = details["rebuild"]
    ingested = sum(level["events"] for level in details["ingest"].values())
    assert rebuilt["events"] == EVENTS + fresh["events"] + ingested
    assert rebuilt["identical"], rebuilt["hashes"]
    assert rebuilt["hashes"]["live"]["interactions"][0] == rebuilt["events"]


def test_limits_read_every_raw_record(bench):
    limit = bench["details"]["python_limit"]
    for client in ("kafka-python", "confluent-kafka"):
        assert limit[client]["decode"]["records"] == EVENTS, client


def test_peers_folded_every_record_into_the_same_customers(bench):
    peers = bench["details"]["peers"]
    assert peers["faust"]["records"] == peers["quix"]["records"] > EVENTS   # events + membership records
    raw = bench["details"]["rebuild"]["events"]
    assert 0 < peers["faust"]["events"] == peers["quix"]["events"] <= raw
    assert peers["quix"]["duckdb_rows"] == peers["quix"]["customers"] == peers["faust"]["customers"] > 0


def test_the_kpi_store_was_scaled(bench):
    scale = bench["details"]["kpi_scale"]
    assert scale["copies"] >= 2
    base = bench["details"]["rebuild"]["hashes"]["live"]
    assert scale["interactions"] == scale["copies"] * base["interactions"][0]
    assert scale["customers"] == scale["copies"] * base["customer_360"][0]
    assert {v["view"] for v in scale["views"]} >= {"complaint_kpis", "channel_mix"}


def test_the_report_prints_machine_table_and_targets(bench):
    out = bench["stdout"]
    assert "cores" in out and "duckdb" in out
    assert "| touchstream | end to end" in out and "| target |" in out
    assert bench["details"]["peers"]["quix"]["versions"]["quixstreams"]


def test_cpu_of_every_process_is_accounted_per_stage(bench):
    cpu = bench["details"]["cpu"]
    assert {"broker", "registry", "identity", "serving", "bench"} <= set(cpu["end_to_end"])
    assert {"broker", "serving"} <= set(cpu["rebuild"])
    assert all(u["cpu_seconds"] >= 0 for stage in cpu.values() for u in stage.values())
    assert cpu["end_to_end"]["serving"]["cpu_seconds"] > 0 and cpu["rebuild"]["serving"]["cpu_seconds"] > 0
    assert "| stage | process | cores busy | CPU ms/event |" in bench["stdout"]


def test_with_fold_workers_the_rebuild_refolds_them_and_equals_live(bench_workers):
    details = bench_workers["details"]
    assert details["end_to_end"]["events"] == EVENTS
    rebuilt = details["rebuild"]
    assert rebuilt["identical"], rebuilt["hashes"]
    assert rebuilt["hashes"]["live"]["customer_360"][0] > 0
    assert details["freshness"]["customer_360"]["p99_ms"] > 0
    cpu = details["cpu"]
    for stage in ("end_to_end", "rebuild"):   # the workers' stores and group were forgotten: they folded again
        assert {"fold-1", "fold-2", "serving"} <= set(cpu[stage]), stage
        assert cpu[stage]["fold-1"]["cpu_seconds"] + cpu[stage]["fold-2"]["cpu_seconds"] > 0, stage
    keys = {f["key"] for f in bench_workers["figures"]}
    assert {"rss.fold-1", "rss.fold-2", "touchstream.freshness_360_p99"} <= keys


def test_ingest_measured_the_sdk_and_every_collector_level(bench):
    ingest = bench["details"]["ingest"]
    assert set(ingest) == {"sdk", "sdk_unsealed", "collector_1", "collector_8", "collector_32", "collector_batch100"}
    for name, level in ingest.items():
        assert level["events"] > 0 and level["errors"] == 0 and level["rate"] > 0, name
        if not name.startswith("sdk"):
            assert 0 < level["p50_ms"] <= level["p99_ms"], name
    assert ingest["collector_32"]["clients"] == 32 and ingest["collector_batch100"]["batch"] == 100
    keys = {f["key"] for f in bench["figures"]}
    assert {"ingest.sdk", "ingest.sdk_unsealed", "privacy.publish_sealed", "privacy.publish_cost",
            "ingest.collector_32_p99", "rss.collector"} <= keys
    assert "| ingest | collector: 32 client(s), single events |" in bench["stdout"]
