"""Rebuilding the customer-360 side by side, then switching, while the live version keeps serving.

Why: a new release of the fold (or a repaired bug) must reach every profile, and
analysts and representatives must not see an empty or half-built 360 meanwhile.
A rebuild replays ``touchstream.customer-events`` from offset 0 into a fresh
version of the tables (``customer_360_v<N+1>``), catches up with the live sink,
and then, with the live sink paused for the last few records, switches the views
in one transaction and hands the live agent the new sink. The replay publishes
nothing (downstream already has those outputs); after the switch, only the 360s
that differ from the old version are published again (plus tombstones and new
findings), so subscribers converge on the rebuilt result. The old tables are
dropped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Callable

from touchstream.processors.customer_360 import Customer360Sink
from touchstream.processors.customer_360_lookup import LiveCustomer360
from touchstream.processors.replay import replay_range
from touchstream.processors.topic_output import NullOutput
from touchstream.projections.customer_360_contract import SCHEMA as PROFILE_SCHEMA
from touchstream.projections.customer_360_contract import finding_records, to_record
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.publishing.dead_letters import AlreadySentDeadLetters
from touchstream.topics import CUSTOMER_360_TOPIC, FINDINGS_TOPIC

log = logging.getLogger(__name__)
FINAL_GAP = 2_000   # records left to replay when the live sink is paused for the switch


class RebuildError(RuntimeError):
    """A rebuild cannot start (one is running) or failed; the live version is untouched."""


class Rebuild:
    def __init__(self, live: LiveCustomer360, settings, refused: str | None = None):
        self.live, self.settings, self.refused = live, settings, refused
        self._thread: threading.Thread | None = None
        self._status: dict = {"state": "idle"}
        # Told the new version's tables in a transaction just before the switch: erasures are applied
        # again there (the replayed customer-events still name erased customers by id).
        self.before_switch: Callable[[object], None] = lambda con: None

    def status(self) -> dict:
        return dict(self._status)

    def start(self) -> dict:
        if self.refused:
            raise RebuildError(self.refused)
        if self._thread is not None and self._thread.is_alive():
            raise RebuildError(f"a rebuild to version {self._status.get('version')} is already running")
        old = self.live.store
        version = max(old.version, *(v for v in old.versions())) + 1
        self._status = {"state": "building", "version": version, "from_version": old.version, "replayed": 0,
                        "started_at": datetime.now(timezone.utc).isoformat()}
        self._thread = threading.Thread(target=self._run, args=(version,), name="rebuild-customer-360", daemon=True)
        self._thread.start()
        return self.status()

    def _run(self, version: int) -> None:
        started = time.monotonic()
        try:
            live = self.live.sink
            store = Customer360Store(live.store.db, version=version)
            sink = Customer360Sink(store, live.codec, NullOutput(), AlreadySentDeadLetters(), live.config,
                                   cache_size=live.cache_size)
            while self._gap(sink) > FINAL_GAP:
                self._replay(sink)
            with self.live.lock:
                self._replay(sink)
                with store.db.transaction() as con:
                    self.before_switch(con)
                sink.cache.clear()   # it may hold profiles the erasures just anonymised
                sink.claim_cache.clear()
                old = self.live.sink
                store.activate(version)
                sink.output, sink.dead_letters = old.output, old.dead_letters
                published = self._publish_differences(old.store, sink)
                self.live.sink = sink
            old.store.drop()
            self._status.update(state="done", published=published, seconds=round(time.monotonic() - started, 3),
                                finished_at=datetime.now(timezone.utc).isoformat())
            log.info("customer-360 rebuilt as version %d: %s", version, self._status)
        except Exception as exc:   # the live version keeps serving; the half-built one is dropped
            log.exception("customer-360 rebuild to version %d failed", version)
            self._status.update(state="failed", error=f"{type(exc).__name__}: {exc}")
            if self.live.store.version != version:
                Customer360Store(self.live.store.db, version=version).drop()

    def _targets(self, sink: Customer360Sink) -> dict:
        live = self.live.sink
        ends = live.store.db.committed_offsets(live.name)
        return {tp: (sink.committed(tp), end) for tp, end in ends.items()}

    def _gap(self, sink: Customer360Sink) -> int:
        return sum(max(0, end - start) for start, end in self._targets(sink).values())

    def _replay(self, sink: Customer360Sink) -> None:
        self._status["replayed"] += replay_range(self.settings, self._targets(sink), sink.handle)

    def _publish_differences(self, old: Customer360Store, sink: Customer360Sink) -> int:
        """Send the 360s that changed, tombstones for customers gone and findings not sent before."""
        changed, gone, old_findings = sink.store.differences(old)
        codec, output = sink.codec, sink.output
        for customer, text in changed:
            view = json.loads(text)
            output.send(CUSTOMER_360_TOPIC, customer,
                        codec.encode_sealed(PROFILE_SCHEMA, to_record(view), f"customer:{customer}"))
            for record in finding_records(customer, view, old_findings):
                output.send(FINDINGS_TOPIC, customer, codec.encode(sink.finding_schema, record))
        for customer in gone:
            output.send(CUSTOMER_360_TOPIC, customer, None)
        output.flush()
        return len(changed) + len(gone)
