"""The partition merge's rules one at a time (the properties are in ``test_identity_determinism``)."""

from __future__ import annotations

from touchstream.processors.partition_merge import Item, PartitionMerge
from touchstream.processors.records import RawRecord


def item(topic: str, offset: int, minute: int, event_id: str, stamp: int | None = None) -> Item:
    return Item((minute, event_id), RawRecord(topic, 0, offset, None, b"", [], stamp), {"id": event_id})


def ids(items: list[Item]) -> list[str]:
    return [i.event["id"] for i in items]


def test_an_empty_partition_still_to_deliver_holds_the_merge_and_positions_stay_at_the_first_held_record():
    merge = PartitionMerge()
    merge.expect([("a", 0), ("b", 0)])
    merge.add([item("a", 0, 5, "a5"), item("a", 1, 9, "a9")])
    assert merge.release(lambda tp: False) == [] and merge.positions() == {("a", 0): 0}
    merge.add([item("b", 0, 7, "b7")])
    assert ids(merge.release(lambda tp: False)) == ["a5", "b7"]   # b is empty again and may deliver more
    assert merge.positions() == {("a", 0): 1, ("b", 0): 1}
    assert ids(merge.release(lambda tp: True)) == ["a9"] and merge.held() == 0


def test_a_record_the_broker_appended_a_moment_ago_waits_and_a_redelivered_one_is_buffered_once():
    merge = PartitionMerge()
    merge.add([item("a", 0, 1, "old", stamp=1_000), item("a", 1, 2, "new", stamp=9_000)])
    merge.add([item("a", 0, 1, "old", stamp=1_000)])
    assert ids(merge.release(lambda tp: True, lambda i: i.record.timestamp <= 5_000)) == ["old"]
    assert ids(merge.release(lambda tp: True)) == ["new"]


def test_records_without_an_event_key_go_first_and_ties_fall_back_to_the_log_position():
    merge = PartitionMerge()
    merge.add([item("b", 0, 3, "x"), item("a", 0, 3, "x"),
               Item(None, RawRecord("c", 0, 0, None, b"", []), {"id": "dead"})])
    assert [(i.record.topic, i.event["id"]) for i in merge.release(lambda tp: True)] == [
        ("c", "dead"), ("a", "x"), ("b", "x")]
