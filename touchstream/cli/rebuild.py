"""``touchstream rebuild customer-360``: replay into a fresh version side by side, then switch."""

from __future__ import annotations

import time

import httpx

from touchstream.cli import CliError, echo
from touchstream.client import auth_headers

PROJECTIONS = ("customer-360",)


def register(sub) -> None:
    p = sub.add_parser("rebuild", help="rebuild a projection from the log beside the live one, then switch")
    p.add_argument("projection", choices=PROJECTIONS)
    p.add_argument("--no-wait", action="store_true", help="start it and return; check later with --status")
    p.add_argument("--status", action="store_true", help="only show the state of the last rebuild")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the switch")
    p.set_defaults(func=run)


def _call(method: str, url: str, settings, body: dict | None = None, timeout: float = 30) -> dict:
    try:
        response = httpx.request(method, url, headers=auth_headers(settings), json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise CliError(f"query service not reachable at {url} ({exc}); is `touchstream up` running?") from None
    if response.status_code >= 400:
        raise CliError(response.json().get("detail", response.text))
    return response.json()


def _line(status: dict) -> str:
    fields = ("state", "version", "from_version", "active_version", "replayed", "published", "seconds", "error")
    return "  ".join(f"{k}={status[k]}" for k in fields if status.get(k) is not None)


def run(args, settings) -> int:
    url = f"{settings.query_url}/admin/rebuild/{args.projection}"
    if args.status:
        echo(_line(_call("GET", url, settings)))
        return 0
    echo(_line(_call("POST", url, settings)))
    if args.no_wait:
        return 0
    deadline = time.monotonic() + args.timeout
    while True:
        status = _call("GET", url, settings)
        if status["state"] in ("done", "failed"):
            echo(_line(status))
            return 0 if status["state"] == "done" else 1
        if time.monotonic() > deadline:
            raise CliError(f"still {status['state']} after {args.timeout:g}s: {_line(status)}")
        time.sleep(0.5)
