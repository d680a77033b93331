"""Has the serving process applied everything published so far? (demo, tests, bench)

Compares the end offsets of a sink's input topics with the offsets the sink
committed in DuckDB (``GET /offsets``). Equal means every record published so
far is applied (or in the dead-letter table). ``wait_pipeline`` follows the
whole path: raw topics -> interaction log, raw topics -> identity stage
(its consumer group's commits) -> customer-events -> customer-360.
"""

from __future__ import annotations

import time

import httpx
from kafka import KafkaConsumer, TopicPartition

from touchstream.client import auth_headers
from touchstream.config import Settings
from touchstream.kafka_access import kafka_access
from touchstream.processors.replay import committed_offsets
from touchstream.topics import CUSTOMER_360_TOPIC, CUSTOMER_EVENTS_TOPIC, DECISIONS_TOPIC, load_topics, raw_topics

IDENTITY_GROUP, FOLD_GROUP = "touchstream-identity", "touchstream-fold"
INPUTS = {"customer_360": [CUSTOMER_EVENTS_TOPIC], "identity_decisions": [DECISIONS_TOPIC],
          "customer_360_rows": [CUSTOMER_360_TOPIC]}   # else: raw topics
Offsets = dict[tuple[str, int], int]


def end_offsets(settings: Settings, topics: list[str] | None = None) -> Offsets:
    topics = raw_topics(load_topics(settings.topic_config)) if topics is None else topics
    consumer = KafkaConsumer(**kafka_access(settings).kafka_python(enable_auto_commit=False))
    try:
        parts = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        return {(tp.topic, tp.partition): off for tp, off in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def applied_offsets(settings: Settings, sink: str = "interaction_log") -> Offsets:
    response = httpx.get(f"{settings.query_url}/offsets", headers=auth_headers(settings), timeout=120)
    response.raise_for_status()
    return {(r["topic"], r["partition"]): r["next_offset"] for r in response.json().get(sink, [])}


def _behind(ends: Offsets, applied: Offsets) -> int:
    return sum(max(0, end - applied.get(tp, 0)) for tp, end in ends.items())


def lag(settings: Settings, sink: str = "interaction_log") -> int:
    topics = INPUTS.get(sink)
    return _behind(end_offsets(settings, topics), applied_offsets(settings, sink))


def _wait(what: str, ends: Offsets, applied, timeout: float, start: float) -> None:
    """Poll until caught up. A query service that does not answer (restarting under the supervisor)
    counts as behind, not as a failure, until the timeout."""
    while True:
        try:
            remaining = _behind(ends, applied())
        except httpx.TransportError as exc:
            remaining = f"unknown ({what} unreachable: {type(exc).__name__})"
        if remaining == 0:
            return
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what} still {remaining} record(s) behind after {timeout:.0f}s")
        time.sleep(0.2)


def wait_caught_up(settings: Settings, timeout: float = 300.0, sink: str = "interaction_log") -> float:
    """Block until the sink has applied everything on its input topics as they end now; returns seconds."""
    start = time.monotonic()
    topics = INPUTS.get(sink)
    _wait(sink, end_offsets(settings, topics), lambda: applied_offsets(settings, sink), timeout, start)
    return time.monotonic() - start


def wait_pipeline(settings: Settings, timeout: float = 300.0) -> float:
    """Block until every raw event published so far is in the interaction log, the complaint cases,
    the identity decisions and the 360s."""
    start = time.monotonic()
    raw = raw_topics(load_topics(settings.topic_config))
    ends = end_offsets(settings, raw)
    for sink in ("interaction_log", "complaint_resolution"):
        _wait(sink, ends, lambda: applied_offsets(settings, sink), timeout, start)
    _wait("identity stage", ends, lambda: committed_offsets(settings, IDENTITY_GROUP, raw), timeout, start)
    for sink, topic in (("customer_360", CUSTOMER_EVENTS_TOPIC), ("identity_decisions", DECISIONS_TOPIC)):
        _wait(sink, end_offsets(settings, [topic]), lambda: applied_offsets(settings, sink), timeout, start)
    if "customer_360_rows" in _sinks(settings):
        _wait_fold_workers(settings, timeout, start)
    return time.monotonic() - start


def _sinks(settings: Settings) -> set[str]:
    response = httpx.get(f"{settings.query_url}/offsets", headers=auth_headers(settings), timeout=120)
    response.raise_for_status()
    return set(response.json())


def _wait_fold_workers(settings: Settings, timeout: float, start: float) -> None:
    """Fold workers run (``up --workers N``): their group has folded customer-events to its end, hand-overs
    they appended meanwhile included, and serving has read the 360s they published."""
    topics = [CUSTOMER_EVENTS_TOPIC]
    while True:
        ends = end_offsets(settings, topics)
        _wait("fold workers", ends, lambda: committed_offsets(settings, FOLD_GROUP, topics), timeout, start)
        if end_offsets(settings, topics) == ends:
            break
    _wait("customer_360_rows", end_offsets(settings, [CUSTOMER_360_TOPIC]),
          lambda: applied_offsets(settings, "customer_360_rows"), timeout, start)


def wait_sla_settled(settings: Settings, timeout: float = 120.0) -> float:
    """Block until the complaint SLA watermark has reached the latest event time consumed: every raw
    partition has gone idle (``TOUCHSTREAM_SLA_IDLE_SECONDS``) and the timer judged the clocks then
    due. Call after ``wait_pipeline``; returns seconds."""
    # No event time consumed yet: nothing to settle. Event times but no watermark yet: not settled.
    sql = ("SELECT (SELECT max(latest) FROM complaint_sla_partitions) IS NULL OR coalesce("
           "(SELECT max(watermark) FROM complaint_sla_watermark) >= (SELECT max(latest) FROM complaint_sla_partitions), "
           "false) AS settled")
    start = time.monotonic()
    while True:
        response = httpx.post(f"{settings.query_url}/sql", json={"sql": sql}, headers=auth_headers(settings),
                              timeout=10)
        response.raise_for_status()
        if response.json()["rows"][0][0]:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"the complaint SLA watermark has not settled after {timeout:.0f}s")
        time.sleep(0.5)
