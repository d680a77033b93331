"""Only the installation's writer changes the registry; anyone may read it.

The hostile test set compatibility to NONE and could register or delete schemas with no
credential. Each write route is tried without, with a wrong and with the right credential;
every read route a deserializer uses stays open."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient

from tests.unit.test_registry_contract import V1, V2
from touchstream.config import Settings
from touchstream.registry.credentials import WRITER, authorised, client_config, is_write, writer_secret
from touchstream.registry.http_app import create_app
from touchstream.registry.memory_store import MemorySchemaStore
from touchstream.registry.service import RegistryService

SECRET = "s3cret-for-tests"
SUBJECT = "t.shop.Order"


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def api():
    with TestClient(create_app(RegistryService(MemorySchemaStore([])), writer_secret=SECRET)) as client:
        assert client.post(f"/subjects/{SUBJECT}/versions", json={"schema": json.dumps(V1)},
                           headers=basic(WRITER, SECRET)).status_code == 200
        yield client


WRITES = [
    ("post", f"/subjects/{SUBJECT}/versions", {"schema": json.dumps(V2)}),
    ("put", "/config", {"compatibility": "NONE"}),
    ("put", f"/config/{SUBJECT}", {"compatibility": "NONE"}),
    ("delete", "/config", None),
    ("delete", f"/subjects/{SUBJECT}/versions/1", None),
    ("delete", f"/subjects/{SUBJECT}", None),
]


@pytest.mark.parametrize("method,path,body", WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
@pytest.mark.parametrize("headers", [{}, basic(WRITER, "guess"), basic("admin", SECRET), {"Authorization": "Basic !!"},
                                     {"Authorization": f"Bearer {SECRET}"}], ids=["none", "wrong", "user", "garbled", "bearer"])
def test_a_write_without_the_writer_credential_is_refused_and_changes_nothing(api, method, path, body, headers):
    before = (api.get(f"/subjects/{SUBJECT}/versions").json(), api.get("/config").json())
    response = api.request(method.upper(), path, json=body, headers=headers)
    assert response.status_code == 401 and response.json()["error_code"] == 40101
    assert response.headers["www-authenticate"].startswith("Basic")
    assert (api.get(f"/subjects/{SUBJECT}/versions").json(), api.get("/config").json()) == before


def test_the_writer_may_register_and_change_the_config(api):
    writer = basic(WRITER, SECRET)
    assert api.post(f"/subjects/{SUBJECT}/versions", json={"schema": json.dumps(V2)}, headers=writer).json()["id"] == 2
    assert api.put("/config", json={"compatibility": "FULL"}, headers=writer).json() == {"compatibility": "FULL"}


def test_reads_stay_open_for_every_deserializer(api):
    assert api.get("/schemas/ids/1").status_code == 200
    assert api.get("/subjects").json() == [SUBJECT]
    assert api.post(f"/subjects/{SUBJECT}", json={"schema": json.dumps(V1)}).json()["id"] == 1   # lookup
    assert api.post(f"/compatibility/subjects/{SUBJECT}/versions/latest",
                    json={"schema": json.dumps(V2)}).status_code == 200


def test_which_routes_write():
    assert is_write("POST", "/subjects/a.B/versions") and is_write("PUT", "/mode") and is_write("DELETE", "/config")
    assert not is_write("POST", "/subjects/a.B") and not is_write("POST", "/compatibility/subjects/a.B/versions")
    assert not is_write("GET", "/subjects/a.B/versions")
    assert authorised(basic(WRITER, SECRET)["Authorization"], SECRET)
    assert not authorised(None, SECRET) and not authorised(basic(WRITER, SECRET + "x")["Authorization"], SECRET)


def test_the_secret_is_made_once_per_installation_and_kept_owner_only(tmp_path):
    settings = Settings(home=tmp_path / "home")
    secret = writer_secret(settings)
    assert secret == writer_secret(settings) and len(secret) >= 32
    assert (settings.home / "registry.secret").stat().st_mode & 0o777 == 0o600
    assert client_config(settings) == {"url": settings.registry_url}
    assert client_config(settings, write=True)["basic.auth.user.info"] == f"{WRITER}:{secret}"
