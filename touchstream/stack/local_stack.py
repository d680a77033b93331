"""Bring the whole local stack up and down, in dependency order.

``up``:  jars -> storage format -> broker -> (Kafka answers) -> topics ->
registry -> schemas registered -> collector -> serving.
``down``: the same services, in reverse order, then the supervisor.

Supervised by default: the services are started by the supervisor process
(``supervisor_daemon``), which restarts one that crashes, with backoff, and records
how it ended; ``status`` reports it. ``up(supervise=False)`` (``--foreground``, for
containers whose runtime restarts them) starts them from this process instead.

Each step is idempotent, so ``up`` is also "repair": a running service is left
alone (same pid) and only checked for readiness, missing topics are created,
schemas already registered keep their ids. ``services`` picks a subset (e.g.
only the broker, for tests or while the other modules are being written).

Children inherit this process's environment plus every TOUCHSTREAM_* value of
``settings``, so a stack built from a Settings object (a test's free ports and
temp home) is the stack its children see, not the defaults.

The home holds personal data, so ``up`` takes group/other access off what is there (an
older install) and runs under umask 077, which every child (Kafka's JVM too) inherits.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from touchstream.config import Settings
from touchstream.kafka_access import kafka_access
from touchstream.private_files import private_dir, private_umask, restrict_tree
from touchstream.stack import broker_runner, kafka_acls, kafka_jars
from touchstream.stack.fold_workers import FOLD_MODULE, FOLD_PREFIX, known_workers, with_workers, worker_names
from touchstream.stack.readiness import describe_failure, wait_for_file, wait_for_http, wait_for_kafka
from touchstream.stack.stack_status import ServiceStatus, port_answers, service_status, supervisor_status
from touchstream.stack.supervision_state import read_state
from touchstream.stack.supervisor import ServiceSpec, Supervisor
from touchstream.stack.topic_admin import ensure_topics
from touchstream.topics import load_topics

SERVICES = ("broker", "registry", "collector", "identity", "serving")
PYTHON_MODULES = {
    "registry": "touchstream.registry",
    "collector": "touchstream.publishing",
    "identity": "touchstream.identity",
    "serving": "touchstream.serving",
}
READY_PATHS = {"registry": "/subjects", "collector": "/health", "serving": "/health"}
READY_FILES = {"identity": "identity.ready"}
BROKER_TIMEOUT = 120.0
HTTP_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


class StackError(RuntimeError):
    """The stack cannot be brought up as asked (unknown service, missing module, ...)."""


@dataclass(frozen=True)
class Step:
    """One finished step of ``up``, for the report (``pid`` is None for non-process steps)."""

    name: str
    address: str
    seconds: float
    pid: int | None = None
    started: bool = False
    detail: str = ""


def parse_services(services: str | Iterable[str] | None) -> list[str]:
    """``None`` = all; otherwise names (or "a,b") validated and put in start order."""
    if services is None:
        return list(SERVICES)
    if isinstance(services, str):
        services = services.split(",")
    wanted = {s.strip() for s in services if s.strip()}
    unknown = sorted(wanted - set(SERVICES))
    if unknown:
        raise StackError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    return [s for s in SERVICES if s in wanted]


def supervisor(settings: Settings, supervise: bool = False) -> Supervisor:
    """Pid files and logs of ``settings``' stack; with ``supervise``, starts go through the supervisor."""
    return Supervisor(settings.run_dir, settings.logs_dir, supervise_env=child_env(settings) if supervise else None)


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "TOUCHSTREAM_HOME": str(settings.home),
        "TOUCHSTREAM_HOST": settings.host,
        "TOUCHSTREAM_KAFKA_PORT": str(settings.broker_port),
        "TOUCHSTREAM_CONTROLLER_PORT": str(settings.controller_port),
        "TOUCHSTREAM_REGISTRY_PORT": str(settings.registry_port),
        "TOUCHSTREAM_COLLECTOR_PORT": str(settings.collector_port),
        "TOUCHSTREAM_QUERY_PORT": str(settings.query_port),
        "TOUCHSTREAM_KAFKA_HEAP": settings.kafka_heap,
        "TOUCHSTREAM_CACHE": str(settings.cache_dir),
        "TOUCHSTREAM_KAFKA_AUTH": "true" if settings.kafka_auth else "false",
        "TOUCHSTREAM_FOLD_WORKERS": str(settings.fold_workers),
        "PYTHONUNBUFFERED": "1",
    })
    if settings.topic_config is not None:
        env["TOUCHSTREAM_TOPICS"] = str(settings.topic_config)
    return env


