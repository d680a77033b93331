"""``touchstream complaints [--open] [--breached] [CASE_ID]``: complaint cases, or one case in full."""

from __future__ import annotations

import json

from touchstream.cli import CliError, echo
from touchstream.cli.query import format_table
from touchstream.client import Client, ClientError

COLUMNS = ("case_id", "customer_id", "state", "origin_channel", "channels_touched", "category", "priority",
           "opened_at", "resolved_at", "reopen_count", "contacts", "callbacks_missed", "fcr", "sla_breaches")


def register(sub) -> None:
    p = sub.add_parser("complaints", help="list complaint cases, or show one (state, contacts, callbacks, FCR)")
    p.add_argument("case_id", nargs="?", help="show this case in full (JSON)")
    p.add_argument("--open", action="store_true", help="only cases still open")
    p.add_argument("--breached", action="store_true", help="only cases with a breached SLA clock")
    p.add_argument("--channel", help="only cases opened on this channel")
    p.add_argument("--customer", help="only this (canonical) customer's cases")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=run)


def run(args, settings) -> int:
    try:
        with Client(settings.query_url) as client:
            if args.case_id:
                case = client.complaint(args.case_id)
                if case is None:
                    raise CliError(f"no complaint case {args.case_id!r}")
                echo(json.dumps(case, indent=2))
                return 0
            rows = client.complaints(open=True if args.open else None, breached=True if args.breached else None,
                                     channel=args.channel, customer=args.customer, limit=args.limit)
    except ClientError as exc:
        raise CliError(str(exc)) from None
    echo(format_table(list(COLUMNS), [[r[c] for c in COLUMNS] for r in rows]))
    echo(f"({len(rows)} case{'s' if len(rows) != 1 else ''})")
    return 0
