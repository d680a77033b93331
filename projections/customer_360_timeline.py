"""The parts of the customer-360 every event feeds: seen, identifiers, contacts per channel, timeline, journey.

Why these are order-free: first/last seen are min/max marks, identifier sightings
and contact keys are set unions and counts, the timeline keeps the N latest marks
(the same N whatever the arrival order), and the journey stage is decided by the
latest signal in event time, so a late event lands where it happened.
Pure: no I/O.
"""

from __future__ import annotations

from bisect import insort
from sys import intern   # names of channels, types, contents kept in many profiles: one copy each

from touchstream.projections.customer_360_events import counted_contact, direction, journey_signal, on
from touchstream.projections.customer_360_state import ContactCount, Identifier, Interaction, Mark, Profile, Unlink
from touchstream.projections.identity_facts import Trust
from touchstream.projections.identity_normalise import KIND_CEILING, envelope_trust, normalise

TRUST_RANK = {"unknown": 0, "claimed": 1, "observed": 2, "verified": 3}
# Status receipts: they say a message arrived, not that anybody interacted.
NOT_INTERACTIONS = frozenset({"email.delivered", "sms.delivered"})


def fold_common(profile: Profile, event_type: str, record: dict, mark: Mark) -> None:
    """What every event contributes, whatever its type."""
    if profile.first_seen is None or mark < profile.first_seen:
        profile.first_seen = mark
    if profile.last_seen is None or mark > profile.last_seen:
        profile.last_seen = mark
    if event_type != "identity.identifiers_unlinked":
        identity = record["envelope"]["identity"]
        proven = envelope_trust(event_type, bool(identity.get("customer_id")))
        for kind, value in identity.items():
            if value:
                see_identifier(profile, kind, value, mark, hint_trust(kind, proven))
    count_contact(profile, event_type, record, mark)
    if not event_type.startswith("identity.") and event_type not in NOT_INTERACTIONS:
        remember_interaction(profile, event_type, record, mark)
    signal = journey_signal(event_type, record)
    if signal is not None:
        journey_step(profile, signal, mark)


def hint_trust(kind: str, proven: Trust | None) -> str:
    """How far an envelope hint is trusted: what its event proves (identity resolution's trust
    table), capped for shared kinds (cookies, devices); a customer id is the account itself."""
    if kind == "customer_id":
        return "verified"
    return min(proven, KIND_CEILING.get(kind, Trust.VERIFIED)).symbol if proven else "unknown"


def see_identifier(profile: Profile, kind: str, value: str, mark: Mark, trust: str = "unknown") -> None:
    """Identifiers normalised as identity resolution does (e-mail case, phone E.164), with
    first/last seen and the best trust any sighting earned."""
    node, _note = normalise(kind, value, profile.config.region)
    if node is None:
        return
    key = str(node)
    ident = profile.identifiers.get(key)
    if ident is None:
        ident = profile.identifiers[key] = Identifier(node.kind, node.value, mark.at, mark.at)
    if mark.at < ident.first_seen:
        ident.first_seen = mark.at
    elif mark.at > ident.last_seen:
        ident.last_seen = mark.at
    ident.sightings += 1
    if TRUST_RANK.get(trust, 0) > TRUST_RANK.get(ident.trust, 0):
        ident.trust = trust


@on("identity.identifier_observed")
def _observed(profile: Profile, record: dict, mark: Mark) -> None:
    ident = record["identifier"]
    see_identifier(profile, ident["kind"], ident["value"], mark, record.get("trust") or "unknown")


@on("identity.identifiers_linked")
def _linked(profile: Profile, record: dict, mark: Mark) -> None:
    for side in ("identifier_a", "identifier_b"):
        ident = record[side]
        see_identifier(profile, ident["kind"], ident["value"], mark, record.get("trust") or "unknown")


@on("identity.identifiers_unlinked")
def _unlinked(profile: Profile, record: dict, mark: Mark) -> None:
    """Kept as a note: which side leaves this customer is identity resolution's call (it re-derives profiles)."""
    a, b = record["identifier_a"], record["identifier_b"]
    unlink = Unlink(mark, f"{a['kind']}:{a['value']}", f"{b['kind']}:{b['value']}", record.get("reason") or "unknown")
    insort(profile.unlinks, unlink, key=lambda u: u.mark)


def count_contact(profile: Profile, event_type: str, record: dict, mark: Mark) -> None:
    """One count per contact (a call, a mail and its opens, a web session, an order), by channel and initiator."""
    key = counted_contact(event_type, record)
    if key is None:
        return
    env = record["envelope"]
    channel, initiated_by = env["channel"], env["initiated_by"]
    counts = profile.channels.setdefault(intern(channel), {}).setdefault(intern(initiated_by), ContactCount())
    tagged = f"{channel}|{initiated_by}|{key}"
    if tagged not in profile.contact_keys:
        profile.contact_keys.add(tagged)
        counts.count += 1
    if counts.last is None or mark > counts.last:
        counts.last = mark


def remember_interaction(profile: Profile, event_type: str, record: dict, mark: Mark) -> None:
    """Keep the N latest interactions by event time; an old late event only enters if it is among them."""
    timeline, limit = profile.interactions, profile.config.last_n
    if limit <= 0 or (len(timeline) >= limit and mark < timeline[0].mark):
        return
    env = record["envelope"]
    item = Interaction(mark, intern(event_type), intern(env["channel"]), intern(env["content"]),
                       direction(event_type, record), intern(env["initiated_by"]))
    insort(timeline, item, key=lambda i: i.mark)
    if len(timeline) > limit:
        del timeline[0]


def journey_step(profile: Profile, signal: str, mark: Mark) -> None:
    journey = profile.journey
    latest = journey.signals.get(signal)
    if latest is None or mark > latest:
        journey.signals[signal] = mark
    if signal == "sale" and (journey.first_sale is None or mark < journey.first_sale):
        journey.first_sale = mark
    decide_stage(profile)


def decide_stage(profile: Profile) -> None:
    """The latest signal decides; a service signal (inquiry, complaint, return) is support only after a sale."""
    journey = profile.journey
    signal, mark = max(journey.signals.items(), key=lambda item: item[1])
    if signal == "service":
        signal = "support" if journey.first_sale is not None and journey.first_sale <= mark else "research"
    journey.stage, journey.since = signal, mark
