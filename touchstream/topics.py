"""The topic catalogue: names, partitions and configs, read from ``topics.toml``.

Pure: it only describes topics. Creating them is ``touchstream.stack.topic_admin``.
"""

from __future__ import annotations

import tomllib
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

DLQ_TOPIC = "touchstream.dlq"
DAY_MS = 86_400_000
DEFAULT_DEAD_LETTERS_DAYS = 30
DEFAULT_FREE_TEXT_DAYS = 365
SCHEMAS_TOPIC = "_schemas"
KEYS_TOPIC = "_touchstream_keys"   # touchstream.privacy: wrapped data keys, outside the subscribers' prefix
RAW_PREFIX = "touchstream.raw."


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)
    description: str = ""
    domain: str | None = None
    # Configs `touchstream up` brings in line on an existing topic too (topic_admin): a setting's value
    # (the DLQ's retention.ms from [retention]) must hold on the broker, not only on a new topic.
    enforced: tuple[str, ...] = ()

    @property
    def compacted(self) -> bool:
        return "compact" in self.config.get("cleanup.policy", "")


@dataclass(frozen=True)
class Retention:
    """How long data that may not be kept forever is kept (``[retention]`` of ``topics.toml``), in days
    since the broker received the record. Days may be fractional (a test's topic expires in seconds);
    ``free_text_days`` 0 keeps free text for as long as the events."""

    dead_letters_days: float = DEFAULT_DEAD_LETTERS_DAYS
    free_text_days: float = DEFAULT_FREE_TEXT_DAYS

    @property
    def dead_letters_ms(self) -> int:
        return round(self.dead_letters_days * DAY_MS)

    @property
    def free_text_ms(self) -> int | None:
        """None: free text is kept."""
        return round(self.free_text_days * DAY_MS) if self.free_text_days else None


def key_partition(key: str | bytes, partitions: int) -> int:
    """The partition a keyed record lands on: CRC-32 of the key modulo the partition count, which is
    librdkafka's ``consistent_random`` partitioner (``TopicOutput`` pins it). A fold worker uses it to
    tell its own customers from those of other partitions, so producer and worker must agree."""
    return zlib.crc32(key.encode() if isinstance(key, str) else key) % partitions


def raw_topic(domain: str) -> str:
    """The raw topic that holds every event of one domain (``phone`` -> ``touchstream.raw.phone``)."""
    return f"{RAW_PREFIX}{domain}"


def _read(path: Path | None) -> dict:
    if path is None:
        return tomllib.loads(resources.files("touchstream").joinpath("topics.toml").read_text())
    return tomllib.loads(Path(path).read_text())


def _retention(doc: dict) -> Retention:
    """The ``[retention]`` table; a catalogue without one (an older ``TOUCHSTREAM_TOPICS`` override) takes
    the dead-letter days from its DLQ topic's ``retention.ms`` where it has one, so it keeps working."""
    section = doc.get("retention", {})
    unknown = set(section) - {"dead_letters_days", "free_text_days"}
    if unknown:
        raise ValueError(f"[retention] has unknown setting(s) {sorted(unknown)}")
    dlq_ms = doc.get("topics", {}).get(DLQ_TOPIC, {}).get("config", {}).get("retention.ms")
    days = section.get("dead_letters_days")
    if days is None:
        days = int(dlq_ms) / DAY_MS if dlq_ms is not None else DEFAULT_DEAD_LETTERS_DAYS
    retention = Retention(float(days), float(section.get("free_text_days", DEFAULT_FREE_TEXT_DAYS)))
    if retention.dead_letters_days <= 0 or retention.free_text_days < 0:
        raise ValueError("[retention] dead_letters_days must be > 0 and free_text_days >= 0 (0 keeps free text)")
    return retention


def load_retention(path: Path | None = None) -> Retention:
    """The catalogue's retention settings; ``path`` overrides the packaged ``topics.toml``."""
    return _retention(_read(path))


def _retention_kind(name: str, body: dict) -> str | None:
    return body.get("retention", "dead_letters" if name == DLQ_TOPIC else None)


def _retained(name: str, body: dict, retention: Retention) -> dict[str, str]:
    """A topic's config; a topic with ``retention = "dead_letters"`` (the DLQ's default) gets ``retention.ms``
    from ``[retention] dead_letters_days``, and one it states itself must agree: one setting, one value."""
    config = {k: str(v) for k, v in body.get("config", {}).items()}
    kind = _retention_kind(name, body)
    if kind is None:
        return config
    if kind != "dead_letters":
        raise ValueError(f"topic {name}: retention = {kind!r}; the only retention a topic can take is 'dead_letters'")
    stated, derived = config.get("retention.ms"), str(retention.dead_letters_ms)
    if stated is not None and stated != derived:
        raise ValueError(f"topic {name}: retention.ms {stated} disagrees with [retention] dead_letters_days "
                         f"{retention.dead_letters_days:g} ({derived} ms): set only dead_letters_days")
    return config | {"retention.ms": derived}


def load_topics(path: Path | None = None) -> list[TopicSpec]:
    """Read the catalogue; ``path`` overrides the packaged ``topics.toml``. The DLQ topic's ``retention.ms``
    is ``[retention] dead_letters_days`` (``load_retention``)."""
    doc = _read(path)
    retention = _retention(doc)
    defaults = doc.get("defaults", {})
    parts = int(defaults.get("partitions", 1))
    rf = int(defaults.get("replication_factor", 1))
    specs: list[TopicSpec] = []
    raw = doc.get("raw", {})
    for domain in raw.get("domains", []):
        specs.append(
            TopicSpec(
                name=f"{raw.get('prefix', RAW_PREFIX)}{domain}",
                partitions=int(raw.get("partitions", parts)),
                replication_factor=rf,
                config={k: str(v) for k, v in raw.get("config", {}).items()},
                description=f"Raw {domain} events (the event store for this domain).",
                domain=domain,
            )
        )
    for name, body in doc.get("topics", {}).items():
        config = _retained(name, body, retention)
        enforced = ("retention.ms",) if _retention_kind(name, body) else ()
        specs.append(
            TopicSpec(
                name=name,
                partitions=int(body.get("partitions", parts)),
                replication_factor=int(body.get("replication_factor", rf)),
                config=config,
                description=body.get("description", ""),
                enforced=enforced,
            )
        )
    return specs


def raw_topics(specs: list[TopicSpec] | None = None) -> list[str]:
    specs = load_topics() if specs is None else specs
    return [s.name for s in specs if s.domain is not None]


CUSTOMER_EVENTS_TOPIC = "touchstream.customer-events"
DECISIONS_TOPIC = "touchstream.identity.decisions"
CUSTOMER_360_TOPIC = "touchstream.customer-360"
FINDINGS_TOPIC = "touchstream.contact-findings"
COMPLAINT_CASES_TOPIC = "touchstream.complaint-cases"
COMPLAINT_SLA_TOPIC = "touchstream.complaint-sla"
ERASURES_TOPIC = "touchstream.privacy.erasures"
