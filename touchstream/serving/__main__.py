"""``python -m touchstream.serving``: the process that owns DuckDB.

A faust worker runs the process: one ``BatchSource`` thread per input, each resuming
at the offsets its sinks committed in DuckDB, and the SLA timer. The raw topics are
read and decoded once for the interaction log and the complaint sink (``raw_fanout``). The query HTTP API
runs in a uvicorn thread (uvicorn leaves signals to the main thread there), so
SIGTERM stops the worker cleanly and the DuckDB file is closed on the way out.
"""

from __future__ import annotations

import logging
import os
import threading

import faust
import uvicorn

from touchstream.codec.avro_codec import AvroCodec
from touchstream.config import Settings
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.private_files import PRIVATE_UMASK
from touchstream.identity.config_file import load_identity_config
from touchstream.processors import customer_360, interaction_log
from touchstream.processors.app import create_app, timer_task, tune_gc
from touchstream.processors.batch_source import BatchSource
from touchstream.processors.complaint_customers import Customer360Directory
from touchstream.processors.complaint_resolution import SINK_NAME as COMPLAINT_SINK
from touchstream.processors.complaint_resolution import ComplaintSink
from touchstream.processors.customer_360_lookup import LiveCustomer360
from touchstream.processors.customer_360_rebuild import Rebuild
from touchstream.processors.customer_360_rows import ProfileRowsSink
from touchstream.processors.erasure_stage import SINK_NAME as ERASURE_SINK
from touchstream.processors.erasure_stage import SWEEP_INTERVAL as ERASURE_SWEEP_INTERVAL
from touchstream.processors.erasure_report import ErasureReport
from touchstream.processors.erasure_stage import ErasureStage
from touchstream.processors.identity_decisions import IdentityDecisionSink
from touchstream.processors.raw_fanout import RawFanout, RecentDecodes, SharingCodec
from touchstream.processors.topic_output import TopicOutput
from touchstream.projections.complaint_resolution import Config as ComplaintConfig
from touchstream.projections.customer_360 import Config
from touchstream.projections.consent_policy_file import load_opt_in
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore, load_sql
from touchstream.publishing.api_keys import ApiKeyStore
from touchstream.publishing.dead_letters import DeadLetterProducer
from touchstream.serving.access import ensure_operator_key, pii_salt
from touchstream.serving.http_app import build_api
from touchstream.serving.erasure_api import erasure_router
from touchstream.serving.masked_views import install_masked_schema
from touchstream.serving.privacy_api import privacy_router
from touchstream.serving.retention_api import RETENTION_INTERVAL, expiring_on_write, retention_expiry, retention_router
from touchstream.topics import (CUSTOMER_360_TOPIC, CUSTOMER_EVENTS_TOPIC, DECISIONS_TOPIC, ERASURES_TOPIC, load_topics,
                                raw_topics)

WORKERS_REBUILD = ("the customer-360 is folded by fold workers (TOUCHSTREAM_FOLD_WORKERS): stop them, delete "
                   "data/fold and start them again to rebuild it from offset 0")


def main() -> None:
    os.umask(PRIVATE_UMASK)   # owner-only files (data, logs, secrets), however the process was started
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env().for_service("serving")   # its Kafka principal
    store = DuckDBStore(settings.duckdb_path)
    ring = TopicKeyRing(settings)   # serving opens what it reads, seals what it derives, and deletes on erasure
    codec = AvroCodec(settings.registry_url, auto_register=False, keys=ring)
    recent = RecentDecodes()   # raw records decoded once: the 360 finds identity's forwards of them here
    expiry = retention_expiry(settings, store, keys=ring)   # topics.toml [retention]: on write, every few minutes, on request
    sink = expiring_on_write(interaction_log.InteractionLogSink(
        store, codec, DeadLetterProducer(settings, consumer=interaction_log.SINK_NAME), max_skew=settings.max_clock_skew,
    ), expiry)
    app = create_app(settings)
    raw = raw_topics(load_topics(settings.topic_config))
    profiles = Customer360Store(store)
    region = load_identity_config(settings.identity_config_path).default_region   # phones as identity reads them
    workers = settings.fold_workers   # > 0: they fold the 360; serving indexes and reads their 360s
    live = LiveCustomer360(customer_360.Customer360Sink(
        profiles, SharingCodec(codec, recent), TopicOutput(settings, client_id="touchstream-serving"),
        DeadLetterProducer(settings, consumer="customer_360"), Config(region=region, opt_in=load_opt_in(settings.home)),
        folds=not workers,
    ))
    complaints = ComplaintSink(
        store, SharingCodec(codec, recent), DeadLetterProducer(settings, consumer=COMPLAINT_SINK),
        output=TopicOutput(settings, client_id="touchstream-complaints"), region=region,
        customers=Customer360Directory(live), idle_seconds=settings.sla_idle_seconds,
        max_skew=settings.max_clock_skew, config=ComplaintConfig(first_contact_grace=settings.fcr_grace),
    )
    live.listen(complaints.reconcile)   # a merge or unlink in the 360 moves cases to their new customer
    store.execute_script(load_sql("complaint_customer_360"))   # the closed loop reads the 360's touchmap
    store.execute_script(load_sql("analyst_views"))            # the brief's questions, over every projection
    timer_task(app, COMPLAINT_SINK, complaints.tick, interval=2.0)   # SLA clocks move on while records pause
    timer_task(app, "retention", expiry.tick, interval=RETENTION_INTERVAL)
    decisions = IdentityDecisionSink(store, codec, DeadLetterProducer(settings, consumer="identity_decisions"))
    erasures = ErasureStage(store, codec, ring, TopicOutput(settings, client_id="touchstream-erasures"),
                            DeadLetterProducer(settings, consumer=ERASURE_SINK), live)
    timer_task(app, "erasure_sweep", erasures.sweep, interval=ERASURE_SWEEP_INTERVAL)
    ready, waiting = threading.Event(), set()

    def source(name: str, topics: list[str], stage, batch: int = 5000, assigned=lambda partitions: None):
        def on_assigned(partitions) -> None:
            assigned(partitions)
            waiting.discard(name)
            if not waiting:
                ready.set()
        waiting.add(name)
        return BatchSource(settings, f"touchstream-serving.{name}", topics, stage.handle, name=name, batch=batch,
                           resume_at=stage.committed, on_assigned=on_assigned, loop=app.loop)

    fanout = RawFanout(codec, [sink, complaints], max_skew=settings.max_clock_skew, recent=recent)
    sources = [
        source("raw", raw, fanout, batch=2000, assigned=complaints.expect),
        source("customer_360", [CUSTOMER_EVENTS_TOPIC], live),
        source("identity_decisions", [DECISIONS_TOPIC], decisions),
        source("erasures", [ERASURES_TOPIC], erasures, batch=100),
    ]
    if workers:
        rows = ProfileRowsSink(profiles, codec, DeadLetterProducer(settings, consumer="customer_360_rows"))
        rows.on_commit = lambda changed: live.cache.invalidate(changed, set())
        sources.append(source("customer_360_rows", [CUSTOMER_360_TOPIC], rows))

    tune_gc()
    keys = ApiKeyStore(settings.api_keys_path)
    ensure_operator_key(settings)             # the local CLI's key ($TOUCHSTREAM_HOME/operator.key)
    with store.transaction() as con:          # after every sink and view script: the analysts' masked views
        install_masked_schema(con, pii_salt(settings))
    rebuild = Rebuild(live, settings, refused=WORKERS_REBUILD if workers else None)
    rebuild.before_switch = erasures.reapply   # a rebuilt 360 forgets the erased customers before it is seen
    api = build_api(store, ready=ready, profiles=live, rebuild=rebuild, complaints=complaints, keys=keys)
    api.include_router(retention_router(expiry, keys))
    report = ErasureReport(settings, store, codec, ring, settings.data_dir / "identity")
    api.include_router(erasure_router(erasures, keys, audit=report))
    api.include_router(privacy_router(codec, keys))   # the decrypt scope: pii keys open sealed values
    server = uvicorn.Server(uvicorn.Config(api, host=settings.host, port=settings.query_port, log_level="warning"))
    threading.Thread(target=server.run, name="query-http", daemon=True).start()
    try:
        faust.Worker(app, *sources, loglevel="warn").execute_from_commandline()
    finally:
        server.should_exit = True
        store.close()


if __name__ == "__main__":
    main()
