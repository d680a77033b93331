"""The complaint rules of docs/views.md ("## Rules"), one test per rule, named after it.

Why a file of its own: each rule (what a first response is, what FCR is, when a callback is
missed) is read by several folds (case metrics, SLA clocks, the sink's rows and KPIs); the
test that holds the rule lives in one place and docs/views.md links to it.
"""

from __future__ import annotations

import random
from datetime import timedelta

from tests.complaint_replay import Replayed
from tests.complaint_streams import CASE, T0, call, ev
from tests.local_codec import LocalCodec
from tests.pipeline_harness import consume, raw_logs, validated
from touchstream.config import Settings
from touchstream.processors.complaint_resolution import ComplaintSink
from touchstream.processors.topic_output import MemoryOutput
from touchstream.projections import complaint_sla as sla
from touchstream.projections.complaint_resolution import Config, first_contact_resolution, fold, view
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.publishing.dead_letters import AlreadySentDeadLetters

POLICY = sla.load_policies()[0]
CODEC = LocalCodec()
DUE = T0 + timedelta(hours=4)


def outbound_call(minutes: float, prefix: str, talk: int = 120, outcome: str = "completed") -> dict:
    """Only the end of a call the company made (the PBX logged no call_started / call_answered)."""
    return ev("phone.call_ended", minutes, prefix, "phone", by="company", call_id=f"C-{prefix}", direction="outbound",
              wait_seconds=0, talk_seconds=talk, outcome=outcome)


def by_name(case, as_of) -> dict:
    return {c.name: c for c in sla.clocks(case, POLICY, as_of)}


# -- what counts as a first response --------------------------------------------------------------------------
def test_an_outbound_completed_call_is_the_first_response():
    case = fold([ev("complaint.opened", 0, "o", "email"), outbound_call(30, "out"),
                 ev("complaint.resolved", 3 * 60, "r", "email")], CASE)
    assert view(case)["metrics"]["first_response_seconds"] == 30 * 60 + 0     # the call's end, not the resolution
    first = by_name(case, T0 + timedelta(hours=5))["first_response"]
    assert (first.state, first.met_by) == (sla.MET, "out")


def test_a_call_that_reached_nobody_is_not_a_response():
    for missed in (outbound_call(30, "out", talk=0), outbound_call(30, "out", talk=0, outcome="no_answer"),
                   outbound_call(30, "out", outcome="voicemail")):
        case = fold([ev("complaint.opened", 0, "o", "email"), missed, ev("complaint.resolved", 3 * 60, "r")], CASE)
        assert view(case)["metrics"]["first_response_seconds"] == 3 * 60 * 60
    answered = fold([ev("complaint.opened", 0, "o", "email"), outbound_call(30, "out"),
                     ev("complaint.resolved", 3 * 60, "r")], CASE)
    assert view(answered)["metrics"]["first_response_seconds"] == 30 * 60


def test_a_completed_call_answers_the_customers_next_contact():
    """One rule for every clock: the next_response clock of a customer's e-mail is met by the call back."""
    case = fold([ev("complaint.opened", 0, "o", "email"), ev("complaint.acknowledged", 5, "a", "email"),
                 ev("email.received", 60, "in", "email", message_id="M1"), outbound_call(90, "out")], CASE)
    clock = by_name(case, T0 + timedelta(hours=3))["next_response:in"]
    assert (clock.state, clock.met_by) == (sla.MET, "out")


# -- what counts as a missed callback -------------------------------------------------------------------------
def promised(*later: dict) -> list[dict]:
    return [ev("complaint.opened", 0, "o", "phone"), ev("complaint.acknowledged", 2, "a", "phone"),
            ev("complaint.callback_promised", 10, "p", "phone", promised_by=DUE.isoformat()), *later]


def status(case, as_of=None) -> str:
    return view(case, as_of=as_of)["callbacks"][0]["status"]


def test_a_callback_past_its_due_time_without_an_attempt_is_missed():
    case = fold(promised(), CASE)
    assert status(case) == "pending"                                   # as of its latest event (10 minutes)
    assert status(case, DUE - timedelta(minutes=1)) == "pending"
    assert status(case, DUE) == "missed"                               # as the SLA callback clock breaches
    assert status(case, DUE + timedelta(minutes=1)) == "missed"
    metrics = view(case, as_of=DUE + timedelta(minutes=1))["metrics"]
    assert (metrics["callbacks_missed"], metrics["callbacks_pending"]) == (1, 0)


def test_a_callback_made_late_is_kept_late_and_one_that_reached_nobody_is_missed():
    late = fold(promised(ev("phone.callback_made", 5 * 60, "cb", "phone", case_id=CASE, callback_id="CB1",
                            reached=True)), CASE)
    assert status(late, DUE + timedelta(hours=9)) == "kept_late"
    unreached = fold(promised(ev("phone.callback_made", 60, "cb", "phone", case_id=CASE, callback_id="CB1",
                                 reached=False)), CASE)
    assert status(unreached, DUE - timedelta(minutes=1)) == "pending"
    assert status(unreached, DUE + timedelta(minutes=1)) == "missed"


