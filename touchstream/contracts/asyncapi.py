"""The AsyncAPI 3.0 document of every Touchstream topic, built from the topic catalogue and ``schemas/``.

Why generated: subscribers need one machine-readable contract (topic, key, Avro schemas, registry
subjects, compaction, retention), and a hand-kept one drifts from what is deployed. It is built
from the same sources the stack uses: ``topics.toml`` (what ``touchstream up`` creates) and the
``.avsc`` files (what is registered and written on the wire). ``docs/asyncapi.yaml`` must equal
``render_yaml()``, and the tests compute from the loaders which topics and schemas must appear.

Layout: one channel per topic (channel id = topic name); one message per Avro record version that
can appear on it (message id ``<record full name>.v<N>``). Payloads refer to
``components.schemas.<record full name>.v<N>``, so a schema carried by two topics (an event on its
raw topic and again on ``customer-events``) is written once. Kafka bindings 0.5.0 carry partitions,
replicas, topic config, the key and the Confluent framing (schema id in the payload, subjects by
RecordNameStrategy). Everything is sorted, so the same inputs give the same bytes.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

from touchstream import __version__
from touchstream.config import KAFKA_VERSION, Settings
from touchstream.contracts.wire import (
    CUSTOMER_KEY,
    DATA_KEY,
    DEAD_LETTER,
    RAW_HEADERS,
    RAW_KEY,
    REGISTRY_RECORD,
    REKEYED_HEADERS,
    RECORD_HEADERS,
    TOMBSTONE_TOPICS,
    string,
    tombstone,
)
from touchstream.schemas import SCHEMA_DIR, load_all, load_derived_versions
from touchstream.topics import CUSTOMER_EVENTS_TOPIC, DLQ_TOPIC, KEYS_TOPIC, SCHEMAS_TOPIC, TopicSpec, load_topics

ASYNCAPI_VERSION = "3.0.0"
BINDING_VERSION = "0.5.0"
AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
AVRO_CONTENT = "avro/binary"
NAME_STRATEGY = "RecordNameStrategy"
WRITE_COMMAND = "python -m touchstream.contracts --write"
# Topic configs the Kafka binding types as integers; the rest are kept as the catalogue spells them.
_INT_CONFIGS = frozenset({"retention.ms", "retention.bytes", "delete.retention.ms", "max.message.bytes"})


def default_servers() -> tuple[str, str]:
    """(bootstrap, registry URL) of the local stack from ``Settings``' defaults, not the environment:
    the generated file must not depend on who generated it."""
    s = Settings(home=Path("."))
    return f"{s.host}:{s.broker_port}", f"http://{s.host}:{s.registry_port}"


def message_id(contract) -> str:
    """Message and component-schema id of one schema version: ``<record full name>.v<N>``."""
    return f"{contract.record_name}.v{contract.version}"


def topic_configuration(config: dict[str, str]) -> dict:
    """The catalogue's topic config in the Kafka binding's types (cleanup.policy a list, retention an int)."""
    out: dict = {}
    for name, value in sorted(config.items()):
        if name == "cleanup.policy":
            out[name] = [p.strip() for p in value.split(",") if p.strip()]
        elif name in _INT_CONFIGS:
            out[name] = int(value)
        else:
            out[name] = value
    return out


def _kafka_message(key: dict, *, framed: bool = True) -> dict:
    binding = {"key": key}
    if framed:
        binding.update(schemaIdLocation="payload", schemaIdPayloadEncoding="confluent",
                       schemaLookupStrategy=NAME_STRATEGY)
    return {"kafka": {**binding, "bindingVersion": BINDING_VERSION}}


def _avro_message(contract, key: dict, headers: dict | None) -> dict:
    """One schema version as a message: payload by reference, subject and version as extensions."""
    event_type = getattr(contract, "event_type", None)
    name = contract.schema["name"]
    msg = {
        "name": name,
        "title": f"{event_type or name} v{contract.version}",
        "summary": f"Registry subject {contract.subject} (RecordNameStrategy), schema version {contract.version}.",
        "description": " ".join(contract.schema.get("doc", "").split()),
        "contentType": AVRO_CONTENT,
        "payload": {"$ref": f"#/components/schemas/{message_id(contract)}"},
    }
    if headers:
        msg["headers"] = copy.deepcopy(headers)
    msg["bindings"] = _kafka_message(key)
    msg["x-registry-subject"] = contract.subject
    msg["x-schema-version"] = contract.version
    msg["x-schema-file"] = f"schemas/{contract.path.relative_to(SCHEMA_DIR).as_posix()}"
    if event_type:
        msg["x-event-type"] = event_type
    return msg


def _plain_message(body: dict, key: dict) -> dict:
    """A non-Avro message (dead letter, registry record, tombstone): no schema id in its payload."""
    return {**copy.deepcopy(body), "bindings": _kafka_message(key, framed=False)}


def channel_messages(spec: TopicSpec, events, derived) -> tuple[dict[str, dict], list]:
    """The messages that can appear on ``spec``'s topic, and the Avro contracts they carry."""
    if spec.name == DLQ_TOPIC:
        return {"DeadLetter": _plain_message(DEAD_LETTER, string("The original record's key, unchanged."))}, []
    if spec.name == SCHEMAS_TOPIC:
        key = string("The registry key JSON, e.g. {\"keytype\":\"SCHEMA\",\"subject\":...,\"version\":...,\"magic\":1}.")
        return {"RegistryRecord": _plain_message(REGISTRY_RECORD, key)}, []
    if spec.name == KEYS_TOPIC:
        return {"DataKey": _plain_message(DATA_KEY, string("The key id: <subject pseudonym>.<random>."))}, []
    here = [d for d in derived if d.topic == spec.name]
    if spec.domain is not None:
        carried = [(s, RAW_KEY, RAW_HEADERS) for s in events if s.domain == spec.domain]
    else:
        carried = [(d, string(d.key), RECORD_HEADERS.get(spec.name)) for d in here]
        if spec.name == CUSTOMER_EVENTS_TOPIC:
            carried += [(s, CUSTOMER_KEY, REKEYED_HEADERS) for s in events]
    messages = {message_id(c): _avro_message(c, key, headers) for c, key, headers in carried}
    if spec.name in TOMBSTONE_TOPICS and here:
        messages["Tombstone"] = _plain_message(tombstone(TOMBSTONE_TOPICS[spec.name]), string(here[-1].key))
    return dict(sorted(messages.items())), [c for c, _, _ in carried]


