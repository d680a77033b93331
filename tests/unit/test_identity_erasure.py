"""Identity forgets an erased person (issue 17): state, store, suppression, idempotence, and the order.

Why: the erasure deletes the person's data keys, but identity keeps their identifiers in the clear,
in memory and in ``identity.sqlite``. When it reads ``SubjectErased`` every copy must go (the audit
searches every TEXT column of every table, and here the file's bytes too), the erased customer ids
must not come back through a later event's plaintext ``customer_id`` hint, a repeated erasure must
change nothing, and a rebuild from the log after the erasure must reach the state the live run
reached (the properties over generated streams: ``test_identity_forget_properties``).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.event_builders import linked, plain_event
from tests.local_codec import LocalCodec
from tests.pipeline_harness import NEVER, raw_logs, validated
from touchstream.privacy.keyring import MemoryKeyRing
from touchstream.privacy.sealer import Sealer
from touchstream.processors.identity_erasures import ERASED, REQUESTED
from touchstream.processors.identity_resolution import CUSTOMER, KIND, ForgetFailed, IdentityStage
from touchstream.processors.identity_store_migration import CHECKPOINT
from touchstream.processors.identity_store_sqlite import open_identity_store
from touchstream.processors.outages import outage_of
from touchstream.processors.records import RawRecord
from touchstream.processors.topic_output import MemoryOutput
from touchstream.projections.identity_resolution import IdentityConfig
from touchstream.schemas import load_derived
from touchstream.topics import CUSTOMER_EVENTS_TOPIC, ERASURES_TOPIC

CODEC = LocalCodec()
DERIVED = load_derived()
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
ANNA, ANNA_2, BERT = "CU-ANNA-7", "CU-ANNA-8", "CU-BERT-3"
ANNA_EMAIL, ANNA_COOKIE, ANNA_PHONE, ANNA_ACCOUNT = ("anna.erase@example.org", "ck-anna-91", "+31 6 5555 0101",
                                                      "NL99ERAS0123456789")
SHARED_COOKIE = "ck-shared-44"   # seen beside both: quarantined while Anna is there, Bert's once she is gone
# what must be nowhere after the erasure (identifier values as identity normalises them, and the ids)
ANNA_VALUES = [ANNA, ANNA_2, ANNA_EMAIL, ANNA_COOKIE, "+31655550101", ANNA_ACCOUNT]


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def people() -> list[dict]:
    """Anna (two CRM ids merged by a verified link, e-mail, cookie, phone, account) and Bert, sharing a cookie."""
    return [
        plain_event("web.page_viewed", at(0), {"customer_id": ANNA, "email": ANNA_EMAIL, "cookie_id": ANNA_COOKIE}),
        plain_event("phone.call_ended", at(1), {"customer_id": ANNA, "phone": ANNA_PHONE}),
        linked(at(2), ("customer_id", ANNA), ("customer_id", ANNA_2), trust="verified", reason="merge"),
        plain_event("commerce.order_placed", at(3), {"customer_id": ANNA_2, "account_number": ANNA_ACCOUNT}),
        plain_event("web.page_viewed", at(4), {"customer_id": BERT, "email": "bert.keep@example.org"}),
        plain_event("web.page_viewed", at(5), {"customer_id": ANNA, "cookie_id": SHARED_COOKIE}),
        plain_event("web.page_viewed", at(6), {"customer_id": BERT, "cookie_id": SHARED_COOKIE}),
    ]


def raw_records(events: list[dict], logs: dict | None = None) -> list[RawRecord]:
    """The records ``events`` make on the raw topics; with ``logs`` (the topics so far), appended after theirs."""
    logs = defaultdict(list) if logs is None else logs
    known = {tp: len(log) for tp, log in logs.items()}
    raw_logs(validated(events), CODEC, logs)
    return [r for tp, log in logs.items() for r in log[known.get(tp, 0):]]


def ledger_record(body: dict, name: str, offset: int = 0) -> RawRecord:
    """A record on the erasure ledger as serving writes it (fields the schema has beyond these: empty)."""
    schema = DERIVED[name]
    full = {f["name"]: [] for f in schema.schema["fields"]}
    full.update(body)
    return RawRecord(ERASURES_TOPIC, 0, offset, body["erasure_id"].encode(), CODEC.encode(schema, full), [])


def erased(erasure_id: str, *customer_ids: str, offset: int = 0) -> RawRecord:
    return ledger_record({"erasure_id": erasure_id, "customer_ids": list(customer_ids), "requested_at": T0,
                          "erased_at": T0, "kids_deleted": 4}, "subject_erased", offset)


class Letters:
    def __init__(self):
        self.sent = []

    def send(self, letters) -> None:
        self.sent += letters


def stage_in(folder: Path, output: MemoryOutput | None = None, letters=None) -> IdentityStage:
    """A stage as the service starts one, on the SQLite store in ``folder``."""
    return IdentityStage.restore(open_identity_store(folder), IdentityConfig(), CODEC, output or MemoryOutput(),
                                 letters or Letters(), **NEVER)


def text_cells(path: Path) -> dict[str, list[str]]:
    """Every value of every TEXT column of every table, by table: what an audit searches (read-only: a running
    identity's store may be read so, WAL readers do not block it)."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        out = {}
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})") if c[2].upper() == "TEXT"]
            out[table] = [v for c in columns for (v,) in db.execute(f"SELECT {c} FROM {table}") if v is not None]
        return out
    finally:
        db.close()


