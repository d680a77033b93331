"""Free text expires on Kafka too (issue 17's retention): it is sealed a second time under its month's
key, and retention deletes a month's key once the month is older than ``free_text_days``. Then the text
opens nowhere, whatever copy of the record is read, while the identifiers and a newer month's text still
open; retention's report says how many keys it deleted (or would)."""

from __future__ import annotations

import calendar
import time
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from tests.local_codec import LocalCodec
from tests.unit.test_retention import CODEC, EVENTS, RETENTION, live, live_file, offsets_before  # noqa: F401
from touchstream.privacy.keyring import MemoryKeyRing
from touchstream.privacy.sealer import Sealer
from touchstream.privacy.sealing import is_sealed
from touchstream.privacy.subjects import FIRST_PERIOD, PERIOD, expired_periods, text_period
from touchstream.processors.retention_expiry import RetentionExpiry

DAY_MS = 86_400_000


def month_end_ms(period: str) -> int:
    year, month = map(int, period[len(PERIOD):].split("-"))
    return calendar.timegm((year + month // 12, month % 12 + 1, 1, 0, 0, 0)) * 1000


@given(now_ms=st.integers(calendar.timegm((2021, 1, 1, 0, 0, 0)) * 1000, 4_000_000_000_000),
       keep_days=st.integers(0, 3650))
def test_a_month_expires_once_it_ended_more_than_the_retention_ago(now_ms, keep_days):
    keep_ms = keep_days * DAY_MS
    months = expired_periods(now_ms, keep_ms)
    assert all(month_end_ms(p) <= now_ms - keep_ms for p in months)   # every one is wholly past retention
    following = text_period((month_end_ms(months[-1]) if months else now_ms) / 1000)
    assert month_end_ms(following) > now_ms - keep_ms or not months   # the next month is not
    if months:
        assert months[0] == f"{PERIOD}{FIRST_PERIOD[0]:04d}-{FIRST_PERIOD[1]:02d}" and len(set(months)) == len(months)


def _with_text():
    return next(e for e in EVENTS if e.event_type == "complaint.opened")


def test_free_text_of_an_expired_month_opens_nowhere_and_identifiers_still_do(live):  # noqa: F811
    ring = MemoryKeyRing()
    codec = LocalCodec(keys=ring, client=CODEC._client)
    event = _with_text()
    sealed_at = datetime(2025, 3, 14, tzinfo=timezone.utc).timestamp()
    old = Sealer(ring, clock=lambda: sealed_at).seal_events([(event.schema.subject, event.schema.schema, event.record)])
    new = Sealer(ring).seal_events([(event.schema.subject, event.schema.schema, event.record)])
    old_bytes, new_bytes = (codec.encode(event.schema, record) for record, _key in (old[0], new[0]))
    assert codec.decode(old_bytes).record["description"] == event.record["description"]
    assert is_sealed(codec.open_text(old[0][0]["description"])) is False

    now_ms = int(time.time() * 1000)
    expiry = RetentionExpiry(live, RETENTION, offsets_before, clock=lambda: now_ms / 1000, keys=ring)
    due = expiry.run(apply=False)
    assert due.text_keys >= 1 and codec.decode(old_bytes).record["description"] == event.record["description"]
    done = expiry.run(apply=True)
    assert done.text_keys == due.text_keys and expiry.run(apply=False).text_keys == 0
    gone, kept = codec.decode(old_bytes).record, codec.decode(new_bytes).record
    assert gone["description"] == "" and codec.open_text(old[0][0]["description"]) is None
    assert gone["envelope"]["identity"] == event.record["envelope"]["identity"], "identifiers do not expire"
    assert kept["description"] == event.record["description"], "this month's text is within retention"
    assert done.as_dict()["text_keys"] == done.text_keys
