"""``touchstream up | down | status | jars``: the local stack from the command line.

Thin: argument parsing and printing only; the work is in
``touchstream.stack.local_stack`` so tests drive the same code without a shell.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import signal
import sys

from touchstream.cli import CliError, echo
from touchstream.config import Settings

ONLY_HELP = "comma-separated subset of broker,registry,collector,serving (default: all)"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("up", help="start the local stack (idempotent)",
                              description="Start broker, topics, registry, schemas, collector, serving, under a "
                                          "supervisor that restarts a crashed service with backoff.")
    p.add_argument("--only", metavar="SERVICES", help=ONLY_HELP)
    p.add_argument("--workers", type=int, metavar="N",
                   help="run the customer-360 fold in N worker processes (fold-1..fold-N, one consumer group); "
                        "serving then only indexes and reads their 360s (default: TOUCHSTREAM_FOLD_WORKERS, "
                        "else 0: serving folds). Change N with 'touchstream down' first")
    p.add_argument("--foreground", action="store_true",
                   help="stay attached until a service exits or SIGTERM, then stop them; no supervisor "
                        "(containers: their runtime restarts them)")
    p.set_defaults(func=cmd_up)

    p = subparsers.add_parser("down", help="stop the local stack (by pid, reverse order)")
    p.add_argument("--only", metavar="SERVICES", help=ONLY_HELP)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds before SIGKILL (default 30)")
    p.set_defaults(func=cmd_down)

    p = subparsers.add_parser("status", help="show which stack processes run, and how crashed ones ended",
                              description="running, stopped or crashed (exit code or signal, when, restarts) "
                                          "per process; exits 1 when one that should run does not.")
    p.set_defaults(func=cmd_status)

    p = subparsers.add_parser("jars", help="fetch Apache Kafka's jars from Maven Central (once)")
    p.set_defaults(func=cmd_jars)


def _errors():
    from touchstream.stack.broker_runner import BrokerError
    from touchstream.stack.kafka_jars import JarsError
    from touchstream.stack.local_stack import StackError
    from touchstream.stack.readiness import ServiceDied, WrongService
    from touchstream.stack.topic_admin import TopicAdminError

    return (StackError, JarsError, BrokerError, TopicAdminError, ServiceDied, WrongService, TimeoutError)


def _print_step(step) -> None:
    if step.pid is not None:
        how = "started" if step.started else "already running"
        when = f"ready in {step.seconds:.1f}s" if step.started else f"checked in {step.seconds:.1f}s"
        extra = f"  ({step.detail})" if step.detail else ""
        echo(f"{step.name:<10} {step.address:<28} {how}, pid {step.pid}, {when}{extra}", flush=True)
    else:
        echo(f"{step.name:<10} {step.address:<28} {step.detail} in {step.seconds:.1f}s", flush=True)


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from touchstream.stack import local_stack

    if args.workers is not None:
        if args.workers < 0:
            raise CliError("--workers must be 0 or more")
        settings = replace(settings, fold_workers=args.workers)
    try:
        chosen = local_stack.parse_services(args.only)
        local_stack.up(settings, chosen, progress=_print_step, supervise=not args.foreground)
    except _errors() as exc:
        raise CliError(str(exc)) from exc
    echo(f"logs in {settings.logs_dir}; stop with 'touchstream down'", flush=True)
    if not args.foreground:
        return 0

    def _terminate(signum, frame):  # SIGTERM from 'docker stop' behaves like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        watched = local_stack.with_workers(chosen, local_stack.worker_names(settings.fold_workers))
        gone = local_stack.wait_while_running(settings, watched)
        echo(f"{gone} exited; stopping the others (log: {settings.logs_dir / (gone + '.log')})",
              file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        local_stack.down(settings, chosen)


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from touchstream.stack import local_stack

    try:
        stopped = local_stack.down(settings, args.only, timeout=args.timeout)
    except local_stack.StackError as exc:
        raise CliError(str(exc)) from exc
    echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from touchstream.stack import local_stack

    rows = local_stack.status(settings)
    width = max(len("state"), *(len(row.label) for row in rows))
    echo(f"{'service':<10} {'state':<{width}} {'pid':>7}  {'address':<28} log")
    for row in rows:
        pid = str(row.pid) if row.running and row.pid else "-"
        echo(f"{row.name:<10} {row.label:<{width}} {pid:>7}  {row.address:<28} {row.log_file}")
    down = [row.name for row in rows if row.down]
    if down:
        echo(f"not running as it should: {', '.join(down)}", file=sys.stderr)
        return 1
    return 0


def cmd_jars(args: argparse.Namespace, settings: Settings) -> int:
    from touchstream.stack import kafka_jars

    try:
        lib = kafka_jars.ensure_jars(settings)
    except kafka_jars.JarsError as exc:
        raise CliError(str(exc)) from exc
    echo(f"Apache Kafka {settings.kafka_version}: {len(list(lib.glob('*.jar')))} jars in {lib}")
    return 0
