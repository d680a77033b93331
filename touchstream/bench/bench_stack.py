"""The bench's own stack: a fresh home and its own ports, so it never touches the user's stack.

Why a fresh one each run: the figures are only comparable when every run starts
from empty topics and an empty DuckDB file. The ports are the defaults + 100
(broker 9192, registry 8181, query 8100, ...), or ``--port-offset``.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

from touchstream.config import Settings
from touchstream.stack import local_stack

# Settings properties prefer these over the stack's own ports; the bench must not follow them elsewhere.
OVERRIDES = ("TOUCHSTREAM_BOOTSTRAP", "TOUCHSTREAM_REGISTRY_URL", "TOUCHSTREAM_QUERY_URL")


def bench_settings(base: Settings, home: Path, port_offset: int, workers: int = 0) -> Settings:
    for name in OVERRIDES:
        os.environ.pop(name, None)
    return replace(
        base, home=home.resolve(), host="127.0.0.1",
        broker_port=base.broker_port + port_offset, controller_port=base.controller_port + port_offset,
        registry_port=base.registry_port + port_offset, collector_port=base.collector_port + port_offset,
        query_port=base.query_port + port_offset,
        # The peers (faust, quixstreams) are separate programs given a bare --bootstrap; the bench
        # measures throughput, and SASL costs a handshake per connection, not per record.
        kafka_auth=False,
        fold_workers=workers,   # > 0: serving's start brings up fold-1..N, which fold the 360
    )


MARKER = ".touchstream-bench"


def fresh(settings: Settings) -> None:
    """Stop whatever an earlier bench left running in this home, then empty it. Only a folder the
    bench made (it holds ``MARKER``) is ever deleted."""
    home = settings.home
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists():
            raise RuntimeError(f"{home} is not empty and was not made by the bench; choose another --home")
        local_stack.down(settings)
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("made by touchstream bench; deleted at the next run\n")


def up(settings: Settings, services: str) -> None:
    local_stack.up(settings, services)


def down(settings: Settings, services: str | None = None) -> None:
    local_stack.down(settings, services)


def pid(settings: Settings, service: str) -> int | None:
    return local_stack.supervisor(settings).running_pid(service)


def peak_rss_mb(process_id: int | None) -> float | None:
    """The process's peak resident set so far (VmHWM), in MB; None once it is gone."""
    if process_id is None:
        return None
    try:
        for line in Path(f"/proc/{process_id}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(process_id: int | None) -> float | None:
    """User + system CPU the process has used so far (its threads included), from /proc."""
    if process_id is None:
        return None
    try:
        fields = Path(f"/proc/{process_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime, stime


def forget_serving(settings: Settings, keep: Path) -> None:
    """Make the next serving start a rebuild from offset 0: move its DuckDB file to ``keep`` (serving must
    be stopped). Each sink resumes at the offsets it committed in DuckDB, so an empty file replays all."""
    keep.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".wal"):
        src = Path(f"{settings.duckdb_path}{suffix}")
        if src.exists():
            shutil.move(src, Path(f"{keep}{suffix}"))


def forget_workers(settings: Settings) -> None:
    """Make the next start of the fold workers fold ``customer-events`` from offset 0 (they must be
    stopped): their partition stores go, and so does their consumer group, whose commits say how far
    the fold has got (``wait_pipeline`` follows them)."""
    from confluent_kafka.admin import AdminClient

    from touchstream.kafka_access import kafka_access
    from touchstream.serving.catchup import FOLD_GROUP

    shutil.rmtree(settings.data_dir / "fold", ignore_errors=True)
    admin = AdminClient(kafka_access(settings, "admin").confluent())
    deadline = time.monotonic() + 60   # a member that did not leave cleanly is expired by its session timeout
    while True:
        try:
            for future in admin.delete_consumer_groups([FOLD_GROUP], request_timeout=30).values():
                future.result()
            return
        except Exception as exc:
            if "GROUP_ID_NOT_FOUND" in str(exc):   # never joined (no worker ever ran): nothing to forget
                return
            if "NON_EMPTY_GROUP" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)
