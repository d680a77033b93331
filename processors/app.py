"""The faust application every Touchstream processor runs in.

At-least-once (faust's exactly_once has open bugs); every sink is idempotent.
Topics are created by ``touchstream up`` from the catalogue, never implicitly.
"""

from __future__ import annotations

import logging
import os

import faust

from touchstream.config import Settings
from touchstream.processors.records import RawRecord

log = logging.getLogger(__name__)


def create_app(settings: Settings, app_id: str = "touchstream-serving") -> faust.App:
    datadir = settings.home / "faust" / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=8192,
        # A crashed worker's partitions move to its restart after this long,
        # not after faust's default minute.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
    )


def batch_agent(app: faust.App, topics: list[str], name: str, handle, *, batch: int = 2000, within: float = 0.25):
    """An agent that hands ``handle(records)`` batches of raw records, in a worker thread.

    ``handle`` does blocking I/O (DuckDB, flushing a producer), hence the executor.
    Fail-stop: faust acks a take() batch even when its handler raises, so on any
    failure the process exits at once, before an offset past the stage's own
    durable state can be committed; the supervisor's restart then resumes cleanly.
    """
    channel = app.topic(*topics, key_serializer="raw", value_serializer="raw", allow_empty=True)

    async def agent(stream):
        async for events in stream.take_events(batch, within):
            records = [
                RawRecord(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                          e.message.value, list(e.message.headers or []))
                for e in events
            ]
            await app.loop.run_in_executor(None, _handle_or_die, name, handle, records)

    return app.agent(channel, name=f"touchstream.{name}")(agent)


def timer_task(app: faust.App, name: str, tick, *, interval: float) -> None:
    """Run ``tick()`` every ``interval`` seconds in a worker thread, fail-stop like ``batch_agent``
    (a timer that writes DuckDB must not fail silently and leave its sink behind)."""

    async def timer() -> None:
        await app.loop.run_in_executor(None, _handle_or_die, name, lambda _: tick(), [])

    timer.__name__ = f"touchstream_{name}_timer"
    app.timer(interval=interval, name=f"touchstream.{name}.timer")(timer)


def _handle_or_die(name: str, handle, records: list[RawRecord]) -> None:
    try:
        handle(records)
    except BaseException:
        log.exception("%s failed on a batch; exiting so no offset is committed past its durable state", name)
        logging.shutdown()
        os._exit(70)