def found(cells: dict[str, list[str]], values: list[str]) -> list[tuple[str, str, str]]:
    """(table, cell, value) wherever a value occurs in a cell, case-insensitively, as a substring."""
    return [(t, cell, v) for t, column in cells.items() for cell in column for v in values if v.lower() in cell.lower()]


def memberships(output: MemoryOutput, since: int = 0) -> list[tuple[str, dict]]:
    return [(key.decode(), CODEC.decode(value).record) for topic, key, value, headers in output.records[since:]
            if topic == CUSTOMER_EVENTS_TOPIC and dict(headers).get(KIND) == b"membership"]


def observed_anna(tmp_path: Path, logs: dict | None = None) -> tuple[IdentityStage, MemoryOutput]:
    output = MemoryOutput()
    stage = stage_in(tmp_path, output)
    stage.handle(raw_records(people(), logs))
    stage.save()
    assert stage.resolver.customer_of("email", ANNA_EMAIL) == ANNA == stage.resolver.customer_of("customer_id", ANNA_2)
    assert found(text_cells(tmp_path / "identity.sqlite"), ANNA_VALUES)   # the audit can find her before
    return stage, output


# -- forgetting removes every copy -------------------------------------------------------------------
def test_forget_removes_every_value_from_the_state_and_the_sqlite_file(tmp_path):
    stage, output = observed_anna(tmp_path)
    (tmp_path / f"{CHECKPOINT}.migrated").write_text(f'{{"old": "{ANNA_EMAIL}"}}')   # an upgrade's old copy
    bert = stage.resolver.identifiers_of(BERT)
    stage.forget([erased("er-1", ANNA)])

    cells = text_cells(tmp_path / "identity.sqlite")
    del cells["forgotten"]
    db = sqlite3.connect(tmp_path / "identity.sqlite")
    forgotten = sorted(db.execute("SELECT customer_id, erasure_id FROM forgotten"))
    db.close()
    assert forgotten == [(ANNA, "er-1"), (ANNA_2, "er-1")]   # the suppression list, and nothing else, names her
    assert found(cells, ANNA_VALUES) == []
    for name in ("identity.sqlite", "identity.sqlite-wal"):   # not in free pages or old WAL frames either
        path = tmp_path / name
        data = path.read_bytes() if path.exists() else b""
        assert [v for v in ANNA_VALUES[2:] if v.encode() in data] == [], name
    assert not (tmp_path / f"{CHECKPOINT}.migrated").exists()

    in_memory = repr(stage.resolver.facts()) + repr(stage.resolver.assignment()) + repr(stage.resolver.customers())
    assert [v for v in ANNA_VALUES if v in in_memory] == []
    assert stage.resolver.customer_of("email", ANNA_EMAIL) is None
    # Bert keeps everything, and the cookie Anna shared with him is his now (no longer quarantined)
    assert set(bert) <= set(stage.resolver.identifiers_of(BERT))
    assert stage.resolver.customer_of("cookie_id", SHARED_COOKIE) == BERT
    restored = stage_in(tmp_path)
    assert restored.resolver.facts() == stage.resolver.facts()
    assert restored.resolver.assignment() == stage.resolver.assignment()


def test_every_customer_that_changed_is_announced_and_the_forgotten_one_with_no_identifiers(tmp_path):
    stage, output = observed_anna(tmp_path)
    since, earlier = len(output.records), max(body["seq"] for _k, body in memberships(output))
    stage.forget([erased("er-1", ANNA)])
    announced = {}
    for key, body in memberships(output, since):
        announced.setdefault(body["customer_id"], body)
        assert body["decided_by"] == "er-1"
    assert announced[ANNA]["identifiers"] == []   # the customer no longer exists: a fold drops it
    assert {"kind": "cookie_id", "value": SHARED_COOKIE} in announced[BERT]["identifiers"]
    assert ANNA_2 not in announced   # never a canonical customer: merged into Anna from the start
    assert min(body["seq"] for body in announced.values()) > earlier   # the newest record wins


