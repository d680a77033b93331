"""The broker's grants, as a plan: each principal reaches only its own topics, nobody but admin
creates or deletes, and a channel system writes only the raw domains its channels can carry."""

from __future__ import annotations

from touchstream.stack.kafka_acls import channel_grants, domains_for, plan, service_grants
from touchstream.topics import KEYS_TOPIC, raw_topics

RAW = "touchstream.raw."


def rights(grants, principal: str) -> set[tuple[str, str, bool, str]]:
    return {(g.resource, g.name, g.prefixed, g.operation) for g in grants if g.principal == principal}


def test_nobody_but_admin_may_delete_alter_or_create_a_raw_topic():
    grants = plan({"web-shop": {"web"}})
    assert {g.operation for g in grants} <= {"read", "write", "describe", "create"}
    assert all(g.principal != "admin" for g in grants), "admin is the super user, it needs no grant"
    creators = {(g.principal, g.name) for g in grants if g.operation == "create"}
    assert creators == {("registry", "_schemas")}


def test_services_write_only_their_own_outputs():
    grants = service_grants()
    writes = {p: {g.name for g in grants if g.principal == p and g.operation == "write"}
              for p in ("identity", "serving", "collector", "registry", "operator")}
    assert writes["identity"] == {"touchstream.customer-events", "touchstream.identity.decisions", "touchstream.dlq",
                                  KEYS_TOPIC}
    assert RAW not in writes["serving"] and "touchstream.complaint-cases" in writes["serving"]
    assert writes["collector"] == writes["operator"] == {RAW, KEYS_TOPIC} and writes["registry"] == {"_schemas"}
    assert KEYS_TOPIC in writes["serving"] and KEYS_TOPIC in writes["identity"]   # they seal what they derive
    assert ("topic", RAW, True, "read") in rights(grants, "identity")
    assert ("group", "touchstream-identity", True, "read") in rights(grants, "identity")
    assert not any(g.name == "touchstream.complaint-cases" and g.operation == "write"
                   for g in grants if g.principal != "serving"), "only serving may write the case topic"


def test_the_key_topic_is_read_by_whoever_seals_or_opens_and_by_no_subscriber_or_channel_system():
    grants = plan({"web-shop": {"web"}})
    readers = {g.principal for g in grants if g.operation == "read" and g.name == KEYS_TOPIC and not g.prefixed}
    assert readers == {"collector", "operator", "serving", "identity", "fold"}
    prefixes = [g for g in grants if g.prefixed and g.operation == "read" and g.principal in ("subscriber", "ch-web-shop")]
    assert not any(KEYS_TOPIC.startswith(g.name) for g in prefixes), "a prefix grant would hand out the key topic"


def test_a_channel_system_writes_only_the_raw_domains_of_its_channels():
    domains = domains_for(["web"])
    assert "web" in domains and "phone" not in domains and "store" not in domains
    grants = channel_grants("web-shop", domains)
    assert {g.principal for g in grants} == {"ch-web-shop"}
    assert {g.name for g in grants if g.operation == "write"} == {f"{RAW}{d}" for d in domains}
    assert not any(g.prefixed for g in grants) and not any(g.resource == "group" for g in grants)
    assert domains_for(["*"]) == {t.removeprefix(RAW) for t in raw_topics()}
