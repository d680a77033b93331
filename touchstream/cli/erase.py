"""``touchstream erase <identifier-or-customer>``: forget a person; ``--report ID``: prove it.

The erasure runs in serving (``POST /erasures``, admin scope): this command asks, waits until it was
carried out and prints what was erased, per table and in data keys, with no personal value. The report
searches every copy the audit can reach and exits 1 if the person is still readable anywhere.
"""

from __future__ import annotations

import time

from touchstream.cli import CliError, echo
from touchstream.cli.rebuild import _call as call_admin


def register(sub) -> None:
    p = sub.add_parser("erase", help="forget a person everywhere (crypto-shredding), or --report ID: audit an erasure")
    p.add_argument("subject", nargs="?", help="an identifier (email:..., phone:..., or as written) or a customer id")
    p.add_argument("--report", metavar="ERASURE_ID", help="search every copy for the person of this erasure")
    p.add_argument("--no-wait", action="store_true", help="only request it; follow it later with --status ID")
    p.add_argument("--status", metavar="ERASURE_ID", help="show what an erasure did")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the erasure (or the report)")
    p.set_defaults(func=run)


def erased_text(status: dict) -> str:
    lines = [f"erasure {status['erasure_id']}: {status['state']}"]
    if status["state"] == "erased":
        ids = status["customer_ids"]
        lines.append(f"customer ids forgotten: {len(ids)}" + ("" if ids else " (the subject was not found; "
                                                               "its own data key was deleted)"))
        lines.append(f"data keys deleted: {status['kids_deleted']}")
        lines += [f"  {table:<34} {count}" for table, count in status["rows_by_table"].items()]
    return "\n".join(lines)


def report_text(report: dict) -> str:
    lines = [f"erasure {report['erasure_id']}: {'CLEAN' if report['clean'] else 'STILL READABLE'}"]
    for where in ("tables", "topics", "files"):
        part = report[where]
        lines.append(f"{where}: {len(part['scanned'])} searched, found in {len(part['found'])}")
        lines += [f"  {name:<40} {count}" for name, count in part["found"].items()]
    lines.append("not reached (copies outside Touchstream):")
    lines += [f"  {item}" for item in report["not_reached"]]
    return "\n".join(lines)


def run(args, settings) -> int:
    base = f"{settings.query_url}/erasures"
    if args.report:
        report = call_admin("GET", f"{base}/{args.report}/report", settings, timeout=args.timeout)
        echo(report_text(report))
        return 0 if report["clean"] else 1
    if args.status:
        echo(erased_text(call_admin("GET", f"{base}/{args.status}", settings)))
        return 0
    if not args.subject:
        raise CliError("give the person to forget (an identifier or a customer id), or --report/--status ID")
    status = call_admin("POST", base, settings, {"subject": args.subject})
    echo(f"erasure {status['erasure_id']}: requested")
    if args.no_wait:
        return 0
    deadline = time.monotonic() + args.timeout
    while status["state"] != "erased":
        if time.monotonic() > deadline:
            raise CliError(f"erasure {status['erasure_id']} still {status['state']} after {args.timeout:g}s")
        time.sleep(0.5)
        status = call_admin("GET", f"{base}/{status['erasure_id']}", settings)
    echo(erased_text(status))
    return 0
