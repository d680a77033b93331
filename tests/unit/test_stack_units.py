"""The pure (or process-local) parts of the stack: no broker, no network beyond localhost."""

from __future__ import annotations

import base64
import dataclasses
import http.server
import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import unavailable

from touchstream.config import Settings
from touchstream.stack import broker_runner, kafka_jars, local_stack
from touchstream.stack.readiness import ServiceDied, wait_for_http, wait_for_kafka
from touchstream.stack.supervisor import ServiceSpec, Supervisor, pid_alive, proc_start_time

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def local(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", broker_port=19192, controller_port=19193,
                    cache_dir=tmp_path / "cache")


def parse_properties(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


# --- cluster id and server.properties ---------------------------------------------------

def test_cluster_id_is_urlsafe_base64_of_16_bytes():
    for _ in range(300):
        cid = broker_runner.new_cluster_id()
        assert len(cid) == 22 and re.fullmatch(r"[A-Za-z0-9_-]{22}", cid)
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16
        assert not cid.startswith("-"), "the storage tool would read '-t -xyz' as an option"


def test_cluster_id_is_persisted_and_formatted_id_wins(local: Settings):
    first = broker_runner.cluster_id(local)
    assert broker_runner.cluster_id(local) == first
    assert (local.home / "kafka" / "cluster.id").read_text().strip() == first
    # The data folder was formatted with another id: that one must be used from now on.
    local.kafka_data_dir.mkdir(parents=True)
    other = broker_runner.new_cluster_id()
    (local.kafka_data_dir / "meta.properties").write_text(f"version=1\ncluster.id={other}\nnode.id=1\n")
    assert broker_runner.cluster_id(local) == other
    assert (local.home / "kafka" / "cluster.id").read_text().strip() == other


def test_server_properties(local: Settings):
    props = parse_properties(broker_runner.server_properties(local))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19193"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19192"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(local.kafka_data_dir)
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr", "share.coordinator.state.topic.replication.factor",
                "share.coordinator.state.topic.min.isr"):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "false"
    assert props["num.partitions"] == "4"


def test_server_properties_bind_all_advertises_loopback(tmp_path: Path):
    props = parse_properties(broker_runner.server_properties(Settings(home=tmp_path, host="0.0.0.0")))
    assert props["listeners"] == "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"


def test_broker_argv(local: Settings, monkeypatch):
    monkeypatch.setattr(broker_runner, "java_executable", lambda: "java")
    argv = broker_runner.broker_argv(local, Path("/opt/lib"))
    assert argv[0] == "java"
    assert argv[-2:] == ["kafka.Kafka", str(local.home / "kafka" / "server.properties")]
    assert argv[argv.index("-cp") + 1] == "/opt/lib/*"
    for flag in ("-Xmx768m", "-Xms768m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                 "-Djava.awt.headless=true", f"-Dkafka.logs.dir={local.logs_dir}",
                 "-XX:+ExitOnOutOfMemoryError"):
        assert flag in argv
    log4j = next(a for a in argv if a.startswith("-Dlog4j2.configurationFile="))
    config = Path(log4j.split("=", 1)[1])
    assert config.is_file() and "${sys:kafka.logs.dir}/server.log" in config.read_text()


def test_class_sharing_dumps_until_an_archive_exists(local: Settings):
    flags = broker_runner.class_sharing_flags(local, "java")
    partial = broker_runner.class_archive_partial(local)
    assert f"-XX:ArchiveClassesAtExit={partial}" in flags and "-Xlog:cds=off" in flags
    archive = broker_runner.class_archive(local, "java")
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"x")
    assert f"-XX:SharedArchiveFile={archive}" in broker_runner.class_sharing_flags(local, "java")


REAL_LIB = kafka_jars.lib_dir(Settings(home=Path("/unused")))


