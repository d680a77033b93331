"""The per-record step both bench peers run, and the tally their result JSON is made of.

Why one shared module: the bench compares *frameworks* (faust's per-event agent
with a changelog-backed table, quixstreams' stateful dataframe with a DuckDB
sink) doing the same work as Touchstream's customer-360 stage. If each peer
carried its own copy of "decode, skip membership, fold one event onto the stored
state", a difference in the copies would show up as a difference in speed. So
the step lives here once, is unit-tested once, and imports nothing but the pure
projections: no faust, kafka or duckdb, because the quixstreams peer runs it in a
separate venv whose confluent-kafka is older than this project's.

The step mirrors what a framework user would write: the state store holds the
*serialised* profile (``customer_360_codec.to_dict``), so each event pays
``from_dict`` + ``apply`` + ``to_dict`` like any JSON-valued framework state does.
"""

from __future__ import annotations

import argparse
import uuid

import resource
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from touchstream.projections import customer_360 as c360

KIND_HEADER = "touchstream.kind"
MEMBERSHIP = b"membership"


def is_membership(headers: Any) -> bool:
    """True for an identity membership record (not an event): header ``touchstream.kind`` == b"membership".

    Accepts what the clients hand over: aiokafka/faust give a list of (str, bytes)
    pairs (or a dict in faust's Event.headers), confluent-kafka/quixstreams a list
    of pairs or None."""
    if not headers:
        return False
    pairs: Iterable = headers.items() if isinstance(headers, dict) else headers
    for key, value in pairs:
        if key == KIND_HEADER:
            return (value.encode() if isinstance(value, str) else value) == MEMBERSHIP
    return False


def customer_key(key: bytes | str | None) -> str:
    """The record key as the canonical customer id (the topic is keyed by it)."""
    if key is None:
        raise ValueError("record on the customer-events topic without a key (customer id)")
    return key.decode() if isinstance(key, (bytes, bytearray)) else str(key)


def fold_one(stored: dict | None, record: dict, customer_id: str,
             config: c360.Config | None = None) -> c360.Profile:
    """One event folded onto the customer's stored (serialised) profile; ``None`` = first event.

    Returns the live ``Profile``; the caller stores ``c360.to_dict(profile)``. ``apply``
    is order-free and ignores a repeated event_id, so folding event by event gives the
    same profile as ``c360.fold(all_events)``."""
    previous = c360.from_dict(stored) if stored is not None else None
    return c360.fold([record], customer_id, config, previous)


def duckdb_row(customer_id: str, profile: c360.Profile) -> tuple[str, int, datetime | None, str]:
    """The quixstreams peer's DuckDB row: (customer_id, events, last_seen, profile JSON).

    The profile JSON is ``view_json(view(profile))``, the same text Touchstream's
    ``customer_360.profile`` column holds, so the two are queryable alike."""
    view = c360.view(profile)
    last = view["last_seen"]
    return customer_id, view["events"], datetime.fromisoformat(last) if last else None, c360.view_json(view)


@dataclass
class Tally:
    """What a peer counts while it runs. ``first`` is stamped when the first record reaches
    the peer's code (not at start-up: joining the group and rebalancing are excluded), ``last``
    when the last fold is done (faust) or persisted (quixstreams: the sink's final write)."""

    records: int = 0          # every consumed record: events + membership
    events: int = 0           # folded events
    membership: int = 0
    skipped: int = 0          # undecodable values, logged and passed over (Touchstream dead-letters them)
    customers: set = field(default_factory=set)
    first: float | None = None
    last: float | None = None

    def saw(self) -> None:
        self.records += 1
        if self.first is None:
            self.first = time.perf_counter()

    def folded(self, customer_id: str) -> None:
        self.events += 1
        self.customers.add(customer_id)

    @property
    def seconds(self) -> float:
        return (self.last - self.first) if self.first is not None and self.last is not None else 0.0


def peak_rss_mb() -> float:
    """Peak resident set of this process: VmHWM. Not ru_maxrss, which Linux keeps across execve, so a
    peer started by the bench reported the bench's own size at the fork (both peers: 2,456 MB at 1M)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def result(peer: str, tally: Tally, versions: dict[str, str], **extra: Any) -> dict:
    """The result JSON every peer writes; ``rate`` is consumed records per second (0 if no time)."""
    seconds = tally.seconds
    return {"peer": peer, "records": tally.records, "events": tally.events, "membership": tally.membership,
            "skipped": tally.skipped, "customers": len(tally.customers), "seconds": round(seconds, 4),
            "rate": round(tally.records / seconds, 1) if seconds > 0 else 0.0,
            "peak_rss_mb": round(peak_rss_mb(), 1), "versions": versions, **extra}


def peer_parser(prog: str, description: str, workdir_help: str) -> argparse.ArgumentParser:
    """The command line both peers share (each adds its own run id option)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap HOST:PORT")
    parser.add_argument("--registry", required=True, help="schema registry URL")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expect", type=int, required=True, help="records to consume (events + membership)")
    parser.add_argument("--result", required=True, help="where to write the result JSON")
    parser.add_argument("--workdir", required=True, help=workdir_help)
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    parser.add_argument("--keep-topics", action="store_true", help="keep the run's changelog topic afterwards")
    return parser


def parse_peer_args(parser: argparse.ArgumentParser, argv: list[str] | None, id_attr: str,
                    id_prefix: str) -> argparse.Namespace:
    """Parse, check ``--expect``, and give the run a fresh id (so it starts from offset 0) unless named."""
    args = parser.parse_args(argv)
    if args.expect < 1:
        parser.error("--expect must be at least 1")
    if not getattr(args, id_attr):
        setattr(args, id_attr, f"{id_prefix}-{uuid.uuid4().hex[:10]}")
    return args