def _channel(spec: TopicSpec, messages: dict[str, dict]) -> dict:
    kafka = {"topic": spec.name, "partitions": spec.partitions, "replicas": spec.replication_factor,
             "topicConfiguration": topic_configuration(spec.config), "bindingVersion": BINDING_VERSION}
    return {"address": spec.name, "title": spec.name, "description": spec.description,
            "messages": messages, "bindings": {"kafka": kafka}}


def _operations(specs: list[TopicSpec], channels: dict[str, dict]) -> dict:
    """Receive on every topic a subscriber may read; send on the raw topics, where channel systems publish.

    ``_schemas`` gets none: it is the registry's storage, read through the registry's HTTP API; nor does
    ``_touchstream_keys``: subscribers may not read it."""
    ops: dict[str, dict] = {}
    for spec in specs:
        if spec.name in (SCHEMAS_TOPIC, KEYS_TOPIC):
            continue
        refs = [{"$ref": f"#/channels/{spec.name}/messages/{m}"} for m in channels[spec.name]["messages"]]
        channel = {"$ref": f"#/channels/{spec.name}"}
        ops[f"receive.{spec.name}"] = {
            "action": "receive", "channel": channel, "title": f"Subscribe to {spec.name}",
            "summary": "Consume at least once: a record may arrive again after a rebalance or a restart, "
                       "so handle it idempotently (see docs/subscribing.md).",
            "messages": refs,
        }
        if spec.domain is not None:
            ops[f"send.{spec.name}"] = {
                "action": "send", "channel": channel, "title": f"Publish {spec.domain} events",
                "summary": "Channel systems publish here through the Python SDK, the HTTP collector or JSON Lines, "
                           "which validate the event, stamp the envelope, key it and register its schema.",
                "messages": refs,
            }
    return dict(sorted(ops.items()))