def test_only_a_verified_class_archive_is_shared(local: Settings):
    if shutil.which("java") is None or not any(REAL_LIB.glob("kafka_2.13-*.jar")):
        unavailable("needs java and the Kafka jars in the normal cache ('touchstream jars')")  # fails under CI
    partial = broker_runner.class_archive_partial(local)
    partial.parent.mkdir(parents=True)
    # A JVM run writes a real archive for this classpath (a short tool, not a broker).
    subprocess.run(["java", "-XX:+UseG1GC", f"-XX:ArchiveClassesAtExit={partial}", "-Xlog:cds=off",
                    "-cp", f"{REAL_LIB}/*", "kafka.tools.StorageTool", "random-uuid"],
                   check=True, capture_output=True, timeout=120)
    good = partial.read_bytes()
    # Truncated (broker killed mid-dump): dropped, never shared; it would crash the next JVM.
    partial.write_bytes(good[: len(good) // 3])
    assert broker_runner.promote_class_archive(local, REAL_LIB) is False
    assert not partial.exists() and not broker_runner.class_archive(local, "java").exists()
    partial.write_bytes(good)
    assert broker_runner.promote_class_archive(local, REAL_LIB) is True
    assert not partial.exists() and broker_runner.class_archive(local, "java").read_bytes() == good


# --- supervisor: pid files with real short-lived processes ---------------------------

def test_start_is_idempotent_and_stop_by_pid(tmp_path: Path):
    sup = Supervisor(tmp_path / "run", tmp_path / "logs")
    first = sup.start(ServiceSpec("sleeper", ["sleep", "60"]))
    try:
        info = json.loads(sup.pid_file("sleeper").read_text())
        assert info["pid"] == first.pid and info["start_time"] == proc_start_time(first.pid)
        assert first.started and sup.is_running("sleeper")
        again = sup.start(ServiceSpec("sleeper", ["sleep", "60"]))
        assert (again.pid, again.started) == (first.pid, False)
    finally:
        assert sup.stop("sleeper", timeout=5)
    assert not pid_alive(first.pid)
    assert not sup.pid_file("sleeper").exists() and not sup.is_running("sleeper")
    assert sup.stop("sleeper") is False  # nothing to stop: no error


def test_recycled_pid_is_never_signalled(tmp_path: Path):
    """A pid file naming a live process with another start time is stale: no signal sent."""
    sup = Supervisor(tmp_path / "run", tmp_path / "logs")
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        sup.run_dir.mkdir(parents=True)
        real = proc_start_time(bystander.pid)
        sup.pid_file("broker").write_text(json.dumps({"pid": bystander.pid, "start_time": real - 1}))
        assert not sup.is_running("broker")
        assert sup.stop("broker", timeout=1) is False
        assert bystander.poll() is None, "a process that is not ours was killed"
        assert not sup.pid_file("broker").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_stop_kills_the_whole_process_group(tmp_path: Path):
    sup = Supervisor(tmp_path / "run", tmp_path / "logs")
    child_file = tmp_path / "child.pid"
    sup.start(ServiceSpec("forker", ["sh", "-c", f"sleep 60 & echo $! > {child_file}; wait"]))
    deadline = time.monotonic() + 5
    while not child_file.exists() or not child_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    child = int(child_file.read_text())
    assert pid_alive(child)
    sup.stop("forker", timeout=5)
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(child)


def test_process_dying_during_startup_fails_fast_with_log_tail(tmp_path: Path):
    sup = Supervisor(tmp_path / "run", tmp_path / "logs")
    log = sup.log_file("crasher")
    spec = ServiceSpec("crasher", ["sh", "-c", "echo boom-marker; exit 3"], log_file=log,
                       ready=lambda alive: wait_for_http("http://127.0.0.1:9/x", 30, log, alive, "crasher"))
    t0 = time.monotonic()
    with pytest.raises(ServiceDied, match="boom-marker"):
        sup.start(spec)
    assert time.monotonic() - t0 < 10
    assert not sup.is_running("crasher") and not sup.pid_file("crasher").exists()


def test_failed_readiness_stops_the_process(tmp_path: Path):
    sup = Supervisor(tmp_path / "run", tmp_path / "logs")

    def never_ready():  # the zero-argument form of a readiness check
        raise TimeoutError("not ready")

    with pytest.raises(TimeoutError):
        sup.start(ServiceSpec("stuck", ["sleep", "60"], ready=never_ready))
    assert not sup.is_running("stuck") and not sup.pid_file("stuck").exists()


# --- readiness -------------------------------------------------------------------------

def test_wait_for_kafka_times_out_naming_address_and_log(tmp_path: Path):
    from tests.conftest import free_ports

    port = free_ports(1)[0]
    log = tmp_path / "server.log"
    log.write_text("line one\nERROR the-reason-it-failed\n")
    with pytest.raises(TimeoutError) as info:
        wait_for_kafka(f"127.0.0.1:{port}", timeout=1.0, log_file=log)
    text = str(info.value)
    assert f"127.0.0.1:{port}" in text and "Kafka broker" in text and "the-reason-it-failed" in text


def test_wait_for_http(tmp_path: Path):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert wait_for_http(f"{base}/health", timeout=5).status_code == 200
        with pytest.raises(TimeoutError, match=r"collector at http://\S+/missing not ready"):
            wait_for_http(f"{base}/missing", timeout=2, service="collector")
    finally:
        server.shutdown()


# --- jars: marker and interrupted downloads ----------------------------------------------

def test_missing_maven_is_a_clear_error(local: Settings, monkeypatch):
    monkeypatch.setattr(kafka_jars.shutil, "which", lambda name: None)
    with pytest.raises(kafka_jars.JarsError, match="Maven"):
        kafka_jars.ensure_jars(local)


def test_jars_marker_written_only_after_success(local: Settings, monkeypatch):
    def fake_maven(exit_code):
        def command(settings, output_dir):
            return ["sh", "-c", f"mkdir -p {output_dir} && touch {output_dir}/kafka_2.13-x.jar && exit {exit_code}"]
        return command

    monkeypatch.setattr(kafka_jars, "maven_command", fake_maven(1))  # "interrupted" download
    with pytest.raises(kafka_jars.JarsError):
        kafka_jars.ensure_jars(local)
    assert not kafka_jars.jars_ready(local) and not kafka_jars.lib_dir(local).exists()

    monkeypatch.setattr(kafka_jars, "maven_command", fake_maven(0))
    lib = kafka_jars.ensure_jars(local)
    assert (lib / "kafka_2.13-x.jar").exists() and kafka_jars.jars_ready(local)
    assert not (lib.parent / "lib.partial").exists()

    monkeypatch.setattr(kafka_jars, "maven_command", lambda *a: pytest.fail("Maven called again"))
    assert kafka_jars.ensure_jars(local) == lib  # idempotent: marker matches, no Maven


# --- local_stack pure parts --------------------------------------------------------------

def test_parse_services():
    assert local_stack.parse_services(None) == ["broker", "registry", "collector", "identity", "serving"]
    assert local_stack.parse_services("serving,broker") == ["broker", "serving"]
    with pytest.raises(local_stack.StackError, match="bogus"):
        local_stack.parse_services("broker,bogus")


def test_up_refuses_missing_module_before_starting_anything(local: Settings, monkeypatch):
    monkeypatch.setitem(local_stack.PYTHON_MODULES, "collector", "touchstream.no_such_module")
    with pytest.raises(local_stack.StackError, match="no_such_module"):
        local_stack.up(local, ["broker", "collector"])
    assert not local.run_dir.exists() or not any(local.run_dir.iterdir())


def test_busy_port_is_refused_before_start(local: Settings):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = dataclasses.replace(local, registry_port=sock.getsockname()[1])
        with pytest.raises(local_stack.StackError, match="in use"):
            local_stack.check_ports_free(busy, "registry")
    local_stack.check_ports_free(busy, "registry")  # closed again: free


def test_child_env_carries_the_settings(local: Settings):
    env = local_stack.child_env(local)
    assert env["TOUCHSTREAM_HOME"] == str(local.home)
    assert env["TOUCHSTREAM_KAFKA_PORT"] == "19192" and env["TOUCHSTREAM_CONTROLLER_PORT"] == "19193"
    assert Settings.from_env(env) == local


def test_cli_parses_stack_commands():
    from touchstream.cli import build_parser

    args = build_parser().parse_args(["up", "--only", "broker,registry"])
    assert args.only == "broker,registry" and callable(args.func)
    for command in ("down", "status", "jars"):
        assert callable(build_parser().parse_args([command]).func)


# --- docker-compose.yml ------------------------------------------------------------------

LOOPBACK = "${TOUCHSTREAM_BIND:-127.0.0.1}"   # compose publishes on loopback unless TOUCHSTREAM_BIND says otherwise


def test_docker_compose_matches_settings_defaults():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"kafka", "registry", "collector", "identity", "serving"}
    defaults = Settings(home=Path("/unused"))
    assert services["kafka"]["image"] == f"apache/kafka:{defaults.kafka_version}"
    assert f"{LOOPBACK}:{defaults.broker_port}:{defaults.broker_port}" in services["kafka"]["ports"]
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert published and all(port.startswith(LOOPBACK + ":") for port in published)   # not every interface
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert len(base64.urlsafe_b64decode(kafka_env["CLUSTER_ID"] + "==")) == 16
    expected_ports = {"registry": defaults.registry_port, "collector": defaults.collector_port,
                      "serving": defaults.query_port}
    known = set(re.findall(r"TOUCHSTREAM_[A-Z_]+", (ROOT / "touchstream" / "config.py").read_text()))
    for name, port in expected_ports.items():
        service = services[name]
        assert f"{LOOPBACK}:{port}:{port}" in service["ports"], name
        assert service["command"] == ["up", "--only", name, "--foreground"]
        env = service["environment"]
        assert set(env) <= known, set(env) - known
        assert env["TOUCHSTREAM_HOST"] == "0.0.0.0"
        assert env["TOUCHSTREAM_BOOTSTRAP"].startswith("kafka:")
        assert int(env["TOUCHSTREAM_REGISTRY_PORT"]) == defaults.registry_port
        assert int(env["TOUCHSTREAM_COLLECTOR_PORT"]) == defaults.collector_port
        assert int(env["TOUCHSTREAM_QUERY_PORT"]) == defaults.query_port
        assert env["TOUCHSTREAM_REGISTRY_URL"] == f"http://registry:{defaults.registry_port}"
        # one master key for all (each container has its own home), and none made up: compose refuses without it
        assert env["TOUCHSTREAM_MASTER_KEY"].startswith("${TOUCHSTREAM_MASTER_KEY:?"), name
    identity = services["identity"]
    assert identity["command"] == ["up", "--only", "identity", "--foreground"]
    assert identity["environment"] == services["serving"]["environment"]
    assert local_stack.READY_FILES["identity"] in " ".join(identity["healthcheck"]["test"])
    internal = services["registry"]["environment"]["TOUCHSTREAM_BOOTSTRAP"]
    assert f"INTERNAL://{internal}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]


def test_dockerfile_installs_the_package():
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text and "pip install ." in text
    assert 'ENTRYPOINT ["touchstream"]' in text
