"""``touchstream query "SQL"``: read-only SQL against the serving process's DuckDB."""

from __future__ import annotations

import csv
import json
import sys

import httpx

from touchstream.cli import CliError
from touchstream.client import auth_headers


def register(sub) -> None:
    p = sub.add_parser("query", help="run read-only SQL on the projections and the interaction log")
    p.add_argument("sql", help="one SELECT statement")
    p.add_argument("--format", choices=("table", "csv", "json", "arrow", "parquet"), default="table",
                   help="arrow and parquet keep DuckDB's exact types and need --output FILE")
    p.add_argument("--output", help="write the result to this file (required for arrow and parquet)")
    p.add_argument("--max-rows", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=30.0, help="server-side time limit in seconds")
    p.set_defaults(func=run)


def run_sql(settings, sql: str, *, max_rows: int = 1000, timeout: float = 30.0) -> dict:
    """POST to the query service; raise CliError with the service's message on failure."""
    body = {"sql": sql, "max_rows": max_rows, "timeout": timeout}
    try:
        response = httpx.post(f"{settings.query_url}/sql", json=body, headers=auth_headers(settings),
                              timeout=timeout + 10)
    except httpx.HTTPError as exc:
        raise CliError(f"query service not reachable at {settings.query_url} ({exc}); is `touchstream up` running?") from None
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise CliError(f"{detail}")
    return response.json()


def format_table(columns: list[str], rows: list[list]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(out)


def run(args, settings) -> int:
    if args.format in ("arrow", "parquet"):
        return _download(args, settings)
    result = run_sql(settings, args.sql, max_rows=args.max_rows, timeout=args.timeout)
    columns, rows = result["columns"], result["rows"]
    if args.format == "json":
        print(json.dumps([dict(zip(columns, r)) for r in rows], indent=2))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        print(format_table(columns, rows))
        print(f"({len(rows)} row{'s' if len(rows) != 1 else ''}{', truncated' if result['truncated'] else ''})")
    return 0


def _download(args, settings) -> int:
    """Arrow IPC or Parquet: the exact column types, straight to a file."""
    if not args.output:
        raise CliError(f"--format {args.format} writes a file: add --output FILE")
    body = {"sql": args.sql, "max_rows": args.max_rows, "timeout": args.timeout, "format": args.format}
    try:
        response = httpx.post(f"{settings.query_url}/sql", json=body, headers=auth_headers(settings),
                              timeout=args.timeout + 10)
    except httpx.HTTPError as exc:
        raise CliError(f"query service not reachable at {settings.query_url} ({exc})") from None
    if response.status_code != 200:
        raise CliError(str(response.json().get("detail") if response.headers.get("content-type", "").startswith(
            "application/json") else response.text[:500]))
    with open(args.output, "wb") as out:
        out.write(response.content)
    truncated = response.headers.get("X-Touchstream-Truncated") == "true"
    print(f"wrote {len(response.content):,} bytes to {args.output}" + (" (truncated at --max-rows)" if truncated else ""))
    return 0
