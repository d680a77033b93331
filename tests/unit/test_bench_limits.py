"""The pure parts of the bench's limit measurements: perf-tool output parsers, argv, lean decoding.

The tool output below was captured from Apache Kafka 4.1.1's ProducerPerformance and
ConsumerPerformance run against the local stack's broker.
"""

from __future__ import annotations

import io
import itertools
import struct
import subprocess
from pathlib import Path

import fastavro
import pytest

from touchstream.bench import kafka_perf_tools as tools
from touchstream.bench import raw_consume
from touchstream.config import Settings

PRODUCER_OUT = """\
3468 records sent, 691.1 records/sec (0.26 MB/sec), 643.7 ms avg latency, 3296.0 ms max latency.
17081 records sent, 3373.7 records/sec (1.29 MB/sec), 2278.7 ms avg latency, 3251.0 ms max latency.
35863 records sent, 7152.6 records/sec (2.73 MB/sec), 12218.2 ms avg latency, 13494.0 ms max latency.
200000 records sent, 5223.0 records/sec (1.99 MB/sec), 8554.15 ms avg latency, 13494.00 ms max latency, \
9242 ms 50th, 13026 ms 95th, 13234 ms 99th, 13442 ms 99.9th.
"""

CONSUMER_OUT = """\
start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, \
fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
2026-11-26 05:58:26:466, 2026-11-26 05:58:35:915, 76.2939, 8.0743, 200000, 21166.2610, 3003, 6446, \
11.8359, 31026.9935
"""

CONSUMER_GAVE_UP = """\
start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, \
fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
WARNING: Exiting before consuming the expected number of messages: timeout (3000 ms) exceeded. You can use \
the --timeout option to increase the timeout.
2026-11-26 05:58:51:037, 2026-11-26 05:58:54:113, 0.0000, 0.0000, 0, 0.0000, 1204, 1872, 0.0000, 0.0000
"""


# --- perf tools -----------------------------------------------------------------------------

def test_producer_summary_is_the_last_line_with_percentiles():
    result = tools.parse_producer_summary(PRODUCER_OUT)
    assert result["records"] == 200000
    assert result["rate"] == 5223.0
    assert result["mb_per_s"] == 1.99
    assert result["latency_avg_ms"] == 8554.15
    assert result["latency_p99_ms"] == 13234.0
    assert result["latency_p50_ms"] == 9242.0
    assert result["seconds"] == pytest.approx(200000 / 5223.0)
    assert result["raw"].startswith("200000 records sent") and result["raw"].endswith("99.9th.")


def test_producer_progress_lines_alone_are_no_result():
    progress = PRODUCER_OUT.splitlines()[0]
    with pytest.raises(tools.PerfToolError, match="no summary line"):
        tools.parse_producer_summary(progress)


def test_consumer_output_is_read_by_column_name_and_reports_fetch_time():
    result = tools.parse_consumer_output(CONSUMER_OUT)
    assert result["records"] == 200000
    assert result["seconds"] == pytest.approx(6.446)
    assert result["rate"] == pytest.approx(31026.9935)
    assert result["mb_per_s"] == pytest.approx(11.8359)
    assert result["rebalance_ms"] == 3003.0
    assert result["elapsed_seconds"] == pytest.approx(9.449)
    assert result["raw"].startswith("2026-11-26 05:58:26:466")


def test_consumer_timeout_warning_is_skipped_and_the_count_is_zero():
    result = tools.parse_consumer_output(CONSUMER_GAVE_UP)
    assert result["records"] == 0 and result["rate"] == 0.0


@pytest.mark.parametrize("text", ["", "Exception in thread main\n", CONSUMER_OUT.splitlines()[0]])
def test_consumer_output_without_a_result_raises(text):
    with pytest.raises(tools.PerfToolError):
        tools.parse_consumer_output(text)


def test_producer_props_match_the_publisher():
    props = tools.producer_props(Settings(home=Path("/x"), broker_port=1234), "zstd")
    assert props == ["bootstrap.servers=127.0.0.1:1234", "acks=all", "enable.idempotence=true", "linger.ms=5",
                     "compression.type=zstd"]


def test_tool_argv_runs_the_class_from_the_jar_folder_with_a_pinned_locale():
    argv = tools.tool_argv("java", Path("/lib"), Path("/l.properties"), tools.CONSUMER_CLASS, ["--topic", "t"])
    assert argv[0] == "java"
    assert argv[-5:] == ["-cp", "/lib/*", "org.apache.kafka.tools.ConsumerPerformance", "--topic", "t"]
    assert "-Dlog4j2.configurationFile=/l.properties" in argv and "-Duser.language=en" in argv


def test_tools_log_config_is_quiet_and_not_the_brokers_file():
    assert "SYSTEM_ERR" in tools.TOOLS_LOG4J and "rootLogger.level = WARN" in tools.TOOLS_LOG4J
    assert "server.log" not in tools.TOOLS_LOG4J


