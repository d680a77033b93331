"""Settings for every Touchstream process, read from the environment.

One frozen object is built once (``Settings.from_env()``) and passed down, so a
test can run a whole stack on its own ports and data folder by setting a few
environment variables, and nothing reads ``os.environ`` deep inside the code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from touchstream.projections.complaint_case_state import FCR_GRACE_MINUTES

KAFKA_VERSION = "4.1.1"
# The master key of touchstream.privacy (base64 of 32 bytes); unset: $TOUCHSTREAM_HOME/master.key. Read by
# ``privacy.master_key`` only, and never kept in Settings, so no settings dump or repr can show it.
MASTER_KEY_ENV = "TOUCHSTREAM_MASTER_KEY"


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Where the local stack lives and how its parts reach each other."""

    home: Path
    host: str = "127.0.0.1"
    broker_port: int = 9092
    controller_port: int = 9093
    registry_port: int = 8081
    collector_port: int = 8080
    query_port: int = 8000
    kafka_version: str = KAFKA_VERSION
    kafka_heap: str = "768m"
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "touchstream")
    topic_config: Path | None = None
    sla_idle_seconds: int = 10     # a raw partition silent this long stops holding the SLA watermark back
    # > 0: that many fold workers (python -m touchstream.fold) own the customer-360 fold, and serving
    # only indexes customer-events and reads their 360s (docs/scaling.md)
    fold_workers: int = 0
    # a complaint resolved this long after its first contact ended (or its open) is resolved at first contact
    fcr_grace_minutes: int = FCR_GRACE_MINUTES
    # occurred_at may lead the trusted recorded_at by this much (clocks drift); more is refused
    max_clock_skew_seconds: int = 300
    # Below Kafka's 1 MB message limit (broker message.max.bytes 1048588, producer 1000000), so
    # what the collector accepts can always be stored: too big is 413, never a retryable 503.
    collector_max_body_bytes: int = 900_000
    collector_max_event_bytes: int = 256_000
    # uvicorn worker processes behind the collector's one port, each with its own producer
    collector_workers: int = 1
    # Kafka SASL/SCRAM: whether the broker's client listener authenticates, and as whom this process
    # connects (touchstream.kafka_access); each service's main sets its own principal.
    kafka_auth: bool = True
    kafka_user: str = "operator"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("TOUCHSTREAM_HOME") or Path.cwd() / ".touchstream").resolve()
        cache = env.get("TOUCHSTREAM_CACHE")
        topics = env.get("TOUCHSTREAM_TOPICS")
        return cls(
            home=home,
            host=env.get("TOUCHSTREAM_HOST", "127.0.0.1"),
            broker_port=_int(env, "TOUCHSTREAM_KAFKA_PORT", 9092),
            controller_port=_int(env, "TOUCHSTREAM_CONTROLLER_PORT", 9093),
            registry_port=_int(env, "TOUCHSTREAM_REGISTRY_PORT", 8081),
            collector_port=_int(env, "TOUCHSTREAM_COLLECTOR_PORT", 8080),
            query_port=_int(env, "TOUCHSTREAM_QUERY_PORT", 8000),
            kafka_heap=env.get("TOUCHSTREAM_KAFKA_HEAP", "768m"),
            cache_dir=Path(cache).resolve() if cache else Path.home() / ".cache" / "touchstream",
            topic_config=Path(topics).resolve() if topics else None,
            sla_idle_seconds=_int(env, "TOUCHSTREAM_SLA_IDLE_SECONDS", 10),
            fold_workers=_int(env, "TOUCHSTREAM_FOLD_WORKERS", 0),
            fcr_grace_minutes=_int(env, "TOUCHSTREAM_FCR_GRACE_MINUTES", FCR_GRACE_MINUTES),
            max_clock_skew_seconds=_int(env, "TOUCHSTREAM_MAX_CLOCK_SKEW_SECONDS", 300),
            collector_max_body_bytes=_int(env, "TOUCHSTREAM_COLLECTOR_MAX_BODY_BYTES", 900_000),
            collector_max_event_bytes=_int(env, "TOUCHSTREAM_COLLECTOR_MAX_EVENT_BYTES", 256_000),
            collector_workers=_int(env, "TOUCHSTREAM_COLLECTOR_WORKERS", 1),
            kafka_auth=env.get("TOUCHSTREAM_KAFKA_AUTH", "true").strip().lower() in ("1", "true", "yes", "on"),
            kafka_user=env.get("TOUCHSTREAM_KAFKA_USER", "operator"),
        )

    def for_service(self, name: str) -> "Settings":
        """These settings for service ``name``: it connects to Kafka as its own principal, unless
        TOUCHSTREAM_KAFKA_USER names another one explicitly (a test running a service on a topic of its own)."""
        return self if os.environ.get("TOUCHSTREAM_KAFKA_USER") else replace(self, kafka_user=name)

    @property
    def max_clock_skew(self) -> timedelta:
        """How far occurred_at may lead recorded_at, and either the broker's receipt (one setting for
        the publishers and the raw consumers, so what one accepts the other folds)."""
        return timedelta(seconds=self.max_clock_skew_seconds)

    @property
    def fcr_grace(self) -> timedelta:
        """The complaint fold's ``Config.first_contact_grace``: wrap-up time after the first contact (or
        the open) within which a logged resolution still counts as first-contact resolution."""
        return timedelta(minutes=self.fcr_grace_minutes)

    @property
    def bootstrap_servers(self) -> str:
        """Kafka bootstrap address; ``TOUCHSTREAM_BOOTSTRAP`` may point elsewhere."""
        return os.environ.get("TOUCHSTREAM_BOOTSTRAP") or f"{self.host}:{self.broker_port}"

    @property
    def registry_url(self) -> str:
        return os.environ.get("TOUCHSTREAM_REGISTRY_URL") or f"http://{self.host}:{self.registry_port}"

    @property
    def collector_url(self) -> str:
        return f"http://{self.host}:{self.collector_port}"

    @property
    def query_url(self) -> str:
        return os.environ.get("TOUCHSTREAM_QUERY_URL") or f"http://{self.host}:{self.query_port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def kafka_data_dir(self) -> Path:
        return self.home / "kafka" / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "touchstream.duckdb"

    @property
    def identity_config_path(self) -> Path:
        """Identity guard rails (blocked values, cap, trust), read by the identity and serving processes."""
        return self.home / "identity.toml"

    @property
    def api_keys_path(self) -> Path:
        return self.home / "api_keys.json"
