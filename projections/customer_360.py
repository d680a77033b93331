"""The customer-360 fold: ``apply(profile, event) -> profile`` over one customer's events.

The canonical customer id comes from outside (identity resolution routes each
event to a customer); this module only folds. Rules it keeps, and why:

- **Deterministic and order-free where event time rules.** Every "last X" is the
  maximum (occurred_at, event_id); the timeline keeps the N latest in event time;
  windows and findings are recomputed from sorted facts. So the same multiset of
  events gives the same profile in any arrival order: a late event corrects the
  profile, it is never dropped.
- **A duplicate event_id changes nothing.** ``profile.applied`` holds every
  folded event_id. Complete, not bounded: about 100 bytes per event in memory and
  ~30 in the stored JSON (10k events: ~1 MB / ~300 kB). A bounded set would need
  a watermark (ids older than it dropped) and would then have to refuse events
  older than the watermark, which contradicts "late events correct the profile".
- **Plain data.** The state is dataclasses of str/int/Decimal/datetime, sets and
  dicts (``customer_360_state``); ``to_dict``/``from_dict`` round-trip it through
  JSON and ``fingerprint`` compares replay with live.
- **In place, for speed.** Like a pyeventsourcing aggregate's mutator, ``apply``
  updates the profile it is given and returns it; copy first
  (``from_dict(to_dict(p))``) to keep the old one. No I/O, no clock, no randomness.

Dispatch is a registry keyed by event_type (``customer_360_events.on``), the
dict form of singledispatch; the section modules register their reducers on
import, below. ``view`` derives the read model (sums, balance, PMP ranking,
touchmap windows) that serving publishes; ``typed_view`` is the same tree with datetimes and
Decimals, which the sink serialises once to JSON (orjson) and hands to Avro as it is.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Callable, Iterable

import orjson

from touchstream.projections import customer_360_answers as _answers  # noqa: F401  (registers reducers)
from touchstream.projections import customer_360_commerce as _commerce  # noqa: F401
from touchstream.projections import customer_360_complaints as _complaints  # noqa: F401
from touchstream.projections import customer_360_timeline as _timeline  # noqa: F401
from touchstream.projections import customer_360_touchmap as _touchmap  # noqa: F401
from touchstream.projections.customer_360_answers import answers_view, attitude_view
from touchstream.projections.customer_360_codec import differences, fingerprint, from_dict, to_dict
from touchstream.projections.customer_360_commerce import commerce_view
from touchstream.projections.customer_360_complaints import complaints_view
from touchstream.projections.customer_360_events import HANDLERS, mark_of
from touchstream.projections.customer_360_pmp import fold_response, pmp_view
from touchstream.projections.customer_360_state import Config, Profile, new_profile
from touchstream.projections.customer_360_timeline import fold_common
from touchstream.projections.customer_360_touchmap import fold_message, touchmap_view

__all__ = ["Config", "Profile", "apply", "differences", "fingerprint", "fold", "from_dict", "new_profile",
           "to_dict", "typed_view", "view", "view_fingerprint", "view_json"]


def apply(profile: Profile, record: dict) -> Profile:
    """Fold one Avro-shaped event (``record["envelope"]`` ...) into this customer's profile."""
    env = record["envelope"]
    event_id = env["event_id"]
    if event_id in profile.applied:
        return profile
    profile.applied.add(event_id)
    event_type = env["event_type"]
    mark = mark_of(record)
    fold_common(profile, event_type, record, mark)
    fold_message(profile, event_type, record, mark)
    fold_response(profile, event_type, record, mark)
    for handler in HANDLERS.get(event_type, ()):
        handler(profile, record, mark)
    return profile


def fold(records: Iterable[dict], customer_id: str, config: Config | None = None,
         profile: Profile | None = None) -> Profile:
    """Fold many events, from a fresh profile or on top of ``profile`` (a restored checkpoint)."""
    profile = profile if profile is not None else new_profile(customer_id, config)
    for record in records:
        apply(profile, record)
    return profile


