"""Micro-bench of the customer-360 fold stage, in process: CPU µs per event, split by stage.

Why a script and not a test: it times things (tests never assert a time), and it
runs minutes, not seconds. Why in ``tests``: it reuses the test codec (no registry
server) and the pipeline harness (the real ``IdentityStage`` routes demo events
to customers and writes the ``customer-events`` records the sink consumes).

    .venv/bin/python -m tests.c360_bench --customers 10000 --events 200000

The records are prepared once per size (generate, validate, encode, identity) and
kept in ``--cache`` as a stream of pickled batches, so a run reads one batch at a
time and the peak RSS it prints is the sink's, not the prepared data's. Stage
times are self times (a timed call inside another is not counted twice); "other"
is what no label covers (the transaction's commit, batching, cache upkeep).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import inspect
import multiprocessing
import pickle
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from tests.local_codec import LocalCodec
from tests.pipeline_harness import (EVENT_PARTITIONS, CustomerEventsTopic, append, identity_stage,
                                    partition_of, validated)
from touchstream.bench.traffic_producer import demo_events
from touchstream.processors.customer_360 import Customer360Sink
from touchstream.processors.records import RawRecord
from touchstream.processors.topic_output import MemoryOutput
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.projections.identity_resolution import IdentityConfig
from touchstream.publishing.dead_letters import AlreadySentDeadLetters
from touchstream.topics import CUSTOMER_EVENTS_TOPIC

# (module, attribute, label): what to time. A name a version of the code lacks is skipped.
TIMED = [
    ("touchstream.processors.customer_360", "Customer360Sink._parse", "parse"),
    ("touchstream.processors.customer_360", "decode_event",
     lambda stack, args: "decode" if stack and stack[-1][0] == "parse" else "refold: decode"),
    ("touchstream.processors.customer_360", "route", "claims: route"),
    ("touchstream.projections.customer_360_store", "Customer360Store.claims",
     lambda stack, args: f"claims: {sys._getframe(2).f_code.co_name.strip('_')}"),
    ("touchstream.projections.customer_360_store", "Customer360Store.put_claims", "claims: put"),
    ("touchstream.projections.customer_360_store", "Customer360Store.add_events", "db: events"),
    ("touchstream.projections.customer_360_store", "Customer360Store.history", "refold: db history"),
    ("touchstream.projections.customer_360", "fold",   # onto a profile, onto a new one, or all of a history
     lambda stack, args: "refold: fold" if len(args) < 4 else "fold" if args[3] is not None else "fold: first"),
    ("touchstream.projections.customer_360", "view", "view"),
    ("touchstream.projections.customer_360", "typed_view", "view"),
    ("touchstream.processors.customer_360", "summary_row", "summary"),
    ("touchstream.projections.customer_360", "view_json", "json"),
    ("touchstream.projections.customer_360", "view_fingerprint", "fingerprint"),
    ("touchstream.processors.customer_360", "to_record", "to_record"),
    ("touchstream.codec.avro_codec", "AvroCodec.encode", "avro encode"),
    ("touchstream.processors.customer_360", "Customer360Sink._encode_360", "avro encode"),
    ("touchstream.processors.customer_360", "finding_records", "findings"),
    ("touchstream.projections.customer_360_store", "Customer360Store.finding_ids", "findings"),
    ("touchstream.projections.customer_360_store", "Customer360Store.put_profiles", "db: profiles"),
    ("touchstream.projections.customer_360_fold_states", "FoldStates.take", "db: state take"),
    ("touchstream.projections.customer_360_fold_states", "FoldStates.put", "db: state put"),
    ("touchstream.projections.customer_360_fold_states", "unpack", "state: unpack"),
    ("touchstream.projections.customer_360_fold_states", "pack", "state: pack"),
    ("touchstream.projections.duckdb_store", "DuckDBStore.save_offsets", "db: offsets"),
]


class Clock:
    """Self CPU time per label: entering a timed call pauses the one it was called from."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list] = []

    def wrap(self, fn, label):
        def timed(*args, **kw):
            name = label(self._stack, args) if callable(label) else label
            now = time.process_time()
            if self._stack:
                outer = self._stack[-1]
                self.cpu[outer[0]] += now - outer[1]
            self._stack.append([name, now])
            try:
                return fn(*args, **kw)
            finally:
                label_, start = self._stack.pop()
                now = time.process_time()
                self.cpu[label_] += now - start
                self.calls[label_] += 1
                if self._stack:
                    self._stack[-1][1] = now
        return timed

    def install(self) -> None:
        for module, attr, label in TIMED:
            owner, name = importlib.import_module(module), attr
            if "." in attr:
                cls, name = attr.split(".")
                owner = getattr(owner, cls, None)
            if owner is not None and hasattr(owner, name):
                timed = self.wrap(getattr(owner, name), label)
                static = isinstance(inspect.getattr_static(owner, name), staticmethod)
                setattr(owner, name, staticmethod(timed) if static else timed)