# --- lean decoding --------------------------------------------------------------------------

SCHEMA = {"type": "record", "name": "Ping", "namespace": "t",
          "fields": [{"name": "n", "type": "long"}, {"name": "who", "type": "string"}]}


def framed(schema_id: int, record: dict, schema: dict = SCHEMA) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def test_lean_decoder_fetches_each_schema_id_once():
    fetched = []

    def fetch(schema_id):
        fetched.append(schema_id)
        return SCHEMA

    decoder = raw_consume.LeanDecoder(fetch)
    for i in range(5):
        assert decoder.decode(framed(7, {"n": i, "who": "a"})) == {"n": i, "who": "a"}
    assert decoder.decode(framed(300, {"n": 9, "who": "b"})) == {"n": 9, "who": "b"}
    assert fetched == [7, 300] and decoder.schema_ids == [7, 300]


@pytest.mark.parametrize("value", [b"", b"\x00\x00", b"\x01\x00\x00\x00\x07\x02", None])
def test_lean_decoder_rejects_unframed_values(value):
    with pytest.raises(raw_consume.LimitError):
        raw_consume.LeanDecoder(lambda sid: SCHEMA).decode(value)


def test_unknown_decoder_and_client_are_refused():
    settings = Settings(home=Path("/x"))
    with pytest.raises(ValueError, match="decoder"):
        raw_consume.make_decoder(settings, "fast")
    with pytest.raises(ValueError, match="client"):
        raw_consume.open_source(settings, ["t"], "aiokafka")


# --- the drain loop -------------------------------------------------------------------------

def batches(*sizes):
    """A poll function returning batches of the given sizes, then nothing."""
    it = iter([[b"x" * 3] * n for n in sizes])
    return lambda timeout: next(it, [])


def test_drain_cuts_the_last_batch_at_expected():
    handled = []
    ticks = itertools.count()
    records, nbytes, seconds = raw_consume.drain(batches(4, 0, 4, 4), 10, handled.append,
                                                 clock=lambda: float(next(ticks)))
    assert (records, nbytes, len(handled)) == (10, 30, 10)
    assert seconds == 1.0


def test_drain_without_handler_only_counts():
    assert raw_consume.drain(batches(3, 3), 6, None)[:2] == (6, 18)


def test_drain_gives_up_when_the_topics_hold_fewer_records():
    with pytest.raises(raw_consume.LimitError, match="only 2 of 5"):
        raw_consume.drain(batches(2), 5, None, stall_timeout=0.0)


def test_drain_needs_a_positive_count():
    with pytest.raises(ValueError):
        raw_consume.drain(batches(1), 0, None)


# --- running a tool: failures carry the tool's stderr ---------------------------------------

@pytest.fixture
def no_jvm(monkeypatch, tmp_path):
    """``_run_tool`` without Maven or Java: ``subprocess.run`` is replaced by each test."""
    monkeypatch.setattr(tools.kafka_jars, "ensure_jars", lambda settings: tmp_path / "lib")
    monkeypatch.setattr(tools, "java_executable", lambda: "java")
    return Settings(home=tmp_path)


def test_a_failing_tool_raises_with_its_stderr_tail(no_jvm, monkeypatch):
    stderr = "\n".join(f"line {i}" for i in range(40)) + "\nERROR Topic t not present in metadata"

    def run(argv, **kw):
        assert kw["timeout"] == 5 and argv[-2:] == ["--topic", "t"]
        return subprocess.CompletedProcess(argv, 1, "", stderr)

    monkeypatch.setattr(tools.subprocess, "run", run)
    with pytest.raises(tools.PerfToolError, match="exit 1") as err:
        tools._run_tool(no_jvm, tools.PRODUCER_CLASS, ["--topic", "t"], 5)
    assert "not present in metadata" in str(err.value) and "line 0\n" not in str(err.value)
    assert (no_jvm.home / "bench" / "perf-tools-log4j2.properties").read_text() == tools.TOOLS_LOG4J


def test_a_hanging_tool_raises_after_its_timeout(no_jvm, monkeypatch):
    def run(argv, **kw):
        raise subprocess.TimeoutExpired(argv, kw["timeout"], output=b"", stderr=b"WARN still waiting")

    monkeypatch.setattr(tools.subprocess, "run", run)
    with pytest.raises(tools.PerfToolError, match="(?s)within 3s.*still waiting"):
        tools._run_tool(no_jvm, tools.CONSUMER_CLASS, [], 3)


def test_consumer_perf_turns_a_short_count_into_an_error(no_jvm, monkeypatch):
    monkeypatch.setattr(tools.subprocess, "run",
                        lambda argv, **kw: subprocess.CompletedProcess(argv, 0, CONSUMER_GAVE_UP, ""))
    with pytest.raises(tools.PerfToolError, match="read 0 of 10"):
        tools.consumer_perf(no_jvm, "t", 10)
