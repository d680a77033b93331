"""Bench peer 1: the customer-360 fold as the Faust docs write it, one event at a time into a Table.

``python -m touchstream.bench.peer_faust --bootstrap H:P --registry URL --topic T --expect N
--result out.json --workdir DIR [--app-id ID] [--timeout 600] [--keep-topics]``

Why this shape: it is what a team would build first with faust-streaming, so it
is the honest baseline for "why not just a Faust agent?". An agent iterates the
topic event by event; per event it decodes the Avro value (``AvroCodec``: schema
by id from the registry, cached), reads the customer's serialised profile from a
``Table`` (faust's default: in-memory store backed by a changelog topic the app
declares itself), folds the event (``peer_fold.fold_one``, shared with the
quixstreams peer) and writes the profile back, which sends it to the changelog.

Run in-process as a faust ``Worker`` (web server off) under a fresh app id, so the
consumer group and changelog topic are new and reading starts at offset 0.
"Done" is the ``--expect``-th consumed record (events + membership records, the
topic's total): the result is written, then the worker is stopped as on SIGTERM.
``seconds`` runs from the first record the agent sees to the last fold (start-up,
group join and table recovery are excluded); ``changelog_flushed_seconds`` adds
the wait until the producer has flushed the changelog writes. The run's topics
(changelog, assignor) are deleted afterwards unless ``--keep-topics``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import aiokafka
import faust

from touchstream.bench.peer_fold import (Tally, customer_key, fold_one, is_membership, parse_peer_args, peer_parser,
                                         result)
from touchstream.codec.avro_codec import AvroCodec, DecodeError
from touchstream.bench.peer_topics import delete_topics, topic_partitions
from touchstream.projections import customer_360 as c360

PEER = "faust-per-event"
log = logging.getLogger(__name__)


class Run:
    """One bench run: the app, its agent and table, the tally and how it ended."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.tally = Tally()
        self.error: str | None = None
        self.done = False
        self.flushed = 0.0
        self.codec = AvroCodec(args.registry, auto_register=False)
        self.config = c360.Config()
        partitions = topic_partitions(args.bootstrap, args.topic, "peer_faust")
        datadir = Path(args.workdir) / "faust"
        datadir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(
            args.app_id, broker=f"kafka://{args.bootstrap}", store="memory://", datadir=str(datadir),
            web_enabled=False, consumer_auto_offset_reset="earliest", autodiscover=False,
            topic_partitions=partitions,
        )
        source = self.app.topic(args.topic, key_serializer="raw", value_serializer="raw", partitions=partitions)
        # Keys: the customer ids; values: the serialised Profile. Both through faust's default json codec.
        self.table = self.app.Table("customer-360", default=None, partitions=partitions,
                                    key_type=str, value_type=dict)
        self.app.agent(source, name=f"{args.app_id}.fold")(self.agent)
        self.app.task(self.watchdog)

    async def agent(self, stream) -> None:
        """One event at a time: decode, read the stored profile, fold, write it back."""
        async for event in stream.events():
            if self.done:
                continue
            tally = self.tally
            tally.saw()
            try:
                message = event.message
                if is_membership(message.headers):
                    tally.membership += 1
                else:
                    customer_id = customer_key(message.key)
                    try:
                        record = self.codec.decode(message.value).record
                    except DecodeError as exc:
                        tally.skipped += 1
                        log.warning("undecodable record %s/%s@%s: %s", message.topic, message.partition,
                                    message.offset, exc.reason)
                    else:
                        profile = fold_one(self.table.get(customer_id), record, customer_id, self.config)
                        self.table[customer_id] = c360.to_dict(profile)
                        tally.folded(customer_id)
            except Exception as exc:   # anything but an undecodable value is a bug: fail-stop, never skip
                log.exception("fold failed")
                self._finish(f"{type(exc).__name__}: {exc}")
                continue
            if tally.records >= self.args.expect:
                tally.last = time.perf_counter()
                await self.app.producer.flush()
                self.flushed = time.perf_counter()
                self._finish(None)

    async def watchdog(self) -> None:
        """Fails the run if ``--expect`` records have not been consumed ``--timeout`` s after start."""
        await asyncio.sleep(self.args.timeout)
        if not self.done:
            self._finish(f"timed out after {self.args.timeout:.0f}s with {self.tally.records} of "
                         f"{self.args.expect} records consumed")

    def _finish(self, error: str | None) -> None:
        """Record the outcome, write the result (on success) and stop the worker as SIGTERM would."""
        if self.done:
            return
        self.done, self.error = True, error
        if error is None:
            extra = {"changelog_flushed_seconds": round(self.flushed - self.tally.first, 4),
                     "app_id": self.args.app_id, "changelog_topic": self.table.changelog_topic.get_topic_name()}
            versions = {"faust": faust.__version__, "aiokafka": aiokafka.__version__}
            Path(self.args.result).write_text(json.dumps(result(PEER, self.tally, versions, **extra), indent=2))
        os.kill(os.getpid(), signal.SIGTERM)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = peer_parser("python -m touchstream.bench.peer_faust", __doc__.split("\n")[0], "faust datadir goes here")
    parser.add_argument("--app-id", default=None, help="faust app id (default: unique per run)")
    return parse_peer_args(parser, argv, "app_id", "touchstream-bench-faust")


def _hard_deadline(seconds: float) -> None:
    """Last resort if the worker cannot even start (broker gone): exit non-zero, never hang."""
    def expire() -> None:
        print(f"peer_faust: no clean stop within {seconds:.0f}s; exiting", file=sys.stderr, flush=True)
        os._exit(3)
    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    Path(args.result).unlink(missing_ok=True)
    run = Run(args)
    _hard_deadline(args.timeout + 120)
    worker = faust.Worker(run.app, loglevel="warning", quiet=True)
    worker.spinner = None   # its cursor escapes would land in the bench's log
    try:
        worker.execute_from_commandline()
    except SystemExit:
        pass
    finally:
        if not args.keep_topics:
            delete_topics(args.bootstrap, f"{args.app_id}-", "peer_faust")
    if run.error is not None or not run.done:
        print(f"peer_faust: failed: {run.error or 'the worker stopped before the run finished'}", file=sys.stderr)
        return 1
    print(Path(args.result).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
