"""Personal values sealed per subject (``touchstream.privacy``): the token, the plan of each schema,
and the codec that opens them for the folds and leaves them sealed for anyone without the keys."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import localcontext

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.avro_strategies import json_for
from tests.local_codec import LocalCodec, MemoryRegistryClient
from touchstream.events.catalogue import Catalogue
from touchstream.events.validation import to_avro
from touchstream.privacy.keyring import MemoryKeyRing
from touchstream.privacy.pii_plan import Fields, Items, Leaf, plan, transform
from touchstream.privacy.sealer import Sealer
from touchstream.privacy.sealing import PREFIX, SealError, kid_of, seal, unseal
from touchstream.privacy.subjects import primary_subject, subject
from touchstream.schemas import load_latest

LATEST = sorted(load_latest().values(), key=lambda s: s.event_type)
EXAMPLES = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NOW = datetime(2026, 12, 7, 9, 30, tzinfo=timezone.utc)
RING = MemoryKeyRing()
REGISTRY = MemoryRegistryClient()
PLAIN, OPENING = LocalCodec(client=REGISTRY), LocalCodec(keys=RING, client=REGISTRY)   # one registry: same ids


@given(text=st.text())
def test_a_token_opens_to_its_text_with_its_key_only(text):
    cipher, other = AESGCM(bytes(32)), AESGCM(bytes(range(32)))
    token = seal(cipher, "ref.abc", text)
    assert token.startswith(PREFIX) and kid_of(token) == "ref.abc"
    assert unseal(cipher, token) == text
    with pytest.raises(SealError):
        unseal(other, token)
    with pytest.raises(SealError):   # the kid is associated data: a token moved under another kid fails
        unseal(cipher, token.replace("ref.abc", "ref.abd", 1))


def test_subjects_are_named_as_identity_resolution_names_identifiers():
    assert subject("email", "  Alice@Example.COM ") == "email:alice@example.com"
    assert subject("phone", "06 1234 5678") == "phone:+31612345678"
    assert primary_subject({"customer_id": None, "email": "A@B.nl", "cookie_id": "c1"}) == "email:a@b.nl"
    assert primary_subject({"customer_id": "CU-1", "email": "a@b.nl"}) == "customer_id:CU-1"
    assert primary_subject({"email": " ", "cookie_id": None}) is None


def test_the_plan_finds_hints_identifiers_and_free_text():
    opened = plan(load_latest()["complaint.opened"].schema)
    envelope = dict(opened.nodes)["envelope"]
    hints = dict(dict(envelope.nodes)["identity"].nodes)
    assert set(hints) == {"email", "phone", "cookie_id", "device_id", "loyalty_card", "account_number"}
    assert all(leaf == Leaf("hint", True) for leaf in hints.values())
    assert dict(opened.nodes)["description"] == Leaf("text", False, expires=True)   # free text expires
    linked = dict(plan(load_latest()["identity.identifiers_linked"].schema).nodes)
    assert linked["identifier_a"] == linked["identifier_b"] == Fields((("value", Leaf("identifier", False)),))
    form = dict(plan(load_latest()["web.form_submitted"].schema).nodes)
    assert isinstance(form["answers"], Items) and form["answers"].mapping and form["answers"].node.expires
    comment = dict(plan(load_latest()["social.comment_posted"].schema).nodes)
    assert comment["author_handle"].role == "text" and not comment["author_handle"].expires   # a handle identifies


def _record(schema, data) -> dict:
    with localcontext() as wide:
        wide.prec = 60
        record = to_avro(schema.schema, data.draw(json_for(schema.schema)))
    identity = record["envelope"]["identity"]
    if primary_subject(identity) is None:   # validation refuses an event with no identifier to key it by
        identity["email"] = "someone@example.com"
    return record


def _personal(record: dict, node) -> list[str]:
    """Every personal string of ``record`` (the plan's leaves), in walk order."""
    if record is None:
        return []
    if isinstance(node, Leaf):
        return [record] if isinstance(record, str) else []
    if isinstance(node, Fields):
        return [v for name, inner in node.nodes for v in _personal(record.get(name), inner)]
    values = record.values() if node.mapping else record
    return [v for item in values for v in _personal(item, node.node)]


@pytest.mark.parametrize("schema", LATEST, ids=lambda s: s.event_type)
@EXAMPLES
@given(data=st.data())
def test_every_personal_value_is_sealed_on_the_wire_and_opened_by_a_codec_with_the_keys(schema, data):
    record = _record(schema, data)
    (sealed, key), = Sealer(RING).seal_events([(schema.subject, schema.schema, record)])
    node = plan(schema.schema)
    plain = [v for v in _personal(record, node) if v]
    assert all(v.startswith(PREFIX) for v in _personal(sealed, node) if v)
    wire = PLAIN.encode(schema, sealed)
    skeleton = PLAIN.encode(schema, transform(record, node, lambda *_: ""))   # the record with nothing personal
    outside = wire
    for token in _personal(sealed, node):
        outside = outside.replace(token.encode(), b"")   # what the wire holds beside the tokens
    for value in plain:
        if len(value) >= 4 and value.encode() not in skeleton:   # "0000" may be a case id too
            assert value.encode() not in outside, "a personal value reached the wire in clear"
    assert primary_subject(record["envelope"]["identity"]).encode() not in key
    assert OPENING.decode(wire).record == record
    assert PLAIN.decode(wire).record == sealed   # no keys: sealed, as a subscriber sees it


def test_an_erased_subject_decodes_to_nothing_personal_and_the_rest_stays():
    schema = load_latest()["complaint.opened"]
    event = Catalogue().validate({
        "envelope": {"event_type": "complaint.opened", "channel": "email", "content": "complaint",
                     "initiated_by": "customer", "source": "t", "occurred_at": "2026-12-07T09:00:00Z",
                     "identity": {"email": "Ivy@Example.com", "cookie_id": "ck-1"}},
        "case_id": "C-1", "category": "delivery", "priority": "high", "description": "My parcel never came"},
        now=NOW)
    ring = MemoryKeyRing()
    sealer = Sealer(ring)
    (sealed, _key), = sealer.seal_events([(schema.subject, schema.schema, event.record)])
    codec = LocalCodec(keys=ring)
    wire = codec.encode(schema, sealed)
    ring.erase([ring.ref("email:ivy@example.com")])
    got = codec.decode(wire).record
    assert got["envelope"]["identity"]["email"] is None and got["description"] == ""
    assert got["envelope"]["identity"]["cookie_id"] == "ck-1"   # another subject's key: still there
    assert got["case_id"] == "C-1"


def test_a_value_written_before_sealing_existed_is_read_as_it_is():
    schema = load_latest()["complaint.opened"]
    ring = MemoryKeyRing()
    record = _plain_complaint()
    codec = LocalCodec(keys=ring)
    assert codec.decode(codec.encode(schema, record)).record == record


def _plain_complaint() -> dict:
    return Catalogue().validate({
        "envelope": {"event_type": "complaint.opened", "channel": "email", "content": "complaint",
                     "initiated_by": "customer", "source": "t", "occurred_at": "2026-12-07T09:00:00Z",
                     "identity": {"email": "old@example.com"}},
        "case_id": "C-2", "category": "delivery", "priority": "low", "description": "old text"}, now=NOW).record
