"""How to run the local Apache Kafka broker from plain jars.

No ``bin/*.sh`` scripts exist (the jars come from Maven, see ``kafka_jars``), so
this module does what ``kafka-storage.sh`` and ``kafka-server-start.sh`` would:
write ``server.properties``, format the KRaft storage once, and build the
``java ... kafka.Kafka`` command line. Starting and stopping the process is the
supervisor's job; this module only describes it.

One node is both broker and controller (KRaft combined mode), with a static
``controller.quorum.voters`` so ``format -t <id>`` needs no ``--standalone``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from touchstream.config import Settings
from touchstream.kafka_access import service_passwords
from touchstream.private_files import private_dir, write_private
from touchstream.stack import broker_auth, kafka_jars

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"


class BrokerError(RuntimeError):
    """The broker cannot be prepared (no java, storage format failed, ...)."""


def broker_dir(settings: Settings) -> Path:
    return settings.home / "kafka"


def properties_path(settings: Settings) -> Path:
    return broker_dir(settings) / "server.properties"


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding.

    Kafka decodes it with the URL-safe alphabet; plain ``b64encode`` may emit
    ``+`` or ``/`` and the format then fails. One id in 64 starts with ``-``, which the
    storage tool reads as an option (``format -t -xyz``): such ids are drawn again.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not cid.startswith("-"):
            return cid


def _formatted_cluster_id(settings: Settings) -> str | None:
    """The id already written into the data folder by a previous format, if any."""
    meta = settings.kafka_data_dir / "meta.properties"
    try:
        for line in meta.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
    except OSError:
        return None
    return None


def cluster_id(settings: Settings) -> str:
    """The persisted cluster id; created on first use.

    It must never change once the storage is formatted (the broker refuses a
    data folder of another cluster), so an id found in ``meta.properties`` wins
    over a lost or edited ``cluster.id`` file.
    """
    path = broker_dir(settings) / "cluster.id"
    found = _formatted_cluster_id(settings)
    if found is None and path.exists():
        found = path.read_text().strip() or None
    cid = found or new_cluster_id()
    private_dir(path.parent)
    if not path.exists() or path.read_text().strip() != cid:
        write_private(path, cid + "\n")
    return cid


def server_properties(settings: Settings, passwords: dict[str, str] | None = None) -> str:
    """The broker configuration text for ``settings`` (pure, for tests); ``passwords`` (the service
    principals', with ``settings.kafka_auth``) switch the client listener to SASL/SCRAM."""
    host = settings.host
    bport, cport = settings.broker_port, settings.controller_port
    # Clients must be told an address they can dial; 0.0.0.0 (bind all) is not one.
    advertised = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{advertised}:{cport}",
        "controller.listener.names": "CONTROLLER",
        **broker_auth.listeners(host, advertised, bport, cport, passwords),
        "log.dirs": str(settings.kafka_data_dir),
        "num.partitions": "4",
        "default.replication.factor": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        # 50 partitions each by default: on one dev node that is ~100 extra logs to load at
        # every start (seconds on 2 cores) for no parallelism anyone here can use.
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.num.partitions": "8",
        "share.coordinator.state.topic.num.partitions": "8",
        # Tests create many consumer groups; the 3 s default delays every first join.
        "group.initial.rebalance.delay.ms": "0",
        # Every topic comes from topics.toml; a typo must fail, not create a topic.
        "auto.create.topics.enable": "false",
        # How often the broker deletes segments past their topic's retention.ms (default 5 minutes). The
        # DLQ's retention (topics.toml [retention]) is days, so that would do; but the retention test
        # (tests/integration/test_retention_on_broker.py) gives a topic seconds and then waits for the
        # broker to delete its records, and 5 minutes per check made it the slowest broker test. A check
        # only compares each log's segment times, so every 10 s costs nothing on one node.
        "log.retention.check.interval.ms": "10000",
    }
    header = (
        "# Written by touchstream.stack.broker_runner at every start; edit Settings instead.\n"
    )
    return header + "".join(f"{k}={v}\n" for k, v in lines.items())


def write_server_properties(settings: Settings) -> Path:
    path = properties_path(settings)
    for folder in (path.parent, settings.kafka_data_dir, settings.logs_dir):   # Kafka's logs hold the events
        private_dir(folder)
    text = server_properties(settings, service_passwords(settings) if settings.kafka_auth else None)
    if not path.exists() or path.read_text() != text:
        write_private(path, text)
    return path


def java_executable() -> str:
    java = shutil.which("java")
    if java is None:
        raise BrokerError("'java' is not on PATH; Apache Kafka 4.x needs a Java 17+ runtime")
    return java