class TimedCommits:
    """The store's write connection, with COMMIT timed as its own stage (it includes DuckDB's checkpoints)."""

    def __init__(self, con, clock: Clock) -> None:
        self._con, self.execute_commit = con, clock.wrap(con.execute, "db: commit")

    def execute(self, sql, *args):
        return (self.execute_commit if sql == "COMMIT" else self._con.execute)(sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


def prepare(path: Path, customers: int, events: int, seed: int, batch: int) -> None:
    """Demo events -> raw Avro records -> the real identity stage -> customer-events batches, pickled."""
    codec, produced = LocalCodec(), MemoryOutput()
    stage = identity_stage(path.parent / f"identity-{path.stem}", IdentityConfig(), codec, produced)
    stream, _days = demo_events(events, customers, seed)
    raw: dict = defaultdict(list)
    chunk: list[RawRecord] = []
    for valid in validated(list(stream)):
        append(raw, valid.topic, 0, valid.key, codec.encode(valid.schema, valid.record), [])
        chunk.append(raw[(valid.topic, 0)][-1])
        if len(chunk) == batch:
            stage.handle(chunk)
            chunk = []
    stage.handle(chunk)
    topic = CustomerEventsTopic(MemoryOutput())
    records: list[RawRecord] = []
    for out_topic, key, value, headers in produced.records:
        if out_topic == CUSTOMER_EVENTS_TOPIC:
            part = partition_of(key, EVENT_PARTITIONS)
            append(topic.logs, out_topic, part, key, value, headers)
            records.append(topic.logs[(out_topic, part)][-1])
    with path.open("wb") as f:
        for i in range(0, len(records), batch):
            pickle.dump(records[i:i + batch], f, protocol=pickle.HIGHEST_PROTOCOL)


def batches(path: Path):
    with path.open("rb") as f:
        while True:
            try:
                yield pickle.load(f)
            except EOFError:
                return


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20


def run(path: Path, cache_size: int | None, plain: bool, warmup: float, keep: Path | None = None) -> None:
    """Feed every batch; the figures count the batches after the first ``warmup`` share of them.
    ``keep``: a folder to leave the DuckDB file in (else a temporary one)."""
    clock, codec = Clock(), LocalCodec()
    if not plain:
        clock.install()
    total = sum(1 for _ in batches(path))
    with tempfile.TemporaryDirectory() as tmp:
        db = DuckDBStore((keep or Path(tmp)) / "bench.duckdb")
        if not plain:
            db._con = TimedCommits(db._con, clock)
        kw = {} if cache_size is None else {"cache_size": cache_size}
        sink = Customer360Sink(Customer360Store(db), codec, MemoryOutput(), AlreadySentDeadLetters(), **kw)
        start_rss, cpu, wall, before = rss_mb(), 0.0, 0.0, {}
        for n, batch in enumerate(batches(path)):
            if n == int(total * warmup):
                clock.cpu.clear(), clock.calls.clear()
                before = {**sink.stats, **getattr(getattr(sink, "cache", None), "stats", {})}
            c0, w0 = time.process_time(), time.perf_counter()
            sink.handle(batch)
            if n >= int(total * warmup):
                cpu += time.process_time() - c0
                wall += time.perf_counter() - w0
            sink.output.records.clear()   # the broker keeps them, not serving
        stats = {**sink.stats, **getattr(getattr(sink, "cache", None), "stats", {})}
        report(clock, {k: v - before.get(k, 0) for k, v in stats.items()}, cpu, wall, start_rss)
        if not plain:
            print(memory(db, sink))
        db.close()


def memory(db: DuckDBStore, sink: Customer360Sink) -> str:
    """Where the resident memory is: DuckDB's buffers, and a sampled estimate of the cached profiles."""
    cur = db.cursor()
    duck = cur.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0] or 0
    cur.close()
    cache = getattr(sink, "cache", None)
    cached = list((cache._lru if cache is not None else sink.__dict__.get("_cache", {})).values())
    sample = cached[:: max(1, len(cached) // 300)]
    per = sum(deep_size(p) for p in sample) / max(1, len(sample))
    return (f"memory: duckdb buffers {duck / 2**20:.0f} MB; cached profiles {len(cached)} x ~{per / 1024:.1f} kB "
            f"= ~{len(cached) * per / 2**20:.0f} MB")


def deep_size(obj, seen=None) -> int:
    """Bytes of an object tree (shared objects once): what a cached profile holds."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, type):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        size += sum(deep_size(v, seen) for v in obj)
    elif hasattr(obj, "__dict__"):
        size += deep_size(vars(obj), seen)
    elif hasattr(obj, "__slots__"):
        size += sum(deep_size(getattr(obj, s), seen) for s in obj.__slots__ if hasattr(obj, s))
    return size


def report(clock: Clock, stats: dict, cpu: float, wall: float, start_rss: float) -> None:
    events = stats["events"] or 1
    print(f"measured: events folded {stats['events']}  profiles written {stats['profiles']} "
          f"({stats['profiles'] / events:.2f}/event)  stats {stats}")
    print(f"{'stage':<16}{'us/event':>10}{'calls':>10}")
    for label, seconds in sorted(clock.cpu.items(), key=lambda kv: -kv[1]):
        print(f"{label:<16}{seconds / events * 1e6:>10.1f}{clock.calls[label]:>10}")
    print(f"{'other':<16}{(cpu - sum(clock.cpu.values())) / events * 1e6:>10.1f}")
    print(f"{'TOTAL cpu':<16}{cpu / events * 1e6:>10.1f}   wall {wall / events * 1e6:.1f} us/event")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rss at start {start_rss:.0f} MB, peak {peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--cache-size", type=int, default=None, help="the sink's profile cache (default: its own)")
    parser.add_argument("--plain", action="store_true", help="no stage timers: the total without their overhead")
    parser.add_argument("--warmup", type=float, default=0.5, help="share of the batches fed but not measured")
    parser.add_argument("--no-gc", action="store_true", help="the cyclic garbage collector off for the whole run")
    parser.add_argument("--keep", type=Path, default=None, help="a folder to leave the DuckDB file in")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "c360-bench")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    path = args.cache / f"c{args.customers}-e{args.events}-s{args.seed}-b{args.batch}.pickle"
    if not path.exists():
        t0 = time.perf_counter()
        child = multiprocessing.get_context("fork").Process(    # its memory is not the run's peak RSS
            target=prepare, args=(path, args.customers, args.events, args.seed, args.batch))
        child.start()
        child.join()
        print(f"prepared {path} in {time.perf_counter() - t0:.0f} s")
    if args.no_gc:
        gc.disable()
    run(path, args.cache_size, args.plain, args.warmup, args.keep)


if __name__ == "__main__":
    main()
