"""Create the catalogue's topics on a broker, idempotently.

The broker runs with ``auto.create.topics.enable=false`` so a typo in a topic
name fails loudly instead of creating a stray topic; every topic therefore
comes from ``topics.toml`` through here. Existing topics are left exactly as
they are (no partition or config changes: a raw topic is the event store, and
silently altering it is not this function's call), except for the few settings in
``ENFORCED`` that protect the data without touching it: an install made before the
raw topics were stamped by the broker gets ``LogAppendTime`` at the next ``up``. A topic's own
``enforced`` configs too: the DLQ's ``retention.ms`` follows ``[retention] dead_letters_days``.
"""

from __future__ import annotations

from touchstream.kafka_access import KafkaAccess, as_access
from touchstream.topics import TopicSpec

TOPIC_ALREADY_EXISTS = 36  # Kafka error code
# Configs brought in line on existing topics too: they change how new records are stamped, never old data.
ENFORCED = ("message.timestamp.type",)


class TopicAdminError(RuntimeError):
    """The broker refused to create a topic (bad config, too many partitions, ...)."""


def ensure_topics(bootstrap: KafkaAccess | str, specs: list[TopicSpec], timeout: float = 30.0) -> list[str]:
    """Create the topics of ``specs`` that do not exist yet; return the created names.

    A topic created concurrently by someone else (TopicAlreadyExists) counts as
    present, not as an error. Returns after the new topics have leaders, so a
    producer can use them right away.
    """
    from kafka import KafkaAdminClient

    ms = int(timeout * 1000)
    admin = KafkaAdminClient(**as_access(bootstrap).kafka_python(
        client_id="touchstream-topic-admin", bootstrap_timeout_ms=ms, request_timeout_ms=ms))
    try:
        existing = set(admin.list_topics())
        _enforce_configs(admin, [s for s in specs if s.name in existing])
        missing = [s for s in specs if s.name not in existing]
        if not missing:
            return []
        request = {
            s.name: {
                "num_partitions": s.partitions,
                "replication_factor": s.replication_factor,
                "configs": dict(s.config),
            }
            for s in missing
        }
        result = admin.create_topics(request, timeout_ms=ms, raise_errors=False)
        created, failures = [], []
        for topic in result.get("topics", []):
            code = topic.get("error_code", 0)
            if code == 0:
                created.append(topic["name"])
            elif code != TOPIC_ALREADY_EXISTS:
                failures.append(f"{topic['name']}: error {code} {topic.get('error_message') or ''}".strip())
        if failures:
            raise TopicAdminError("could not create topics: " + "; ".join(failures))
        if created:
            admin.wait_for_topics(created, timeout_ms=ms)
        order = [s.name for s in specs]
        return sorted(created, key=order.index)
    finally:
        admin.close()


def _enforce_configs(admin, specs: list[TopicSpec]) -> None:
    """Set the ``ENFORCED`` configs of existing topics where the broker holds another value."""
    from kafka.admin import ConfigResource, ConfigResourceType

    wanted = {s.name: {k: v for k, v in s.config.items() if k in ENFORCED or k in s.enforced} for s in specs}
    wanted = {name: configs for name, configs in wanted.items() if configs}
    if not wanted:
        return
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n, list(c)) for n, c in wanted.items()],
                                       config_filter="all")
    stale = []
    for name, held in (next(iter(described.values()), {}) if described else {}).items():
        change = {k: v for k, v in wanted.get(name, {}).items() if (held.get(k) or {}).get("value") != v}
        if change:
            stale.append(ConfigResource(ConfigResourceType.TOPIC, name, change))
    if stale:
        admin.alter_configs(stale, incremental=True)


def existing_topics(bootstrap: KafkaAccess | str, timeout: float = 10.0) -> list[str]:
    """Names of the topics on the broker (internal ones included)."""
    from kafka import KafkaAdminClient

    ms = int(timeout * 1000)
    admin = KafkaAdminClient(**as_access(bootstrap).kafka_python(
        client_id="touchstream-topic-admin", bootstrap_timeout_ms=ms, request_timeout_ms=ms))
    try:
        return sorted(admin.list_topics())
    finally:
        admin.close()
