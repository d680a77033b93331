"""Feeding a stage's handler batches of records with librdkafka (confluent-kafka), one thread per stage.

Why not faust agents: measured on this machine (``touchstream bench``, the bench's
notes in the README), a faust agent's ``take_events`` spends about 0.37 ms of CPU
per record before the handler sees it, i.e. at most ~2.7k records/s on one core, and
every agent over the same topics pays it again; confluent-kafka's ``consume()``
hands over a record for about 0.013 ms. So the stages read with confluent-kafka, and
faust's worker still runs the process: it starts and stops every source (each is a
``mode.Service``), handles the signals and runs the timers.

Where a stage resumes: a sink keeps its offsets in DuckDB, in the transaction of its
rows, so ``resume_at`` seeks every assigned partition there and the Kafka group's commits
are only for lag monitoring; a stage without ``resume_at`` (identity) resumes at its group's
commits, which are made after each batch it handled.
Outages are waited out, bugs stop the process. A broker or registry that is away makes the
handler raise an outage (``outages.outage_of``): the batch is handled again after a backoff
(capped at 30 s, logged with the outage's duration) for as long as the outage lasts, because
the process is fine and its query API and timers should stay up. Anything else the handler
raises is fail-stop, as before: the process exits before any offset past the stage's durable
state can be committed, and the supervisor (``touchstream.stack.supervisor_daemon``) restarts it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

from confluent_kafka import OFFSET_END, Consumer, KafkaError, TopicPartition
from mode import Service

from touchstream.backoff import Backoff
from touchstream.config import Settings
from touchstream.processors.consumer_io import close_in_background, commit, consumer_config, next_positions, to_records
from touchstream.processors.group_watch import GroupWatch
from touchstream.processors.outages import BROKER, BrokerWatch, outage_of
from touchstream.processors.partition_ends import PartitionEnds
from touchstream.processors.records import RawRecord

log = logging.getLogger(__name__)
Partition = tuple[str, int]


class BatchSource(Service):
    """``handle(records)`` on batches of up to ``batch`` records from ``topics``, waiting at most
    ``within`` seconds to fill one. ``resume_at(partition)`` gives the offset to resume at (the sink's
    own); ``on_assigned(partitions)`` is told every assignment, before ``resume_at`` is asked (so it may
    open the partitions' state), and ``on_revoked(partitions)`` every revocation, between batches.
    ``cooperative``: the group rebalances incrementally (cooperative-sticky), so a rebalance revokes
    only the partitions that move, and the others keep their open state. ``rerunnable`` (default: a
    stage with ``resume_at``, whose rows and offsets share one transaction) says a failed batch left no
    trace."""

    def __init__(self, settings: Settings, group: str, topics: list[str], handle: Callable[[list[RawRecord]], None],
                 *, name: str, batch: int = 5000, within: float = 0.25,
                 resume_at: Callable[[Partition], int] | None = None,
                 on_assigned: Callable[[list[Partition]], None] | None = None, rerunnable: bool | None = None,
                 holds: Callable[[], dict[Partition, int]] | None = None,
                 on_revoked: Callable[[list[Partition]], None] | None = None, cooperative: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.group, self.topics, self.handle = settings, group, topics, handle
        self.name, self.batch, self.within = name, batch, within
        self.resume_at, self.on_assigned, self.on_revoked = resume_at, on_assigned, on_revoked
        self.cooperative = cooperative
        self.rerunnable = resume_at is not None if rerunnable is None else rerunnable
        # A handler that holds records back (identity's merge) gives the positions to commit, and is told
        # which partitions are at their end (``caught_up``) and whenever one reaches it.
        self.holds = holds
        self._next: dict[Partition, int] = {}   # per partition: the offset after the last record consumed
        self._done: dict[Partition, int] = {}   # per partition owned: the position to commit (handled up to)
        self._owned: set[Partition] = set()     # assigned and neither revoked nor lost since
        self._consumer: Consumer | None = None
        self.ends = PartitionEnds(self._latest)   # a holding handler's: each partition's end, asked of the broker
        self.group_watch = GroupWatch(lambda: BROKER.since is None)   # a membership stuck out of steady state
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.handled = 0

    @staticmethod
    def outage_backoff() -> Backoff:
        """Delays between attempts at a batch while an outage lasts."""
        return Backoff(base=0.5, cap=30.0)

    @property
    def label(self) -> str:
        return f"source {self.name}"

    async def on_start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"source-{self.name}", daemon=True)
        self._thread.start()

    async def on_stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await self.loop.run_in_executor(None, self._thread.join, 120.0)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():   # once more only when ``_consume`` gave up a stuck consumer
                consumer = self._consumer = self._subscribed()
                try:
                    self._consume(consumer)
                finally:
                    if self._stop.is_set():
                        consumer.close()
                    else:
                        close_in_background(consumer, self.label)
        except BaseException:
            log.exception("%s failed; exiting so no offset is committed past its durable state", self.label)
            logging.shutdown()
            os._exit(70)

    def _subscribed(self) -> Consumer:
        broker = BrokerWatch(self.name)
        config = consumer_config(self.settings, self.group, broker)
        config["stats_cb"] = lambda text: (broker.on_stats(text), self.group_watch.on_stats(text))
        if self.cooperative:
            config["partition.assignment.strategy"] = "cooperative-sticky"
        consumer = Consumer({**config, "enable.partition.eof": self.holds is not None})
        consumer.subscribe(self.topics, on_assign=self._assign, on_revoke=self._revoke, on_lost=self._lose)
        return consumer

    def _give_up(self) -> None:
        """The consumer's membership is stuck (``group_watch``): its partitions are no longer this
        source's (the broker dropped the member), so they are forgotten uncommitted, as if lost."""
        log.warning("%s: consumer group %s stuck out of its steady state for %.0fs (librdkafka: %s); "
                    "a new consumer takes over", self.label, self.group, self.group_watch.stuck_after,
                    self.group_watch.last)
        owned = sorted(self._owned)
        self._forget(set(owned))
        if self.on_revoked is not None and owned:
            self.on_revoked(owned)
        self.group_watch.renewed()

    def _consume(self, consumer: Consumer) -> None:
        committed_at = time.monotonic()
        while not self._stop.is_set():
            if self.group_watch.stuck():
                self._give_up()
                return
            messages = consumer.consume(self.batch, self.within)
            ended = self._note_ends(messages)
            records = to_records(messages)
            changed = False
            if records or ended:
                BROKER.recovered()   # the broker answers
            if records or ended or self.holds is not None:
                # (a holding handler is called anyway: a partition may have settled at its end)
                if self.holds is not None:
                    self.ends.refresh(self._owned)
                if not self._handle(records):
                    break   # asked to stop during an outage: this batch was not handled, so not committed
                self.handled += len(records)
                changed = self._track(self._positions(records))
            # Again now and then when nothing changed, idle included: an asynchronous commit lost to a broker
            # restart or a rebalance is not retried by librdkafka, identity resumes at these, and lag
            # monitoring (``wait_pipeline``) reads them.
            if self._done and (changed or time.monotonic() - committed_at > 5.0):
                committed_at = time.monotonic()
                commit(consumer, self._done_positions(), asynchronous=True)
        if self._done:
            commit(consumer, self._done_positions(), asynchronous=False)

    def _track(self, latest: list[TopicPartition]) -> bool:
        """Note the positions handled; True when one moved. A holding handler's positions count only for
        partitions owned (records come from owned ones only).

        Why: a holding handler gives positions for every partition it ever held, and while librdkafka
        gives up a lost assignment it waits for every commit in flight before it rejoins the group; a
        commit made while no coordinator answers waits there up to session.timeout.ms. So committing
        unowned partitions every 5 s kept a commit in flight after a broker restart and identity did not
        rejoin (nothing logged; every stage behind it starved: the broker-restart fault case)."""
        moved = False
        for tp in latest:
            key = (tp.topic, tp.partition)
            if self.holds is not None and key not in self._owned:
                continue
            moved = moved or self._done.get(key) != tp.offset
            self._done[key] = tp.offset
        return moved

    def _done_positions(self, only=None) -> list[TopicPartition]:
        return [TopicPartition(t, p, o) for (t, p), o in sorted(self._done.items()) if only is None or (t, p) in only]

    def caught_up(self, partition: Partition) -> bool:
        """Every record of the partition up to the end the broker last gave (``ends``) has been consumed:
        it has nothing more to deliver now. Why not librdkafka's end-of-partition event, or its cached
        high watermark: both are as of that partition's last fetch, which after a broker restart can be
        from before the outage (``partition_ends``); records fetched since may also wait in librdkafka's
        queue, behind other partitions' records."""
        return self.ends.at_end(partition, self._next.get(partition))

    def ends_known_at(self) -> float | None:
        """The moment (epoch seconds) the ends ``caught_up`` uses were all given by the broker."""
        return self.ends.known_at

    def _latest(self, partitions: list[Partition]) -> dict[Partition, int]:
        """Every partition's end in one ListOffsets request (timestamp -1: the latest offset)."""
        if self._consumer is None:
            return {}
        asked = [TopicPartition(t, p, OFFSET_END) for t, p in partitions]
        answered = self._consumer.offsets_for_times(asked, timeout=1.0)
        return {(tp.topic, tp.partition): tp.offset for tp in answered if tp.error is None and tp.offset >= 0}

    def _note_ends(self, messages) -> bool:
        """Track how far each partition was consumed; True when one reached its end in ``messages``
        (an end-of-partition event gives the position of a partition nothing was consumed from yet)."""
        if self.holds is None:
            return False
        ended = False
        for m in messages:
            tp, error = (m.topic(), m.partition()), m.error()
            if error is None:
                self._next[tp] = m.offset() + 1
            elif error.code() == KafkaError._PARTITION_EOF:
                self._next[tp] = max(self._next.get(tp, 0), m.offset())
                ended = True
        return ended

    def _positions(self, records: list[RawRecord]) -> list[TopicPartition]:
        if self.holds is None:
            return next_positions(records)
        return [TopicPartition(t, p, o) for (t, p), o in sorted(self.holds().items())]

    def _handle(self, records: list[RawRecord]) -> bool:
        """``handle(records)``, again after a backoff while it fails on an outage; False if asked to stop
        meanwhile. Anything but an outage is raised (fail-stop)."""
        delays = self.outage_backoff()
        while True:
            try:
                self.handle(records)
                return True
            except Exception as exc:
                outage = outage_of(exc, rerunnable=self.rerunnable)
                if outage is None:
                    raise
                outage.failed(f"{self.label}: {type(exc).__name__}: {exc}")
            if self._stop.wait(delays.next_delay()):
                return False

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self._consumer:   # one given up on (``_give_up``), closing: nothing is its any more
            return
        if self.on_assigned is not None:
            self.on_assigned([(tp.topic, tp.partition) for tp in partitions])
        if self.resume_at is not None:
            for tp in partitions:
                tp.offset = self.resume_at((tp.topic, tp.partition))
        if self.cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        for tp in partitions:
            self._next.pop((tp.topic, tp.partition), None)   # unknown until a record or an end event says
        self._owned.update((tp.topic, tp.partition) for tp in partitions)

    def _revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Called from inside ``consume`` (this thread), so never during a batch: the handler's state for
        these partitions is at rest, with its offsets in its own transaction. Their group commit is made
        now, while this member still owns them (a later one could move the next owner's back)."""
        if consumer is not self._consumer:
            return self._unassign(consumer, partitions)
        gone = {(tp.topic, tp.partition) for tp in partitions}
        if gone & self._done.keys():
            commit(consumer, self._done_positions(gone), asynchronous=False)
        self._forget(gone)
        self._release(consumer, partitions)

    def _lose(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions lost (the session expired): another member may own them already, so no commit."""
        if consumer is not self._consumer:
            return self._unassign(consumer, partitions)
        self._forget({(tp.topic, tp.partition) for tp in partitions})
        self._release(consumer, partitions)

    def _forget(self, gone: set[Partition]) -> None:
        self._owned -= gone
        self.ends.forget(gone)
        for key in gone:
            self._done.pop(key, None)

    def _release(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.on_revoked is not None:
            self.on_revoked([(tp.topic, tp.partition) for tp in partitions])
        self._unassign(consumer, partitions)

    def _unassign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.cooperative:
            consumer.incremental_unassign(partitions)
        else:
            consumer.unassign()

