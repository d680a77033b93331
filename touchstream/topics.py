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
SCHEMAS_TOPIC = "_schemas"
RAW_PREFIX = "touchstream.raw."


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)
    description: str = ""
    domain: str | None = None

    @property
    def compacted(self) -> bool:
        return "compact" in self.config.get("cleanup.policy", "")


def key_partition(key: str | bytes, partitions: int) -> int:
    """The partition a keyed record lands on: CRC-32 of the key modulo the partition count, which is
    librdkafka's ``consistent_random`` partitioner (``TopicOutput`` pins it). A fold worker uses it to
    tell its own customers from those of other partitions, so producer and worker must agree."""
    return zlib.crc32(key.encode() if isinstance(key, str) else key) % partitions


def raw_topic(domain: str) -> str:
    """The raw topic that holds every event of one domain (``phone`` -> ``touchstream.raw.phone``)."""
    return f"{RAW_PREFIX}{domain}"


def load_topics(path: Path | None = None) -> list[TopicSpec]:
    """Read the catalogue; ``path`` overrides the packaged ``topics.toml``."""
    if path is None:
        text = resources.files("touchstream").joinpath("topics.toml").read_text()
    else:
        text = Path(path).read_text()
    doc = tomllib.loads(text)
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
        specs.append(
            TopicSpec(
                name=name,
                partitions=int(body.get("partitions", parts)),
                replication_factor=int(body.get("replication_factor", rf)),
                config={k: str(v) for k, v in body.get("config", {}).items()},
                description=body.get("description", ""),
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
