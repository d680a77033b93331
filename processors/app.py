"""The faust application every Touchstream processor runs in.

At-least-once (faust's exactly_once has open bugs); every sink is idempotent.
Topics are created by ``touchstream up`` from the catalogue, never implicitly.
"""

from __future__ import annotations

import faust

from touchstream.config import Settings


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
