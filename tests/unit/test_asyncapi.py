"""The AsyncAPI document: every topic and every schema version in it, and ``docs/asyncapi.yaml`` current.

What they protect: subscribers read the contract from ``docs/asyncapi.yaml`` or the query
service, so a topic added to ``topics.toml`` or a schema added under ``schemas/`` must appear
there without anyone remembering to. The expected channels and messages are computed here from
the loaders (``load_topics``, ``load_all``, ``load_derived_versions``), never from the generator,
and compared both ways (nothing missing, nothing invented). Topic configs are checked against
the catalogue; the committed file must equal the generated one; the router serves it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import fastavro
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from touchstream.config import Settings
from touchstream.contracts import DOC_PATH, WRITE_COMMAND, asyncapi, render_json, render_yaml
from touchstream.contracts.__main__ import main
from touchstream.schemas import load_all, load_derived_versions
from touchstream.serving.contracts_api import contracts_router, router
from touchstream.topics import CUSTOMER_EVENTS_TOPIC, DLQ_TOPIC, KEYS_TOPIC, SCHEMAS_TOPIC, load_topics, raw_topics

DOC = asyncapi()
TOPICS = load_topics()
AVRO = "application/vnd.apache.avro+json;version=1.9.0"


def load_yaml(text: str):
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def resolve(doc: dict, ref: str):
    """A local ``$ref`` (``#/a/b``) to the node it names; KeyError when it names nothing."""
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def avro_messages(channel: dict) -> dict[tuple[str, int], dict]:
    """The channel's Avro messages by (registry subject, schema version)."""
    return {(m["x-registry-subject"], m["x-schema-version"]): m
            for m in channel["messages"].values() if "x-registry-subject" in m}


def expected_schemas() -> dict[str, set[tuple[str, int]]]:
    """Per topic, the (subject, version) pairs the loaders say it carries."""
    raw_of = {spec.domain: spec.name for spec in TOPICS if spec.domain is not None}
    out: dict[str, set] = defaultdict(set)
    for s in load_all():
        assert s.domain in raw_of, f"{s.event_type}: no raw topic for domain {s.domain} in topics.toml"
        out[raw_of[s.domain]].add((s.subject, s.version))
        out[CUSTOMER_EVENTS_TOPIC].add((s.subject, s.version))
    for d in load_derived_versions():
        out[d.topic].add((d.subject, d.version))
    return out


# --------------------------------------------------------------------------- topics and schemas


def test_every_catalogue_topic_is_a_channel_at_its_address():
    assert sorted(DOC["channels"]) == sorted(spec.name for spec in TOPICS)
    assert set(raw_topics(TOPICS)) <= set(DOC["channels"])
    for name, channel in DOC["channels"].items():
        assert channel["address"] == name and channel["bindings"]["kafka"]["topic"] == name


def test_every_schema_version_is_a_message_on_the_topics_that_carry_it_and_nowhere_else():
    expected = expected_schemas()
    assert set(expected) <= set(DOC["channels"]), "a schema names a topic the catalogue does not have"
    for name, channel in DOC["channels"].items():
        assert set(avro_messages(channel)) == expected.get(name, set()), name


def test_every_channel_carries_a_message():
    empty = [name for name, channel in DOC["channels"].items() if not channel["messages"]]
    assert not empty, f"topics whose content the generator does not know: {empty}"


def test_payloads_are_the_registered_expanded_schemas():
    contracts = {(c.subject, c.version): c for c in [*load_all(), *load_derived_versions()]}
    for name, channel in DOC["channels"].items():
        for key, message in avro_messages(channel).items():
            payload = resolve(DOC, message["payload"]["$ref"])
            assert payload["schemaFormat"] == AVRO
            assert payload["schema"] == contracts[key].schema, (name, key)
            assert json.dumps(payload["schema"], separators=(",", ":")) == contracts[key].canonical
            fastavro.parse_schema(payload["schema"])
            binding = message["bindings"]["kafka"]
            assert binding["key"]["description"]
            assert (binding["schemaIdLocation"], binding["schemaLookupStrategy"]) == ("payload", "RecordNameStrategy")


def test_event_messages_name_their_event_type():
    raw_of = {spec.domain: spec.name for spec in TOPICS if spec.domain is not None}
    for s in load_all():
        for topic in (raw_of[s.domain], CUSTOMER_EVENTS_TOPIC):
            assert avro_messages(DOC["channels"][topic])[(s.subject, s.version)]["x-event-type"] == s.event_type


def test_partitions_compaction_and_retention_are_the_catalogues():
    for spec in TOPICS:
        kafka = DOC["channels"][spec.name]["bindings"]["kafka"]
        assert (kafka["partitions"], kafka["replicas"]) == (spec.partitions, spec.replication_factor)
        config = kafka["topicConfiguration"]
        assert ",".join(config["cleanup.policy"]) == spec.config["cleanup.policy"]
        assert ("compact" in config["cleanup.policy"]) == spec.compacted
        if "retention.ms" in spec.config:
            assert config["retention.ms"] == int(spec.config["retention.ms"])
        else:
            assert "retention.ms" not in config
        assert set(config) == set(spec.config)


def test_operations_receive_every_subscribable_topic_and_send_only_to_raw_topics():
    ops = DOC["operations"]
    receive = {resolve(DOC, o["channel"]["$ref"])["address"] for o in ops.values() if o["action"] == "receive"}
    send = {resolve(DOC, o["channel"]["$ref"])["address"] for o in ops.values() if o["action"] == "send"}
    assert receive == {spec.name for spec in TOPICS} - {SCHEMAS_TOPIC, KEYS_TOPIC}
    assert send == set(raw_topics(TOPICS))
    for op in ops.values():
        channel = resolve(DOC, op["channel"]["$ref"])
        assert [resolve(DOC, m["$ref"]) for m in op["messages"]] == list(channel["messages"].values())


def test_every_reference_resolves():
    refs = []

    def walk(node):
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(DOC)
    assert refs
    for ref in refs:
        resolve(DOC, ref)


def test_headers_and_special_topics():
    web = DOC["channels"][raw_topics(TOPICS)[0]]["messages"]
    assert all(set(m["headers"]["properties"]) == {"event_type", "event_id"} for m in web.values())
    dlq = DOC["channels"][DLQ_TOPIC]["messages"]["DeadLetter"]
    assert {h for h in dlq["headers"]["properties"]} >= {"dlq.reason", "dlq.topic", "dlq.offset"}
    tombstones = [name for name, ch in DOC["channels"].items() if "Tombstone" in ch["messages"]]
    assert tombstones and all("compact" in DOC["channels"][n]["bindings"]["kafka"]["topicConfiguration"]
                              ["cleanup.policy"] for n in tombstones)


def test_a_deployments_own_catalogue_gives_its_own_channels(tmp_path: Path):
    toml = tmp_path / "topics.toml"
    toml.write_text('[raw]\nprefix = "acme.raw."\ndomains = ["web", "ghost"]\nconfig = { "cleanup.policy" = "delete" }\n'
                    '[topics."acme.other"]\nconfig = { "cleanup.policy" = "compact,delete", "retention.ms" = "86400000" }\n')
    doc = asyncapi(load_topics(toml), bootstrap="kafka.acme:9092")
    assert sorted(doc["channels"]) == ["acme.other", "acme.raw.ghost", "acme.raw.web"]
    web_events = {(s.subject, s.version) for s in load_all() if s.domain == "web"}
    assert set(avro_messages(doc["channels"]["acme.raw.web"])) == web_events
    assert doc["channels"]["acme.raw.ghost"]["messages"] == {} and doc["channels"]["acme.other"]["messages"] == {}
    assert doc["channels"]["acme.other"]["bindings"]["kafka"]["topicConfiguration"] == {
        "cleanup.policy": ["compact", "delete"], "retention.ms": 86400000}
    assert doc["servers"]["kafka"]["host"] == "kafka.acme:9092"
    assert len(doc["components"]["schemas"]) == len(web_events)


def test_the_document_does_not_depend_on_the_catalogues_order():
    assert asyncapi(list(reversed(TOPICS))) == DOC
    assert list(DOC["channels"]) == sorted(DOC["channels"])


# --------------------------------------------------------------------------- the generated file


def test_docs_file_is_the_generated_document():
    text = render_yaml(DOC)
    assert DOC_PATH.exists(), f"generate it: {WRITE_COMMAND}"
    assert DOC_PATH.read_text() == text, f"docs/asyncapi.yaml is stale: {WRITE_COMMAND}"
    assert load_yaml(text) == json.loads(render_json(DOC))


def test_libyaml_and_pure_python_emit_the_same_bytes(tmp_path: Path):
    """The committed file must not depend on whether the generating machine's PyYAML has libyaml."""
    doc = asyncapi([spec for spec in TOPICS if spec.domain == "complaint" or spec.name == DLQ_TOPIC])
    assert render_yaml(doc, pure=True) == render_yaml(doc)


def test_check_fails_on_a_stale_file_and_write_fixes_it(tmp_path: Path, capsys):
    target = tmp_path / "asyncapi.yaml"
    assert main(["--check", "--path", str(target)]) == 1
    target.write_text("asyncapi: 3.0.0\n")
    assert main(["--check", "--path", str(target)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["--write", "--path", str(target)]) == 0
    assert main(["--check", "--path", str(target)]) == 0
    assert load_yaml(target.read_text())["channels"].keys() == DOC["channels"].keys()


# --------------------------------------------------------------------------- served by the query service


@pytest.fixture
def deployment(tmp_path: Path) -> Settings:
    toml = tmp_path / "topics.toml"
    toml.write_text('[raw]\ndomains = ["phone"]\nconfig = { "retention.ms" = "-1", "cleanup.policy" = "delete" }\n'
                    '[topics."touchstream.complaint-sla"]\nconfig = { "cleanup.policy" = "delete" }\n')
    return Settings(home=tmp_path, topic_config=toml)


def test_router_serves_the_deployments_document(deployment: Settings):
    api = FastAPI()
    api.include_router(contracts_router(deployment))
    client = TestClient(api)
    served = client.get("/asyncapi.json")
    assert served.status_code == 200 and served.headers["content-type"].startswith("application/json")
    body = served.json()
    assert sorted(body["channels"]) == sorted(s.name for s in load_topics(deployment.topic_config))
    assert body["servers"]["kafka"]["host"] == deployment.bootstrap_servers
    assert body["servers"]["kafka"]["bindings"]["kafka"]["schemaRegistryUrl"] == deployment.registry_url
    sla = {(d.subject, d.version) for d in load_derived_versions() if d.topic == "touchstream.complaint-sla"}
    assert set(avro_messages(body["channels"]["touchstream.complaint-sla"])) == sla
    as_yaml = client.get("/asyncapi.yaml")
    assert as_yaml.status_code == 200 and load_yaml(as_yaml.text) == body


def test_the_default_router_serves_both_forms():
    assert {route.path for route in router.routes} == {"/asyncapi.json", "/asyncapi.yaml"}
