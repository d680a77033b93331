"""Every Kafka client is built from one ``KafkaAccess``: without authentication a bare bootstrap
address, with it the process's own SCRAM principal, in each client library's spelling."""

from __future__ import annotations

import json
import stat
import threading
from dataclasses import replace
from pathlib import Path

from touchstream.config import Settings
from touchstream.kafka_access import SERVICE_USERS, USERS_FILE, KafkaAccess, as_access, kafka_access, service_passwords


def test_without_authentication_a_client_gets_only_the_address(tmp_path):
    access = kafka_access(Settings(home=tmp_path, kafka_auth=False))
    assert access == KafkaAccess("127.0.0.1:9092")
    assert access.confluent(**{"group.id": "g"}) == {"bootstrap.servers": "127.0.0.1:9092", "group.id": "g"}
    assert access.kafka_python(client_id="c") == {"bootstrap_servers": "127.0.0.1:9092", "client_id": "c"}
    assert access.java_properties() == ["bootstrap.servers=127.0.0.1:9092"]
    assert not (tmp_path / USERS_FILE).exists(), "no credential is made while the broker does not ask for one"


def test_with_authentication_each_library_gets_the_principal_in_its_own_spelling(tmp_path):
    settings = replace(Settings(home=tmp_path), kafka_auth=True, kafka_user="serving")
    access = kafka_access(settings)
    password = service_passwords(settings)["serving"]
    assert (access.user, access.password) == ("serving", password)
    assert access.confluent()["sasl.username"] == "serving" and access.confluent()["sasl.mechanism"] == "SCRAM-SHA-512"
    assert access.confluent()["security.protocol"] == "SASL_PLAINTEXT"
    kw = access.kafka_python()
    assert kw["sasl_plain_username"] == "serving" and kw["sasl_plain_password"] == password
    assert f'username="serving" password="{password}";' in access.java_properties()[-1]
    assert kafka_access(settings, "admin").user == "admin"
    assert kafka_access(settings, bootstrap="h:1").bootstrap == "h:1"
    assert password not in repr(access), "a password never reaches a log line through repr"


def test_service_passwords_are_made_once_owner_only_and_survive_racing_starts(tmp_path):
    settings = replace(Settings(home=tmp_path / "home"), kafka_auth=True)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(service_passwords(settings))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(s == seen[0] for s in seen) and set(seen[0]) == set(SERVICE_USERS)
    assert len(set(seen[0].values())) == len(SERVICE_USERS), "every principal has its own password"
    path = Path(settings.home) / USERS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == seen[0]


def test_a_bare_address_is_an_access_without_credential():
    assert as_access("h:9") == KafkaAccess("h:9")
    access = KafkaAccess("h:9", "u", "p")
    assert as_access(access) is access


def test_the_auth_switch_and_principal_come_from_the_environment(tmp_path):
    settings = Settings.from_env({"TOUCHSTREAM_HOME": str(tmp_path), "TOUCHSTREAM_KAFKA_USER": "identity"})
    assert settings.kafka_auth and settings.kafka_user == "identity", "authentication is on unless turned off"
    assert not Settings.from_env({"TOUCHSTREAM_HOME": str(tmp_path), "TOUCHSTREAM_KAFKA_AUTH": "false"}).kafka_auth


def test_a_service_connects_as_itself_unless_a_principal_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("TOUCHSTREAM_KAFKA_USER", raising=False)
    assert Settings(home=tmp_path).for_service("serving").kafka_user == "serving"
    monkeypatch.setenv("TOUCHSTREAM_KAFKA_USER", "admin")
    assert Settings(home=tmp_path, kafka_user="admin").for_service("serving").kafka_user == "admin"


def test_channel_principals_follow_the_systems_that_publish(tmp_path):
    from touchstream.kafka_access import channel_user, sync_channel_users

    settings = Settings(home=tmp_path)
    services = service_passwords(settings)
    first = sync_channel_users(settings, ["web shop", "call-centre"])
    assert set(first) == {"ch-web_shop", "ch-call-centre"} and channel_user("web shop") == "ch-web_shop"
    assert sync_channel_users(settings, ["web shop", "call-centre"]) == first, "a password is made once"
    assert set(sync_channel_users(settings, ["call-centre"])) == {"ch-call-centre"}
    stored = json.loads((tmp_path / USERS_FILE).read_text())
    assert "ch-web_shop" not in stored, "a dropped system loses its login"
    assert {k: stored[k] for k in SERVICE_USERS} == services, "the services' passwords are left alone"
