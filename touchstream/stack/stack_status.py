"""``touchstream status``: is each process that should run running, and if not, how did it end?

Three states, because "stopped" must not hide a crash: ``stopped`` (never started, or
stopped by ``down``: its pid file is gone), ``running`` (its pid file names that live
process, and a service with a port answers on it), and ``crashed`` (its pid file is
still there, so it should run, but the process is gone, or it runs and does not answer).
How it ended (exit code or signal, when, how often it was restarted) comes from the
supervisor's state file. The supervisor is a row too: while services should run, so
should it. ``should_run`` rows that are not running make ``status`` exit non-zero.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Callable, NamedTuple

from touchstream.stack.supervision_state import crash_detail, describe_exit, read_state, when
from touchstream.stack.supervisor import Supervisor

Probe = Callable[[str, int], bool]


class ServiceStatus(NamedTuple):
    name: str
    pid: int | None
    running: bool
    address: str
    log_file: Path
    state: str = "stopped"          # running | stopped | crashed
    detail: str = ""                # how it ended, restarts, "not answering on ..."
    should_run: bool = False        # started by 'up' and not stopped by 'down'

    @property
    def down(self) -> bool:
        """Should run and does not (or does not answer)."""
        return self.should_run and (self.state != "running" or bool(self.detail.startswith("not answering")))

    @property
    def label(self) -> str:
        return f"{self.state} ({self.detail})" if self.detail else self.state


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def service_status(sup: Supervisor, name: str, address: str, ports: list[int], host: str,
                   probe: Probe = port_answers, entry: dict | None = None) -> ServiceStatus:
    info, pid = sup.read_pid(name), sup.running_pid(name)
    entry = entry if entry is not None else read_state(sup.run_dir).get("services", {}).get(name, {})
    log = sup.log_file(name)
    if pid is not None:
        silent = [port for port in ports if not probe(host, port)][:1]
        detail = f"not answering on port {silent[0]}" if silent else _history(entry)
        return ServiceStatus(name, pid, True, address, log, "running", detail, True)
    if info is None:
        return ServiceStatus(name, None, False, address, log, "stopped", "", False)
    if entry.get("state") == "restarting" and sup.supervisor_running():
        detail = crash_detail(entry)
    else:   # died unseen: no supervisor watched it, or it died after the supervisor did
        detail = f"exit status unknown, pid {info['pid']} gone, restarts {entry.get('restarts', 0)}"
        if not sup.supervisor_running():
            detail += "; no supervisor running"
    return ServiceStatus(name, None, False, address, log, "crashed", detail, True)


def _history(entry: dict) -> str:
    """For a running service that was restarted: how often, and how it last ended."""
    if not entry.get("restarts"):
        return ""
    last = entry.get("last_exit") or {}
    return f"restarts {entry['restarts']}, last: {describe_exit(last)} at {when(last.get('at'))}"


def supervisor_status(sup: Supervisor, services_should_run: bool) -> ServiceStatus:
    """The supervisor's own row: it should run while any service should."""
    info, log = sup.read_pid("supervisor"), sup.log_file("supervisor")
    if sup.supervisor_running():
        pid = info["pid"] if info else None
        return ServiceStatus("supervisor", pid, True, "-", log, "running", "", True)
    if info is not None:   # its pid file outlived it: it did not exit as it does when it stops
        return ServiceStatus("supervisor", None, False, "-", log, "crashed",
                             f"exit status unknown, pid {info['pid']} gone", services_should_run)
    # Stopped as it stops (SIGTERM, or 'up --foreground', where the container's runtime restarts instead).
    detail = "services run unsupervised" if services_should_run else ""
    return ServiceStatus("supervisor", None, False, "-", log, "stopped", detail, False)
