"""How every Touchstream client reaches Kafka: the bootstrap address and, with authentication on, who it is.

Why one place: the broker's client listener can require SASL/SCRAM (``Settings.kafka_auth``), and
then every producer, consumer and admin client of every process must say who it is. Each
process is one principal (``Settings.kafka_user``: ``serving``, ``identity``, ``collector``,
``registry``; ``operator`` for the CLI, ``admin`` for topic and user administration), so the
broker's ACLs can give each only the topics it needs. The services' passwords are generated
once per installation into ``$TOUCHSTREAM_HOME/kafka-users.json`` (0600): a process that can read
the home is the installation; one that cannot has no credential at all.

Authentication is on by default (``TOUCHSTREAM_KAFKA_AUTH=false`` turns it off, e.g. for a broker
you run yourself without it). Clients are built from ``KafkaAccess``: ``confluent()`` for confluent-kafka,
``kafka_python()`` for kafka-python, ``java_properties()`` for Kafka's own tools.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from dataclasses import dataclass, field

from touchstream.config import Settings
from touchstream.private_files import private_dir, write_private

MECHANISM = "SCRAM-SHA-512"
# "controller" is the broker's own login on its controller listener (SASL/PLAIN), not a client.
SERVICE_USERS = ("admin", "operator", "registry", "identity", "serving", "collector", "subscriber", "controller",
                 "fold")
USERS_FILE = "kafka-users.json"


@dataclass(frozen=True)
class KafkaAccess:
    """A bootstrap address and, when the broker authenticates, a SCRAM user and password."""

    bootstrap: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def confluent(self, **extra) -> dict:
        """A confluent-kafka (librdkafka) config; ``extra`` uses librdkafka's dotted names."""
        conf = {"bootstrap.servers": self.bootstrap}
        if self.user is not None:
            conf.update({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": MECHANISM,
                         "sasl.username": self.user, "sasl.password": self.password})
        conf.update(extra)
        return conf

    def kafka_python(self, **extra) -> dict:
        """Keyword arguments for kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient."""
        kwargs = {"bootstrap_servers": self.bootstrap}
        if self.user is not None:
            kwargs.update(security_protocol="SASL_PLAINTEXT", sasl_mechanism=MECHANISM,
                          sasl_plain_username=self.user, sasl_plain_password=self.password)
        kwargs.update(extra)
        return kwargs

    def java_properties(self) -> list[str]:
        """``key=value`` lines for a Java client's ``--producer.config`` / ``--consumer.config`` file."""
        lines = [f"bootstrap.servers={self.bootstrap}"]
        if self.user is not None:
            lines += ["security.protocol=SASL_PLAINTEXT", f"sasl.mechanism={MECHANISM}",
                      "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                      f'username="{self.user}" password="{self.password}";']
        return lines


def as_access(target: "KafkaAccess | str") -> KafkaAccess:
    """A ``KafkaAccess`` for either an access or a bare bootstrap address (no credential)."""
    return target if isinstance(target, KafkaAccess) else KafkaAccess(str(target))


def kafka_access(settings: Settings, user: str | None = None, *, bootstrap: str | None = None) -> KafkaAccess:
    """How ``settings``' process reaches the broker: as ``user`` (default ``settings.kafka_user``),
    at ``bootstrap`` (default ``settings.bootstrap_servers``)."""
    address = bootstrap or settings.bootstrap_servers
    if not settings.kafka_auth:
        return KafkaAccess(address)
    name = user or settings.kafka_user
    return KafkaAccess(address, name, _passwords(settings)[name])


def service_passwords(settings: Settings) -> dict[str, str]:
    """Every service principal's password (``SERVICE_USERS``), made once per installation."""
    users = _passwords(settings)
    return {name: users[name] for name in SERVICE_USERS}


def _passwords(settings: Settings) -> dict[str, str]:
    """Every principal's password in the installation's file; the services' made if missing (the
    first processes of ``up`` start together), the channel systems' as ``keys`` left them."""
    def add_services(users: dict[str, str]) -> dict[str, str]:
        return {**{name: secrets.token_urlsafe(24) for name in SERVICE_USERS}, **users}
    return _update_users(settings, add_services)


def _update_users(settings: Settings, change) -> dict[str, str]:
    """``change(users)`` applied to the users file under an exclusive lock (every other thread or
    process kept out; the lock file is 0600 too), written only when it changed; the new users."""
    path = settings.home / USERS_FILE
    private_dir(settings.home)
    fd = os.open(settings.home / f".{USERS_FILE}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)   # released when fd is closed
        users = json.loads(path.read_text()) if path.exists() else {}
        changed = change(users)
        if changed != users:
            write_private(path, json.dumps(changed, indent=2, sort_keys=True) + "\n")
        return changed
    finally:
        os.close(fd)


def channel_user(system: str) -> str:
    """The Kafka principal of a channel system: ``ch-`` + its name, in SCRAM-safe characters."""
    return "ch-" + "".join(c if c.isalnum() or c in "._-" else "_" for c in system)


def sync_channel_users(settings: Settings, systems: list[str]) -> dict[str, str]:
    """Passwords of the channel systems' principals: one made for each new system, the ones of
    systems that no longer have a publishing key dropped; ``{user: password}``."""
    wanted = {channel_user(s) for s in systems}

    def sync(users: dict[str, str]) -> dict[str, str]:
        kept = {k: v for k, v in users.items() if not k.startswith("ch-") or k in wanted}
        return {**kept, **{u: secrets.token_urlsafe(24) for u in sorted(wanted - set(kept))}}
    users = _update_users(settings, sync)
    return {u: users[u] for u in sorted(wanted)}
