"""Retention on the real broker: a topic under ``[retention] dead_letters_days`` (as the DLQ is) takes its
``retention.ms`` from the setting, also when it existed before, loses its records once they are older
than that, and DuckDB's expiry, asking the same broker which records are
old, removes the dead letters of exactly the records the broker appended before the cutoff.

The retention is seconds here (``dead_letters_days`` may be fractional) so that the broker's deletion is
seen within the test; the broker checks every 10 s (``broker_runner``'s log.retention.check.interval.ms).
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from tests.integration.pipeline_helpers import wait_for
from touchstream.processors.retention_expiry import BrokerTime, RetentionExpiry
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.projections.interaction_log import Position
from touchstream.stack.topic_admin import ensure_topics
from touchstream.topics import load_retention, load_topics

pytestmark = pytest.mark.integration
SECONDS = 3


def catalogue(folder, topic: str):
    """A TOUCHSTREAM_TOPICS override: dead letters kept SECONDS, and one topic under that retention whose
    segments roll every second (only a closed segment, or an active one wholly past retention, is deleted)."""
    path = folder / "topics.toml"
    path.write_text(f'[retention]\ndead_letters_days = {SECONDS / 86400!r}\nfree_text_days = 365\n\n'
                    f'[topics."{topic}"]\npartitions = 1\nretention = "dead_letters"\n'
                    'config = { "cleanup.policy" = "delete", "segment.ms" = "1000", '
                    '"message.timestamp.type" = "LogAppendTime" }\n')
    return path


def produce(broker, topic: str, values: list[bytes]) -> list[int]:
    """Send ``values`` and return the broker's append times (ms) of what it acknowledged."""
    stamps = []
    producer = Producer(broker.confluent(**{"linger.ms": 0}))
    for value in values:
        producer.produce(topic, value, on_delivery=lambda err, msg: stamps.append(None if err else msg.timestamp()[1]))
    assert producer.flush(30) == 0 and None not in stamps and len(stamps) == len(values)
    return stamps


def retention_ms(broker, topic: str) -> str:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    admin = AdminClient(broker.confluent())   # held until the answer came: a dropped client cancels it
    return admin.describe_configs([resource])[resource].result(timeout=30)["retention.ms"].value


def ends(broker, topic: str) -> tuple[int, int]:
    consumer = Consumer(broker.confluent(**{"group.id": "retention-test"}))
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    finally:
        consumer.close()


def test_records_past_the_dead_letter_retention_leave_the_broker_and_duckdb(broker, tmp_path, unique_name):
    topic = unique_name("retention")
    path = catalogue(tmp_path, topic)
    spec = next(s for s in load_topics(path) if s.name == topic)
    assert spec.config["retention.ms"] == str(SECONDS * 1000)   # derived from the setting, not written twice
    ensure_topics(broker, [replace(spec, config=spec.config | {"retention.ms": "3600000"})])   # made under an older setting
    assert ensure_topics(broker, [spec]) == [] and retention_ms(broker, topic) == str(SECONDS * 1000)   # `up` brings it in line
    old = produce(broker, topic, [b"old-%d" % i for i in range(5)])
    wait_for(lambda: time.time() * 1000 > max(old) + 5, what="the broker clock past the old records")
    young = produce(broker, topic, [b"young-%d" % i for i in range(5)])
    assert min(young) > max(old) and ends(broker, topic) == (0, 10)

    store = DuckDBStore(tmp_path / "serving.duckdb")   # the dead letters of those ten records
    store.apply_interactions("log", [], [], [(Position(topic, 0, o), "undecodable") for o in range(10)])
    retention = load_retention(path)
    at = (min(young) + retention.dead_letters_ms) / 1000   # the moment the old ones, and only they, are past retention
    report = RetentionExpiry(store, retention, BrokerTime(broker), clock=lambda: at).run(apply=True)
    left = [o for (o,) in store.cursor().execute('SELECT "offset" FROM dead_letters ORDER BY 1').fetchall()]
    assert report.dead_letters_deleted == 5 and left == [5, 6, 7, 8, 9]

    # The broker deletes every record once it is older than the retention (no new record comes).
    assert wait_for(lambda: ends(broker, topic)[0] == 10, timeout=120, what="the broker deleting the old segments")
    report = RetentionExpiry(store, retention, BrokerTime(broker)).run(apply=True)   # now: all are past retention
    assert report.dead_letters_deleted == 5 and store.cursor().execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
    store.close()


