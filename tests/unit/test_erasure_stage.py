"""Serving's erasure stage (issue 17) over a DuckDB filled as serving fills it (``test_erasure_store``'s
store): a request is published sealed, carried out once however often it is delivered or the process
restarts, deletes every key of the person, publishes ``SubjectErased`` and 360 tombstones, and leaves
the person in no table; rows that name the erased id again are forgotten again, under the same id."""

from __future__ import annotations

import hashlib
import threading

import pytest

from tests.complaint_fill import CODEC
from tests.local_codec import LocalCodec
from tests.unit.test_erasure_store import _person, filled_store, store  # noqa: F401 - the module's DuckDB fixture
from touchstream.privacy.keyring import MemoryKeyRing
from touchstream.privacy.sealing import is_sealed
from touchstream.processors.erasure_stage import ERASED, REQUESTED, ErasureStage, tombstone_id
from touchstream.processors.erasure_store import find_subject
from touchstream.processors.records import RawRecord
from touchstream.processors.topic_output import MemoryOutput
from touchstream.projections.customer_360_store import Customer360Store
from touchstream.publishing.dead_letters import AlreadySentDeadLetters
from touchstream.topics import COMPLAINT_CASES_TOPIC, CUSTOMER_360_TOPIC, ERASURES_TOPIC


class Live:
    """The stage's view of the live 360: its lock, its store, and the caches it is told to drop."""

    def __init__(self, db):
        self.lock, self.store, self.forgotten = threading.Lock(), Customer360Store(db), []

    def forget(self, customers: set[str]) -> None:
        self.forgotten.append(customers)


@pytest.fixture(scope="module")
def ring():
    return MemoryKeyRing()


def stage_over(db, ring, output):
    return ErasureStage(db, LocalCodec(keys=ring, client=CODEC._client), ring, output, AlreadySentDeadLetters(),
                        Live(db))


def delivered(output: MemoryOutput, start: int = 0) -> list[RawRecord]:
    """The ledger records sent so far, as the stage's source would read them back."""
    ledger = [r for r in output.records if r[0] == ERASURES_TOPIC]
    return [RawRecord(ERASURES_TOPIC, 0, start + n, k, v, h) for n, (_t, k, v, h) in enumerate(ledger)]


def test_an_erasure_runs_once_and_leaves_the_person_nowhere(store, ring):  # noqa: F811
    con = store.cursor()
    customer, identifiers = _person(con)
    email = next(v for k, v in identifiers if k == "email")
    sealed = {i: ring.seal(ring.ref(f"{k}:{v}"), "x") for i in identifiers for k, v in [i]}
    ring.commit()
    output = MemoryOutput()
    stage = stage_over(store, ring, output)
    erasure_id = stage.request(email.upper(), requested_by="operator")
    assert stage.pending(erasure_id) and stage.status(erasure_id) is None
    [request] = delivered(output)
    raw = LocalCodec(client=CODEC._client).decode(request.value)   # no keys: what a subscriber reads
    assert raw.event_type == REQUESTED and is_sealed(raw.record["subject"]) and email not in repr(raw.record)

    stage.handle([request])
    stage.handle([request])                                   # redelivered: skipped by its offset
    stage_over(store, ring, output).handle([request])         # a restart: skipped by the stored offset
    ledger = delivered(output)
    assert [stage.codec.decode(r.value).event_type for r in ledger] == [REQUESTED, ERASED]
    erased = stage.codec.decode(ledger[1].value).record
    assert erased["customer_ids"][0] == customer and erased["kids_deleted"] >= len(identifiers)
    assert all(ring.unseal(token) is None for token in sealed.values()), "every identifier's key is gone"
    assert stage.status(erasure_id)["customer_ids"] == erased["customer_ids"]
    assert find_subject(con, customer, identifiers) == {}
    assert [(t, k, v) for t, k, v, _h in output.records if t == CUSTOMER_360_TOPIC] == \
        [(CUSTOMER_360_TOPIC, c.encode(), None) for c in erased["customer_ids"]]
    cases = [c for (c,) in con.execute("SELECT case_id FROM complaint_cases WHERE customer_id = ? ORDER BY 1",
                                       [tombstone_id(ring, erasure_id)]).fetchall()]
    assert cases and [(k, v) for t, k, v, _h in output.records if t == COMPLAINT_CASES_TOPIC] == \
        [(c.encode(), None) for c in cases], "a tombstone for each of their cases"
    assert stage.live.forgotten == [set(erased["customer_ids"])]


