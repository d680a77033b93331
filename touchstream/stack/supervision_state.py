"""What the supervisor knows, on disk: its state file, its lock and its request queue.

Why files: the supervisor (``supervisor_daemon``) outlives the ``touchstream up`` that
started it, and ``status``, ``up`` and ``down`` are other processes. Everything lives in
``$TOUCHSTREAM_HOME/run``:

- ``supervisor.lock``: held (``flock``) by the one running supervisor, for its whole life.
  A lock, not a pid: the kernel drops it when the holder dies, however it dies, so
  "is a supervisor running?" never reads a stale answer, and of two started at once
  one gets it and the other exits.
- ``supervisor.json`` (0600): per service its state, pid, restart count and last exit
  (exit code or signal, when, how long it had run, the tail of its log: a log may hold
  personal data, hence owner-only). Written by the supervisor only.
- ``supervisor.requests/``: ``up`` and ``down`` ask the supervisor to start or stop a
  service by dropping a JSON file there and waiting for its ``.reply``. The supervisor
  must start the services itself: only a parent learns how its child ended. A request
  outlives a supervisor that dies before reading it, so the next one answers it.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Callable

from touchstream.private_files import private_dir, write_private

STATE_FILE, LOCK_FILE, REQUESTS = "supervisor.json", "supervisor.lock", "supervisor.requests"


class SupervisorGone(RuntimeError):
    """The supervisor a request was waiting for is not running (and could not be started)."""


def read_state(run_dir: Path) -> dict:
    """The supervisor's state file ({} when there is none or it cannot be read)."""
    try:
        state = json.loads((Path(run_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(run_dir: Path, state: dict) -> None:
    write_private(Path(run_dir) / STATE_FILE, json.dumps(state, indent=1, sort_keys=True))


def take_lock(run_dir: Path) -> int | None:
    """The supervisor's lock as an open fd (keep it open while supervising), or None if it is held."""
    private_dir(Path(run_dir))
    fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def supervisor_running(run_dir: Path) -> bool:
    """True while some process holds the supervisor's lock."""
    path = Path(run_dir) / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)   # closing drops a lock we took
    return False


# --- requests ------------------------------------------------------------------------------

def ask(run_dir: Path, request: dict, *, timeout: float, revive: Callable[[], None] | None = None,
        poll: float = 0.05) -> dict:
    """Drop ``request`` for the supervisor and wait for its reply. If the supervisor dies meanwhile,
    ``revive()`` starts another (which answers the request still queued) or ``SupervisorGone`` is raised."""
    folder = private_dir(Path(run_dir) / REQUESTS)
    name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    write_private(folder / f"{name}.json", json.dumps(request))
    reply, pending = folder / f"{name}.reply", folder / f"{name}.json"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if reply.exists():
                return json.loads(reply.read_text())
            if not supervisor_running(run_dir) and not reply.exists():
                if revive is None or not pending.exists():
                    raise SupervisorGone(f"the supervisor stopped before answering {request.get('op')!r}")
                revive()
            time.sleep(poll)
        raise TimeoutError(f"the supervisor did not answer {request.get('op')!r} within {timeout:.0f}s")
    finally:
        pending.unlink(missing_ok=True)
        reply.unlink(missing_ok=True)


def queued(run_dir: Path) -> list[tuple[Path, dict]]:
    """Requests waiting, oldest first (a file that cannot be read is dropped)."""
    folder = Path(run_dir) / REQUESTS
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            out.append((path, json.loads(path.read_text())))
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    return out


def answer(path: Path, reply: dict) -> None:
    write_private(path.with_suffix(".reply"), json.dumps(reply))
    path.unlink(missing_ok=True)


# --- describing exits ----------------------------------------------------------------------

def exit_fields(status: int | None) -> dict:
    """A wait status as {"code", "signal"}; None (not our child: we never learn how it ended) as neither."""
    if status is None or status < 0:
        return {"code": None, "signal": None}
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return {"code": None, "signal": name}
    return {"code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None, "signal": None}


def describe_exit(last: dict | None) -> str:
    if not last:
        return "exit status unknown"
    if last.get("signal"):
        return f"signal {last['signal']}"
    if last.get("code") is not None:
        return f"exit code {last['code']}"
    return "exit status unknown"


def when(epoch: float | None) -> str:
    return "time unknown" if not epoch else datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def crash_detail(entry: dict, now: float | None = None) -> str:
    """``signal SIGKILL, 2026-05-01 12:00:03, restarts 2[, next try in 4s]`` for a service's state entry."""
    last = entry.get("last_exit") or {}
    parts = [describe_exit(last), when(last.get("at")), f"restarts {entry.get('restarts', 0)}"]
    if entry.get("state") == "restarting" and entry.get("restart_at"):
        wait = max(0.0, entry["restart_at"] - (time.time() if now is None else now))
        parts.append(f"next try in {wait:.0f}s")
    return ", ".join(parts)