# -- suppression ------------------------------------------------------------------------------------
def test_a_later_event_naming_a_forgotten_customer_id_does_not_bring_it_back(tmp_path):
    logs = defaultdict(list)
    stage, output = observed_anna(tmp_path, logs)
    stage.forget([erased("er-1", ANNA)])
    since = len(output.records)
    later = [plain_event("web.page_viewed", at(30), {"customer_id": ANNA_2, "cookie_id": "ck-new-1"}),
             plain_event("commerce.order_placed", at(31), {"customer_id": ANNA}),
             plain_event("web.page_viewed", at(32), {"customer_id": BERT, "email": "bert.keep@example.org"})]
    stage.handle(raw_records(later, logs))
    stage.save()
    routed = [dict(h)[CUSTOMER].decode() for t, _k, _v, h in output.records[since:]
              if t == CUSTOMER_EVENTS_TOPIC and dict(h).get(KIND) == b"event"]
    assert len(routed) == 2 and routed[1] == BERT and routed[0].startswith("anon-")   # the cookie alone
    assert stage.stats["unattributed"] == 1   # the event that carried only her id is in no profile
    assert stage.resolver.customer_of("customer_id", ANNA) is None
    assert stage.resolver.customer_of("customer_id", ANNA_2) is None
    assert found({"all": [repr(stage.resolver.facts())]}, [ANNA, ANNA_2]) == []
    # after a restart too: the suppression list is loaded with the facts, and a re-observed event is suppressed
    again = stage_in(tmp_path)
    again.offsets = type(again.offsets)({})
    again.catch_up([r for log in logs.values() for r in log])
    assert again.resolver.customer_of("customer_id", ANNA) is None
    assert found(text_cells(tmp_path / "identity.sqlite"), ANNA_VALUES[2:]) == []


def test_events_held_in_the_merge_when_the_erasure_comes_lose_the_persons_identifiers(tmp_path):
    stage, logs = stage_in(tmp_path), defaultdict(list)
    stage.handle(raw_records(people(), logs))
    records = raw_records([plain_event("web.page_viewed", at(40), {"email": ANNA_EMAIL, "cookie_id": "ck-late"})], logs)
    held = records[0]
    stage.expect([(held.topic, held.partition), ("touchstream.raw.other", 0)])
    stage.caught_up = lambda tp: tp != ("touchstream.raw.other", 0)   # a partition still to deliver holds it
    stage.handle(records)
    assert stage.merge.held() == 1
    stage.forget([erased("er-1", ANNA)])
    stage.caught_up = lambda _tp: True
    stage.handle([])
    assert stage.merge.held() == 0
    assert stage.resolver.customer_of("email", ANNA_EMAIL) is None   # decoded before the keys went: blanked
    assert stage.resolver.customer_of("cookie_id", "ck-late") is not None


# -- idempotence, durability, the ledger ------------------------------------------------------------
def dump(path: Path) -> dict:
    db = sqlite3.connect(path)
    try:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(db.execute(f"SELECT * FROM {t}")) for t in tables}
    finally:
        db.close()


def test_the_same_erasure_twice_changes_nothing_the_second_time(tmp_path):
    stage, output = observed_anna(tmp_path)
    stage.forget([erased("er-1", ANNA)])
    before, sent, facts = dump(tmp_path / "identity.sqlite"), len(output.records), stage.resolver.facts()
    stage.forget([erased("er-1", ANNA, offset=1)])   # redelivered (at-least-once)
    assert dump(tmp_path / "identity.sqlite") == before and len(output.records) == sent
    assert stage.resolver.facts() == facts and stage.stats["erasures"] == 1
    restarted = stage_in(tmp_path, output)   # and after a restart: applied erasures are in the store
    before = dump(tmp_path / "identity.sqlite")
    restarted.forget([erased("er-1", ANNA)])
    after = dump(tmp_path / "identity.sqlite")
    assert after == {**before, "meta": after["meta"]} and len(output.records) == sent
    assert restarted.stats["erasures"] == 0


def test_a_failed_store_write_stops_the_stage_and_the_restart_applies_the_erasure_again(tmp_path):
    stage, _output = observed_anna(tmp_path)

    def failing(gone, counter):
        raise OSError("disk full")

    stage.store.forget = failing
    with pytest.raises(ForgetFailed) as failed:
        stage.forget([erased("er-1", ANNA)])
    assert outage_of(failed.value, rerunnable=True) is None   # fail-stop, never waited out as an outage
    assert "er-1" not in stage.erasures and found(text_cells(tmp_path / "identity.sqlite"), ANNA_VALUES)
    restarted = stage_in(tmp_path)   # from the store, which still holds her
    assert restarted.resolver.customer_of("email", ANNA_EMAIL) == ANNA
    restarted.forget([erased("er-1", ANNA)])
    assert restarted.resolver.customer_of("email", ANNA_EMAIL) is None
    assert found(text_cells(tmp_path / "identity.sqlite"), ANNA_VALUES[2:]) == []


