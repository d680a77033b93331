"""``touchstream publish FILE.jsonl``: replay a JSON Lines export into Kafka.

One plain-JSON event per line (the shape in docs/events.md). Invalid lines are
reported with their line number and written, with the reasons, to a rejects
file; valid lines are published; a summary closes the run.

recorded_at is stamped with this machine's clock, like every other publisher,
unless ``--keep-recorded-at`` says the file is an export being replayed: then each
line keeps its own (still refused when it lies in the future).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tqdm import tqdm

from touchstream.cli import CliError
from touchstream.events.validation import EventValidationError


def register(sub) -> None:
    p = sub.add_parser("publish", help="publish a JSON Lines file of events (invalid lines go to a rejects file)")
    p.add_argument("file", type=Path, help="JSON Lines file, one event per line ('-' for stdin)")
    p.add_argument("--source", default="jsonl-import", help="channel system name for events that carry no envelope.source")
    p.add_argument("--rejects", type=Path, help="where invalid lines go (default: FILE.rejects.jsonl)")
    p.add_argument("--batch", type=int, default=5000, help="events validated and sent per batch")
    p.add_argument("--keep-recorded-at", action="store_true",
                   help="replay of an export: keep each event's recorded_at instead of stamping this clock's")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _lines(path: Path):
    handle = sys.stdin if str(path) == "-" else path.open(encoding="utf-8")
    with handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def run(args, settings) -> int:
    from touchstream.publishing.publisher import Publisher

    if str(args.file) != "-" and not args.file.exists():
        raise CliError(f"{args.file}: no such file")
    rejects_path = args.rejects or Path(f"{args.file}.rejects.jsonl" if str(args.file) != "-" else "stdin.rejects.jsonl")
    total = published = rejected = 0
    publisher = Publisher(settings, source=args.source, keep_event_source=True, keep_recorded_at=args.keep_recorded_at)
    with publisher, rejects_path.open("w", encoding="utf-8") as rejects:
        bar = tqdm(unit="ev", disable=args.quiet, file=sys.stderr, desc="publishing")
        batch = []
        for number, line in _lines(args.file):
            total += 1
            problems, valid = _check(publisher, line)
            if problems:
                rejected += 1
                rejects.write(json.dumps({"line": number, "problems": problems, "raw": line.rstrip("\n")}) + "\n")
                print(f"line {number}: " + "; ".join(f"{p['path']}: {p['reason']}" for p in problems), file=sys.stderr)
            else:
                batch.append(valid)
            if len(batch) >= args.batch:
                published += _send(publisher, batch, bar)
        published += _send(publisher, batch, bar)
        bar.close()
    if not rejected:
        rejects_path.unlink(missing_ok=True)
    print(f"{total} line(s): {published} published, {rejected} rejected"
          + (f" (see {rejects_path})" if rejected else ""))
    return 1 if rejected else 0


def _check(publisher, line: str):
    try:
        event = json.loads(line)
    except ValueError as exc:
        return [{"path": "", "reason": f"not valid JSON: {exc}"}], None
    try:
        return None, publisher.validate(event)
    except EventValidationError as exc:
        return exc.as_dicts(), None
    except PermissionError as exc:
        return [{"path": "envelope.channel", "reason": str(exc)}], None


def _send(publisher, batch: list, bar) -> int:
    if not batch:
        return 0
    publisher.send_valid(batch)
    publisher.flush()
    bar.update(len(batch))
    count = len(batch)
    batch.clear()
    return count
