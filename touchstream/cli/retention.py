"""``touchstream retention [--apply]``: what the catalogue's retention removes from DuckDB now.

Without ``--apply`` it only reports what is due; serving also applies it every few minutes, so the
command is for seeing the settings at work, or removing at once after lowering a setting.
"""

from __future__ import annotations

from touchstream.cli import echo
from touchstream.cli.rebuild import _call as call_admin


def register(sub) -> None:
    p = sub.add_parser("retention", help="show (or with --apply remove) dead letters and free text past their retention")
    p.add_argument("--apply", action="store_true", help="remove what is due (default: only report it)")
    p.set_defaults(func=run)


def report_text(report: dict) -> str:
    verb = "removed" if report["applied"] else "due (run with --apply to remove)"
    keep = f"{report['free_text_days']:g} days" if report["free_text_days"] else "kept (free_text_days = 0)"
    lines = [f"retention: dead letters {report['dead_letters_days']:g} days, free text {keep}",
             f"dead_letters rows {verb}: {report['dead_letters_deleted']}",
             f"interactions whose free text is {verb}: {report['payloads_stripped']}"]
    lines += [f"  {event_type:<34} {count}" for event_type, count in report["by_event_type"].items()]
    lines.append(f"keys of free text on Kafka (one per month sealed) {verb}: {report['text_keys']}")
    lines.append("not reached by expiry yet (copies of the events themselves):")
    lines += [f"  {where}: {why}" for where, why in report["not_reached"].items()]
    return "\n".join(lines)


def run(args, settings) -> int:
    url = f"{settings.query_url}/admin/retention"
    echo(report_text(call_admin("POST" if args.apply else "GET", url, settings)))
    return 0
