"""The broker itself refuses: no credential, a wrong one, a channel system writing another channel's
topic, a service deleting the event store or forging another service's output.

The hostile test found that any local process could write, forge, create and delete on Kafka
without credentials. Each refusal below comes from the broker (SASL/SCRAM and the
StandardAuthorizer ACLs that ``touchstream up`` keeps), not from Touchstream's own code.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer
from kafka.errors import KafkaError as KafkaPythonError

from touchstream.cli import main as cli_main
from touchstream.kafka_access import KafkaAccess, channel_user, kafka_access, service_passwords
from touchstream.topics import COMPLAINT_CASES_TOPIC, raw_topic

pytestmark = pytest.mark.integration


def produce(access: KafkaAccess, topic: str) -> KafkaError | None:
    """One record to ``topic`` as ``access``; the delivery error, or None when the broker stored it."""
    errors: list = []
    producer = Producer(access.confluent(**{"enable.idempotence": True, "message.timeout.ms": 15000}))
    producer.produce(topic, b"probe", key=b"k", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(20)
    assert errors, "no delivery report within 20 s"
    return errors[0]


def refused(call) -> KafkaError:
    with pytest.raises(KafkaException) as caught:
        call()
    return caught.value.args[0]


def test_a_client_without_credentials_is_refused(stack):
    anonymous = KafkaAccess(stack.bootstrap_servers)
    with pytest.raises(KafkaException):
        AdminClient(anonymous.confluent()).list_topics(timeout=5)
    with pytest.raises(KafkaPythonError):
        KafkaProducer(**anonymous.kafka_python(bootstrap_timeout_ms=3000))


def test_a_wrong_password_is_refused(stack):
    seen: list = []
    wrong = KafkaAccess(stack.bootstrap_servers, "operator", "not-the-password")
    admin = AdminClient(wrong.confluent(error_cb=seen.append))
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    admin.poll(1)   # serves error_cb
    assert any(e.code() == KafkaError._AUTHENTICATION for e in seen), seen


def test_a_channel_system_writes_its_own_channels_topics_only(stack, capsys):
    system = f"web-{uuid.uuid4().hex[:8]}"
    assert cli_main(["keys", "create", "--system", system, "--channels", "web"]) == 0
    login = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Kafka login")).split()
    assert login[-2] == channel_user(system)
    web = KafkaAccess(stack.bootstrap_servers, login[-2], login[-1])
    assert produce(web, raw_topic("web")) is None
    assert produce(web, raw_topic("phone")).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    admin = AdminClient(web.confluent())
    assert refused(lambda: admin.delete_topics([raw_topic("web")])[raw_topic("web")].result(15)).code() == \
        KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert refused(lambda: admin.create_topics([NewTopic(f"stray-{system}", 1, 1)])[f"stray-{system}"].result(15)) \
        .code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED)

    key_id = next(line.split()[0] for line in _keys(capsys) if system in line)
    assert cli_main(["keys", "revoke", key_id]) == 0
    root = AdminClient(kafka_access(stack, "admin").confluent())   # keep it: a dropped handle cancels its futures
    users = root.describe_user_scram_credentials().result(15)
    assert channel_user(system) not in users, "its last publishing key is gone: so is its broker login"
    assert produce(web, raw_topic("web")) is not None


def _keys(capsys) -> list[str]:
    capsys.readouterr()
    cli_main(["keys", "list"])
    return capsys.readouterr().out.splitlines()


def test_no_service_may_delete_the_event_store_or_forge_another_services_output(stack):
    identity = kafka_access(stack, "identity")
    admin = AdminClient(identity.confluent())
    gone = admin.delete_records([TopicPartition(raw_topic("web"), 0, 1)])
    assert refused(lambda: next(iter(gone.values())).result(15)).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce(identity, COMPLAINT_CASES_TOPIC).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    operator = kafka_access(stack, "operator")
    assert produce(operator, COMPLAINT_CASES_TOPIC).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    as_operator = AdminClient(operator.confluent())   # kept: a dropped handle cancels its futures
    created = as_operator.create_topics([NewTopic("touchstream.stray", 1, 1)])
    assert refused(lambda: created["touchstream.stray"].result(15)).code() in (
        KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED)
    assert "controller" in service_passwords(stack) and produce(kafka_access(stack, "serving"),
                                                                 COMPLAINT_CASES_TOPIC) is None
