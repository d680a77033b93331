"""One isolated local stack per fault case, the deterministic event set, and the moves a fault needs.

Why a fresh stack per case: the cases compare *whole* projections with a clean run by
hash, so nothing but this case's events may be in them, and a fault (a broker restart, a
killed identity process) must not leak into the next case. Starting a stack costs about
50 s on 2 cores (serving ~15 s, broker ~9 s, identity ~7 s), so the suite runs one per case
plus the clean one, sequentially, and keeps the event set small in CI.

The events are the demo's (``touchstream.demo.generator``): same arguments, same events,
same ids; published with ``keep_recorded_at`` so every run carries byte-identical records
(the default stamps this machine's clock, which would differ between runs).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tests.conftest import PORT_VARS, free_ports, unavailable
from tests.integration.pipeline_helpers import sql, wait_for
from touchstream.config import Settings
from touchstream.demo.generator import generate
from touchstream.identity.config_file import ANONYMOUS_ID_KEY_FILE
from touchstream.private_files import secret_file
from touchstream.privacy.master_key import FILE as MASTER_KEY_FILE
from touchstream.publishing.publisher import Publisher, PublishError
from touchstream.serving.catchup import wait_pipeline, wait_sla_settled
from touchstream.stack import broker_runner, local_stack
from touchstream.stack.supervisor import pid_alive

CUSTOMERS = int(os.environ.get("TOUCHSTREAM_FAULT_CUSTOMERS", "60"))
DAYS = int(os.environ.get("TOUCHSTREAM_FAULT_DAYS", "30"))
SEED = 7
SETTLE_TIMEOUT = float(os.environ.get("TOUCHSTREAM_FAULT_TIMEOUT", "600"))
# Every stack of the suite names anonymous customers with the same key (anon- ids are an HMAC keyed
# per install), else two clean runs of the same events would already differ in their anon- ids.
ANON_ID_KEY = "5e" * 32
MASTER_KEY = base64.b64encode(bytes(range(32))).decode()   # and seal under one master key (see isolated_stack)


def demo_events() -> list[dict]:
    """The case's deterministic event set, oldest first (the demo at CUSTOMERS customers, DAYS days)."""
    return list(generate(CUSTOMERS, DAYS, SEED))


def event_ids(events: list[dict]) -> set[str]:
    return {e["envelope"]["event_id"] for e in events}


def stack_settings(home: Path) -> Settings:
    """Settings of a stack of its own: ``home`` and free ports, nothing read from this shell's TOUCHSTREAM_*."""
    env = {"TOUCHSTREAM_HOME": str(home), "TOUCHSTREAM_HOST": "127.0.0.1"}
    env.update({name: str(port) for name, port in zip(PORT_VARS, free_ports(len(PORT_VARS)))})
    return Settings.from_env(env)


@contextmanager
def isolated_stack(home: Path) -> Iterator[Settings]:
    """Every service of ``touchstream up`` on ``home``; stopped (by pid) at the end, whatever happened."""
    settings = stack_settings(home)
    secret_file(settings.identity_config_path.with_name(ANONYMOUS_ID_KEY_FILE), lambda: ANON_ID_KEY)
    # One master key for every stack, as for one installation: raw records are keyed by a pseudonym under it,
    # so a record's partition (in the interaction_columns digest) must not differ between the clean run and a case.
    secret_file(settings.home / MASTER_KEY_FILE, lambda: MASTER_KEY)
    # broker_runner.new_cluster_id starts with '-' once in 64 and `kafka-storage format -t -xyz` then
    # fails (argparse takes it for an option): choose the id here until that is fixed there.
    secret_file(broker_runner.broker_dir(settings) / "cluster.id",
                lambda: next(c for c in iter(broker_runner.new_cluster_id, None) if not c.startswith("-")))
    try:
        local_stack.up(settings)
    except Exception as exc:  # noqa: BLE001 - any reason means "no stack for this case"
        local_stack.down(settings)
        unavailable(f"fault stack could not be started ({type(exc).__name__}): {exc}")
    try:
        yield settings
    finally:
        local_stack.down(settings)