def test_serving_reports_and_applies_the_catalogue_retention(stack, broker, capsys, unique_name):
    """The stack's serving answers ``touchstream retention`` with the packaged settings, asking the broker as
    its own Kafka principal about the partitions its rows came from (a page view, an undecodable record);
    nothing there is 30 days old, so nothing is removed."""
    from tests.integration.pipeline_helpers import page_view, sql
    from touchstream.cli import main
    from touchstream.publishing.publisher import Publisher
    from touchstream.topics import raw_topic

    tag = unique_name("retention")
    with Publisher(stack, source="web-shop", channels={"web"}) as publisher:
        publisher.publish(page_view(tag))
    produce(broker, raw_topic("web"), [b"\x00\x00\x00\x00\x63" + tag.encode()])   # no such schema: a dead letter
    wait_for(lambda: sql(stack, "SELECT count(*) FROM interactions WHERE correlation_id = ?", [tag]) == [[1]]
             and sql(stack, "SELECT count(*) FROM dead_letters WHERE topic = ?", [raw_topic("web")])[0][0] > 0,
             what="the page view and the dead letter in DuckDB")
    assert main(["retention"]) == 0
    assert main(["retention", "--apply"]) == 0
    due, applied = capsys.readouterr().out.split("retention: ")[1:]
    assert due.startswith("dead letters 30 days, free text 365 days") and "is due (run with --apply" in due
    assert "dead_letters rows removed: 0" in applied and "interactions whose free text is removed: 0" in applied
    assert sql(stack, "SELECT count(*) FROM interactions WHERE correlation_id = ?", [tag]) == [[1]]


def test_rows_of_a_topic_the_broker_does_not_have_are_left_and_the_rest_expires(broker, tmp_path, unique_name):
    """A dead letter of a topic deleted since (or of another cluster) cannot be judged: it stays, and it does
    not stop the expiry of the others (the timer would otherwise fail at every run)."""
    topic, gone = unique_name("retention"), unique_name("deleted")
    path = catalogue(tmp_path, topic)
    ensure_topics(broker, [next(s for s in load_topics(path) if s.name == topic)])
    stamps = produce(broker, topic, [b"old"])
    store = DuckDBStore(tmp_path / "serving.duckdb")
    store.apply_interactions("log", [], [], [(Position(topic, 0, 0), "undecodable"), (Position(gone, 0, 0), "undecodable")])
    retention = load_retention(path)
    report = RetentionExpiry(store, retention, BrokerTime(broker, timeout=5),
                             clock=lambda: (stamps[0] + retention.dead_letters_ms + 1) / 1000).run(apply=True)
    assert report.dead_letters_deleted == 1
    assert store.cursor().execute("SELECT topic FROM dead_letters").fetchall() == [(gone,)]
    store.close()


def test_free_text_past_retention_opens_on_no_topic_once_its_month_key_is_deleted(stack, capsys, unique_name):
    """A complaint whose free text was sealed two years ago (its month's key): ``touchstream retention
    --apply`` deletes that key on the stack's key topic, after which the raw record's description opens
    for no one (a fresh key ring, the decrypt endpoint) while its e-mail address still does."""
    from datetime import datetime, timezone

    from tests.integration.pipeline_helpers import sql
    from tests.integration.test_privacy_on_broker import complaint, records_of
    from touchstream.cli import main
    from touchstream.client import Client, local_key
    from touchstream.codec.avro_codec import AvroCodec
    from touchstream.privacy.key_topic import TopicKeyRing
    from touchstream.publishing.publisher import Publisher
    from touchstream.topics import raw_topic

    tag = unique_name("textkeys")
    email = f"{tag}@example.com"
    with Publisher(stack, source="crm") as publisher:
        publisher.sealer.clock = lambda: datetime(2024, 5, 2, tzinfo=timezone.utc).timestamp()
        publisher.publish(complaint(tag, 0, email, "a parcel that never came"))
    wait_for(lambda: sql(stack, "SELECT count(*) FROM interactions WHERE correlation_id = ?", [tag]) == [[1]],
             what="the complaint in DuckDB")
    [record] = records_of(stack, raw_topic("complaint"), f"{tag}-0")
    token = AvroCodec(stack.registry_url, auto_register=False).decode(record.value()).record["description"]
    with Client(stack.query_url, api_key=local_key(stack)) as client:
        assert client.open_values([token]) == ["my parcel a parcel that never came (0)"]

    assert main(["retention", "--apply"]) == 0
    removed = capsys.readouterr().out
    assert "keys of free text on Kafka (one per month sealed) removed: " in removed
    assert int(removed.split("one per month sealed) removed: ")[1].split()[0]) >= 1
    opened = AvroCodec(stack.registry_url, auto_register=False, keys=TopicKeyRing(stack)).decode(record.value()).record
    assert opened["description"] == "" and opened["envelope"]["identity"]["email"] == email
    with Client(stack.query_url, api_key=local_key(stack)) as client:
        assert client.open_values([token]) == [None]
