"""What the schemas do not say about a record on the wire: its key, its headers, the non-Avro records.

The ``.avsc`` files describe values only. Keys and headers are set by the code that produces each
topic (the publisher, the identity stage, the SLA timer, the dead-letter producer), so their
description lives here, beside the generator; ``tests/unit/test_asyncapi.py`` checks these names
against what those producers actually send.
"""

from __future__ import annotations

from touchstream.events.envelope import KEY_PRIORITY
from touchstream.topics import COMPLAINT_SLA_TOPIC, CUSTOMER_360_TOPIC, CUSTOMER_EVENTS_TOPIC


def string(description: str, **extra) -> dict:
    """A string schema (Kafka keys and header values are bytes; these are UTF-8 text)."""
    return {"type": "string", "description": description, **extra}


def headers(properties: dict[str, dict], description: str) -> dict:
    return {"type": "object", "description": description, "properties": dict(sorted(properties.items()))}


_EVENT_HEADERS = {
    "event_type": string("The event type, `<domain>.<name>` (the schema's x-touchstream.event_type): "
                         "filter on it without decoding the value."),
    "event_id": string("envelope.event_id: unique per event and the same on every redelivery; "
                       "deduplicate on it without decoding the value."),
}
RAW_HEADERS = headers(_EVENT_HEADERS, "Set by the publisher on every event.")

# touchstream.* headers the identity stage adds when it re-keys an event onto customer-events.
IDENTITY_HEADERS = {
    "touchstream.kind": string("`event` for a re-keyed event.", enum=["event"]),
    "touchstream.customer_id": string("The canonical customer id the event was attributed to (the record key)."),
    "touchstream.anchor": string("The identifier that decided the customer, `<kind>:<value>`, sealed like the event's "
                                 "personal values (`tsenc1:<kid>:<base64>`, see docs/subscribing.md)."),
    "touchstream.seq": string("The identity stage's sequence number (decimal): the higher number is the later "
                              "verdict, whatever the order in which partitions are read."),
    "touchstream.origin": string("Where the event is stored: `<raw topic>/<partition>/<offset>`."),
}
REKEYED_HEADERS = headers({**_EVENT_HEADERS, **IDENTITY_HEADERS},
                          "The raw record's headers, unchanged, plus the identity stage's touchstream.* headers.")
MEMBERSHIP_HEADERS = headers(
    {"touchstream.kind": string("`membership` for a CustomerMembershipChanged record.", enum=["membership"])},
    "Set by the identity stage; tells a membership record from a re-keyed event without decoding.")
SLA_EVENT_TYPES = ["complaint.escalated", "complaint.sla_breached", "complaint.sla_warning", "complaint.sla_withdrawn"]
SLA_HEADERS = headers(
    {"touchstream.event_type": string("The record's envelope.event_type (complaint.sla_withdrawn from v2 on); "
                                      "filter on it without decoding.", enum=SLA_EVENT_TYPES)},
    "Set by the complaint SLA timer.")
# Headers of the Avro records a processor publishes, by topic (topics not listed carry none).
RECORD_HEADERS = {CUSTOMER_EVENTS_TOPIC: MEMBERSHIP_HEADERS, COMPLAINT_SLA_TOPIC: SLA_HEADERS}

RAW_KEY = string(
    "A pseudonym of the envelope's strongest identity hint (20 hex digits, an HMAC under the installation's "
    f"key), the first present of {', '.join(KEY_PRIORITY)} (e-mail lower-cased, phone in E.164): events with the "
    "same strongest hint stay in one partition, in order, and the key names no one. Not the canonical customer id: "
    "that is on customer-events.")
CUSTOMER_KEY = string("The canonical customer id the identity stage attributed the event to "
                      "(equal to the touchstream.customer_id header).")

DLQ_HEADERS = {
    "dlq.reason": string("Why no consumer could decode the record (at most 1000 bytes)."),
    "dlq.topic": string("The topic the record was read from."),
    "dlq.partition": string("Its partition (decimal)."),
    "dlq.offset": string("Its offset (decimal)."),
    "dlq.consumer": string("The consumer (stage) that refused it."),
    "dlq.at": string("When it was dead-lettered (ISO-8601, UTC).", format="date-time"),
}
DEAD_LETTER = {
    "name": "DeadLetter",
    "title": "Dead letter",
    "summary": "A record no consumer could decode, kept byte for byte so a fixed consumer can replay it.",
    "description": "Key, value and headers are the original record's, unchanged; the dlq.* headers say where "
                   "it came from and why it was refused. The value is usually Confluent-framed Avro that "
                   "did not decode, but may be anything.",
    "contentType": "application/octet-stream",
    "headers": headers(DLQ_HEADERS, "The original record's headers, unchanged, plus these dlq.* headers."),
    "payload": {"type": "string", "format": "binary", "description": "The original value bytes."},
}
DATA_KEY = {
    "name": "DataKey",
    "title": "Data key",
    "summary": "One data key of the privacy key ring, wrapped by the installation's master key: not for subscribers.",
    "description": "Sealed personal values name their key by kid (tsenc1:<kid>:...). A tombstone deletes the key "
                   "(erasure): what it sealed can never be opened again.",
    "contentType": "application/json",
    "payload": {"type": ["object", "null"], "description": "{\"v\": 1, \"ref\": <subject pseudonym>, "
                "\"wrapped\": <base64 of nonce and AES-GCM ciphertext>}; null deletes the key."},
}

REGISTRY_RECORD = {
    "name": "RegistryRecord",
    "title": "Schema registry record",
    "summary": "The registry's storage, in the Confluent/Karapace record format: not for subscribers.",
    "description": "Read schemas through the registry's HTTP API (GET /subjects, GET /schemas/ids/{id}), "
                   "not from this topic.",
    "contentType": "application/json",
    "payload": {"type": ["object", "null"], "description": "The registry value JSON (null deletes the key)."},
}

# Compacted topics whose producer deletes a key with a tombstone, and why it does.
TOMBSTONE_TOPICS = {
    CUSTOMER_360_TOPIC: "the customer id no longer exists (merged into another customer, or left without "
                        "identifiers by a split or unlink); look the customer up again by an identifier",
}


def tombstone(why: str) -> dict:
    return {
        "name": "Tombstone",
        "title": "Tombstone",
        "summary": f"A record with a null value: {why}.",
        "description": "Delete the key from your copy. Compaction keeps the tombstone for the topic's "
                       "delete.retention.ms and then removes the key altogether, so a consumer that reads from "
                       "the beginning later may never see it.",
        "payload": {"type": "null"},
    }