def test_rows_naming_an_erased_id_again_are_forgotten_under_the_same_id(store, ring):  # noqa: F811
    con = store.cursor()
    customer, _identifiers = _person(con)
    output = MemoryOutput()
    stage = stage_over(store, ring, output)
    erasure_id = stage.request(customer, requested_by="operator")   # by the customer id this time
    stage.handle(delivered(output, 100))
    replacement = tombstone_id(ring, erasure_id)
    assert con.execute("SELECT count(*) FROM interactions WHERE customer_id = ?", [replacement]).fetchone()[0] > 0
    assert stage.sweep() == 0, "nothing names them: nothing to do"
    con.execute("INSERT INTO interactions SELECT * REPLACE ('late-' || event_id AS event_id, ? AS customer_id) "
                "FROM interactions WHERE customer_id = ? LIMIT 1", [customer, replacement])
    assert stage.sweep() == 1
    assert con.execute("SELECT count(*) FROM interactions WHERE customer_id = ?", [customer]).fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM interactions WHERE event_id LIKE 'late-%' AND customer_id = ?",
                       [replacement]).fetchone()[0] == 1, "the same id as the first run: the views join as before"


def test_a_subject_nobody_has_is_recorded_with_no_customer(store, ring):  # noqa: F811
    output = MemoryOutput()
    stage = stage_over(store, ring, output)
    erasure_id = stage.request("email:nobody.at.all@example.com", requested_by="operator")
    stage.handle(delivered(output, 200))
    assert stage.status(erasure_id)["customer_ids"] == []
    with pytest.raises(ValueError, match="empty"):
        stage.request("  ", requested_by="operator")


WALL_CLOCK = {"updated_at", "switched_at", "erased_at"}   # when a row was written, not what the log says


def digest(db) -> str:
    """Every base table's rows, sorted, but the columns that record the wall clock of a write."""
    cur = db.cursor()
    try:
        tables = [t for (t,) in cur.execute("SELECT table_name FROM information_schema.tables WHERE table_type = "
                                            "'BASE TABLE' AND table_schema = 'main' ORDER BY 1").fetchall()]
        text = []
        for t in tables:
            columns = [c for (c,) in cur.execute("SELECT column_name FROM information_schema.columns WHERE "
                                                 "table_name = ? ORDER BY ordinal_position", [t]).fetchall()]
            read = ", ".join(f'"{c}"' for c in columns if c not in WALL_CLOCK)
            text.append(f"{t}: {sorted(map(repr, cur.execute(f'SELECT {read} FROM {t}').fetchall()))}")
    finally:
        cur.close()
    return hashlib.sha256("\n".join(text).encode()).hexdigest()


def test_a_duckdb_rebuilt_from_the_ledger_forgets_the_same_rows_as_the_live_one(tmp_path):
    """Replay equals live for erasures: a second DuckDB filled alike reads the ledger from offset 0 after the
    keys are gone (the request no longer opens) and ends with the very rows of the first, by hash."""
    live_db, replay_db = filled_store(tmp_path / "live"), filled_store(tmp_path / "replay")
    try:
        assert digest(live_db) == digest(replay_db)
        ring, output = MemoryKeyRing(), MemoryOutput()
        customer, identifiers = _person(live_db.cursor())
        for kind, value in identifiers:
            ring.seal(ring.ref(f"{kind}:{value}"), "x")
        ring.commit()
        live = stage_over(live_db, ring, output)
        live.request(customer, requested_by="operator")
        live.handle(delivered(output))
        ledger = delivered(output)
        live.handle(ledger)           # it reads its own SubjectErased back, as its source would
        assert len(ledger) == 2 and digest(live_db) != digest(replay_db)

        replay = stage_over(replay_db, ring, MemoryOutput())
        replay.handle(ledger[:1])     # the request: its subject's key is gone, so it names no one
        assert digest(replay_db) != digest(live_db)
        replay.handle(ledger[1:])     # SubjectErased: the customers forgotten, under the same replacing id
        assert digest(replay_db) == digest(live_db)
        erasure_id = live.codec.decode(ledger[1].value).record["erasure_id"]
        assert replay.status(erasure_id)["customer_ids"] == live.status(erasure_id)["customer_ids"] == [customer]
    finally:
        live_db.close()
        replay_db.close()
