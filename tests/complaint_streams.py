"""Complaint events for tests: one validated event, and hypothesis strategies of whole case streams.

Events are built as plain JSON (``tests.event_builders.plain_event``) and passed
through ``Catalogue.validate``, so the fold sees the Avro-shaped dicts the
processors will give it. ``lifecycles`` draws legal case histories (what a
correct help desk would log) and ``chaos`` draws any mix of complaint steps,
callbacks and contacts, legal or not.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

from tests.event_builders import CAT, plain_event

NOW = datetime(2100, 1, 1, tzinfo=timezone.utc)
T0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)  # a Monday, 10:00 in Amsterdam
CASE = "K1"
CUSTOMER = {"customer_id": "CU-1"}
STEP_FIELDS = {
    "complaint.opened": {"priority": "normal", "product": "SKU-1"},
    "complaint.acknowledged": {}, "complaint.updated": {"effort_minutes": 10},
    "complaint.callback_promised": {"callback_id": "CB1", "callback_channel": "phone"},
    "complaint.escalated": {"level": 1}, "complaint.resolved": {}, "complaint.closed": {},
    "complaint.reopened": {}, "complaint.satisfaction_given": {"score": 4},
}


def ev(event_type: str, minutes: float, event_id: str, channel: str | None = None, case: str = CASE,
       corr: str | None = CASE, content: str = "complaint", by: str | None = None, **fields) -> dict:
    """One validated event at ``T0 + minutes``; complaint.* events get ``case_id``, all get ``correlation_id``."""
    at = T0 + timedelta(minutes=minutes)
    if event_type.startswith("complaint."):
        fields = {**STEP_FIELDS.get(event_type, {}), "case_id": case, **fields}
        if event_type == "complaint.callback_promised":
            fields.setdefault("promised_by", (at + timedelta(hours=4)).isoformat())
    event = plain_event(event_type, at, dict(CUSTOMER), event_id=event_id, channel=channel, content=content, by=by,
                        **fields)
    event["envelope"]["correlation_id"] = corr
    return CAT.validate(event, now=NOW).record


def call(call_id: str, minutes: float, prefix: str, talk: int = 300, wait: int = 40, direction: str = "inbound",
         resolved: bool | None = None, corr: str | None = CASE) -> list[dict]:
    """A whole phone call threaded to the case: started, answered, ended."""
    end = minutes + (wait + talk) / 60
    extra = {} if resolved is None else {"resolved_on_call": resolved}
    return [ev("phone.call_started", minutes, f"{prefix}-s", "phone", corr=corr, call_id=call_id, direction=direction),
            ev("phone.call_answered", minutes + wait / 60, f"{prefix}-a", "phone", corr=corr, call_id=call_id,
               wait_seconds=wait),
            ev("phone.call_ended", end, f"{prefix}-e", "phone", corr=corr, call_id=call_id, direction=direction,
               wait_seconds=wait, talk_seconds=talk, outcome="completed", **extra)]


# -- strategies -------------------------------------------------------------------------------
KINDS = ("opened", "acknowledged", "updated", "callback_promised", "escalated", "resolved", "closed", "reopened",
         "satisfaction_given", "callback_made", "call", "email", "csat")
CHANNELS = ("phone", "email", "web", "store")
MINUTES = st.one_of(st.sampled_from([0, 30, 60, 600]), st.integers(0, 14 * 24 * 60))


def _one(index: int, kind: str, minutes: int, channel: str, flag: bool, case: str) -> dict:
    eid = f"e{index:03d}"
    if kind == "callback_made":
        return ev("phone.callback_made", minutes, eid, "phone", corr=case, case_id=case, callback_id="CB1",
                  reached=flag)
    if kind == "call":
        return ev("phone.call_ended", minutes, eid, "phone", corr=case, call_id=f"C{index % 3}")
    if kind == "email":
        return ev("email.received" if flag else "email.sent", minutes, eid, "email", corr=case,
                  message_id=f"M{index}")
    if kind == "csat":
        return ev("feedback.csat_given", minutes, eid, "email", corr=case, score=3)
    extra = {"level": 1 + index % 3} if kind == "escalated" else {}
    return ev(f"complaint.{kind}", minutes, eid, channel, case=case, corr=case, **extra)


@st.composite
def chaos(draw, max_size: int = 14) -> list[dict]:
    """Any complaint stream: steps in any event-time order, callbacks, contacts; some of another case."""
    rows = draw(st.lists(st.tuples(st.sampled_from(KINDS), MINUTES, st.sampled_from(CHANNELS), st.booleans(),
                                   st.sampled_from([CASE, CASE, CASE, "K2"])), min_size=1, max_size=max_size))
    return [_one(i, *row) for i, row in enumerate(rows)]


@st.composite
def lifecycles(draw) -> list[dict]:
    """A legal case history in event time (open, work, promises kept or not, resolve, close, maybe reopen)."""
    t, n, out = draw(st.integers(0, 600)), 0, []

    def add(event_type: str, **fields) -> None:
        nonlocal t, n
        t += draw(st.integers(1, 36 * 60))
        n += 1
        channel = fields.pop("channel", draw(st.sampled_from(CHANNELS)))
        out.append(ev(event_type, t, f"l{n:03d}", channel, **fields))

    if draw(st.booleans()):
        add("email.received", channel="email", message_id="M0")
    add("complaint.opened", priority=draw(st.sampled_from(["low", "normal", "high", "urgent"])))
    for _ in range(draw(st.integers(0, 2))):
        add(draw(st.sampled_from(["complaint.acknowledged", "complaint.updated", "complaint.escalated"])))
    for promise in range(draw(st.integers(0, 2))):
        add("complaint.callback_promised", callback_id=f"CB{promise}")
        if draw(st.booleans()):
            add("phone.callback_made", channel="phone", case_id=CASE, callback_id=f"CB{promise}",
                reached=draw(st.booleans()))
    for round_ in range(draw(st.integers(0, 2))):
        add("complaint.resolved")
        if draw(st.booleans()):
            add("complaint.closed")
        if round_ or not draw(st.booleans()):
            break
        add("complaint.reopened")
    return out
