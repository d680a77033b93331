"""``python -m touchstream.fold``: a customer-360 fold worker in the ``touchstream-fold`` consumer group.

Run as many as ``customer-events`` has partitions (``touchstream up --workers N`` is the plan,
docs/scaling.md); each folds the customers of the partitions it holds into their own stores
and publishes their 360s and findings, as serving's fold does. Each also follows the erasure
ledger (``touchstream.fold.erasures``): read whole before the fold starts, then in its own group.
"""

from __future__ import annotations

import logging
import os

import faust

from touchstream.codec.avro_codec import AvroCodec
from touchstream.config import Settings
from touchstream.fold.erasures import ErasingSinks, ledger_group
from touchstream.fold.worker import APP_ID, partition_opener
from touchstream.identity.config_file import load_identity_config
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.private_files import PRIVATE_UMASK
from touchstream.processors.app import create_app, tune_gc
from touchstream.processors.batch_source import BatchSource
from touchstream.processors.partition_sinks import PartitionSinks
from touchstream.processors.replay import replay
from touchstream.processors.topic_output import TopicOutput
from touchstream.projections.customer_360 import Config
from touchstream.projections.consent_policy_file import load_opt_in
from touchstream.publishing.dead_letters import DeadLetterProducer
from touchstream.topics import CUSTOMER_EVENTS_TOPIC, ERASURES_TOPIC, load_topics

log = logging.getLogger("touchstream.fold")


def main() -> None:
    os.umask(PRIVATE_UMASK)   # the stores hold identifiers and events: owner-only
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env().for_service("fold")   # its Kafka principal
    partitions = {t.name: t.partitions for t in load_topics(settings.topic_config)}[CUSTOMER_EVENTS_TOPIC]
    region = load_identity_config(settings.identity_config_path).default_region   # phones as identity reads them
    ring = TopicKeyRing(settings)
    codec = AvroCodec(settings.registry_url, auto_register=False, keys=ring)
    output = TopicOutput(settings, client_id=APP_ID)
    sinks = ErasingSinks(PartitionSinks(partition_opener(
        settings.data_dir, partitions, codec, output, DeadLetterProducer(settings, consumer="customer_360"),
        Config(region=region, opt_in=load_opt_in(settings.home)))), codec, ring, output)   # consent.toml or the default
    replay(settings, [ERASURES_TOPIC], sinks.read, batch=500)   # every erasure known before a store opens
    name = os.environ.get("TOUCHSTREAM_FOLD_NAME", "fold-1")   # this worker's name in the stack (up --workers)
    ready = settings.run_dir / f"{name}.ready"
    ready.unlink(missing_ok=True)

    def assigned(partitions) -> None:
        sinks.assigned(partitions)
        ready.parent.mkdir(parents=True, exist_ok=True)
        ready.write_text("ready\n")   # joined the group (with no partition when there are more workers)

    app = create_app(settings, f"{APP_ID}-{name}")   # its own faust data folder; the group is shared
    source = BatchSource(settings, APP_ID, [CUSTOMER_EVENTS_TOPIC], sinks.handle, name="customer_360", batch=5000,
                         resume_at=sinks.committed, on_assigned=assigned, on_revoked=sinks.revoked,
                         cooperative=True, loop=app.loop)
    ledger = BatchSource(settings, ledger_group(name), [ERASURES_TOPIC], sinks.read, name="customer_360-erasures",
                         batch=100, resume_at=sinks.resume_at, loop=app.loop)
    tune_gc()
    try:
        faust.Worker(app, source, ledger, loglevel="warn").execute_from_commandline()
    finally:
        ready.unlink(missing_ok=True)
        sinks.close()


if __name__ == "__main__":
    main()
