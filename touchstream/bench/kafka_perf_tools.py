"""Kafka's own perf tools (``ProducerPerformance``, ``ConsumerPerformance``) as the broker's limit.

Why these and not a Python loop: they are what the Kafka project itself uses to
say "this broker on this machine moves N records/s", so every Touchstream figure
can be read against the ceiling the JVM clients reach on the same broker, in the
same run. They come from the jars the stack already resolves (the pom pulls in
``kafka-tools``), so the bench needs no tarball and no ``bin/*.sh`` scripts.

The tools print a human summary on stdout; the parsers here are pure so they are
unit-tested on lines captured from Kafka 4.1. Every JVM runs with a timeout and a
failure raises ``PerfToolError`` with the tool's stderr tail.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from touchstream.config import Settings
from touchstream.kafka_access import kafka_access
from touchstream.private_files import write_private
from touchstream.stack import kafka_jars
from touchstream.stack.broker_runner import java_executable
from touchstream.stack.topic_admin import ensure_topics
from touchstream.topics import TopicSpec

PRODUCER_CLASS = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_CLASS = "org.apache.kafka.tools.ConsumerPerformance"
TOOL_HEAP = "512m"

# The broker's log4j2 file writes into server.log; a tool appending to the broker's rolling log
# would interleave two processes in one file. The tools get their own config: warnings and
# errors on stderr (captured, shown on failure), nothing else, and no client config dumps.
TOOLS_LOG4J = """\
# Written by touchstream.bench.kafka_perf_tools: the perf tools log warnings only, to stderr.
status = error
name = TouchstreamPerfTools
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = err
logger.config.name = org.apache.kafka.common.config
logger.config.level = ERROR
"""

# "200000 records sent, 5223.0 records/sec (1.99 MB/sec), 8554.15 ms avg latency, 13494.00 ms
#  max latency, 9242 ms 50th, 13026 ms 95th, 13234 ms 99th, 13442 ms 99.9th."
_PRODUCER_SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<rate>[\d.]+) records/sec \((?P<mb>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, "
    r"(?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99\.9th"
)


class PerfToolError(RuntimeError):
    """A perf tool failed, timed out, or printed no result we can read."""


# --- pure parts (unit-tested) -------------------------------------------------------------

def parse_producer_summary(stdout: str) -> dict:
    """The final summary of ProducerPerformance (the only line with percentiles).

    The 5-second progress lines before it have no percentiles and are skipped.
    ``seconds`` is derived as records / rate, which is how the tool computed the rate.
    """
    lines = [line for line in stdout.splitlines() if _PRODUCER_SUMMARY.search(line)]
    if not lines:
        raise PerfToolError("ProducerPerformance printed no summary line:\n" + tail(stdout))
    raw = lines[-1].strip()
    m = _PRODUCER_SUMMARY.search(raw)
    records, rate = int(m["records"]), float(m["rate"])
    return {
        "records": records,
        "seconds": records / rate if rate > 0 else 0.0,
        "rate": rate,
        "mb_per_s": float(m["mb"]),
        "latency_avg_ms": float(m["avg"]),
        "latency_max_ms": float(m["max"]),
        "latency_p50_ms": float(m["p50"]),
        "latency_p95_ms": float(m["p95"]),
        "latency_p99_ms": float(m["p99"]),
        "raw": raw,
    }


def parse_consumer_output(stdout: str) -> dict:
    """ConsumerPerformance's header line plus one data line, read by column name.

    ``seconds``/``rate``/``mb_per_s`` are the *fetch* figures: the tool also reports the
    time its consumer group took to join (``rebalance.time.ms``), which says nothing about
    throughput and which our assign-based Python consumers do not pay; it is kept apart as
    ``rebalance_ms``, with the wall time as ``elapsed_seconds``.
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    header_at = next((i for i, line in enumerate(lines) if line.startswith("start.time,")), None)
    if header_at is None:
        raise PerfToolError("ConsumerPerformance printed no header line:\n" + tail(stdout))
    names = [name.strip() for name in lines[header_at].split(",")]
    rows = [line for line in lines[header_at + 1:] if line.count(",") == len(names) - 1]
    if not rows:
        raise PerfToolError("ConsumerPerformance printed no result line:\n" + tail(stdout))
    raw = rows[-1]
    row = dict(zip(names, (value.strip() for value in raw.split(","))))
    try:
        fetch_ms = float(row["fetch.time.ms"])
        total_mb = float(row["data.consumed.in.MB"])
        return {
            "records": int(row["data.consumed.in.nMsg"]),
            "seconds": fetch_ms / 1000.0,
            "rate": float(row["fetch.nMsg.sec"]),
            "mb_per_s": float(row["fetch.MB.sec"]),
            "megabytes": total_mb,
            "rebalance_ms": float(row["rebalance.time.ms"]),
            "elapsed_seconds": (fetch_ms + float(row["rebalance.time.ms"])) / 1000.0,
            "raw": raw,
        }
    except (KeyError, ValueError) as exc:
        raise PerfToolError(f"unexpected ConsumerPerformance output ({exc!r}):\n{tail(stdout)}") from exc


