"""Bench peer 2: the customer-360 fold in quixstreams, with the 360s queryable in DuckDB.

``<quix venv>/bin/python -m touchstream.bench.peer_quix --bootstrap H:P --registry URL --topic T
--expect N --result out.json --workdir DIR [--group ID] [--timeout 600] [--keep-topics]``

Why this shape: it is the closest off-the-shelf answer to what Touchstream does
(a stateful fold whose result an analyst can query in DuckDB). A stateful
``apply`` folds each event onto the customer's serialised profile in quix's
default state (RocksDB under ``--workdir`` + changelog topic), using
``peer_fold.fold_one`` like the faust peer; a ``BatchingSink`` upserts one row
per changed customer into a DuckDB file at each checkpoint (quix's default
commit interval), so DuckDB holds what the last checkpoint committed.

Runs under its own venv (``peer_env.ensure_quix_python``): quixstreams pins an
older confluent-kafka than Touchstream. Fresh consumer group per run, so it reads
from offset 0. "Done": once ``--expect`` records (events + membership) are
consumed the app is stopped, and quix's shutdown commits a final checkpoint,
which flushes the sink. ``seconds`` runs from the first record the app sees to
the end of the DuckDB write that persisted the last fold. The run's state changelog
topic is deleted afterwards (it holds a profile per event) unless ``--keep-topics``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import warnings
from pathlib import Path

# confluent-kafka's schema_registry imports authlib, which warns (with its own "always"
# filter) that httpx is deprecated: recorded and dropped, not printed into the bench log.
with warnings.catch_warnings(record=True):
    import confluent_kafka
    import duckdb
    import quixstreams
    from quixstreams import Application, State
    from quixstreams.sinks import BatchingSink, SinkBatch

    from touchstream.bench.peer_fold import (Tally, customer_key, duckdb_row, fold_one, is_membership,
                                             parse_peer_args, peer_parser, result)
    from touchstream.bench.peer_topics import delete_topics, topic_partitions
    from touchstream.codec.avro_codec import AvroCodec, DecodeError
    from touchstream.projections import customer_360 as c360

PEER = "quixstreams"
STATE_KEY = "profile"
log = logging.getLogger(__name__)

DDL = """CREATE TABLE IF NOT EXISTS customer_360 (
    customer_id VARCHAR PRIMARY KEY, events INTEGER, last_seen TIMESTAMPTZ, profile JSON)"""
UPSERT = "INSERT OR REPLACE INTO customer_360 VALUES (?, ?, ?, ?)"


class DuckDBSink(BatchingSink):
    """Upserts the newest profile of every customer in a checkpoint's batch, one transaction per batch.

    The batch holds one item per folded event; only the last per key becomes a row,
    so DuckDB gets one row per changed customer, not one per event."""

    def __init__(self, path: Path, tally: Tally):
        super().__init__()
        self.path, self.tally = path, tally
        self.persisted = 0          # folds whose result is now in DuckDB
        self.writes = 0
        self.con: duckdb.DuckDBPyConnection | None = None

    def setup(self) -> None:
        self.con = duckdb.connect(str(self.path))
        self.con.execute(DDL)

    def write(self, batch: SinkBatch) -> None:
        newest: dict[str, c360.Profile] = {}
        for item in batch:
            newest[item.key] = item.value
        rows = [duckdb_row(customer, profile) for customer, profile in newest.items()]
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.executemany(UPSERT, rows)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.persisted += batch.size
        self.writes += 1
        if self.persisted >= self.tally.events:
            self.tally.last = time.perf_counter()

    def rows(self) -> int:
        return self.con.execute("SELECT count(*) FROM customer_360").fetchone()[0]

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None


def build(args: argparse.Namespace, tally: Tally):
    """The application: topic -> stateful fold -> DuckDB sink. Returns (app, sink)."""
    workdir = Path(args.workdir)
    app = Application(broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest",
                      state_dir=str(workdir / "state"), loglevel="WARNING")
    topic = app.topic(args.topic, key_deserializer="str", value_deserializer="bytes")
    codec = AvroCodec(args.registry, auto_register=False)
    config = c360.Config()
    expect = args.expect

    def fold(value: bytes, key: str, timestamp: int, headers, state: State):
        """One record: count it; fold an event onto the stored profile; None for anything not folded."""
        tally.saw()
        profile = None
        if is_membership(headers):
            tally.membership += 1
        else:
            customer_id = customer_key(key)
            try:
                record = codec.decode(value).record
            except DecodeError as exc:
                tally.skipped += 1
                log.warning("undecodable record for %s: %s", customer_id, exc.reason)
            else:
                profile = fold_one(state.get(STATE_KEY), record, customer_id, config)
                state.set(STATE_KEY, c360.to_dict(profile))
                tally.folded(customer_id)
        if tally.records >= expect:
            app.stop()   # the loop ends after this record; shutdown commits the final checkpoint
        return profile

    sink = DuckDBSink(workdir / "quix-customer-360.duckdb", tally)
    sdf = app.dataframe(topic)
    sdf = sdf.apply(fold, stateful=True, metadata=True).filter(lambda profile: profile is not None)
    sdf.sink(sink)
    return app, sink


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = peer_parser("python -m touchstream.bench.peer_quix", __doc__.split("\n")[0], "state dir and DuckDB file go here")
    parser.add_argument("--group", default=None, help="consumer group (default: unique per run)")
    return parse_peer_args(parser, argv, "group", "touchstream-bench-quix")


class PeerFailed(RuntimeError):
    """The run did not finish: timed out, stopped early, or folds missing from DuckDB."""


def run(args: argparse.Namespace) -> dict:
    """One run to the end; the result JSON as a dict, or ``PeerFailed``."""
    tally = Tally()
    app, sink = build(args, tally)
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        app.stop(fail=True)

    watchdog = threading.Timer(args.timeout, expire)
    watchdog.daemon = True
    watchdog.start()
    hard = threading.Timer(args.timeout + 120, lambda: os._exit(3))   # if even stopping hangs
    hard.daemon = True
    hard.start()
    try:
        try:
            app.run()
        finally:
            watchdog.cancel()
        stopped = time.perf_counter()
        if timed_out.is_set() or tally.records < args.expect:
            how = f"timed out after {args.timeout:.0f}s" if timed_out.is_set() else "stopped"
            raise PeerFailed(f"{how} with {tally.records} of {args.expect} records consumed")
        if sink.persisted < tally.events or tally.last is None:
            raise PeerFailed(f"only {sink.persisted} of {tally.events} folds reached DuckDB")
        versions = {"quixstreams": quixstreams.__version__, "confluent_kafka": confluent_kafka.__version__}
        return result(PEER, tally, versions, duckdb_rows=sink.rows(), duckdb_writes=sink.writes,
                      shutdown_seconds=round(stopped - tally.first, 4), group=args.group)
    finally:
        hard.cancel()
        sink.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "quix-customer-360.duckdb").unlink(missing_ok=True)
    Path(args.result).unlink(missing_ok=True)
    topic_partitions(args.bootstrap, args.topic, "peer_quix")   # fail fast on a missing topic
    try:
        out = run(args)
    except Exception as exc:
        print(f"peer_quix: failed: {exc if isinstance(exc, PeerFailed) else repr(exc)}", file=sys.stderr)
        return 1
    finally:
        if not args.keep_topics:
            delete_topics(args.bootstrap, f"changelog__{args.group}--", "peer_quix")
    Path(args.result).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
