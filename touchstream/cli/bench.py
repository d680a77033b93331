"""``touchstream bench``: Touchstream against the machine's limits and against peers, in one run.

It runs its own stack (its own home and ports: the defaults + 100), so a stack
you have up is left alone. Progress goes to stderr; the table to stdout; every
figure, the profiles and the per-view timings to a JSON file.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from touchstream.cli import CliError


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure throughput, freshness, rebuild and queries against limits and peers")
    p.add_argument("--events", type=int, default=100_000, help="demo events to push through (default 100,000)")
    p.add_argument("--customers", type=int, help="customers in the traffic (default events/10)")
    p.add_argument("--seed", type=int, default=7, help="demo generator seed (default 7)")
    p.add_argument("--freshness-rate", type=float, default=2000.0, help="offered events/s for freshness (2000)")
    p.add_argument("--freshness-seconds", type=float, default=30.0, help="how long to offer it (default 30)")
    p.add_argument("--lookups", type=int, default=1000, help="360 lookups per latency sample (default 1000)")
    p.add_argument("--kpi-interactions", type=int, default=10_000_000,
                   help="replicate the store to this many interactions to time the KPI views (default 10M)")
    p.add_argument("--no-peers", action="store_true", help="skip the faust and quixstreams peers")
    p.add_argument("--peer-records", type=int, default=0, metavar="N",
                   help="the peers fold only the first N customer-events records (default: all); they run "
                        "at a few hundred records/s, so at 1M events this keeps the run in hours")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="fold the customer-360 in N fold workers beside serving, as `up --workers N` does")
    p.add_argument("--ingest-seconds", type=float, default=10.0, metavar="S",
                   help="seconds per ingest level: the SDK, the collector at 1, 8 and 32 clients, batches of 100 "
                        "(default 10; 0 skips ingest)")
    p.add_argument("--ingest-events", type=int, default=20_000, metavar="N",
                   help="at most N events per ingest level (default 20,000)")
    p.add_argument("--no-kafka-tools", action="store_true", help="skip Kafka's producer/consumer perf tools")
    p.add_argument("--no-profile", action="store_true", help="do not sample the services with py-spy")
    p.add_argument("--home", type=Path, help="the bench's folder (default $TOUCHSTREAM_HOME/bench)")
    p.add_argument("--port-offset", type=int, default=100, help="added to every default port (default 100)")
    p.add_argument("--output", type=Path, help="JSON result file (default <home>/results/bench-<time>.json)")
    p.set_defaults(func=run)


def run(args, settings) -> int:
    from touchstream.bench import bench_stack, machine, report
    from touchstream.bench.runner import Params, Run, execute

    if args.events < 1 or (args.customers is not None and args.customers < 1):
        raise CliError("--events and --customers must be at least 1")
    if args.workers < 0:
        raise CliError("--workers must be 0 or more")
    home = (args.home or settings.home / "bench").resolve()
    params = Params(events=args.events, customers=args.customers or max(1, args.events // 10), seed=args.seed,
                    freshness_rate=args.freshness_rate, freshness_seconds=args.freshness_seconds,
                    lookups=args.lookups, kpi_interactions=args.kpi_interactions, peers=not args.no_peers,
                    peer_records=max(0, args.peer_records),
                    perf_tools=not args.no_kafka_tools, profile=not args.no_profile, workers=args.workers,
                    ingest_seconds=max(0.0, args.ingest_seconds), ingest_events=max(1, args.ingest_events))
    stack = bench_stack.bench_settings(settings, home / "stack", args.port_offset, args.workers)
    work = home / "stack" / "work"
    bench = Run(params, stack, work, lambda line: print(line, file=sys.stderr, flush=True))
    t0 = time.monotonic()
    try:
        execute(bench)
    except Exception as exc:
        raise CliError(f"bench failed ({type(exc).__name__}): {exc}; logs in {stack.logs_dir}") from exc
    described = machine.describe(stack.kafka_version)
    for peer in bench.details.get("peers", {}).values():   # the quix peer runs in its own virtualenv
        described["versions"].update({k: v for k, v in peer.get("versions", {}).items()
                                      if k not in described["versions"]})
    doc = report.document(described, vars(params),
                          bench.figures, {"details": bench.details, "seconds": round(time.monotonic() - t0, 1)})
    output = args.output or home / "results" / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report.dumps(doc))
    print(report.render(doc))
    print(f"\nJSON: {output}")
    return 0
