"""The touchmap: company-initiated messages over event time, contact pressure, and its findings.

Why findings are recomputed from the sorted facts whenever a fact they depend on
changes (instead of being raised once, when an event arrives): windows are in
event time and events arrive late, so "overload", "redundant" and "conflict" must
equal what a replay in time order finds, whatever the arrival order. The facts
stay small (one ``Message`` per message, one ``Touch`` per campaign and channel
sighting), so recomputing a kind costs a pass over one customer's messages.

A company message is one per (channel, message id): campaign.message_sent and the
channel's own email.sent / sms.sent / postal.mail_sent of one message are one.

- overload: more than ``overload_cap`` company messages in a sliding window; one
  finding per run of over-cap messages, at the first of them, with the window's
  messages (and the rest of the run) as evidence;
- redundant: one campaign reaching the customer on two or more channels within a
  window (campaign.message_sent and the channel's own events both count);
- conflict: a promotion sent while a complaint case was open (opened or reopened,
  not yet resolved or closed), one per promotion and case;
- contact_without_consent: a message for a purpose (marketing or service) the customer had
  withdrawn on its channel, or never given where the policy requires an opt-in
  (``customer_360_consent``), one per message.
Pure: no I/O.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from sys import intern

from touchstream.projections.customer_360_complaints import CASE_EVENTS, open_intervals
from touchstream.projections.customer_360_consent import check_contact, contact_purpose, merged_purpose
from touchstream.projections.customer_360_events import counted_contact, is_company_message, on
from touchstream.projections.customer_360_state import Finding, Mark, Message, Profile, Touch


def fold_message(profile: Profile, event_type: str, record: dict, mark: Mark) -> None:
    """Called for every event: company messages are recognised by type and initiator.

    One message per (channel, message id), dated by its earliest record: a campaign.message_sent and the
    channel's email.sent / sms.sent / postal.mail_sent of the same message share the key (``counted_contact``).
    Its consent purpose is marketing if any of its records is, whichever arrives first.
    """
    if not is_company_message(event_type, record):
        return
    env = record["envelope"]
    campaign = record.get("campaign_id")
    if campaign:  # every sighting counts, before deciding which event describes the message
        _touch(profile, campaign, Touch(mark, intern(env["channel"])))
    key = counted_contact(event_type, record)
    current = profile.messages.get(key)
    purpose = contact_purpose(event_type, record)
    if current is not None:
        purpose = merged_purpose(current.purpose, purpose)
        if current.mark < mark:
            if purpose != current.purpose:
                current.purpose = purpose
                check_contact(profile, key)
            return
    profile.messages[key] = Message(mark, intern(env["channel"]), intern(env["content"]), intern(event_type), campaign,
                                    purpose)
    check_contact(profile, key)
    find_overload(profile)
    if env["content"] == "promotion" or (current is not None and current.content == "promotion"):
        find_conflicts(profile)


def _touch(profile: Profile, campaign: str, touch: Touch) -> None:
    touches = profile.campaign_touches.setdefault(campaign, [])
    touches.append(touch)
    touches.sort()
    find_redundant(profile, campaign, touches)


def find_redundant(profile: Profile, campaign: str, touches: list[Touch]) -> None:
    window = profile.config.window
    profile.findings.pop(f"redundant:{campaign}", None)
    for end, touch in enumerate(touches):
        inside = [t for t in touches[:end + 1] if touch.mark.at - t.mark.at < window]
        channels = sorted({t.channel for t in inside})
        if len(channels) > 1:
            profile.findings[f"redundant:{campaign}"] = Finding(
                "redundant", touch.mark.at, [t.mark.event_id for t in inside], campaign, channels)
            return


def find_overload(profile: Profile) -> None:
    """Sliding window over the sorted messages (two pointers): runs of over-cap messages become findings."""
    for key in [k for k in profile.findings if k.startswith("overload:")]:
        del profile.findings[key]
    window, cap = profile.config.window, profile.config.overload_cap
    inside: deque[Message] = deque()
    run: Finding | None = None
    for msg in sorted(profile.messages.values(), key=lambda m: m.mark):
        inside.append(msg)
        while msg.mark.at - inside[0].mark.at >= window:
            inside.popleft()
        if len(inside) <= cap:
            run = None
        elif run is None:
            run = Finding("overload", msg.mark.at, [m.mark.event_id for m in inside], msg.mark.event_id,
                          sorted({m.channel for m in inside}))
            profile.findings[f"overload:{msg.mark.event_id}"] = run
        else:
            run.evidence.append(msg.mark.event_id)
            run.channels = sorted(set(run.channels) | {msg.channel})


def find_conflicts(profile: Profile) -> None:
    """Every promotion sent inside an open span of any complaint case."""
    for key in [k for k in profile.findings if k.startswith("conflict:")]:
        del profile.findings[key]
    promotions = [m for m in profile.messages.values() if m.content == "promotion"]
    if not promotions or not profile.complaints:
        return
    for case in profile.complaints.values():
        for start, end in open_intervals(case):
            for promo in promotions:
                if start <= promo.mark and (end is None or promo.mark < end):
                    profile.findings[f"conflict:{promo.mark.event_id}:{case.case_id}"] = Finding(
                        "conflict", promo.mark.at, [start.event_id, promo.mark.event_id], case.case_id,
                        [promo.channel])


# Registered after customer_360_complaints' reducer (imported above), so the case is already updated.
@on(*CASE_EVENTS, "phone.callback_made")
def _case_changed(profile: Profile, record: dict, mark: Mark) -> None:
    if record.get("case_id") and any(m.content == "promotion" for m in profile.messages.values()):
        find_conflicts(profile)


# -- derived -------------------------------------------------------------------------------
def window_start(profile: Profile, mark: Mark):
    anchor, window = profile.config.window_anchor, profile.config.window
    return anchor + ((mark.at - anchor) // window) * window


def touchmap_view(profile: Profile) -> dict:
    """Company messages per tumbling window and channel, and the pressure in the window ending at last seen."""
    windows: dict[datetime, dict[str, int]] = {}
    for msg in profile.messages.values():
        slot = windows.setdefault(window_start(profile, msg.mark), {})
        slot[msg.channel] = slot.get(msg.channel, 0) + 1
    recent: dict[str, int] = {}
    if profile.last_seen is not None:
        for msg in profile.messages.values():
            if profile.last_seen.at - msg.mark.at < profile.config.window:
                recent[msg.channel] = recent.get(msg.channel, 0) + 1
    return {"window_days": profile.config.window.total_seconds() / 86400,
            "overload_cap": profile.config.overload_cap,
            "company_messages": len(profile.messages),
            "windows": [{"start": start, "by_channel": dict(sorted(counts.items())), "total": sum(counts.values())}
                        for start, counts in sorted(windows.items())],
            "last_window": {"by_channel": dict(sorted(recent.items())), "total": sum(recent.values())}}