def test_a_case_finished_before_the_due_time_leaves_its_promise_pending_whatever_as_of():
    """The resolution answered the customer before the callback fell due (the SLA callback clock is met by it),
    so the promise is not missed later; and the row cannot change when no SLA agenda rewrites it."""
    case = fold(promised(ev("complaint.resolved", 60, "r", "phone")), CASE)
    assert status(case, DUE + timedelta(days=3)) == "pending"
    late = fold(promised(ev("complaint.resolved", 5 * 60, "r", "phone")), CASE)
    assert status(late) == "missed"


def sink_on(path, wall: list[float]) -> ComplaintSink:
    return ComplaintSink(DuckDBStore(path), CODEC, AlreadySentDeadLetters(), output=MemoryOutput(),
                         policies=(POLICY,), idle_seconds=10, wall=lambda: wall[0])


def plain(record: dict) -> dict:
    """``ev`` gives validated records (datetimes); the raw log wants the plain JSON again."""
    env = record["envelope"]
    out = {**record, "envelope": {**env, "occurred_at": env["occurred_at"].isoformat(),
                                  "recorded_at": env["recorded_at"].isoformat()}}
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in out.items()}


def query(sink: ComplaintSink, sql: str) -> list[tuple]:
    cur = sink.db.cursor()
    try:
        return cur.execute(sql).fetchall()
    finally:
        cur.close()


def test_callbacks_missed_counts_a_callback_past_due(tmp_path):
    """The sink judges callbacks at the SLA watermark: once it passes the due time, the case row and the KPIs say
    missed, and the row is what a replay of the same events gives at rest."""
    case_events = promised()
    later = call("OTHER", 8 * 60, "x", corr=None)                      # another customer's call, 8 hours on
    wall = [1000.0]
    sink = sink_on(tmp_path / "rules.duckdb", wall)
    for batch in consume(raw_logs(validated([plain(r) for r in case_events + later]), CODEC), random.Random(1),
                         max_batch=50):
        sink.handle(batch)
    assert query(sink, "SELECT callbacks_missed FROM complaint_cases") == [(0,)]   # both partitions deliver
    wall[0] += 11
    assert sink.tick() == 1                 # every partition idle: the watermark passes the due time
    rows = query(sink, "SELECT callbacks_missed, fingerprint FROM complaint_cases")
    assert rows[0][0] == 1
    assert sink.case(CASE)["callbacks"][0]["status"] == "missed"
    assert query(sink, "SELECT sum(callbacks_missed) FROM complaint_kpis") == [(1,)]
    assert rows[0][1] == Replayed(case_events + later).cases[CASE][1]


# -- what counts as FCR -------------------------------------------------------------------------------------------
def resolved_after(minutes: float, config: Config | None = None):
    return fold([ev("complaint.opened", 0, "o", "web"), ev("complaint.resolved", minutes, "r", "web")], CASE,
                config)


def test_the_fcr_window_is_a_setting_with_a_default():
    assert Settings.from_env({}).fcr_grace_minutes == 15
    assert Config().first_contact_grace == Settings.from_env({}).fcr_grace == timedelta(minutes=15)
    assert [first_contact_resolution(resolved_after(m)).fcr for m in (12, 14, 15, 16, 18)] == [True] * 3 + [False] * 2
    wider = Settings.from_env({"TOUCHSTREAM_FCR_GRACE_MINUTES": "20"})
    config = Config(first_contact_grace=wider.fcr_grace)
    assert [first_contact_resolution(resolved_after(m, config)).fcr for m in (16, 18, 21)] == [True, True, False]


def test_the_fcr_window_setting_refuses_a_non_number():
    try:
        Settings.from_env({"TOUCHSTREAM_FCR_GRACE_MINUTES": "soon"})
    except ValueError as exc:
        assert "TOUCHSTREAM_FCR_GRACE_MINUTES" in str(exc)
    else:
        raise AssertionError("a non-integer FCR grace was accepted")


def test_a_reopened_case_says_reopened():
    slow = [ev("complaint.opened", 0, "o", "web"), ev("complaint.resolved", 60, "r", "web"),
            ev("complaint.reopened", 2 * 24 * 60, "re", "email"), ev("complaint.resolved", 3 * 24 * 60, "r2")]
    assert view(fold(slow, CASE))["fcr"] == {"fcr": False, "reason": "reopened",
                                             "window_ends": (T0 + timedelta(minutes=60, days=7)).isoformat(),
                                             "repeats": []}
    quick = call("C1", 0, "c1") + [ev("complaint.opened", 1, "o", "phone"), ev("complaint.resolved", 5, "r", "phone"),
                                   ev("complaint.reopened", 24 * 60, "re", "phone")]
    assert first_contact_resolution(fold(quick, CASE)).reason == "reopened"
