"""``touchstream demo``: deterministic demo traffic through the whole stack, then a short report.

Each event already names the channel system that produced it (``envelope.source``:
web-shop, pbx, pos, ...), and the demo keeps it (``keep_event_source``), as a
trusted replay of many systems' traffic through one producer.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from touchstream.cli import CliError
from touchstream.client import OPERATOR_KEY_FILE

BATCH = 2000


def register(sub) -> None:
    p = sub.add_parser("demo", help="publish deterministic demo traffic (personas, journeys, complaints) and report")
    p.add_argument("--customers", type=int, default=200, help="number of customers (default 200)")
    p.add_argument("--days", type=int, default=30, help="days of activity from 2026-01-05 (default 30)")
    p.add_argument("--seed", type=int, default=7, help="random seed; same arguments give the same events (default 7)")
    p.add_argument("--jsonl", type=Path, metavar="FILE",
                   help="only write the events as JSON Lines (for `touchstream publish`), publish nothing")
    p.add_argument("--no-up", action="store_true", help="do not start the local stack; it must already run")
    p.set_defaults(func=run)


def run(args, settings) -> int:
    from touchstream.demo.generator import event_id_prefix, generate

    if args.customers < 0 or args.days < 0:
        raise CliError("--customers and --days must not be negative")
    events = generate(args.customers, args.days, args.seed)
    if args.jsonl is not None:
        from touchstream.demo.jsonl_export import write_jsonl

        t0 = time.monotonic()
        count = write_jsonl(events, args.jsonl)
        print(f"wrote {count:,} events to {args.jsonl} in {time.monotonic() - t0:.1f}s; "
              f"publish them with: touchstream publish {args.jsonl}")
        return 0
    if not args.no_up:
        _up(settings)
    count, sources, seconds = _publish(settings, events)
    from touchstream.serving.catchup import wait_pipeline, wait_sla_settled

    try:  # the report reads every projection: wait until each has applied every event, and the SLA clocks
        catchup = wait_pipeline(settings)
        settle = wait_sla_settled(settings)
    except TimeoutError as exc:
        raise CliError(f"published {count} events, but {exc}") from None
    from touchstream.cli.query import run_sql
    from touchstream.demo import report

    stats = report.RunStats(count, seconds, catchup, sources, settle)
    prefix = event_id_prefix(args.customers, args.days, args.seed)
    print(report.build(lambda sql: run_sql(settings, sql), prefix, stats))
    print(f"\nDashboard: {settings.query_url}/  (API key: {settings.home / OPERATOR_KEY_FILE})")
    return 0


def _up(settings) -> None:
    from touchstream.stack import local_stack

    print("starting the local stack (if needed) ...", file=sys.stderr)
    try:
        local_stack.up(settings)
    except Exception as exc:  # noqa: BLE001 - any failure to start is reported the same way
        raise CliError(f"could not bring the stack up ({type(exc).__name__}): {exc}") from None


def _publish(settings, events) -> tuple[int, int, float]:
    """Validate and send every event, keeping each one's own source; returns (events, sources, seconds)."""
    from tqdm import tqdm

    from touchstream.codec.avro_codec import RegistryError
    from touchstream.events.validation import EventValidationError
    from touchstream.publishing.publisher import Publisher, PublishError

    count, sources, batch = 0, set(), []
    t0 = time.monotonic()
    bar = tqdm(unit="ev", desc="publishing", file=sys.stderr, disable=None)
    try:
        with Publisher(settings, source="demo", keep_event_source=True) as publisher:
            for event in events:
                try:
                    batch.append(publisher.validate(event))
                except EventValidationError as exc:  # a generator bug: say which event, publish nothing more
                    raise CliError(f"demo event {event['envelope']['event_id']} is invalid: {exc}") from None
                sources.add(event["envelope"]["source"])
                count += 1
                if len(batch) >= BATCH:
                    publisher.send_valid(batch)
                    bar.update(len(batch))
                    batch = []
            publisher.send_valid(batch)
            bar.update(len(batch))
    except (PublishError, RegistryError) as exc:
        raise CliError(f"{type(exc).__name__}: {exc}") from None
    finally:
        bar.close()
    return count, len(sources), time.monotonic() - t0
