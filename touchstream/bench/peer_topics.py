"""The peers' own topic chores, shared by both (each runs in its own virtualenv; both have
confluent-kafka's admin client): check the source topic, delete what a run created."""

from __future__ import annotations

import sys

from confluent_kafka.admin import AdminClient


def topic_partitions(bootstrap: str, topic: str, who: str, timeout: float = 15.0) -> int:
    """The source topic's partition count; a missing topic stops the peer at once (quix would
    auto-create an empty one and wait on it; faust needs the count to co-partition its changelog)."""
    found = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=timeout).topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        reason = found.error if found is not None else "not in the metadata"
        raise SystemExit(f"{who}: topic {topic!r} not found on {bootstrap}: {reason}")
    return len(found.partitions)


def delete_topics(bootstrap: str, prefix: str, who: str, timeout: float = 30.0) -> list[str]:
    """Delete this run's own topics (changelogs hold a profile per event); best effort, the result
    is already written."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [t for t in admin.list_topics(timeout=timeout).topics if t.startswith(prefix)]
    for name, future in (admin.delete_topics(names, operation_timeout=timeout).items() if names else ()):
        try:
            future.result(timeout)
        except Exception as exc:   # noqa: BLE001 - any failure is reported, never raised
            print(f"{who}: could not delete topic {name}: {exc}", file=sys.stderr)
    return names