def settle(settings: Settings) -> None:
    """Block until every projection applied every raw record and the SLA clocks are at rest."""
    wait_pipeline(settings, timeout=SETTLE_TIMEOUT)
    # wait_sla_settled passes while the timer has set no watermark at all (NULL >= x counts as settled),
    # which is the state right after a burst: wait for the timer's first watermark before asking it.
    wait_for(lambda: sql(settings, "SELECT (SELECT count(*) FROM complaint_sla_watermark) > 0 OR "
                                   "(SELECT count(*) FROM complaint_sla_partitions) = 0")[0][0],
             timeout=SETTLE_TIMEOUT, interval=0.5, what="the complaint SLA timer's first watermark")
    wait_sla_settled(settings, timeout=SETTLE_TIMEOUT)


def publisher(settings: Settings) -> Publisher:
    """The SDK publisher of a replayed export: each event keeps its own source and recorded_at."""
    return Publisher(settings, source="demo", keep_event_source=True, keep_recorded_at=True)


@dataclass
class PacedPublisher:
    """Publishes ``events`` on a thread in small acknowledged batches, so a fault lands while events flow.

    A batch Kafka did not acknowledge (``PublishError`` from ``flush``: the broker was away
    longer than ``message.timeout.ms``) is sent again, whole: the ids make a repeat harmless,
    which is the SDK's guarantee to a channel system (at least once, idempotent per session).
    """

    settings: Settings
    events: list[dict]
    seconds: float = 10.0     # about how long the sending takes: 40 batches, a pause after each
    sent: int = 0
    retries: int = 0
    error: BaseException | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> "PacedPublisher":
        self._thread = threading.Thread(target=self._run, name="fault-publisher", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            size = max(1, -(-len(self.events) // 40))
            with publisher(self.settings) as p:
                for start in range(0, len(self.events), size):
                    valid = [p.validate(e) for e in self.events[start:start + size]]
                    self._send(p, valid)
                    self.sent = start + len(valid)
                    time.sleep(self.seconds / 40)
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def _send(self, p: Publisher, valid: list, attempts: int = 10) -> None:
        for attempt in range(attempts):
            try:
                p.send_valid(valid)
                p.flush()
                return
            except PublishError:
                if attempt == attempts - 1:
                    raise
                self.retries += 1
                time.sleep(1.0)

    def wait_sent(self, fraction: float, timeout: float = 300.0) -> None:
        wait_for(lambda: self.sent >= fraction * len(self.events) or self.error, timeout=timeout,
                 what=f"{fraction:.0%} of the events sent")

    def join(self, timeout: float = 600.0) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"publisher still sending after {timeout}s ({self.sent} sent)"
        if self.error is not None:
            raise self.error


def kill9(settings: Settings, name: str) -> int:
    """SIGKILL the recorded process of ``name`` (by its pid file, never by name); returns the pid."""
    sup = local_stack.supervisor(settings)
    pid = sup.running_pid(name)
    assert pid is not None, f"{name} is not running"
    os.kill(pid, 9)
    wait_for(lambda: not pid_alive(pid), timeout=30, what=f"{name} (pid {pid}) to die")
    return pid


def restart(settings: Settings, name: str, grace: float = 3.0, timeout: float = 180.0) -> None:
    """Start ``name`` again unless something (a supervisor with automatic restarts) already did.

    ``up`` is idempotent for a running service; a brief ``grace`` lets an automatic restart win
    the race for the port, and a refusal (the port is taken by a restart under way) is retried."""
    sup = local_stack.supervisor(settings)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not sup.is_running(name):
        time.sleep(0.2)
    deadline = time.monotonic() + timeout
    while True:
        try:
            local_stack.up(settings, [name])
            return
        except local_stack.StackError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


STAGES = ("identity", "serving")


def pids(settings: Settings, names=STAGES) -> dict[str, int | None]:
    sup = local_stack.supervisor(settings)
    return {name: sup.running_pid(name) for name in names}


def died_since(settings: Settings, before: dict[str, int | None]) -> list[str]:
    """Services whose process of ``before`` is gone: dead now, or already restarted by the supervisor."""
    return [name for name, pid in pids(settings, before).items() if pid is None or pid != before[name]]


def revive(settings: Settings, names=STAGES) -> None:
    """Start whatever of ``names`` is not running (a supervisor may be backing off a crash loop)."""
    for name, pid in pids(settings, names).items():
        if pid is None:
            restart(settings, name)
