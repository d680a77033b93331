"""Contact permissions: a company-initiated contact for a purpose the customer had not permitted on that channel.

The rule (domain.md section 3, contact permissions per channel): a company message (the
touchmap's ``Message``: initiated_by company, one per channel and message id, see
``customer_360_events.is_company_message``) raises a ``contact_without_consent`` finding when,
at the message's occurred_at, its purpose's consent on its channel

- was withdrawn: the latest statement of the slots ``<channel>:<purpose>`` and
  ``all:<purpose>`` at or before that instant is a withdrawal (the latest of the two scopes
  wins: "no marketing at all" after an SMS opt-in stops SMS too; an SMS opt-in after it
  permits SMS again), or
- was never given, and the policy requires an opt-in for it (``Config.opt_in``, slots
  ``<channel|all>:<purpose>`` from ``consent_policy.toml``; default: marketing by e-mail and SMS).

A contact's purpose: **marketing** when any record of the message belongs to a campaign
(``campaign.message_sent``, or the channel's own event with a ``campaign_id``) or has content
``promotion``; a campaign's own purpose (promotion, informing, benefit) does not matter, a
newsletter or a voucher from the campaign manager is direct marketing too. **service** for
every other company message (fulfilment, invoicing, informing outside a campaign, an outbound
call about a case). Conversations the customer started are never checked.

Why event time and the whole history of statements: the permission in force when the
company made contact decides. A withdrawal that occurred after the contact is no violation; a
withdrawal that arrives late but occurred before it is one. So every statement of a slot is
kept, sorted, and a contact's finding is recomputed whenever its message or a statement
changes: the same events give the same findings in any arrival order.
Pure: no I/O.
"""

from __future__ import annotations

from bisect import bisect_right, insort

from touchstream.projections.customer_360_events import on
from touchstream.projections.customer_360_state import Finding, Mark, Message, Profile, Statement

KIND = "contact_without_consent"
MARKETING, SERVICE = "marketing", "service"
WITHDRAWN = "withdrawn"


def contact_purpose(event_type: str, record: dict) -> str:
    """The consent purpose a company message needs: marketing for campaigns and promotions, else service."""
    if event_type == "campaign.message_sent" or record.get("campaign_id") or \
            record["envelope"]["content"] == "promotion":
        return MARKETING
    return SERVICE


def merged_purpose(a: str, b: str) -> str:
    """One message, several records: marketing if any of them is (so the purpose is order-free)."""
    return MARKETING if MARKETING in (a, b) else a


def requires_opt_in(opt_in: tuple[str, ...], channel: str, purpose: str) -> bool:
    return f"{channel}:{purpose}" in opt_in or f"all:{purpose}" in opt_in


@on("feedback.consent_given", "feedback.consent_withdrawn")
def _statement(profile: Profile, record: dict, mark: Mark) -> None:
    """Keep the statement in its slot's history, then re-judge every company message (statements are rare)."""
    slot = f"{record.get('for_channel') or 'all'}:{record['purpose']}"
    status = "given" if record["envelope"]["event_type"] == "feedback.consent_given" else WITHDRAWN
    insort(profile.consent_history.setdefault(slot, []), Statement(mark, status))
    check_all(profile)


def check_all(profile: Profile) -> None:
    for key in [k for k in profile.findings if k.startswith(KIND + ":")]:
        del profile.findings[key]
    for key, message in profile.messages.items():
        finding = violation(profile, message)
        if finding is not None:
            profile.findings[f"{KIND}:{key}"] = finding


def check_contact(profile: Profile, key: str) -> None:
    """Re-judge one message (its record, hence its time or purpose, changed)."""
    if not profile.consent_history and not profile.config.opt_in:
        return   # nothing stated, nothing required: no finding can exist (the common case, on the hot path)
    finding = violation(profile, profile.messages[key])
    if finding is None:
        profile.findings.pop(f"{KIND}:{key}", None)
    else:
        profile.findings[f"{KIND}:{key}"] = finding


def in_force(profile: Profile, channel: str, purpose: str, mark: Mark) -> Statement | None:
    """The latest statement of ``<channel>:<purpose>`` or ``all:<purpose>`` that occurred at or before ``mark``."""
    latest = None
    for slot in (f"{channel}:{purpose}", f"all:{purpose}"):
        statements = profile.consent_history.get(slot)
        if statements:
            n = bisect_right(statements, mark.at, key=lambda s: s.mark.at)
            if n and (latest is None or statements[n - 1].mark > latest.mark):
                latest = statements[n - 1]
    return latest


def violation(profile: Profile, message: Message) -> Finding | None:
    """The finding a company message raises, or None when it was permitted when it was sent."""
    statement = in_force(profile, message.channel, message.purpose, message.mark)
    if statement is None:
        if not requires_opt_in(profile.config.opt_in, message.channel, message.purpose):
            return None
        evidence = [message.mark.event_id]
    elif statement.status == WITHDRAWN:
        evidence = [m.event_id for m in sorted((statement.mark, message.mark))]
    else:
        return None
    return Finding(KIND, message.mark.at, evidence, f"{message.channel}:{message.purpose}", [message.channel])
