"""The preferred media package (PMP): the channels this customer actually uses and answers, ranked.

Why from behaviour, not from a stated preference: domain.md section 3 asks for the
mix a customer *initiates on* and *responds to*. Two measures per channel, both
with their evidence counts:

- initiation share: the channel's share of the customer-initiated contacts
  (a call, a mail, a web session, a visit, an order, a store receipt each count once);
- response rate: of the company-initiated messages on the channel (a campaign
  message counts once, however many records describe it), the share
  that got a response (a human open, a click, a reply, a picked-up call, a
  signature, an attended meeting, a customer line in a proactive chat).

Score = share + responded / (sent + 2): the +2 keeps one answered mail out of
one sent from outranking a channel with a long record. Responses are kept by
message key even when they arrive before the message (late events); only those
whose message is known count. Pure: no I/O.
"""

from __future__ import annotations

from touchstream.projections.customer_360_events import response_key
from touchstream.projections.customer_360_state import Mark, Profile

PRIOR = 2  # pseudo-messages without response added to each channel's record


def fold_response(profile: Profile, event_type: str, record: dict, mark: Mark) -> None:
    key = response_key(event_type, record)
    if key is None:
        return
    first = profile.responses.get(key)
    if first is None or mark < first:
        profile.responses[key] = mark


def pmp_view(profile: Profile) -> list[dict]:
    """Channels with any evidence, best first (score, then evidence, then name: deterministic)."""
    initiated = {ch: counts["customer"].count for ch, counts in profile.channels.items() if "customer" in counts}
    total = sum(initiated.values())
    sent: dict[str, int] = {}
    answered: dict[str, int] = {}
    for key, msg in profile.messages.items():
        sent[msg.channel] = sent.get(msg.channel, 0) + 1
        if key in profile.responses:
            answered[msg.channel] = answered.get(msg.channel, 0) + 1
    rows = []
    for channel in sorted(set(initiated) | set(sent)):
        share = initiated.get(channel, 0) / total if total else 0.0
        n_sent, n_answered = sent.get(channel, 0), answered.get(channel, 0)
        rate = n_answered / n_sent if n_sent else None
        score = share + n_answered / (n_sent + PRIOR)
        rows.append({"channel": channel, "score": round(score, 4),
                     "customer_initiated": initiated.get(channel, 0), "initiation_share": round(share, 4),
                     "company_messages": n_sent, "responded": n_answered,
                     "response_rate": None if rate is None else round(rate, 4)})
    rows.sort(key=lambda r: (-r["score"], -(r["customer_initiated"] + r["company_messages"]), r["channel"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows
