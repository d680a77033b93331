"""Shared fixtures: one isolated Touchstream home per test session.

* ``settings``: a Settings on a temp TOUCHSTREAM_HOME and free ports, also
  exported to ``os.environ`` so every child process (and ``Settings.from_env()``
  inside the code under test) sees the same stack, never the developer's own
  stack on the default ports.
* ``broker``: the real Apache Kafka broker, started once per session (jars from
  the normal cache, ``~/.cache/touchstream``) and stopped at the end.
* ``stack``: every service ``touchstream up`` knows, on top of that broker.

When the broker (or stack) cannot start, tests needing it are skipped with the
reason; under CI (``CI=true``) that is a hard failure instead, so a broken
environment cannot pass as "all skipped".
"""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import ExitStack
from typing import Iterator

import pytest

from touchstream.config import Settings
from touchstream.kafka_access import KafkaAccess

PORT_VARS = (
    "TOUCHSTREAM_KAFKA_PORT",
    "TOUCHSTREAM_CONTROLLER_PORT",
    "TOUCHSTREAM_REGISTRY_PORT",
    "TOUCHSTREAM_COLLECTOR_PORT",
    "TOUCHSTREAM_QUERY_PORT",
)
# Set in a developer's shell these would point the tests at another stack.
OVERRIDE_VARS = ("TOUCHSTREAM_BOOTSTRAP", "TOUCHSTREAM_REGISTRY_URL", "TOUCHSTREAM_QUERY_URL",
                 "TOUCHSTREAM_TOPICS")


BLOCKED_PHONE = "+31 20 555 0100"
BLOCKED_EMAILS = "test-[0-9]+@blocked\\\\.example"


def unique_name(prefix: str = "t") -> str:
    """A topic / group / app id no other test (or earlier run) has used."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports the kernel reports free right now (bound to port 0 together)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI."""
    if in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(name="unique_name")
def _unique_name_fixture():
    """The ``unique_name`` helper as a fixture, for tests that prefer not to import conftest."""
    return unique_name


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("touchstream-home")
    # Guard rails the identity tests rely on: a shared office phone that must never merge customers.
    (home / "identity.toml").write_text(
        'blocked_values = [["phone", "%s"]]\nblocked_patterns = [["email", "%s"]]\n' % (BLOCKED_PHONE, BLOCKED_EMAILS))
    env = {"TOUCHSTREAM_HOME": str(home), "TOUCHSTREAM_HOST": "127.0.0.1"}
    env.update({name: str(port) for name, port in zip(PORT_VARS, free_ports(len(PORT_VARS)))})
    with pytest.MonkeyPatch.context() as mp:
        for name in OVERRIDE_VARS:
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        yield Settings.from_env()


@pytest.fixture(scope="session")
def broker(settings: Settings) -> Iterator[KafkaAccess]:
    """The session's broker as its admin reaches it: ``broker.bootstrap`` is the address,
    ``broker.confluent(...)`` / ``broker.kafka_python(...)`` build clients with the credential."""
    from touchstream.kafka_access import kafka_access
    from touchstream.stack import local_stack

    try:
        local_stack.up(settings, ["broker"])
    except Exception as exc:  # noqa: BLE001 - any reason means "no broker for this session"
        local_stack.down(settings, ["broker"])
        unavailable(f"Kafka broker could not be started ({type(exc).__name__}): {exc}")
    yield kafka_access(settings, "admin", bootstrap=local_stack.local_bootstrap(settings))
    local_stack.down(settings, ["broker"])


@pytest.fixture(scope="session")
def stack(settings: Settings, broker: KafkaAccess) -> Iterator[Settings]:
    """Every service of the local stack; yields the settings that address them."""
    from touchstream.stack import local_stack

    others = [name for name in local_stack.SERVICES if name != "broker"]
    missing = local_stack.missing_modules(others)
    if missing:
        unavailable("local stack incomplete: " + "; ".join(missing))
    try:
        local_stack.up(settings)
    except Exception as exc:  # noqa: BLE001
        local_stack.down(settings, others)
        unavailable(f"local stack could not be started ({type(exc).__name__}): {exc}")
    yield settings
    local_stack.down(settings, others)
