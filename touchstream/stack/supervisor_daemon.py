"""``python -m touchstream.stack.supervisor_daemon``: keeps the stack's services running.

Started by ``touchstream up`` (``Supervisor.ensure_supervisor``), one per
``TOUCHSTREAM_HOME`` (its lock says so). It starts and stops services when ``up`` and
``down`` ask (``supervision_state.ask``), and when one dies without being asked to, it
records how (exit code or signal, when, after how long, the tail of its log) in
``run/supervisor.json`` and starts it again after a backoff: 1 s, doubling, capped at
60 s, forgotten once the service has run for 60 s (``touchstream.backoff``). A stop
that ``down`` asked for is never followed by a restart: the service leaves
supervision before it is signalled.

Why the services recover on their own but bugs still kill them: a stage exits on a
bug on purpose (fail-stop, so no offset passes its durable state); coming back from
that state is the restart's job, not the stage's.

A service found running when the supervisor starts (the previous supervisor was
killed) is adopted: watched by pid, restarted when it dies, though how it ended is
unknown (only its parent could tell). SIGTERM ends the supervisor and leaves the
services running; it exits by itself once it supervises nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from touchstream.backoff import Backoff
from touchstream.stack.readiness import log_tail
from touchstream.stack.supervision_state import answer, describe_exit, exit_fields, queued, take_lock, write_state
from touchstream.stack.supervisor import REAPED, ServiceSpec, Supervisor, pid_alive, proc_start_time

log = logging.getLogger("touchstream.supervisor")
TAIL_LINES = 20


def default_backoff() -> Backoff:
    return Backoff(base=1.0, factor=2.0, cap=60.0, healthy_after=60.0)


def exit_status(pid: int) -> int | None:
    """The wait status of our child ``pid`` once it has ended (None while it runs; -1 when unknowable)."""
    if pid in REAPED:
        return REAPED.pop(pid)
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -1
    return status if got == pid else None


def spec_from_json(data: dict, env=None) -> ServiceSpec:
    """A spec as ``supervisor.spec_to_json`` (or a pid file) gave it; ``env`` when it names none."""
    return ServiceSpec(name=data["name"], argv=list(data["argv"]), env=data.get("env") or env,
                       cwd=Path(data["cwd"]) if data.get("cwd") else None,
                       log_file=Path(data["log_file"]) if data.get("log_file") else None,
                       address=data.get("address", ""))


@dataclass
class Watched:
    """One supervised service."""

    spec: ServiceSpec
    backoff: Backoff
    pid: int | None = None
    start_time: int | None = None
    child: bool = False              # ours: its exit status can be known; else adopted
    started: float = 0.0             # monotonic, at its last start
    started_at: float = 0.0          # epoch, for people
    restarts: int = 0
    last_exit: dict | None = None
    restart_at: float | None = None  # monotonic; set while waiting out the backoff
    restart_wall: float | None = None  # the same instant as epoch seconds, for people


class Daemon:
    """The supervision loop; ``step()`` is one pass (tests drive it directly)."""

    def __init__(self, sup: Supervisor, *, backoff: Callable[[], Backoff] = default_backoff, poll: float = 0.2,
                 idle_exit: float = 10.0, clock=time.monotonic, wall=time.time):
        self.sup, self.make_backoff, self.poll, self.idle_exit = sup, backoff, poll, idle_exit
        self.clock, self.wall = clock, wall
        self.watched: dict[str, Watched] = {}
        self.history: dict[str, dict] = {}    # state entries of services no longer supervised (stopped)
        self.exiting = False
        self._idle_since = clock()
        self._saved: str | None = None

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        lock = take_lock(self.sup.run_dir)
        if lock is None:
            return 0   # another supervisor runs for this home
        try:
            self.sup._write_pid(ServiceSpec("supervisor", sys.argv, cwd=self.sup.run_dir), os.getpid(),
                                proc_start_time(os.getpid()))
            self.adopt()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: setattr(self, "exiting", True))
            log.info("supervising %s", self.sup.run_dir)
            while not self.exiting:
                self.step()
                if not self.watched and self.clock() - self._idle_since >= self.idle_exit:
                    log.info("nothing left to supervise; exiting")
                    break
                time.sleep(self.poll)
            self.sup.pid_file("supervisor").unlink(missing_ok=True)   # left behind, it tells 'status' of a crash
        except BaseException:
            log.exception("the supervisor failed")
            raise
        finally:
            self.save()
            os.close(lock)
        return 0

    def step(self) -> None:
        for name in list(self.watched):
            self._check(name)
        for path, request in queued(self.sup.run_dir):
            self._idle_since = self.clock()
            try:
                reply = self.handle(request)
            except Exception as exc:  # noqa: BLE001 - the caller gets the reason instead of a timeout
                log.exception("request %s failed", request.get("op"))
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            answer(path, reply)
        for name in list(self.watched):
            self._restart_if_due(name)
        if self.watched:
            self._idle_since = self.clock()
        self.save()

    def adopt(self) -> None:
        """Watch the services that run already (their pid file names a live process)."""
        for pid_file in sorted(self.sup.run_dir.glob("*.pid")):
            name = pid_file.stem
            info = self.sup.read_pid(name)
            if name == "supervisor" or not info or not info.get("argv"):
                continue
            if pid_alive(info["pid"], info.get("start_time")):
                spec = spec_from_json({"name": name, **info}, env=os.environ)
                self.watched[name] = Watched(spec, self.make_backoff(), info["pid"], info.get("start_time"),
                                             child=False, started=self.clock(), started_at=info.get("started_at", 0))
                log.info("adopted %s (pid %d)", name, info["pid"])

    # --- requests ------------------------------------------------------------------------------

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "start":
            return self._start(spec_from_json(request["spec"], env=os.environ))
        if op == "stop":
            return {"stopped": self._stop(request["name"], float(request.get("timeout", 30.0)))}
        if op == "exit":
            self.exiting = True
            return {"ok": True}
        raise ValueError(f"unknown request {op!r}")

    def _start(self, spec: ServiceSpec) -> dict:
        w = self.watched.get(spec.name)
        if w is not None:
            self._check(spec.name)   # a death not seen yet is recorded first
        pid = self.sup.running_pid(spec.name)
        if pid is not None:
            info = self.sup.read_pid(spec.name) or {}
            if w is None or w.pid != pid:
                w = Watched(spec, self.make_backoff(), pid, info.get("start_time"), child=False,
                            started=self.clock(), started_at=info.get("started_at", 0))
                self.watched[spec.name] = w
            w.spec = spec
            return {"pid": pid, "start_time": w.start_time, "started": False}
        if w is None:
            w = self.watched[spec.name] = Watched(spec, self.make_backoff(), **self._previous(spec.name))
        w.spec = spec
        self.history.pop(spec.name, None)
        self._spawn(spec.name, w, "starting")
        if w.pid is None:
            raise RuntimeError(f"{spec.name} could not be started: {w.last_exit and w.last_exit.get('error')}")
        return {"pid": w.pid, "start_time": w.start_time, "started": True}

    def _previous(self, name: str) -> dict:
        """What a stopped service's history carries into its next run (for status)."""
        old = self.history.get(name, {})
        return {"restarts": old.get("restarts", 0), "last_exit": old.get("last_exit")}

    def _stop(self, name: str, timeout: float) -> bool:
        w = self.watched.pop(name, None)   # out of supervision first: its exit is a clean stop
        stopped = self.sup.stop(name, timeout)
        if w is not None and w.pid is not None:
            if w.child:
                exit_status(w.pid)   # reap it
            REAPED.pop(w.pid, None)
        entry = self._entry(name, w) if w is not None else self.history.get(name, {})
        self.history[name] = {**entry, "state": "stopped", "pid": None, "stopped_at": self.wall(),
                              "restart_at": None}
        return stopped

    # --- deaths and restarts --------------------------------------------------------------------

    def _check(self, name: str) -> None:
        w = self.watched[name]
        if w.pid is None:
            return
        if w.child:
            status = exit_status(w.pid)
            if status is None:
                return
        else:
            if pid_alive(w.pid, w.start_time):
                return
            status = None   # not our child: how it ended cannot be known
        self._died(name, w, exit_fields(status))

    def _died(self, name: str, w: Watched, how: dict) -> None:
        ran = max(0.0, self.clock() - w.started)
        w.last_exit = {**how, "at": self.wall(), "ran_seconds": round(ran, 1), "pid": w.pid,
                       "log_tail": log_tail(w.spec.log_file or self.sup.log_file(name), TAIL_LINES)}
        delay = w.backoff.next_delay(ran)
        w.pid, w.restart_at, w.restart_wall = None, self.clock() + delay, self.wall() + delay
        log.warning("%s ended (%s) after %.0fs; restart %d in %.0fs", name, describe_exit(w.last_exit), ran,
                    w.restarts + 1, delay)

    def _restart_if_due(self, name: str) -> None:
        w = self.watched[name]
        if w.restart_at is None or self.clock() < w.restart_at:
            return
        if not self.sup.pid_file(name).exists():   # stopped by pid meanwhile (a 'down' without us): not wanted
            self.history[name] = {**self._entry(name, self.watched.pop(name)), "state": "stopped"}
            return
        w.restarts += 1
        self._spawn(name, w, f"restart {w.restarts} after {describe_exit(w.last_exit)}:")

    def _spawn(self, name: str, w: Watched, note: str) -> None:
        try:
            proc = self.sup.spawn(w.spec, note)
        except OSError as exc:
            w.pid, w.started = None, self.clock()
            self._died_unstarted(name, w, str(exc))
            return
        w.pid, w.start_time, w.child = proc.pid, proc_start_time(proc.pid), True
        w.started, w.started_at, w.restart_at, w.restart_wall = self.clock(), self.wall(), None, None

    def _died_unstarted(self, name: str, w: Watched, error: str) -> None:
        delay = w.backoff.next_delay(0.0)
        w.last_exit = {"code": None, "signal": None, "error": error[:500], "at": self.wall(), "ran_seconds": 0.0}
        w.restart_at, w.restart_wall = self.clock() + delay, self.wall() + delay
        log.warning("%s could not be started (%s); next try in %.0fs", name, error[:200], delay)

    # --- the state file ---------------------------------------------------------------------------

    def _entry(self, name: str, w: Watched) -> dict:
        return {"state": "restarting" if w.pid is None else "running", "pid": w.pid, "child": w.child,
                "started_at": w.started_at, "restarts": w.restarts, "last_exit": w.last_exit,
                "restart_at": w.restart_wall if w.restart_at is not None else None}

    def save(self) -> None:
        """Write the state file when it changed (it is fsynced: not five times a second for nothing)."""
        services = dict(self.history)
        services.update({name: self._entry(name, w) for name, w in self.watched.items()})
        state = {"supervisor": {"pid": os.getpid(), "exiting": self.exiting}, "services": services}
        text = json.dumps(state, sort_keys=True)
        if text != self._saved:
            write_state(self.sup.run_dir, state)
            self._saved = text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--logs-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sup = Supervisor(args.run_dir, args.logs_dir, in_supervisor=True)
    return Daemon(sup).run()


if __name__ == "__main__":
    sys.exit(main())
