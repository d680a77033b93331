"""The faust application every Touchstream processor runs in.

At-least-once (faust's exactly_once has open bugs); every sink is idempotent.
Topics are created by ``touchstream up`` from the catalogue, never implicitly.
The worker runs the stages' ``batch_source.BatchSource`` services and the timers;
records are read by those sources (see there why not by faust agents).
"""

from __future__ import annotations

import gc
import logging
import os

import faust
from faust.app.base import BootStrategy

from touchstream.config import Settings
from touchstream.processors.outages import outage_of

log = logging.getLogger(__name__)


class SourcesOnly(BootStrategy):
    """The worker starts no faust consumer or producer: records come from the stages' sources, and
    outputs go through ``topic_output`` (faust's consumer refuses to start with nothing subscribed)."""

    enable_kafka = False


def create_app(settings: Settings, app_id: str = "touchstream-serving") -> faust.App:
    datadir = settings.home / "faust" / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
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
    app.boot_strategy = SourcesOnly(app)
    return app


def tune_gc() -> None:
    """Collect garbage less often, and never rescan what start-up loaded.

    Why: a stage keeps hundreds of thousands of long-lived objects (identity's graph, the 360
    cache), and CPython's default thresholds (a collection every 700 net allocations) rescan them
    again and again: measured on identity's ``observe`` over 120k demo events, 59 -> 45 µs per event
    with ``freeze`` plus these thresholds. Cycles are still collected, only in larger steps."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def timer_task(app: faust.App, name: str, tick, *, interval: float) -> None:
    """Run ``tick()`` every ``interval`` seconds in a worker thread, fail-stop like a ``BatchSource``
    (a timer that writes DuckDB must not fail silently and leave its sink behind). A tick that fails
    on a broker or registry outage was rolled back whole, so it is only logged: the next tick is the
    retry (``outages.outage_of``)."""

    async def timer() -> None:
        await app.loop.run_in_executor(None, _handle_or_die, name, lambda _: tick_through_outages(name, tick), [])

    timer.__name__ = f"touchstream_{name}_timer"
    app.timer(interval=interval, name=f"touchstream.{name}.timer")(timer)


def tick_through_outages(name: str, tick) -> None:
    """``tick()``; an outage it meets is reported to that dependency's ``Outage``, anything else raised."""
    try:
        tick()
    except Exception as exc:
        outage = outage_of(exc, rerunnable=True)
        if outage is None:
            raise
        outage.failed(f"{name} timer: {type(exc).__name__}: {exc}")


def _handle_or_die(name: str, handle, records: list) -> None:
    try:
        handle(records)
    except BaseException:
        log.exception("%s failed on a batch; exiting so no offset is committed past its durable state", name)
        logging.shutdown()
        os._exit(70)
