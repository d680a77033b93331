"""``POST /privacy/open`` (issue 17's decrypt scope): a key with the ``pii`` scope gets sealed values
opened, null once the person's key is erased; other keys get 403; bad or oversized input is refused
with the value's position and why."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.local_codec import LocalCodec
from touchstream.privacy.keyring import MemoryKeyRing
from touchstream.publishing.api_keys import ApiKeyStore
from touchstream.serving.privacy_api import MAX_TOKEN_CHARS, MAX_TOKENS, privacy_router


@pytest.fixture()
def api(tmp_path):
    ring, keys = MemoryKeyRing(), ApiKeyStore(tmp_path / "api_keys.json")
    app = FastAPI()
    app.include_router(privacy_router(LocalCodec(keys=ring), keys))
    pii, _ = keys.create("subscriber", [], ["analyst", "pii"])
    analyst, _ = keys.create("analyst", [], ["analyst"])
    return TestClient(app), ring, {"pii": {"X-API-Key": pii}, "analyst": {"X-API-Key": analyst}}


def test_a_pii_key_opens_values_and_an_erased_one_reads_as_null(api):
    client, ring, headers = api
    ann, bob = ring.ref("email:ann@example.com"), ring.ref("email:bob@example.com")
    values = [ring.seal(ann, "ann@example.com"), ring.seal(bob, "bob@example.com"), "plain"]
    ring.commit()
    answer = client.post("/privacy/open", json={"values": values}, headers=headers["pii"])
    assert answer.status_code == 200 and answer.json() == {"values": ["ann@example.com", "bob@example.com", "plain"]}
    ring.erase([ann])
    assert client.post("/privacy/open", json={"values": values}, headers=headers["pii"]).json()["values"] == \
        [None, "bob@example.com", "plain"]


def test_only_the_pii_scope_opens_and_input_is_bounded(api):
    client, ring, headers = api
    token = ring.seal(ring.ref("email:ann@example.com"), "ann@example.com")
    ring.commit()
    assert client.post("/privacy/open", json={"values": [token]}, headers=headers["analyst"]).status_code == 403
    assert client.post("/privacy/open", json={"values": [token]}).status_code == 401
    forged = token[:-8] + ("A" * 8 if not token.endswith("A" * 8) else "B" * 8)
    refused = client.post("/privacy/open", json={"values": ["plain", forged]}, headers=headers["pii"])
    assert refused.status_code == 422 and "values[1]" in refused.text and "ann@" not in refused.text
    assert client.post("/privacy/open", json={"values": ["x"] * (MAX_TOKENS + 1)}, headers=headers["pii"]).status_code == 422
    long = "tsenc1:" + "A" * MAX_TOKEN_CHARS
    assert "values[0]" in client.post("/privacy/open", json={"values": [long]}, headers=headers["pii"]).text
