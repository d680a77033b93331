"""``touchstream customer ID-OR-IDENTIFIER``: the 360 of one customer, found by any identifier."""

from __future__ import annotations

import json

from touchstream.cli import CliError, echo
from touchstream.client import Client, ClientError


def register(sub) -> None:
    p = sub.add_parser("customer", help="show one customer's 360 (by customer id, e-mail, phone, card, cookie, ...)")
    p.add_argument("identifier", help="a customer id, any identifier as written, or kind:value (e.g. phone:+31612345678)")
    p.add_argument("--json", action="store_true", help="print the whole 360 as JSON")
    p.add_argument("--timeline", action="store_true", help="print the touchmap: every interaction on any channel")
    p.add_argument("--limit", type=int, default=50, help="with --timeline: how many interactions (newest first)")
    p.set_defaults(func=run)


def summary(view: dict) -> str:
    """The lines a representative reads first."""
    commerce, attitude = view["commerce"], view["attitude"]
    lines = [
        f"customer   {view['customer_id']}  ({view['events']} events, {view['first_seen']} .. {view['last_seen']})",
        f"journey    {view['journey']['stage']}",
        "identifiers " + ", ".join(f"{i['kind']}={i['value']} ({i['trust']})" for i in view["identifiers"]),
        "channels   " + ", ".join(f"{c['channel']} {c['contacts']}" for c in view["channels"]),
        "preferred  " + ", ".join(f"{p['rank']}. {p['channel']} ({p['score']:.2f})" for p in view["pmp"][:3]),
        f"commerce   orders {commerce['orders']}, revenue {commerce['revenue_to_date']}, "
        f"balance due {commerce['balance_due']}",
        f"complaints open {view['complaints']['open_count']} of {view['complaints']['total']}",
        f"attitude   csat {attitude['csat'] and attitude['csat']['value']}, nps {attitude['nps'] and attitude['nps']['value']}",
        f"findings   {len(view['findings'])}" + "".join(f"\n  - {f['kind']}: {f['subject']} ({', '.join(f['channels'])})"
                                                      for f in view["findings"]),
        "last interactions:",
    ]
    lines += [f"  {i['at']}  {i['channel']:<8} {i['direction']:<8} {i['content']:<12} {i['event_type']}"
              for i in view["interactions"][:10]]
    return "\n".join(lines)


def run(args, settings) -> int:
    try:
        with Client(settings.query_url) as client:
            view = client.timeline(args.identifier, limit=args.limit) if args.timeline \
                else client.customer(args.identifier)
    except ClientError as exc:
        raise CliError(str(exc)) from None
    if view is None:
        raise CliError(f"no customer with id or identifier {args.identifier!r}")
    if args.json:
        echo(json.dumps(view, indent=2))
    elif args.timeline:
        echo(timeline(view))
    else:
        echo(summary(view))
    return 0


def timeline(found: dict) -> str:
    lines = [f"customer {found['customer_id']}: {len(found['interactions'])} interactions, newest first"
             + (" (more exist)" if found["truncated"] else "")]
    lines += [f"  {i['occurred_at']}  {i['channel']:<11} {i['initiated_by']:<8} {i['content']:<13} {i['event_type']}"
              for i in found["interactions"]]
    return "\n".join(lines)
