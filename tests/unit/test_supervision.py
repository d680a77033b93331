"""The supervisor: backoff, restarting what crashed, recording how it ended, never restarting a clean
stop; and ``touchstream status``, which tells running, stopped and crashed apart and exits non-zero
when something that should run does not. Driven with tiny real child processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_ports
from touchstream.backoff import Backoff
from touchstream.cli import main as cli_main
from touchstream.config import Settings
from touchstream.stack import local_stack
from touchstream.stack.supervision_state import read_state, take_lock
from touchstream.stack.supervisor import ServiceSpec, Supervisor, pid_alive, proc_start_time, spec_to_json
from touchstream.stack.supervisor_daemon import Daemon

PY = sys.executable


def wait_until(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# --- backoff --------------------------------------------------------------------------------------

def test_backoff_doubles_up_to_its_cap():
    backoff = Backoff(base=1, factor=2, cap=10)
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 10, 10]


def test_backoff_starts_again_after_a_healthy_spell():
    backoff = Backoff(base=1, factor=2, cap=60, healthy_after=60)
    assert [backoff.next_delay(ran=5) for _ in range(3)] == [1, 2, 4]
    assert backoff.next_delay(ran=59.9) == 8
    assert backoff.next_delay(ran=60) == 1, "an hour of running, then one crash, is a new incident"
    assert backoff.next_delay(ran=0.5) == 2


def test_backoff_refuses_a_policy_that_never_waits():
    with pytest.raises(ValueError):
        Backoff(base=0)
    with pytest.raises(ValueError):
        Backoff(base=5, cap=1)


# --- the supervisor's bookkeeping, one step at a time ---------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def daemon(tmp_path: Path):
    sup = Supervisor(tmp_path / "run", tmp_path / "logs", in_supervisor=True)
    clock = Clock()
    d = Daemon(sup, clock=clock)
    d.clock_ = clock
    yield d
    for name in list(d.watched):
        d.handle({"op": "stop", "name": name, "timeout": 2})


def start(daemon: Daemon, name: str, code: str) -> dict:
    spec = ServiceSpec(name, [PY, "-c", code], log_file=daemon.sup.log_file(name))
    return daemon.handle({"op": "start", "spec": spec_to_json(spec)})


def step_until_dead(daemon: Daemon, name: str) -> dict:
    return wait_until(lambda: daemon.step() or (daemon.watched[name].pid is None and daemon.watched[name]),
                      what=f"{name} to end")


def test_a_crash_is_recorded_and_restarted_with_growing_delays(daemon):
    first = start(daemon, "crasher", "import sys; print('boom-marker', flush=True); sys.exit(3)")
    assert first["started"] and first["pid"]
    w = step_until_dead(daemon, "crasher")
    assert w.last_exit["code"] == 3 and w.last_exit["signal"] is None
    assert "boom-marker" in w.last_exit["log_tail"] and w.last_exit["at"] <= time.time()
    assert w.restart_at == daemon.clock_.now + 1 and w.restarts == 0

    daemon.clock_.now += 0.5
    daemon.step()
    assert daemon.watched["crasher"].pid is None, "restarted before its backoff"
    daemon.clock_.now += 0.5
    daemon.step()
    second = daemon.watched["crasher"].pid
    assert second and second != first["pid"] and daemon.watched["crasher"].restarts == 1

    w = step_until_dead(daemon, "crasher")
    assert w.restart_at == daemon.clock_.now + 2, "the second crash in a row waits twice as long"
    entry = read_state(daemon.sup.run_dir)["services"]["crasher"]
    assert entry["state"] == "restarting" and entry["restarts"] == 1 and entry["last_exit"]["code"] == 3


def test_a_signal_is_recorded_by_name(daemon):
    started = start(daemon, "sleeper", "import time; time.sleep(60)")
    os.kill(started["pid"], signal.SIGKILL)
    w = step_until_dead(daemon, "sleeper")
    assert w.last_exit["signal"] == "SIGKILL" and w.last_exit["code"] is None


def test_the_backoff_is_forgotten_after_a_healthy_run(daemon):
    started = start(daemon, "flaky", "import time; time.sleep(60)")
    daemon.watched["flaky"].backoff.failures = 5          # many crashes before
    daemon.clock_.now += 61                               # then a minute of healthy running
    os.kill(started["pid"], signal.SIGTERM)
    w = step_until_dead(daemon, "flaky")
    assert w.last_exit["signal"] == "SIGTERM" and w.restart_at == daemon.clock_.now + 1


def test_a_clean_stop_is_never_restarted(daemon):
    started = start(daemon, "worker", "import time; time.sleep(60)")
    assert daemon.handle({"op": "stop", "name": "worker", "timeout": 5}) == {"stopped": True}
    assert not pid_alive(started["pid"]) and not daemon.sup.pid_file("worker").exists()
    daemon.clock_.now += 120
    daemon.step()
    assert "worker" not in daemon.watched
    assert read_state(daemon.sup.run_dir)["services"]["worker"]["state"] == "stopped"


def test_a_start_request_for_a_running_service_leaves_it_alone(daemon):
    first = start(daemon, "worker", "import time; time.sleep(60)")
    again = start(daemon, "worker", "import time; time.sleep(60)")
    assert again == {"pid": first["pid"], "start_time": first["start_time"], "started": False}


def test_a_running_service_without_a_supervisor_is_adopted(tmp_path):
    outside = Supervisor(tmp_path / "run", tmp_path / "logs")
    outside.start(ServiceSpec("old", [PY, "-c", "import time; time.sleep(60)"]))
    daemon = Daemon(Supervisor(tmp_path / "run", tmp_path / "logs", in_supervisor=True), clock=Clock())
    try:
        daemon.adopt()
        w = daemon.watched["old"]
        assert w.pid == outside.running_pid("old") and not w.child
        os.kill(w.pid, signal.SIGKILL)
        w = step_until_dead(daemon, "old")
        assert w.last_exit["code"] is None and w.last_exit["signal"] is None, "not our child: how it ended is unknown"
    finally:
        daemon.handle({"op": "stop", "name": "old", "timeout": 2})


def test_the_state_file_is_owner_only(daemon):
    start(daemon, "worker", "import time; time.sleep(60)")
    daemon.step()
    mode = stat.S_IMODE((daemon.sup.run_dir / "supervisor.json").stat().st_mode)
    assert mode == 0o600


# --- the supervisor process, as 'up' and 'down' use it ----------------------------------------------

def test_the_supervisor_process_restarts_a_killed_service_and_stops_on_request(tmp_path):
    sup = Supervisor(tmp_path / "run", tmp_path / "logs", supervise_env=dict(os.environ))
    started = sup.start(ServiceSpec("sleeper", [PY, "-c", "import time; time.sleep(120)"]))
    assert started.started and sup.supervisor_running()
    daemon_pid = sup.read_pid("supervisor")["pid"]
    try:
        os.kill(started.pid, signal.SIGKILL)
        restarted = wait_until(lambda: (sup.running_pid("sleeper") or 0) not in (0, started.pid) and
                               sup.running_pid("sleeper"), what="the restart")
        entry = wait_until(lambda: read_state(sup.run_dir)["services"]["sleeper"]["pid"] == restarted and
                           read_state(sup.run_dir)["services"]["sleeper"], what="the state file")
        assert entry["restarts"] == 1 and entry["last_exit"]["signal"] == "SIGKILL"
        assert sup.stop("sleeper", timeout=5) is True
        assert not pid_alive(restarted)
        time.sleep(1.5)                                  # longer than the next backoff would be
        assert sup.running_pid("sleeper") is None and not sup.pid_file("sleeper").exists()
    finally:
        sup.stop_supervisor()
    assert not sup.supervisor_running()
    wait_until(lambda: not pid_alive(daemon_pid), what="the supervisor to exit")
    assert not sup.pid_file("supervisor").exists()


# --- status ------------------------------------------------------------------------------------------

@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Settings:
    ports = free_ports(5)
    env = {"TOUCHSTREAM_HOME": str(tmp_path / "home"), "TOUCHSTREAM_HOST": "127.0.0.1",
           "TOUCHSTREAM_KAFKA_PORT": str(ports[0]), "TOUCHSTREAM_CONTROLLER_PORT": str(ports[1]),
           "TOUCHSTREAM_REGISTRY_PORT": str(ports[2]), "TOUCHSTREAM_COLLECTOR_PORT": str(ports[3]),
           "TOUCHSTREAM_QUERY_PORT": str(ports[4])}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    settings.run_dir.mkdir(parents=True)
    return settings


def status_lines(capsys) -> tuple[int, dict[str, str]]:
    code = cli_main(["status"])
    out = capsys.readouterr().out.splitlines()[1:]
    return code, {line.split()[0]: line for line in out}


def pid_file(settings: Settings, name: str, pid: int) -> None:
    info = {"pid": pid, "start_time": proc_start_time(pid), "argv": ["x"], "started_at": time.time()}
    (settings.run_dir / f"{name}.pid").write_text(json.dumps(info))


def test_status_of_a_stack_never_started_is_all_stopped_and_fine(home, capsys):
    code, lines = status_lines(capsys)
    assert code == 0
    assert all(" stopped " in lines[name] for name in ("supervisor", *local_stack.SERVICES))


def test_a_killed_broker_shows_as_crashed_not_stopped_and_status_fails(home, capsys):
    gone = subprocess.Popen([PY, "-c", "pass"])
    start_time = proc_start_time(gone.pid)
    gone.wait()
    (home.run_dir / "broker.pid").write_text(json.dumps({"pid": gone.pid, "start_time": start_time or 1}))
    code, lines = status_lines(capsys)
    assert code == 1
    assert "crashed (exit status unknown" in lines["broker"] and "no supervisor running" in lines["broker"]


def test_a_crash_the_supervisor_recorded_is_shown_with_its_signal_time_and_restarts(home, capsys):
    lock = take_lock(home.run_dir)        # a supervisor holds its lock
    try:
        pid_file(home, "serving", os.getpid())
        (home.run_dir / "serving.pid").write_text(json.dumps({"pid": 999_999_9, "start_time": 1}))
        state = {"services": {"serving": {
            "state": "restarting", "restarts": 2, "restart_at": time.time() + 4,
            "last_exit": {"code": None, "signal": "SIGKILL", "at": time.mktime((2026, 5, 1, 12, 0, 3, 0, 0, -1))}}}}
        (home.run_dir / "supervisor.json").write_text(json.dumps(state))
        code, lines = status_lines(capsys)
    finally:
        os.close(lock)
    assert code == 1
    assert "crashed (signal SIGKILL, 2026-05-01 12:00:03, restarts 2, next try in " in lines["serving"]


def test_running_means_alive_and_answering_on_its_port(home, capsys):
    sleeper = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"])
    lock = take_lock(home.run_dir)
    try:
        pid_file(home, "supervisor", os.getpid())
        pid_file(home, "broker", sleeper.pid)
        (home.run_dir / "supervisor.json").write_text(json.dumps({"services": {"broker": {
            "state": "running", "restarts": 1, "last_exit": {"code": 70, "signal": None, "at": time.time()}}}}))
        code, lines = status_lines(capsys)
        assert code == 1 and f"running (not answering on port {home.broker_port})" in lines["broker"]
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", home.broker_port))
            listener.listen()
            code, lines = status_lines(capsys)
        assert code == 0
        assert "running (restarts 1, last: exit code 70 at " in lines["broker"] and str(sleeper.pid) in lines["broker"]
        assert " running " in lines["supervisor"]
    finally:
        os.close(lock)
        sleeper.kill()
        sleeper.wait()


def test_a_supervisor_that_died_is_reported_while_services_should_run(home, capsys):
    gone = subprocess.Popen([PY, "-c", "pass"])
    gone.wait()
    (home.run_dir / "supervisor.pid").write_text(json.dumps({"pid": gone.pid, "start_time": 1}))
    worker = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"])
    try:
        code, lines = status_lines(capsys)
        assert code == 0, "no service should run: a dead supervisor is no loss"
        pid_file(home, "identity", worker.pid)
        code, lines = status_lines(capsys)
    finally:
        worker.kill()
        worker.wait()
    assert code == 1 and "crashed (exit status unknown" in lines["supervisor"]
    assert " running " in lines["identity"]
