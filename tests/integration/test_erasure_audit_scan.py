"""The erasure audit's topic scan on the real broker (issue 17): every record of every partition read to
its end; a sealed identifier counts while its key exists and not once it is erased; a plain mention always
counts; a ledger-style topic is searched for everything but the customer ids it names by design."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timezone

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import unique_name
from tests.event_builders import plain_event
from tests.keyring_contract import MASTER
from tests.local_codec import LocalCodec
from touchstream.events.catalogue import Catalogue
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.privacy.keyring import MemoryKeyRing
from touchstream.privacy.subjects import subject
from touchstream.processors.erasure_audit_scan import scan_topics
from touchstream.projections.erasure_audit import Recogniser

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def create(broker, topics: dict[str, int], config: dict | None = None) -> None:
    admin = AdminClient(broker.confluent())   # kept alive until the topics exist
    for future in admin.create_topics([NewTopic(t, n, 1, config=config or {}) for t, n in topics.items()]).values():
        future.result(30)


def sealed_complaint(codec, ring, email: str, phone: str, tag: str) -> tuple[bytes, bytes]:
    """(key, value) as the publisher writes them: keyed by the e-mail's pseudonym, every personal value
    sealed (the description, which quotes the phone number, under the e-mail)."""
    event = plain_event("complaint.opened", datetime.now(timezone.utc), {"email": email},
                        event_id=f"{tag}-{uuid.uuid4().hex[:6]}", description=f"please call me on {phone}")
    valid = Catalogue().validate(event)
    primary = subject("email", email)
    return ring.ref(primary).encode(), codec.encode_sealed(valid.schema, valid.record, primary)


def aborted_and_committed(broker, topic: str, email: str) -> None:
    """An aborted transaction quoting the person (its record stays in the log, readable uncommitted), then a
    committed one without: the partition ends in a commit marker, after its last record."""
    producer = Producer(broker.confluent(**{"transactional.id": unique_name("audit-tx")}))
    producer.init_transactions(30)
    for value, end in ((f"draft for {email}", producer.abort_transaction),
                       ("nothing personal", producer.commit_transaction)):
        producer.begin_transaction()
        producer.produce(topic, key=b"k", value=value.encode())
        assert producer.flush(30) == 0   # on the broker before the abort (an abort drops what is unsent)
        end(30)


def test_scan_topics_counts_what_is_readable_before_and_after_the_keys_are_erased(broker, settings):
    word = uuid.uuid4().hex[:10]
    email, other = f"Tess.{word}@Example.com", f"ugo.{word}@example.org"
    phone = f"06 {random.randint(1000, 9999)} {random.randint(1000, 9999)}"
    customer = f"CUST-{word}"
    events, ledger, empty, absent = (unique_name(f"audit-{n}") for n in ("events", "ledger", "empty", "absent"))
    txn = unique_name("audit-txn")
    create(broker, {events: 3, ledger: 1, empty: 2, txn: 1})
    aborted_and_committed(broker, txn, email)
    ring = MemoryKeyRing()
    codec = LocalCodec(keys=ring)
    producer = Producer(broker.confluent(**{"acks": "all"}))
    records = [
        (events, *sealed_complaint(codec, ring, email, phone, word), []),                   # sealed: while keyed
        (events, b"k-header", b"\x00", [("anchor", codec.seal_text(subject("email", email), email).encode())]),
        (events, *sealed_complaint(codec, ring, other, "06 1111 2222", word), []),          # someone else: never
        (events, b"dlq", f"could not parse: {{'mail': '{email.upper()}'}}".encode(), []),  # plain: not Avro
        (events, customer.lower().encode(), None, [("n", None)]),                           # a customer id as key
        (ledger, b"erasure-1", json.dumps({"customer_id": customer, "erased": True}).encode(), []),
        (ledger, b"erasure-2", json.dumps({"customer_id": "c-9", "note": f"tel {phone}"}).encode(), []),
    ]
    for topic, key, value, headers in records:
        producer.produce(topic, key=key, value=value, headers=headers)
    assert producer.flush(30) == 0

    erased = {ring.ref(subject("email", email)), ring.ref(subject("phone", phone))}
    recognise = Recogniser(erased, {customer}, ring.ref)
    topics = [events, ledger, empty, absent, txn]

    def scan():
        return scan_topics(settings, codec, recognise, topics, ignore_customer_ids={ledger}, access=broker, timeout=60)

    before = scan()
    assert before.scanned == {events: 5, ledger: 2, empty: 0, txn: 2}
    assert before.missing == [absent]
    assert before.hits == {events: 4, ledger: 1, txn: 1}

    assert ring.erase(erased)   # the e-mail's key: it sealed the address, the header and the description
    after = scan()
    assert after.scanned == before.scanned
    assert after.hits == {events: 2, ledger: 1, txn: 1}   # the plain mentions and the customer id key stay

    everywhere = scan_topics(settings, codec, recognise, topics, access=broker, timeout=60)
    assert everywhere.hits == {events: 2, ledger: 2, txn: 1}   # the ledger names the customer id by design


def test_the_audit_reads_with_the_keys_its_ring_knows_remain(broker, settings):
    """Two ``TopicKeyRing``s on one key topic are two processes: the audit's ring loaded the person's key
    before another process erased it, so it opens their values until it is refreshed (why the caller
    refreshes the codec's ring before a scan), and not after."""
    word = uuid.uuid4().hex[:10]
    email, events, keys = f"ida.{word}@example.com", unique_name("audit-sealed"), unique_name("audit-keys")
    create(broker, {events: 1})
    create(broker, {keys: 1}, {"cleanup.policy": "compact"})   # as the stack's key topic
    writer, audit = (TopicKeyRing(settings, MASTER, topic=keys, access=broker, timeout=20) for _ in range(2))
    try:
        producer = Producer(broker.confluent())
        producer.produce(events, *sealed_complaint(LocalCodec(keys=writer), writer, email, "06 5555 0101", word))
        assert producer.flush(30) == 0
        codec = LocalCodec(keys=audit)
        erased = {writer.ref(subject("email", email))}
        recognise = Recogniser(erased, set(), writer.ref)

        def hits():
            return scan_topics(settings, codec, recognise, [events], access=broker, timeout=60).hits

        assert hits() == {events: 1}
        assert writer.erase(erased)
        assert hits() == {events: 1}   # the audit's ring still holds the key it loaded before
        audit.refresh()
        assert hits() == {}
    finally:
        writer.close()
        audit.close()