def local_bootstrap(settings: Settings) -> str:
    """The address of the broker this stack runs (not TOUCHSTREAM_BOOTSTRAP)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"{host}:{settings.broker_port}"


def service_address(settings: Settings, name: str) -> str:
    return {
        "broker": local_bootstrap(settings),
        "registry": settings.registry_url,
        "collector": settings.collector_url,
        "identity": "group touchstream-identity",   # a worker: no address of its own
        "serving": settings.query_url,
    }.get(name) or "group touchstream-fold"   # a fold worker: no address of its own


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def missing_modules(services: Sequence[str]) -> list[str]:
    """Human-readable list of what the chosen services need but is not there yet."""
    missing = []
    for name in services:
        module = PYTHON_MODULES.get(name)
        if module and not (_module_exists(f"{module}.__main__")):
            missing.append(f"{name}: 'python -m {module}' needs {module.replace('.', '/')}/__main__.py")
    if "registry" in services and not _module_exists("touchstream.registry.bootstrap"):
        missing.append("registry: touchstream.registry.bootstrap (register_all) does not exist")
    return missing


def service_ports(settings: Settings, name: str) -> list[int]:
    return {
        "broker": [settings.broker_port, settings.controller_port],
        "registry": [settings.registry_port],
        "collector": [settings.collector_port],
        "identity": [],
        "serving": [settings.query_port],
    }.get(name, [])   # a fold worker listens on no port


def check_ports_free(settings: Settings, name: str) -> None:
    """Refuse to start ``name`` when its port is taken (else readiness could see someone else's)."""
    for port in service_ports(settings, name):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is fine
            try:
                sock.bind((settings.host, port))
            except OSError as exc:
                raise StackError(
                    f"cannot start {name}: {settings.host}:{port} is in use ({exc.strerror}); another "
                    "stack on the same ports? Check 'touchstream status' or set TOUCHSTREAM_*_PORT."
                ) from None


def broker_spec(settings: Settings, lib: Path) -> ServiceSpec:
    log = supervisor(settings).log_file("broker")
    logs = (log, settings.logs_dir / "server.log")
    address = local_bootstrap(settings)
    cid = broker_runner.cluster_id(settings)
    return ServiceSpec(
        name="broker",
        argv=broker_runner.broker_argv(settings, lib),
        env=child_env(settings),
        cwd=broker_runner.broker_dir(settings),
        ready=lambda alive: wait_for_kafka(kafka_access(settings, "admin", bootstrap=address), BROKER_TIMEOUT, logs,
                                           alive, "Kafka broker", cid),
        log_file=log,
        address=address,
    )


def python_spec(settings: Settings, name: str) -> ServiceSpec:
    log = supervisor(settings).log_file(name)
    fold = name.startswith(FOLD_PREFIX)
    env = {**child_env(settings), "TOUCHSTREAM_FOLD_NAME": name} if fold else child_env(settings)
    if fold or name in READY_FILES:   # a worker without HTTP: it writes a file once it has joined its group
        marker = settings.run_dir / (f"{name}.ready" if fold else READY_FILES[name])
        ready = lambda alive: wait_for_file(marker, HTTP_TIMEOUT, log, alive, name)  # noqa: E731
    else:
        url = service_address(settings, name) + READY_PATHS[name]
        ready = lambda alive: wait_for_http(url, HTTP_TIMEOUT, log, alive, name)  # noqa: E731
    return ServiceSpec(
        name=name,
        argv=[sys.executable, "-m", FOLD_MODULE if fold else PYTHON_MODULES[name]],
        env=env,
        cwd=settings.home,
        ready=ready,
        log_file=log,
        address=service_address(settings, name),
    )


def _register_schemas(settings: Settings) -> str:
    bootstrap = importlib.import_module("touchstream.registry.bootstrap")
    result = bootstrap.register_all(settings)
    try:
        return f"{len(result)} schemas"  # type: ignore[arg-type]
    except TypeError:
        return "schemas registered"


def up(settings: Settings, services: str | Iterable[str] | None = None,
       progress: Callable[[Step], None] | None = None, supervise: bool = True) -> list[Step]:
    """Bring ``services`` (default: all) up in order; return one Step per thing done."""
    with private_umask():
        private_dir(settings.home)
        restrict_tree(settings.home)
        return _up(settings, services, progress, supervise)


def _up(settings: Settings, services, progress, supervise: bool) -> list[Step]:
    chosen = parse_services(services)
    missing = missing_modules(chosen)
    if missing:
        raise StackError("cannot start the stack, modules missing:\n  " + "\n  ".join(missing)
                         + "\n(start a subset with --only, e.g. --only broker)")
    for folder in (settings.home, settings.logs_dir, settings.run_dir, settings.data_dir):
        folder.mkdir(parents=True, exist_ok=True)
    sup = supervisor(settings, supervise)
    steps: list[Step] = []

    def done(step: Step) -> None:
        steps.append(step)
        if progress is not None:
            progress(step)

    bootstrap = settings.bootstrap_servers
    if "broker" in chosen:
        t0 = time.monotonic()
        detail = ""
        if sup.is_running("broker"):  # leave its jars and storage alone; start() only checks it
            lib = kafka_jars.lib_dir(settings)
        else:
            if not sup.restart_pending("broker"):   # else the supervisor's restart may be binding them
                check_ports_free(settings, "broker")
            lib = kafka_jars.ensure_jars(settings)
            formatted = broker_runner.format_storage(settings, lib)
            detail = f"jars+format {time.monotonic() - t0:.1f}s" + (", storage formatted" if formatted else "")
        started = sup.start(broker_spec(settings, lib))
        bootstrap = local_bootstrap(settings)
        done(Step("broker", bootstrap, started.seconds, started.pid, started.started, detail))
    if "broker" in chosen or "registry" in chosen:
        t0 = time.monotonic()
        if "broker" not in chosen:  # an external broker (Docker, CI): it must answer first
            wait_for_kafka(kafka_access(settings, "admin", bootstrap=bootstrap), BROKER_TIMEOUT)
        created = ensure_topics(kafka_access(settings, "admin", bootstrap=bootstrap), load_topics(settings.topic_config))
        done(Step("topics", bootstrap, time.monotonic() - t0, detail=f"{len(created)} created"))
        if settings.kafka_auth:   # principals and ACLs before any service connects as one
            t0 = time.monotonic()
            held = kafka_acls.ensure(settings, bootstrap)
            done(Step("kafka access", bootstrap, time.monotonic() - t0,
                      detail=f"{held['users']} users, {held['grants']} grants, {held['removed']} stale removed"))
    # --workers N (or TOUCHSTREAM_FOLD_WORKERS); unsaid, the workers already running stay as they are
    workers = worker_names(settings.fold_workers) or [w for w in known_workers(settings) if sup.is_running(w)]
    chosen = with_workers(chosen, workers)
    for name in with_workers(["registry", "collector", "identity", "serving"], workers):
        if name not in chosen:
            continue
        if not sup.is_running(name):
            if not sup.restart_pending(name) and name not in workers:
                check_ports_free(settings, name)
            if name in READY_FILES or name in workers:   # a stale marker of a crashed run must not pass for ready
                (settings.run_dir / READY_FILES.get(name, f"{name}.ready")).unlink(missing_ok=True)
        started = sup.start(python_spec(settings, name))
        done(Step(name, service_address(settings, name), started.seconds, started.pid, started.started))
        if name == "registry":
            t0 = time.monotonic()
            detail = _register_schemas(settings)
            done(Step("schemas", settings.registry_url, time.monotonic() - t0, detail=detail))
    dead = [name for name in chosen if not sup.is_running(name)]
    if dead:  # ready once, then crashed while later steps ran (e.g. a worker failing after HTTP is up)
        raise StackError("\n".join(describe_failure(f"{name} exited after it was ready", sup.log_file(name))
                                    for name in dead))
    return steps


def down(settings: Settings, services: str | Iterable[str] | None = None,
         timeout: float = STOP_TIMEOUT) -> list[str]:
    """Stop ``services`` (default: all) in reverse start order; return those that were running.
    The supervisor stops them (so it restarts none of them) and exits once none is left to run."""
    sup = supervisor(settings)
    stopped = []
    for name in reversed(with_workers(parse_services(services), known_workers(settings))):
        if sup.stop(name, timeout):
            stopped.append(name)
            if name == "broker":  # its JVM may just have dumped a class archive
                broker_runner.promote_class_archive(settings, kafka_jars.lib_dir(settings))
    if not any(sup.pid_file(name).exists() for name in (*SERVICES, *known_workers(settings))):
        sup.stop_supervisor()
    return stopped


def status(settings: Settings, probe=port_answers) -> list[ServiceStatus]:
    """The supervisor's row, then one per known service, whether or not it was ever started
    (``probe(host, port)``: does a running service answer on its port)."""
    sup = supervisor(settings)
    entries = read_state(settings.run_dir).get("services", {})
    rows = [service_status(sup, name, service_address(settings, name), service_ports(settings, name)[:1],
                           settings.host, probe, entries.get(name, {}))
            for name in with_workers(list(SERVICES), known_workers(settings))]
    return [supervisor_status(sup, any(row.should_run for row in rows)), *rows]


def wait_while_running(settings: Settings, services: Sequence[str], poll: float = 1.0) -> str:
    """Block while every service in ``services`` runs; return the first that stopped.

    For containers, where ``touchstream up --foreground`` is the main process.
    """
    sup = supervisor(settings)
    while True:
        for name in services:
            if not sup.is_running(name):
                return name
        time.sleep(poll)
