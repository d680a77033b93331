"""The broker's side of Kafka authentication: SASL listeners, SCRAM users at format, and adding
them to storage formatted before authentication was on.

Why SCRAM-SHA-512 on the client listener and SASL/PLAIN on the controller listener: clients log in
with per-principal passwords the broker keeps salted and hashed, and the controller listener must
not accept anonymous connections, since the broker's own registration there needs a super user
and an anonymous super user would let any local process grant itself anything on that port.
Pure except ``add_scram_users``, which runs the broker once.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from touchstream.config import Settings
from touchstream.kafka_access import service_passwords
from touchstream.private_files import write_private


def listeners(host: str, advertised: str, bport: int, cport: int, passwords: dict[str, str] | None) -> dict:
    """Without ``passwords``: PLAINTEXT everywhere. With them: clients authenticate with SCRAM-SHA-512
    and the StandardAuthorizer applies ``kafka_acls``; the controller listener authenticates too
    (SASL/PLAIN with one static user), because the broker's registration with its controller needs
    a super user there and an unauthenticated one would let any local process grant itself
    anything through the controller port. The broker talks to itself (transactions) as admin."""
    if passwords is None:
        return {"listeners": f"PLAINTEXT://{host}:{bport},CONTROLLER://{host}:{cport}",
                "advertised.listeners": f"PLAINTEXT://{advertised}:{bport}",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"}
    admin, controller = passwords["admin"], passwords["controller"]
    return {
        "listeners": f"SASL_PLAINTEXT://{host}:{bport},CONTROLLER://{host}:{cport}",
        "advertised.listeners": f"SASL_PLAINTEXT://{advertised}:{bport}",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config":
            f'org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="{admin}";',
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config":
            'org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" '
            f'password="{controller}" user_controller="{controller}";',
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin;User:controller",
        "allow.everyone.if.no.acl.found": "false",
    }


def format_args(settings: Settings) -> list[str]:
    """``--add-scram`` for every service principal: the broker knows them from its first start
    (later users, e.g. channel systems, are added by ``kafka_acls.ensure`` through the Admin API)."""
    if not settings.kafka_auth:
        return []
    return [arg for name, password in sorted(service_passwords(settings).items()) if name != "controller"
            for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scram_marker(settings: Settings) -> Path:
    """Present once the storage holds the service principals' SCRAM credentials."""
    return settings.home / "kafka" / "scram-users.added"


def add_scram_users(settings: Settings, lib: Path, timeout: float = 120.0) -> None:
    """Give storage formatted without SCRAM users its service principals (an install from before
    Kafka authentication). Format cannot add users to formatted storage, and the SASL listener lets
    nobody in without one, so the broker runs once more with an extra loopback listener where admin
    logs in with SASL/PLAIN (a static password in this run's config only), the users are added
    through the Admin API, and the broker stops again."""
    from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    from touchstream.stack import broker_runner as runner

    passwords, port = service_passwords(settings), _free_port()
    text = runner.server_properties(settings, passwords)
    for key in ("listeners", "advertised.listeners"):
        text = text.replace(f"\n{key}=", f"\n{key}=BOOTSTRAP://127.0.0.1:{port},", 1)
    text = text.replace("\nlistener.security.protocol.map=", "\nlistener.security.protocol.map=BOOTSTRAP:SASL_PLAINTEXT,", 1)
    text += ("listener.name.bootstrap.sasl.enabled.mechanisms=PLAIN\n"
             "listener.name.bootstrap.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
             f'required user_admin="{passwords["admin"]}";\n')
    props = runner.broker_dir(settings) / "add-users.properties"
    write_private(props, text)
    argv = [*runner.broker_argv(settings, lib)[:-1], str(props)]
    with open(settings.logs_dir / "broker-add-users.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=runner.broker_dir(settings))
    try:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SASL_PLAINTEXT",
                             "sasl.mechanism": "PLAIN", "sasl.username": "admin", "sasl.password": passwords["admin"]})
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
        users = [UserScramCredentialUpsertion(n, info, p.encode()) for n, p in sorted(passwords.items()) if n != "controller"]
        deadline = time.monotonic() + timeout
        while True:
            try:
                for future in admin.alter_user_scram_credentials(users, request_timeout=10).values():
                    future.result(15)
                break
            except Exception as exc:  # noqa: BLE001 - not listening yet
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise runner.BrokerError(f"could not add the SCRAM users to the existing storage: {exc}") from exc
                time.sleep(1)
    finally:
        proc.terminate()
        proc.wait(60)
        props.unlink(missing_ok=True)
    write_private(scram_marker(settings), "service users added to existing storage\n")