def producer_props(settings: Settings, compression: str) -> list[str]:
    """The producer as Touchstream's Publisher configures librdkafka (acks, idempotence,
    linger, compression), so the JVM figure is a ceiling for the same durability."""
    return [
        f"bootstrap.servers={settings.bootstrap_servers}",
        "acks=all",
        "enable.idempotence=true",
        "linger.ms=5",
        f"compression.type={compression}",
    ]


def tool_argv(java: str, lib: Path, log4j: Path, main_class: str, args: list[str]) -> list[str]:
    """``java ... -cp lib/* <class> args``; an English locale pins the decimal point the parsers read."""
    return [
        java, f"-Xmx{TOOL_HEAP}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
        "-Duser.language=en", "-Duser.country=US",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp", f"{lib}/*", main_class, *args,
    ]


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# --- running the tools --------------------------------------------------------------------

def _log4j_config(settings: Settings) -> Path:
    path = settings.home / "bench" / "perf-tools-log4j2.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != TOOLS_LOG4J:
        path.write_text(TOOLS_LOG4J)
    return path


def security_args(settings: Settings, option: str) -> list[str]:
    """``[option, file]`` naming a 0600 properties file with the admin's SASL login, when the broker
    authenticates (a JAAS line holds '=' and spaces, which ``--producer-props`` cannot carry)."""
    access = kafka_access(settings, "admin")
    if access.user is None:
        return []
    path = settings.home / "bench-client.properties"
    write_private(path, "\n".join(access.java_properties()) + "\n")
    return [option, str(path)]


def _run_tool(settings: Settings, main_class: str, args: list[str], timeout: float) -> tuple[str, str]:
    lib = kafka_jars.ensure_jars(settings)
    argv = tool_argv(java_executable(), lib, _log4j_config(settings), main_class, args)
    name = main_class.rsplit(".", 1)[-1]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=settings.home)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise PerfToolError(f"{name} did not finish within {timeout:.0f}s; stderr:\n{tail(err)}") from exc
    if proc.returncode != 0:
        raise PerfToolError(
            f"{name} failed (exit {proc.returncode}); stderr:\n{tail(proc.stderr)}\nstdout:\n{tail(proc.stdout, 5)}")
    return proc.stdout, proc.stderr


def producer_perf(settings: Settings, topic: str, records: int, record_size: int, *,
                  compression: str = "lz4", timeout: float = 600.0) -> dict:
    """Write ``records`` records of ``record_size`` bytes as fast as the JVM producer can.

    ``--throughput -1`` disables the tool's throttle: this is the write ceiling. The tool
    reuses one random payload for every record, so lz4 compresses far better than on real
    events; read ``mb_per_s`` with that in mind.
    """
    args = ["--topic", topic, "--num-records", str(records), "--record-size", str(record_size),
            "--throughput", "-1", "--producer-props", *producer_props(settings, compression),
            *security_args(settings, "--producer.config")]
    stdout, stderr = _run_tool(settings, PRODUCER_CLASS, args, timeout)
    try:
        result = parse_producer_summary(stdout)
    except PerfToolError as exc:
        raise PerfToolError(f"{exc}\nstderr:\n{tail(stderr)}") from exc
    if result["records"] != records:
        raise PerfToolError(f"ProducerPerformance sent {result['records']} of {records} records; "
                            f"stderr:\n{tail(stderr)}")
    return result


def consumer_perf(settings: Settings, topic: str, records: int, *, timeout: float = 600.0,
                  idle_ms: int = 30000) -> dict:
    """Read ``records`` records of ``topic`` from the start with the JVM consumer.

    A fresh group each run (so it starts at the earliest offset). The tool exits 0 even when
    it gives up after ``idle_ms`` without a record; a short count is turned into an error here.
    It may read a little more than asked (it counts whole fetched batches).
    """
    args = ["--bootstrap-server", settings.bootstrap_servers, "--topic", topic,
            "--messages", str(records), "--timeout", str(idle_ms),
            "--group", f"touchstream-bench-{uuid.uuid4().hex[:12]}", *security_args(settings, "--consumer.config")]
    stdout, stderr = _run_tool(settings, CONSUMER_CLASS, args, timeout)
    try:
        result = parse_consumer_output(stdout)
    except PerfToolError as exc:
        raise PerfToolError(f"{exc}\nstderr:\n{tail(stderr)}") from exc
    if result["records"] < records:
        raise PerfToolError(f"ConsumerPerformance read {result['records']} of {records} records from "
                            f"{topic} before its {idle_ms} ms idle timeout; stdout:\n{tail(stdout, 5)}\n"
                            f"stderr:\n{tail(stderr)}")
    return result


# --- the bench topic ----------------------------------------------------------------------

def create_bench_topic(settings: Settings, name: str, partitions: int, timeout: float = 30.0) -> None:
    """Create a throw-away topic (the broker does not auto-create; see topic_admin)."""
    ensure_topics(kafka_access(settings, "admin"), [TopicSpec(name, partitions, 1)], timeout=timeout)


def delete_bench_topic(settings: Settings, name: str, timeout: float = 30.0) -> None:
    """Delete it again, so repeated bench runs do not fill the developer's broker."""
    from kafka import KafkaAdminClient

    ms = int(timeout * 1000)
    admin = KafkaAdminClient(**kafka_access(settings, "admin").kafka_python(
        client_id="touchstream-bench", bootstrap_timeout_ms=ms, request_timeout_ms=ms))
    try:
        admin.delete_topics([name], timeout_ms=ms)
    finally:
        admin.close()


@contextmanager
def bench_topic(settings: Settings, partitions: int, prefix: str = "touchstream-bench") -> Iterator[str]:
    """A fresh uniquely named topic for the duration of the block, deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    create_bench_topic(settings, name, partitions)
    try:
        yield name
    finally:
        delete_bench_topic(settings, name)


def run_pair(settings: Settings, records: int, record_size: int, *, partitions: int | None = None,
             compression: str = "lz4") -> tuple[dict, dict]:
    """Producer then consumer perf on one fresh topic; returns (producer, consumer) results.

    ``partitions`` defaults to the raw topics' count, so the JVM ceiling is taken on the
    same layout the Touchstream figures are measured on.
    """
    if partitions is None:
        from touchstream.topics import load_topics

        raw = [s.partitions for s in load_topics(settings.topic_config) if s.domain is not None]
        partitions = raw[0] if raw else 4
    with bench_topic(settings, partitions) as topic:
        produced = producer_perf(settings, topic, records, record_size, compression=compression)
        consumed = consumer_perf(settings, topic, records)
    return produced, consumed
