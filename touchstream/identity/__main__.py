"""``python -m touchstream.identity``: the identity stage as a faust worker (its records read by a ``BatchSource``).

Start-up order matters: restore the saved state (bumping the epoch), apply every erasure on the
ledger not applied yet, catch up silently on what was published after the last save, and only then
join the consumer group, which resumes at the offsets it committed. Readiness is a file
(``run/identity.ready``) written once partitions are assigned.

The erasure ledger (``touchstream.privacy.erasures``) is read twice: whole at start, before any raw
record is observed, so a rebuild from offset 0 knows every erasure before the first event (each
``SubjectErased`` already applied is skipped by its erasure id); then live, by a second source in its
own consumer group (``touchstream-identity.erasures``), whose batches ``IdentityStage.forget`` takes
under the lock the raw batches take. An erasure read live applies from the moment it is read: what
was observed before is forgotten by it (``projections/identity_forget`` says why both orders agree).
"""

from __future__ import annotations

import logging
import os

import faust

from touchstream.codec.avro_codec import AvroCodec
from touchstream.config import Settings
from touchstream.identity.config_file import load_identity_config
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.private_files import PRIVATE_UMASK
from touchstream.processors.app import create_app, tune_gc
from touchstream.processors.batch_source import BatchSource
from touchstream.processors.identity_erasures import ERASURES_GROUP
from touchstream.processors.identity_resolution import STAGE_NAME, IdentityStage
from touchstream.processors.identity_store_sqlite import open_identity_store
from touchstream.processors.replay import committed_offsets, replay, replay_range
from touchstream.processors.topic_output import TopicOutput
from touchstream.publishing.dead_letters import DeadLetterProducer
from touchstream.topics import ERASURES_TOPIC, load_topics, raw_topics

APP_ID = "touchstream-identity"
log = logging.getLogger("touchstream.identity")


def ready_file(settings: Settings):
    return settings.run_dir / "identity.ready"


def build_stage(settings: Settings) -> IdentityStage:
    ring = TopicKeyRing(settings)
    codec = AvroCodec(settings.registry_url, auto_register=False, keys=ring)
    return IdentityStage.restore(
        open_identity_store(settings.data_dir / "identity"), load_identity_config(settings.identity_config_path),
        codec, TopicOutput(settings, client_id=APP_ID), DeadLetterProducer(settings, consumer=STAGE_NAME),
        max_skew=settings.max_clock_skew, keys=ring,
    )


def forget_erased(settings: Settings, stage: IdentityStage) -> int:
    """Apply every ``SubjectErased`` on the ledger not applied yet, before any raw record is observed
    (the ledger is small: read from offset 0, each erasure applied once, by its id)."""
    before = stage.stats["erasures"]
    replay(settings, [ERASURES_TOPIC], stage.forget, batch=500)
    return stage.stats["erasures"] - before


def catch_up(settings: Settings, stage: IdentityStage, topics: list[str]) -> int:
    """Re-observe what was published between the last save and the committed positions: read whole,
    then observed in one merge (the order the run before the stop observed them in)."""
    committed = committed_offsets(settings, APP_ID, topics)
    ranges = {tp: (stage.offsets.get(tp), end) for tp, end in committed.items()}
    records: list = []
    replay_range(settings, ranges, records.extend)
    return stage.catch_up(records)


def main() -> None:
    os.umask(PRIVATE_UMASK)   # the state store holds every identifier: owner-only, however the process was started
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env().for_service("identity")   # its Kafka principal
    ready = ready_file(settings)
    ready.unlink(missing_ok=True)
    topics = raw_topics(load_topics(settings.topic_config))
    stage = build_stage(settings)
    forgotten = forget_erased(settings, stage)
    caught = catch_up(settings, stage, topics)
    log.info("identity stage restored (epoch %d); %d erasure(s) applied, %d record(s) re-observed since the last save",
             stage.epoch, forgotten, caught)
    stage.save()
    tune_gc()   # after the restore: the graph it loaded is never rescanned
    app = create_app(settings, APP_ID)

    def assigned(partitions) -> None:
        stage.expect(partitions)
        ready.parent.mkdir(parents=True, exist_ok=True)
        ready.write_text("ready\n")

    # No ``resume_at``: identity resumes at its consumer group's commits, the positions of its merge
    # (``stage.positions``: the first record it still holds per partition), made after each batch.
    source = BatchSource(settings, APP_ID, topics, stage.handle, name=STAGE_NAME, batch=5000, on_assigned=assigned,
                         holds=stage.positions, loop=app.loop)
    stage.caught_up, stage.ends_known_at = source.caught_up, source.ends_known_at
    # rerunnable: an erasure is applied whole or not at all, and once only (by its id)
    erasures = BatchSource(settings, ERASURES_GROUP, [ERASURES_TOPIC], stage.forget, name=f"{STAGE_NAME}-erasures",
                           batch=100, rerunnable=True, loop=app.loop)
    try:
        faust.Worker(app, source, erasures, loglevel="warn").execute_from_commandline()
    finally:
        ready.unlink(missing_ok=True)
        stage.save()   # the last facts; its lock waits for a batch still running
        log.warning("identity stage stopped: %s", stage.stats)


if __name__ == "__main__":
    main()