def test_requests_are_left_to_serving_and_anything_else_on_the_ledger_is_dead_lettered(tmp_path):
    letters = Letters()
    stage = stage_in(tmp_path, letters=letters)
    stage.handle(raw_records(people()))
    request = ledger_record({"erasure_id": "er-1", "subject": ANNA_EMAIL, "requested_at": T0,
                             "requested_by": "admin"}, "erasure_requested")
    junk = RawRecord(ERASURES_TOPIC, 0, 2, b"x", b"not avro", [])
    stage.forget([request, junk])
    assert stage.resolver.customer_of("email", ANNA_EMAIL) == ANNA and stage.stats["erasures"] == 0
    assert [letter.record for letter in letters.sent] == [junk]
    assert REQUESTED.endswith("ErasureRequested") and ERASED.endswith("SubjectErased")


def test_an_unknown_customer_is_recorded_as_forgotten_and_suppressed_from_then_on(tmp_path):
    stage = stage_in(tmp_path)
    stage.forget([erased("er-9", "CU-NEVER-SEEN")])
    stage.handle(raw_records([plain_event("web.page_viewed", at(1), {"customer_id": "CU-NEVER-SEEN"})]))
    assert stage.resolver.customers() == {} and stage.stats["unattributed"] == 1


# -- a rebuild from the log after the erasure -----------------------------------------------------------
def sealed(events: list[dict], ring, codec, logs: dict) -> list[RawRecord]:
    """The records ``events`` make on the raw topics with their personal values sealed, as the collector
    sends them (one partition per topic), appended to ``logs``."""
    sealer, out = Sealer(ring), []
    for event in validated(events):
        [(record, key)] = sealer.seal_events([(event.schema.subject, event.schema.schema, event.record)])
        log = logs[(event.topic, 0)]
        log.append(RawRecord(event.topic, 0, len(log), key, codec.encode(event.schema, record), []))
        out.append(log[-1])
    return out


def test_a_rebuild_from_the_log_after_the_erasure_reaches_the_state_the_live_run_reached(tmp_path):
    """The live run observes Anna, then serving deletes her keys and publishes SubjectErased, then more
    events come (her customer id again, her e-mail again under a new key, Bert). A rebuild from offset 0
    reads the ledger first, then every raw record, her old values now unreadable: same facts, same
    customers, same rows in the store."""
    ring, logs = MemoryKeyRing(), defaultdict(list)
    codec = LocalCodec(keys=ring)

    def stage(name: str) -> IdentityStage:
        return IdentityStage.restore(open_identity_store(tmp_path / name), IdentityConfig(), codec, MemoryOutput(),
                                     Letters(), keys=ring, **NEVER)

    live = stage("live")
    before = sealed(people(), ring, codec, logs)
    live.handle(before)
    ring.erase({ring.ref(f"{kind}:{value}") for kind, value, _trust in live.resolver.identifiers_of(ANNA)})
    ledger = [erased("er-1", ANNA, ANNA_2)]   # as serving lists them: the canonical id and the one merged in
    live.forget(ledger)
    after = sealed([plain_event("web.page_viewed", at(30), {"customer_id": ANNA, "cookie_id": "ck-new-1"}),
                    plain_event("web.page_viewed", at(31), {"email": ANNA_EMAIL, "cookie_id": "ck-back-2"}),
                    plain_event("web.page_viewed", at(32), {"customer_id": BERT, "cookie_id": "ck-bert-3"})],
                   ring, codec, logs)
    live.handle(after)
    rebuilt = stage("rebuilt")
    rebuilt.forget(ledger)   # the service reads the whole ledger before the first raw record
    rebuilt.handle(before + after)
    for s in (live, rebuilt):
        s.save()
    assert rebuilt.resolver.facts() == live.resolver.facts()
    assert rebuilt.resolver.assignment() == live.resolver.assignment()
    assert live.resolver.customer_of("email", ANNA_EMAIL) not in (None, ANNA)   # back, as someone new
    live_rows, rebuilt_rows = ({t: rows for t, rows in dump(tmp_path / name / "identity.sqlite").items()
                                if t != "meta"} for name in ("live", "rebuilt"))
    assert live_rows == rebuilt_rows