def _jvm_common(settings: Settings) -> list[str]:
    return [
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={settings.logs_dir}",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
    ]


def format_storage(settings: Settings, lib: Path, timeout: float = 120.0) -> bool:
    """Format the KRaft storage once; return True when it was formatted now.

    Skipped without a JVM when ``meta.properties`` already carries our cluster
    id (that is what ``--ignore-formatted`` would conclude, 1-2 s later).
    """
    props = write_server_properties(settings)
    cid = cluster_id(settings)
    if _formatted_cluster_id(settings) == cid:
        if settings.kafka_auth and not broker_auth.scram_marker(settings).exists():
            broker_auth.add_scram_users(settings, lib)   # storage formatted before authentication was on
        return False
    cmd = [
        java_executable(), "-Xmx256m", *_jvm_common(settings), "-cp", f"{lib}/*", STORAGE_TOOL,
        "format", "-t", cid, "-c", str(props), "--ignore-formatted", *broker_auth.format_args(settings),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()
        raise BrokerError(f"Kafka storage format failed (exit {proc.returncode}):\n{out}")
    if settings.kafka_auth:
        write_private(broker_auth.scram_marker(settings), "service users added at format\n")
    return True


# --- Application class-data sharing (AppCDS) -------------------------------------------
# Loading and verifying Kafka's ~10k classes is most of the broker's start-up CPU. A dynamic
# CDS archive (JDK 13+) maps them pre-parsed: measured here, start-up CPU fell from ~14 s to
# ~8 s and time-to-ready roughly halved. The first broker of a machine runs with
# -XX:ArchiveClassesAtExit (~30% slower start, ~8 s longer stop while the JVM writes ~50 MB);
# ``promote_class_archive`` then checks that archive with -Xshare:on and moves it into the
# jar cache, where every later broker (any TOUCHSTREAM_HOME) maps it. Only a verified
# archive is ever used: a truncated one (broker killed mid-dump) crashes the JVM even
# in the default -Xshare:auto mode.


def _java_key(java: str) -> str:
    """Changes when the JDK does (an archive only fits the JVM build that wrote it)."""
    real = Path(os.path.realpath(shutil.which(java) or java))
    libjvm = real.parent.parent / "lib" / "server" / "libjvm.so"
    try:
        st = (libjvm if libjvm.exists() else real).stat()
    except OSError:
        return "unknown"
    return hashlib.sha1(f"{real}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]


def class_archive(settings: Settings, java: str) -> Path:
    """The verified archive shared by every home; it lives next to the jars it describes."""
    return kafka_jars.kafka_home(settings) / "cds" / f"broker-{_java_key(java)}.jsa"


def class_archive_partial(settings: Settings) -> Path:
    """Where this home's broker dumps its classes at exit (per home: no two writers)."""
    return broker_dir(settings) / "classes.jsa.partial"


def class_sharing_flags(settings: Settings, java: str) -> list[str]:
    archive = class_archive(settings, java)
    quiet = ["-Xlog:cds=off", "-Xlog:cds+dynamic=off"]  # else one warning per skipped class
    if archive.is_file():
        return [f"-XX:SharedArchiveFile={archive}", *quiet]
    return [f"-XX:ArchiveClassesAtExit={class_archive_partial(settings)}", *quiet]


def promote_class_archive(settings: Settings, lib: Path, timeout: float = 60.0) -> bool:
    """After the broker stopped: verify its dumped archive and share it; True if promoted."""
    partial = class_archive_partial(settings)
    if not partial.is_file():
        return False
    try:
        java = java_executable()
        target = class_archive(settings, java)
        check = subprocess.run(
            [java, "-Xshare:on", "-XX:+UseG1GC", f"-XX:SharedArchiveFile={partial}", "-Xlog:cds=off",
             "-cp", f"{lib}/*", "-version"],
            capture_output=True, timeout=timeout, cwd=broker_dir(settings),
        )
        if check.returncode != 0 or target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(partial, tmp)  # the home may be on another filesystem than the cache
        os.replace(tmp, target)  # atomic: a starting JVM sees no file or a whole one
        return True
    except (OSError, subprocess.SubprocessError, BrokerError):
        return False
    finally:
        partial.unlink(missing_ok=True)


def broker_argv(settings: Settings, lib: Path) -> list[str]:
    """The command line that runs the broker in the foreground of its process."""
    heap = settings.kafka_heap
    java = java_executable()
    return [
        java,
        f"-Xmx{heap}", f"-Xms{heap}",
        "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
        "-XX:+ExitOnOutOfMemoryError",
        *class_sharing_flags(settings, java),
        *_jvm_common(settings),
        "-cp", f"{lib}/*",
        MAIN_CLASS, str(properties_path(settings)),
    ]
