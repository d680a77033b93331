"""Start, track and stop the stack's background processes, by pid only.

Why pid *and* start time: a pid file outlives its process (reboot, crash, kill
-9) and the kernel reuses pids, so "the pid in the file is alive" does not mean
"it is our broker". The pid file stores the start time from ``/proc/<pid>/stat``
(field 22, in clock ticks since boot) and a process is ours only when both
match. Nothing is ever looked up or killed by name: another developer's broker
with the same command line on the same machine must survive our ``down``.

Each service runs in its own session (``start_new_session=True``) so it outlives
the ``touchstream up`` that started it and so ``stop`` can signal its whole
process group (uvicorn or faust workers may fork).

Supervised (``supervise_env`` given, as ``touchstream up`` does): ``start`` and ``stop``
are carried out by the supervisor process (``supervisor_daemon``, started on first use),
which restarts a service that dies without being asked to stop, with backoff, and
records how it ended. It must be the one that starts them: only a parent learns a
child's exit code or signal. The readiness check still runs here, in the caller.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from touchstream.stack.readiness import Alive
from touchstream.stack.supervision_state import SupervisorGone, ask, read_state, supervisor_running

# ready(alive) blocks until the service answers (or raises); ``alive`` says
# whether the process still exists, so a crash fails fast instead of timing out.
# A zero-argument ready() is accepted too (it just cannot fail fast).
ReadyCheck = Callable[[Alive], object] | Callable[[], object]


def _call_ready(ready: ReadyCheck, alive: Alive) -> None:
    try:
        wants_alive = len(inspect.signature(ready).parameters) >= 1
    except (TypeError, ValueError):
        wants_alive = True
    if wants_alive:
        ready(alive)  # type: ignore[call-arg]
    else:
        ready()  # type: ignore[call-arg]


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service: command, environment, readiness check and log file."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    ready: ReadyCheck | None = None
    log_file: Path | None = None
    address: str = ""


@dataclass(frozen=True)
class Started:
    name: str
    pid: int
    started: bool  # False when it was already running and left alone
    seconds: float  # from spawn (or from the check, when already running) to ready


def proc_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rfind(")") + 2:].split()
    if not fields or fields[0] in ("Z", "X"):  # zombie/dead: exited, only not reaped
        return None
    return int(fields[19])


# Wait statuses of our children collected by ``_reap`` on the way (the supervisor reads them there:
# a status waitpid has returned once is gone from the kernel).
REAPED: dict[int, int] = {}


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own exited child, so it stops being a zombie."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except OSError:   # not our child (ChildProcessError), or gone
        return
    if got == pid:
        REAPED[pid] = status


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """True when ``pid`` runs and, if given, started at ``start_time`` (same process)."""
    _reap(pid)
    current = proc_start_time(pid)
    if current is None:
        return False
    return start_time is None or current == start_time


def spec_to_json(spec: ServiceSpec) -> dict:
    """What the supervisor needs to run ``spec`` again (not its readiness check: the caller runs that)."""
    return {"name": spec.name, "argv": list(spec.argv), "env": dict(spec.env) if spec.env is not None else None,
            "cwd": str(spec.cwd) if spec.cwd else None, "log_file": str(spec.log_file) if spec.log_file else None,
            "address": spec.address}


class Supervisor:
    """Pid files under ``run_dir``, logs under ``logs_dir``; supervised when ``supervise_env`` is given
    (the environment the supervisor process runs in). ``in_supervisor``: this is that process."""

    def __init__(self, run_dir: Path, logs_dir: Path, *, supervise_env: Mapping[str, str] | None = None,
                 in_supervisor: bool = False):
        self.run_dir = Path(run_dir)
        self.logs_dir = Path(logs_dir)
        self.supervise_env, self.in_supervisor = supervise_env, in_supervisor
        self._children: dict[str, subprocess.Popen] = {}  # keeps Popen objects from warning at exit

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def read_pid(self, name: str) -> dict | None:
        try:
            info = json.loads(self.pid_file(name).read_text())
            return info if isinstance(info.get("pid"), int) else None
        except (OSError, ValueError, AttributeError):
            return None

    def running_pid(self, name: str) -> int | None:
        """The pid of ``name`` when its recorded process is still that process."""
        info = self.read_pid(name)
        if info is None:
            return None
        return info["pid"] if pid_alive(info["pid"], info.get("start_time")) else None

    def is_running(self, name: str) -> bool:
        return self.running_pid(name) is not None

    def start(self, spec: ServiceSpec) -> Started:
        """Start ``spec`` detached (supervised: by the supervisor) and wait until ready; leave it alone if
        already running. A process started now that fails its readiness check is stopped again."""
        t0 = time.monotonic()
        if self.supervise_env is not None and not self.in_supervisor:
            reply = self._ask({"op": "start", "spec": spec_to_json(spec)}, timeout=60.0)
            pid, started = reply["pid"], bool(reply["started"])
            alive = lambda: pid_alive(pid, reply.get("start_time"))  # noqa: E731
        else:
            pid = self.running_pid(spec.name)
            started = pid is None
            if started:
                proc = self.spawn(spec)
                pid, alive = proc.pid, lambda: proc.poll() is None
            else:
                alive = lambda: pid_alive(pid)  # noqa: E731
        if spec.ready is not None:
            try:
                _call_ready(spec.ready, alive)
            except BaseException:
                if started:
                    self.stop(spec.name, timeout=10)
                raise
        return Started(spec.name, pid, started, time.monotonic() - t0)

    def spawn(self, spec: ServiceSpec, note: str = "starting", pid_file: bool = True) -> subprocess.Popen:
        """Start ``spec`` detached (its own session, output appended to its log) and write its pid file."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = spec.log_file or self.log_file(spec.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {note} {spec.name}: "
                      f"{' '.join(spec.argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(spec.argv), cwd=spec.cwd, env=dict(spec.env) if spec.env is not None else None,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )
        self._children[spec.name] = proc
        if pid_file:
            self._write_pid(spec, proc.pid, proc_start_time(proc.pid))
        return proc

    # --- the supervisor process --------------------------------------------------------------

    def _ask(self, request: dict, timeout: float) -> dict:
        if self.supervise_env is not None:
            self.ensure_supervisor()
        reply = ask(self.run_dir, request, timeout=timeout,
                    revive=self.ensure_supervisor if self.supervise_env is not None else None)
        if "error" in reply:
            raise RuntimeError(f"supervisor: {reply['error']}")
        return reply

    def supervisor_running(self) -> bool:
        return supervisor_running(self.run_dir)

    def ensure_supervisor(self, timeout: float = 15.0) -> None:
        """Start the supervisor process unless one runs (it exits at once if another won the race)."""
        if self.supervisor_running():
            return
        argv = [sys.executable, "-m", "touchstream.stack.supervisor_daemon",
                "--run-dir", str(self.run_dir), "--logs-dir", str(self.logs_dir)]
        proc = self.spawn(ServiceSpec("supervisor", argv, env=self.supervise_env, cwd=self.run_dir),
                          pid_file=False)   # it writes its own once it holds the lock
        deadline = time.monotonic() + timeout
        while not self.supervisor_running():
            if proc.poll() is not None and not self.supervisor_running():
                raise RuntimeError(f"the supervisor exited at start (code {proc.returncode}); see "
                                   f"{self.log_file('supervisor')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the supervisor did not start within {timeout:.0f}s")
            time.sleep(0.02)

    def stop_supervisor(self, timeout: float = 15.0) -> bool:
        """Ask the supervisor to exit (services it runs are left as they are); True if one was running."""
        if not self.supervisor_running():
            return False
        try:
            ask(self.run_dir, {"op": "exit"}, timeout=timeout)
        except (TimeoutError, RuntimeError):
            info = self.read_pid("supervisor")
            if info is not None:
                self._signal(info["pid"], info.get("start_time"), signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.supervisor_running() and time.monotonic() < deadline:
            time.sleep(0.02)
        return True

    def restart_pending(self, name: str) -> bool:
        """The supervisor is waiting out a backoff before it starts ``name`` again."""
        entry = read_state(self.run_dir).get("services", {}).get(name, {})
        return entry.get("state") == "restarting" and self.supervisor_running()

    def _write_pid(self, spec: ServiceSpec, pid: int, start_time: int | None) -> None:
        info = {"pid": pid, "start_time": start_time, "argv": list(spec.argv),
                "started_at": time.time(), "address": spec.address,
                "cwd": str(spec.cwd) if spec.cwd else None, "log_file": str(spec.log_file or self.log_file(spec.name))}
        tmp = self.pid_file(spec.name).with_suffix(".pid.tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(self.pid_file(spec.name))

    def stop(self, name: str, timeout: float = 30.0) -> bool:
        """SIGTERM the recorded process (group), wait, then SIGKILL; True if it was running.

        A pid file whose process is gone or is another process (start time
        differs) is removed without sending any signal. Supervised, the supervisor
        stops it (and so knows not to restart it).
        """
        if not self.in_supervisor and self.supervisor_running():
            try:
                return bool(self._ask({"op": "stop", "name": name, "timeout": timeout}, timeout=timeout + 30)["stopped"])
            except SupervisorGone:
                pass   # it exited meanwhile: nothing will restart the service, stop it from here
        info = self.read_pid(name)
        if info is None:
            self.pid_file(name).unlink(missing_ok=True)
            return False
        pid, start_time = info["pid"], info.get("start_time")
        if not pid_alive(pid, start_time):
            self.pid_file(name).unlink(missing_ok=True)
            return False
        self._signal(pid, start_time, signal.SIGTERM)
        if not self._wait_gone(pid, start_time, timeout):
            self._signal(pid, start_time, signal.SIGKILL)
            self._wait_gone(pid, start_time, 10.0)
        self.pid_file(name).unlink(missing_ok=True)
        self._children.pop(name, None)
        return True

    @staticmethod
    def _signal(pid: int, start_time: int | None, sig: int) -> None:
        """Signal the process group led by ``pid`` (re-checked just before), else ``pid`` alone."""
        if not pid_alive(pid, start_time):
            return
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    @staticmethod
    def _wait_gone(pid: int, start_time: int | None, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while pid_alive(pid, start_time):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True
