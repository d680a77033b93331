"""Apache Kafka's jars, resolved from Maven Central into a cache folder.

Why Maven and not the release tarball: the tarball's download mirrors are not
reachable everywhere, while Maven Central is; ``kafka_2.13`` resolves with every
dependency, so ``mvn dependency:copy-dependencies`` on our small ``pom.xml``
gives the same ``lib/`` folder the tarball ships (plus the SLF4J bridge, see
the pom). The broker is then ``java -cp 'lib/*' kafka.Kafka``.

The folder is ``<cache>/kafka-<version>/lib``, shared by every TOUCHSTREAM_HOME
on the machine (tests, several developers' stacks). A marker file, written only
after Maven succeeded, says the folder is complete; it also records a hash of the
pom so a changed pom re-resolves. A lock file serialises concurrent callers, so
two test sessions starting at once do not both write into ``lib/``.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from touchstream.config import Settings

POM = Path(__file__).with_name("pom.xml")
MARKER = ".complete"


class JarsError(RuntimeError):
    """The jars could not be resolved (no Maven, no network, bad version)."""


def kafka_home(settings: Settings) -> Path:
    return settings.cache_dir / f"kafka-{settings.kafka_version}"


def lib_dir(settings: Settings) -> Path:
    return kafka_home(settings) / "lib"


def _fingerprint(version: str) -> str:
    """What the marker must contain for ``lib/`` to be trusted as it is."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    return f"kafka={version} pom={digest}\n"


def jars_ready(settings: Settings) -> bool:
    """True when ``lib/`` was fully resolved from the current pom (no Maven call)."""
    marker = kafka_home(settings) / MARKER
    lib = lib_dir(settings)
    try:
        return marker.read_text() == _fingerprint(settings.kafka_version) and any(lib.glob("kafka_2.13-*.jar"))
    except OSError:
        return False


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def maven_command(settings: Settings, output_dir: Path) -> list[str]:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarsError(
            "Maven ('mvn') is not on PATH; it is needed once to fetch Apache Kafka "
            f"{settings.kafka_version} from Maven Central into {lib_dir(settings)}. "
            "Install it (e.g. 'apt-get install maven') or point TOUCHSTREAM_CACHE at a folder "
            f"that already holds kafka-{settings.kafka_version}/lib."
        )
    return [
        mvn, "-q", "-B", "dependency:copy-dependencies",
        f"-DoutputDirectory={output_dir}",
        f"-Dkafka.version={settings.kafka_version}",
        "-f", str(POM),
    ]


def ensure_jars(settings: Settings, timeout: float = 900.0) -> Path:
    """Return the ``lib/`` folder, resolving it with Maven first if needed.

    Idempotent and cheap when the marker matches. Maven writes into a fresh
    ``lib.partial`` folder that is renamed only on success, so an interrupted
    download (Ctrl-C, network) leaves no half folder that looks complete.
    """
    if jars_ready(settings):
        return lib_dir(settings)
    home = kafka_home(settings)
    with _locked(home):
        if jars_ready(settings):  # another process finished while we waited
            return lib_dir(settings)
        partial = home / "lib.partial"
        shutil.rmtree(partial, ignore_errors=True)
        cmd = maven_command(settings, partial)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=home)
        except subprocess.TimeoutExpired as exc:
            raise JarsError(f"Maven did not finish within {timeout:.0f}s: {' '.join(cmd)}") from exc
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
            raise JarsError(
                f"Maven could not resolve Apache Kafka {settings.kafka_version} "
                f"(exit {proc.returncode}): {' '.join(cmd)}\n{tail}"
            )
        if not any(partial.glob("kafka_2.13-*.jar")):
            raise JarsError(f"Maven succeeded but {partial} holds no kafka_2.13 jar")
        (home / MARKER).unlink(missing_ok=True)
        lib = lib_dir(settings)
        shutil.rmtree(lib, ignore_errors=True)
        shutil.rmtree(home / "cds", ignore_errors=True)  # class archives describe the old jars
        partial.rename(lib)
        (home / MARKER).write_text(_fingerprint(settings.kafka_version))
    return lib_dir(settings)
