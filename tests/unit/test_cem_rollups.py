"""The interaction log's CEM rollups (cem_calls, cem_chats, cem_messages): what cem_touchpoints reads
instead of grouping every call's, chat's and message's events of a 10M-row log.

Why these tests: the rollups are merged batch by batch from the rows new to the log
(``DuckDBStore.apply_interactions`` + projections/sql/interaction_rollups.sql), so they must say what
grouping the stored interactions says however the events are cut into batches, ordered or delivered
again (live equals a replay), and an older file must get them filled from its log. The expected
rollups are computed here in Python from the stored rows, not with the SQL under test.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from touchstream.demo.generator import DEFAULT_START, generate
from touchstream.events.catalogue import Catalogue
from touchstream.projections.duckdb_store import DuckDBStore, load_sql
from touchstream.projections.interaction_log import Position, to_row

CALL_TYPES = ("phone.call_started", "phone.call_answered", "phone.call_ended")
REPLY_TYPES = ("email.sent", "sms.sent", "postal.mail_sent", "social.reply_sent")
NOW = DEFAULT_START + timedelta(days=400)   # later than every event
ROLLUPS = {"cem_calls": "call_id", "cem_chats": "conversation_id", "cem_messages": "channel, message"}


@pytest.fixture(scope="module")
def demo_rows():
    """The interaction log rows and positions of a demo run (calls, chats, mails and replies)."""
    catalogue, rows, positions = Catalogue(), [], []
    for n, event in enumerate(generate(60, 30, 11)):
        valid = catalogue.validate(event, now=NOW)
        positions.append(Position(valid.topic, 0, n))
        rows.append(to_row(valid.event_type, valid.record, 1, positions[-1], NOW))
    return rows, positions


def table(db: DuckDBStore, name: str) -> list[tuple]:
    cur = db.cursor()
    try:
        return cur.execute(f"SELECT * FROM {name} ORDER BY {ROLLUPS[name]}").fetchall()
    finally:
        cur.close()


def expected(db: DuckDBStore) -> dict[str, list[tuple]]:
    """The rollups computed in Python from the stored interactions."""
    cur = db.cursor()
    try:
        stored = cur.execute("SELECT event_type, channel, occurred_at, call_id, direction, wait_seconds, "
                             "received_message_id, in_reply_to, conversation_id, sender FROM interactions").fetchall()
    finally:
        cur.close()
    calls, chats, messages = {}, {}, {}
    for event_type, channel, at, call_id, direction, wait, received, reply_to, chat, sender in stored:
        if chat is not None and event_type == "web.chat_message_sent":
            customer, agent = chats.get(chat, (False, False))
            chats[chat] = (customer or sender == "customer", agent or sender == "agent")
        if call_id is not None and event_type in CALL_TYPES:
            inbound, answered, least, ended = calls.get(call_id, (False, False, None, False))
            is_answer = event_type == "phone.call_answered"
            if is_answer and wait is not None:
                least = wait if least is None else min(least, wait)
            calls[call_id] = (inbound or (direction == "inbound" and not is_answer), answered or is_answer, least,
                              ended or event_type == "phone.call_ended")
        for message, slot, applies in ((received, 0, True), (reply_to, 1, event_type in REPLY_TYPES)):
            if message is not None and applies:
                times = list(messages.get((channel, message), (None, None)))
                times[slot] = at if times[slot] is None else min(times[slot], at)
                messages[(channel, message)] = tuple(times)
    return {"cem_calls": sorted((k, *v) for k, v in calls.items()),
            "cem_chats": sorted((k, *v) for k, v in chats.items()),
            "cem_messages": sorted((*k, *v) for k, v in messages.items())}


def write(path, rows, positions, batches: list[slice]) -> DuckDBStore:
    db = DuckDBStore(path)
    for part in batches:
        db.apply_interactions("interaction_log", rows[part], positions[part])
    return db


def test_the_rollups_say_what_the_stored_interactions_say(tmp_path, demo_rows):
    rows, positions = demo_rows
    db = write(tmp_path / "live.duckdb", rows, positions, [slice(n, n + 250) for n in range(0, len(rows), 250)])
    try:
        want = expected(db)
        assert all(want.values()), {k: len(v) for k, v in want.items()}   # the demo has calls and replies
        assert any(asked and replied for _c, _m, asked, replied in want["cem_messages"])
        assert any(inbound and answered for _c, inbound, answered, _w, _e in want["cem_calls"])
        assert any(customer and agent for _c, customer, agent in want["cem_chats"])
        for name in ROLLUPS:
            assert table(db, name) == want[name], name
    finally:
        db.close()


def test_live_equals_a_replay_in_another_order_and_redeliveries_count_once(tmp_path, demo_rows):
    """Small batches in event order, each delivered twice, against one batch in a shuffled order; and a
    copy of an event (same event_id) with another payload changes nothing, as it changes no stored row."""
    rows, positions = demo_rows
    answered = next(i for i, r in enumerate(rows) if r["event_type"] == "phone.call_answered" and i < len(rows) - 97)
    forged = {**rows[answered], "wait_seconds": -1.0}   # rides with the next batch, among new rows
    live = DuckDBStore(tmp_path / "live.duckdb")
    for n in range(0, len(rows), 97):
        extra = [forged] if n == (answered // 97 + 1) * 97 else []
        for _ in range(2):
            live.apply_interactions("interaction_log", extra + rows[n:n + 97], positions[n:n + 97])
    order = list(range(len(rows)))
    random.Random(3).shuffle(order)
    replay = write(tmp_path / "replay.duckdb", [rows[i] for i in order], [positions[i] for i in order], [slice(None)])
    try:
        for name in ROLLUPS:
            assert table(live, name) == table(replay, name) == expected(live)[name], name
    finally:
        live.close()
        replay.close()


def test_an_older_log_gets_the_rollups_filled_once(tmp_path, demo_rows):
    rows, positions = demo_rows
    path = tmp_path / "old.duckdb"
    db = write(path, rows, positions, [slice(None)])
    want = {name: table(db, name) for name in ROLLUPS}
    with db.transaction() as con:   # what the release before the rollups wrote
        for name in ROLLUPS:
            con.execute(f"DROP TABLE {name}")
    db.close()
    db = DuckDBStore(path)   # its DDL creates and fills them
    try:
        assert {name: table(db, name) for name in ROLLUPS} == want
        with db.transaction() as con:
            con.execute("UPDATE cem_calls SET wait_seconds = -1")
        db.execute_script(load_sql("interaction_log"))   # a later start fills nothing again
        assert {r[3] for r in table(db, "cem_calls")} == {-1}
    finally:
        db.close()
