"""Trusted time in the SDK and ``touchstream publish`` (issue 13): recorded_at is the publisher's clock.

A client's recorded_at is overwritten; only an explicit replay keeps it (``keep_recorded_at`` /
``--keep-recorded-at``), and even then nothing may lie in the future. The skew occurred_at may
lead by is a setting. Kafka is a recording fake, the registry the in-memory one.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.local_codec import LocalCodec
from touchstream.cli import main as cli_main
from touchstream.config import Settings
from touchstream.events.validation import EventValidationError
from touchstream.privacy.keyring import MemoryKeyRing
from touchstream.publishing import publisher as publisher_module
from touchstream.publishing.publisher import Publisher

CODEC = LocalCodec()
OLD = "2026-01-05T08:00:00Z"


class Recorder:
    def __init__(self, _config=None):
        self.sent: list[bytes] = []

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None):
        self.sent.append(value)
        on_delivery(None, None)

    def poll(self, timeout=0):
        return 0

    def flush(self, timeout=None):
        return 0


@pytest.fixture(autouse=True)
def no_kafka(monkeypatch):
    sent: list[bytes] = []

    class Shared(Recorder):
        def __init__(self, _config=None):
            self.sent = sent

    monkeypatch.setattr(publisher_module, "Producer", Shared)
    monkeypatch.setattr(publisher_module, "AvroCodec", lambda _url: CODEC)
    monkeypatch.setattr(publisher_module, "TopicKeyRing", lambda _settings: MemoryKeyRing())   # no key topic either
    return sent


def now() -> datetime:
    return datetime.now(timezone.utc)


def page_view(n: int = 0, **envelope) -> dict:
    env = {"event_type": "web.page_viewed", "event_id": f"pv-{n}", "occurred_at": OLD, "recorded_at": OLD,
           "channel": "web", "content": "inquiry", "initiated_by": "customer", "identity": {"cookie_id": "c-1"}}
    env.update(envelope)
    return {"envelope": env, "url": f"https://shop.example/p/{n}"}


def recorded(sent: list[bytes]) -> list[datetime]:
    return [CODEC.decode(value).record["envelope"]["recorded_at"] for value in sent]


def problems(call) -> dict[str, str]:
    with pytest.raises(EventValidationError) as info:
        call()
    return {p.path: p.reason for p in info.value.problems}


def test_the_sdk_stamps_its_own_clock_over_the_clients_recorded_at(tmp_path, no_kafka):
    before = now() - timedelta(milliseconds=1)
    with Publisher(Settings(home=tmp_path), source="web-shop", keys=MemoryKeyRing()) as publisher:
        publisher.publish(page_view(0))
        publisher.publish_batch([page_view(1)])
        publisher.web.page_viewed(identity={"cookie_id": "c-1"}, content="inquiry", initiated_by="customer",
                                  url="https://shop.example/")
    assert len(no_kafka) == 3 and all(before <= t <= now() for t in recorded(no_kafka))


def test_a_replay_keeps_recorded_at_but_not_a_future_one(tmp_path, no_kafka):
    with Publisher(Settings(home=tmp_path), source="export", keep_recorded_at=True, keys=MemoryKeyRing()) as publisher:
        publisher.publish(page_view(0))
        y2099 = "2099-01-01T00:00:00Z"
        found = problems(lambda: publisher.publish(page_view(1, occurred_at=y2099, recorded_at=y2099)))
    assert recorded(no_kafka) == [datetime(2026, 1, 5, 8, tzinfo=timezone.utc)]
    assert set(found) == {"envelope.occurred_at", "envelope.recorded_at"}
    assert "receiving clock" in found["envelope.recorded_at"]


def test_the_skew_is_a_setting(tmp_path):
    assert Settings.from_env({"TOUCHSTREAM_HOME": str(tmp_path)}).max_clock_skew_seconds == 300
    assert Settings.from_env({"TOUCHSTREAM_HOME": str(tmp_path), "TOUCHSTREAM_MAX_CLOCK_SKEW_SECONDS": "900"}
                             ).max_clock_skew_seconds == 900
    ahead = page_view(occurred_at=(now() + timedelta(seconds=600)).isoformat())
    found = problems(lambda: Publisher(Settings(home=tmp_path), source="s", keys=MemoryKeyRing()).validate(ahead))
    assert "is in the future" in found["envelope.occurred_at"] and "more than 300 s" in found["envelope.occurred_at"]
    Publisher(Settings(home=tmp_path, max_clock_skew_seconds=900), source="s", keys=MemoryKeyRing()).validate(ahead)
    tight = Publisher(Settings(home=tmp_path, max_clock_skew_seconds=60), source="s", keys=MemoryKeyRing())
    assert "envelope.occurred_at" in problems(lambda: tight.validate(page_view(occurred_at=(now() + timedelta(
        seconds=120)).isoformat())))


def test_the_sdk_refuses_an_event_id_reused_for_other_contents_and_nul_text(tmp_path, no_kafka):
    publisher = Publisher(Settings(home=tmp_path), source="s", keys=MemoryKeyRing())
    other = page_view(0)
    other["url"] = "https://shop.example/other"
    assert "different contents" in problems(lambda: publisher.publish_batch([page_view(0), other]))["[1].envelope.event_id"]
    assert "NUL" in problems(lambda: publisher.publish(page_view(0, correlation_id="a\x00")))["envelope.correlation_id"]
    assert publisher.publish_batch([page_view(0), page_view(0)]) == ["pv-0"] and len(no_kafka) == 1


def run_cli(tmp_path, monkeypatch, lines: list[dict], *flags: str) -> tuple[int, list]:
    monkeypatch.setenv("TOUCHSTREAM_HOME", str(tmp_path))
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code = cli_main(["publish", str(path), "--quiet", *flags])
    rejects = tmp_path / "export.jsonl.rejects.jsonl"
    return code, [json.loads(x) for x in rejects.read_text().splitlines()] if rejects.exists() else []


def test_touchstream_publish_stamps_recorded_at_unless_told_it_replays(tmp_path, monkeypatch, no_kafka):
    before = now() - timedelta(milliseconds=1)
    assert run_cli(tmp_path, monkeypatch, [page_view(0)]) == (0, [])
    assert before <= recorded(no_kafka)[0] <= now()
    assert run_cli(tmp_path, monkeypatch, [page_view(1)], "--keep-recorded-at") == (0, [])
    assert recorded(no_kafka)[1] == datetime(2026, 1, 5, 8, tzinfo=timezone.utc)


def test_touchstream_publish_rejects_a_future_line_with_its_path(tmp_path, monkeypatch, no_kafka):
    y2099 = "2099-01-01T00:00:00Z"
    code, rejects = run_cli(tmp_path, monkeypatch, [page_view(0), page_view(1, occurred_at=y2099, recorded_at=y2099)])
    assert code == 1 and len(no_kafka) == 1
    assert [r["line"] for r in rejects] == [2]
    assert [p["path"] for p in rejects[0]["problems"]] == ["envelope.occurred_at"]