def view(profile: Profile, owns: Callable[[str], bool] | None = None) -> dict:
    """The 360 as JSON-friendly data: what a representative sees and downstream services subscribe to.

    ``owns("kind:value")``: whether identity resolution gives that identifier to this customer. A
    profile lists only those, so every identifier it shows looks up to it: an event's hints may
    name a cookie that was unlinked from the customer, a shared phone or a blocked value, and
    listing those would show a representative an identifier that leads to someone else.
    Times are ISO-8601 strings and amounts decimal strings: ``typed_view`` as its JSON shows it."""
    return orjson.loads(orjson.dumps(typed_view(profile, owns), default=_plain))


def typed_view(profile: Profile, owns: Callable[[str], bool] | None = None) -> dict:
    """``view`` before JSON: datetimes and Decimals where ``view`` has strings.

    Why the sink uses this one: it is already the Avro record of the published contract
    (``customer_360_contract.to_record`` would only convert the strings back), and orjson writes
    datetimes and Decimals in C, so one profile costs one pass to build and one to serialise."""
    return {
        "customer_id": profile.customer_id,
        "events": len(profile.applied),
        "first_seen": profile.first_seen and profile.first_seen.at,
        "last_seen": profile.last_seen and profile.last_seen.at,
        "identifiers": _identifiers(profile, owns),
        "journey": _journey(profile),
        "channels": _channels(profile),
        "interactions": [{"at": i.mark.at, "event_id": i.mark.event_id, "event_type": i.event_type,
                          "channel": i.channel, "content": i.content, "direction": i.direction,
                          "initiated_by": i.initiated_by} for i in reversed(profile.interactions)],
        "commerce": commerce_view(profile.commerce),
        "complaints": complaints_view(profile.complaints),
        **answers_view(profile),
        "attitude": attitude_view(profile.attitude),
        "pmp": pmp_view(profile),
        "touchmap": touchmap_view(profile),
        "findings": _findings(profile),
    }


def view_json(view_: dict) -> str:
    """The canonical JSON text of a view (``view`` or ``typed_view``: the same text): what is stored,
    served and hashed. Sorted keys, no spaces, UTF-8 as is (not \\u-escaped), ISO-8601 times."""
    return orjson.dumps(view_, default=_plain, option=orjson.OPT_SORT_KEYS).decode()


def _plain(value):
    """orjson's hook for what it does not write itself: a Decimal as its exact string."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not part of a 360 view")


def view_fingerprint(text: str) -> str:
    """sha256 of ``view_json``: equal 360 rows <=> equal fingerprints (replay vs live, restart vs none)."""
    return hashlib.sha256(text.encode()).hexdigest()


def _identifiers(profile: Profile, owns: Callable[[str], bool] | None) -> list[dict]:
    return [{"kind": i.kind, "value": i.value, "trust": i.trust, "first_seen": i.first_seen,
             "last_seen": i.last_seen, "sightings": i.sightings}
            for key, i in sorted(profile.identifiers.items()) if owns is None or owns(key)]


def _journey(profile: Profile) -> dict:
    journey = profile.journey
    return {"stage": journey.stage, "since": journey.since and journey.since.at,
            "since_event_id": journey.since and journey.since.event_id,
            "first_sale_at": journey.first_sale and journey.first_sale.at}


def _channels(profile: Profile) -> list[dict]:
    rows = []
    for channel, by_initiator in sorted(profile.channels.items()):
        split = {who: {"contacts": c.count, "last_at": c.last and c.last.at}
                 for who, c in sorted(by_initiator.items())}
        last = max((c.last for c in by_initiator.values() if c.last), default=None)
        rows.append({"channel": channel, "contacts": sum(c.count for c in by_initiator.values()),
                     "last_contact_at": last and last.at, "by_initiator": split})
    return rows


def _findings(profile: Profile) -> list[dict]:
    ordered = sorted(profile.findings.items(), key=lambda item: (item[1].at, item[0]))
    return [{"id": key, "kind": f.kind, "at": f.at, "subject": f.subject, "channels": f.channels,
             "evidence": f.evidence} for key, f in ordered]
