"""``touchstream kpis [NAME]``: the KPI views by name (what ``GET /kpis`` lists), as a table, CSV or JSON."""

from __future__ import annotations

import csv
import json
import sys

from touchstream.cli import CliError, echo
from touchstream.cli.query import format_table
from touchstream.client import Client, ClientError


def register(sub) -> None:
    p = sub.add_parser("kpis", help="list the KPI views, or show one (complaints, SLA, loyalty, channels, ...)")
    p.add_argument("name", nargs="?", help="a KPI view, e.g. complaint_kpis; without it: the list")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--limit", type=int, default=1000)
    p.set_defaults(func=run)


def run(args, settings) -> int:
    try:
        with Client(settings.query_url) as client:
            if not args.name:
                for view in client.kpis():
                    echo(f"{view['name']:<26} {view['answers']}")
                return 0
            rows = client.kpi(args.name, limit=args.limit)
    except ClientError as exc:
        raise CliError(str(exc)) from None
    columns = list(rows[0]) if rows else []
    if args.format == "json":
        echo(json.dumps(rows, indent=2))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    else:
        echo(format_table(columns, [[r[c] for c in columns] for r in rows]) if rows else "(no rows)")
    return 0
