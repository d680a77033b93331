"""Who may do what on the broker: the ACLs and SCRAM users ``touchstream up`` keeps in place.

Why each principal gets only these: a leaked or buggy component must not be able to forge
what another one owns. Channel systems write only the raw topics of the domains their
channels can carry; identity and serving read their inputs and write only their own outputs;
the operator (CLI, local SDK) publishes and reads but never deletes or alters; downstream services
log in as ``subscriber`` and only read; analysts have no
Kafka principal at all (they read DuckDB); only ``admin`` (the broker's super user) creates,
deletes or alters topics, users and ACLs. The raw topics are the event store: nobody but
admin may delete their records. The key topic (wrapped data keys) is read only by the services that
seal or open personal values, never by subscribers.

``plan`` is pure (a list of ``Grant``); ``apply`` makes the broker hold it, idempotently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from touchstream.topics import (COMPLAINT_CASES_TOPIC, COMPLAINT_SLA_TOPIC, CUSTOMER_360_TOPIC,
                                CUSTOMER_EVENTS_TOPIC, DECISIONS_TOPIC, DLQ_TOPIC, ERASURES_TOPIC, FINDINGS_TOPIC,
                                KEYS_TOPIC, RAW_PREFIX, SCHEMAS_TOPIC)

CHANNEL_PREFIX = "ch-"   # a channel system's principal: ch-<system>


@dataclass(frozen=True, order=True)
class Grant:
    principal: str            # a SCRAM user name, without "User:"
    resource: str             # "topic" or "group"
    name: str
    prefixed: bool
    operation: str            # "read", "write", "describe", "create"


def _topic(user: str, name: str, *ops: str, prefixed: bool = False) -> list[Grant]:
    return [Grant(user, "topic", name, prefixed, op) for op in ("describe", *ops)]


def _group(user: str, prefix: str) -> list[Grant]:
    return [Grant(user, "group", prefix, True, op) for op in ("describe", "read")]


def service_grants() -> list[Grant]:
    """The services' and the operator's rights (the same on every installation)."""
    grants = [
        *_topic("registry", SCHEMAS_TOPIC, "read", "write", "create"),
        *_topic("collector", RAW_PREFIX, "write", prefixed=True),
        *_topic("identity", RAW_PREFIX, "read", prefixed=True),
        *_group("identity", "touchstream-identity"),
        *[g for t in (CUSTOMER_EVENTS_TOPIC, DECISIONS_TOPIC, DLQ_TOPIC) for g in _topic("identity", t, "write")],
        *_topic("identity", ERASURES_TOPIC, "read"),   # SubjectErased: forget the person's identifiers
        *_topic("serving", RAW_PREFIX, "read", prefixed=True),
        *[g for t in (CUSTOMER_EVENTS_TOPIC, DECISIONS_TOPIC) for g in _topic("serving", t, "read")],
        *[g for t in (CUSTOMER_360_TOPIC, FINDINGS_TOPIC, COMPLAINT_CASES_TOPIC, COMPLAINT_SLA_TOPIC, DLQ_TOPIC,
                      ERASURES_TOPIC) for g in _topic("serving", t, "read", "write")],
        *_group("serving", "touchstream-serving"),
        # Fold workers read customer-events and write it too (events handed to another partition's worker).
        *[g for t in (CUSTOMER_EVENTS_TOPIC, CUSTOMER_360_TOPIC, FINDINGS_TOPIC, DLQ_TOPIC)
          for g in _topic("fold", t, "read", "write")],
        *_topic("fold", ERASURES_TOPIC, "read"),   # SubjectErased: drop the person's folded state
        *_group("fold", "touchstream-fold"),
        # The operator publishes (CLI, local SDK) and reads everything (catch-up, replay, subscribing).
        *_topic("operator", RAW_PREFIX, "write", prefixed=True),
        *_topic("operator", "touchstream", "read", prefixed=True),
        *_topic("operator", SCHEMAS_TOPIC, "read"),
        *_group("operator", "touchstream"),
        # The data keys (touchstream.privacy): whoever seals reads and makes keys (the publishers, and the services
        # sealing what they derive), serving also deletes them on erasure. Subscribers and channel systems get
        # none: no prefix grant of theirs matches the topic.
        *[g for user in ("collector", "operator", "identity", "serving", "fold")
          for g in _topic(user, KEYS_TOPIC, "read", "write")],
        # Downstream services (docs/subscribing.md): every Touchstream topic, any group of their own.
        *_topic("subscriber", "touchstream", "read", prefixed=True),
        Grant("subscriber", "group", "*", False, "describe"), Grant("subscriber", "group", "*", False, "read"),
    ]
    return sorted(set(grants))


def channel_grants(system: str, domains: Iterable[str]) -> list[Grant]:
    """A channel system writes the raw topics of ``domains`` and nothing else."""
    user = CHANNEL_PREFIX + system
    return sorted({g for d in domains for g in _topic(user, f"{RAW_PREFIX}{d}", "write")})


def plan(channel_systems: dict[str, Iterable[str]]) -> list[Grant]:
    """Every grant: the services', plus each channel system's (``{system: domains}``)."""
    grants = service_grants()
    for system, domains in sorted(channel_systems.items()):
        grants.extend(channel_grants(system, domains))
    return grants


def apply(admin, grants: list[Grant], timeout: float = 30.0) -> int:
    """Create every grant on the broker through a confluent-kafka ``AdminClient`` logged in as admin
    (creating an ACL that exists changes nothing); returns how many were asked for."""
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    bindings = [AclBinding(ResourceType.TOPIC if g.resource == "topic" else ResourceType.GROUP, g.name,
                           ResourcePatternType.PREFIXED if g.prefixed else ResourcePatternType.LITERAL,
                           f"User:{g.principal}", "*", AclOperation[g.operation.upper()], AclPermissionType.ALLOW)
                for g in grants]
    if bindings:
        for future in admin.create_acls(bindings, request_timeout=timeout).values():
            future.result(timeout)
        _wait_visible(admin, len(bindings), timeout)
    return len(bindings)


def _wait_visible(admin, count: int, timeout: float) -> None:
    """Return once the broker lists at least ``count`` ACLs: created ACLs take effect a moment after
    the call returns, and a service started in that moment is refused (the registry's first
    CreateTopics was, in the fault suite)."""
    import time

    from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    deadline = time.monotonic() + timeout
    while len(admin.describe_acls(every, request_timeout=timeout).result(timeout)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the broker does not list the {count} ACLs {timeout:.0f}s after creating them")
        time.sleep(0.2)


def domains_for(channels: Iterable[str]) -> set[str]:
    """The raw domains whose event types a system on ``channels`` may publish ('*': every one)."""
    from touchstream.schemas import load_latest

    chosen = set(channels)
    return {s.domain for s in load_latest().values()
            if "*" in chosen or chosen & set(s.meta.get("channels", []))}


def channel_systems(settings) -> dict[str, set[str]]:
    """``{system: raw domains}`` of every system holding a publishing key."""
    from touchstream.publishing.api_keys import ApiKeyStore

    channels: dict[str, set[str]] = {}
    for key in ApiKeyStore(settings.api_keys_path).all():
        if "publish" in key.scopes and key.channels:
            channels.setdefault(key.system, set()).update(key.channels)
    return {system: domains_for(chs) for system, chs in channels.items()}


def ensure(settings, bootstrap: str | None = None, timeout: float = 30.0) -> dict[str, int]:
    """Make the broker hold every principal and grant, and no channel principal or grant that lost
    its key: SCRAM users upserted, ACLs created, stale channel ACLs and users deleted."""
    from confluent_kafka.admin import AdminClient

    from touchstream.kafka_access import kafka_access, service_passwords, sync_channel_users

    systems = channel_systems(settings)
    users = {n: p for n, p in service_passwords(settings).items() if n != "controller"}
    users.update(sync_channel_users(settings, list(systems)))
    admin = AdminClient(kafka_access(settings, "admin", bootstrap=bootstrap).confluent())
    grants = plan(systems)
    _upsert_users(admin, users, timeout)
    stale = _drop_stale(admin, grants, set(users), timeout)
    return {"users": len(users), "grants": apply(admin, grants, timeout), "removed": stale}


def _upsert_users(admin, users: dict[str, str], timeout: float) -> None:
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    changes = [UserScramCredentialUpsertion(name, info, password.encode()) for name, password in sorted(users.items())]
    for future in admin.alter_user_scram_credentials(changes, request_timeout=timeout).values():
        future.result(timeout)


def _drop_stale(admin, grants: list[Grant], users: set[str], timeout: float) -> int:
    """Delete the ACLs of channel principals that the plan no longer has, and their SCRAM users."""
    from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType,
                                       ResourceType, ScramMechanism, UserScramCredentialDeletion)

    every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    wanted = {(f"User:{g.principal}", g.name, g.operation.upper()) for g in grants}
    stale = [b for b in admin.describe_acls(every, request_timeout=timeout).result(timeout)
             if b.principal.startswith("User:" + CHANNEL_PREFIX)
             and (b.principal, b.name, b.operation.name) not in wanted]
    if stale:
        filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                    b.permission_type) for b in stale]
        for future in admin.delete_acls(filters, request_timeout=timeout).values():
            future.result(timeout)
    known = admin.describe_user_scram_credentials(request_timeout=timeout).result(timeout)
    gone = [u for u in known if u.startswith(CHANNEL_PREFIX) and u not in users]
    if gone:
        deletions = [UserScramCredentialDeletion(u, ScramMechanism.SCRAM_SHA_512) for u in gone]
        for future in admin.alter_user_scram_credentials(deletions, request_timeout=timeout).values():
            future.result(timeout)
    return len(stale) + len(gone)