def asyncapi(topics: list[TopicSpec] | None = None, *, bootstrap: str | None = None,
             registry_url: str | None = None) -> dict:
    """The AsyncAPI 3.0 document for ``topics`` (default: the packaged catalogue).

    ``bootstrap`` and ``registry_url`` default to the local stack's; the query service passes the
    deployment's. Topics the generator knows nothing about get a channel without messages (the
    unit tests refuse that for the packaged catalogue)."""
    specs = sorted(load_topics() if topics is None else topics, key=lambda s: s.name)
    default_bootstrap, default_registry = default_servers()
    events, derived = load_all(), load_derived_versions()
    channels: dict[str, dict] = {}
    schemas: dict[str, dict] = {}
    for spec in specs:
        messages, contracts = channel_messages(spec, events, derived)
        channels[spec.name] = _channel(spec, messages)
        for contract in contracts:
            schemas[message_id(contract)] = {"schemaFormat": AVRO_FORMAT, "schema": copy.deepcopy(contract.schema)}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Touchstream topics",
            "version": __version__,   # the source's, not install metadata that may lag it
            "description": (
                f"Every Touchstream topic, generated from schemas/ and touchstream/topics.toml by `{WRITE_COMMAND}`; "
                "do not edit. Values are Avro in Confluent framing (byte 0, 4-byte big-endian schema id, Avro "
                "binary). Registry subjects follow RecordNameStrategy (the record's full name), so one topic "
                "carries many record types: pick the schema by the id in the frame, or filter on a header "
                "before decoding. Schemas evolve BACKWARD compatibly (new fields carry defaults). "
                "How to subscribe: docs/subscribing.md."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": AVRO_CONTENT,
        "servers": {
            "kafka": {
                "host": bootstrap or default_bootstrap,
                "protocol": "kafka",
                "protocolVersion": KAFKA_VERSION,
                "description": "The broker's bootstrap address is deployment-specific (TOUCHSTREAM_BOOTSTRAP; the "
                               "local stack listens on the address given here). The schema registry is "
                               "Confluent-compatible (TOUCHSTREAM_REGISTRY_URL).",
                "bindings": {"kafka": {"schemaRegistryUrl": registry_url or default_registry,
                                       "schemaRegistryVendor": "confluent", "bindingVersion": BINDING_VERSION}},
            }
        },
        "channels": channels,
        "operations": _operations(specs, channels),
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


# --------------------------------------------------------------------------- rendering

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def yaml_available() -> bool:
    """PyYAML is a test extra, not a runtime dependency: without it only JSON is rendered."""
    return importlib.util.find_spec("yaml") is not None


def render_json(doc: dict | None = None) -> str:
    return json.dumps(asyncapi() if doc is None else doc, indent=2, ensure_ascii=False) + "\n"


def render_yaml(doc: dict | None = None, *, pure: bool = False) -> str:
    """YAML with no anchors or aliases, keys in the document's order, long lines folded.

    libyaml's emitter when PyYAML has it (five times faster), else (or with ``pure``) the
    pure-Python one; both give the same bytes (checked in the tests), so the committed file does
    not depend on where it was generated."""
    import yaml

    base = yaml.SafeDumper if pure else getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):
        def ignore_aliases(self, data) -> bool:
            return True

    return yaml.dump(asyncapi() if doc is None else doc, Dumper=Dumper, sort_keys=False,
                     allow_unicode=True, width=110)
