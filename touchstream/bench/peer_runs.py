"""Running the peers as child processes, each with its own interpreter and memory.

Why child processes: a peer's peak RSS is then its own, and the quixstreams
peer needs its own virtualenv (quixstreams pins an older confluent-kafka than
Touchstream does).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from touchstream.config import Settings
from touchstream.topics import CUSTOMER_EVENTS_TOPIC

TIMEOUT = 4 * 3600   # a peer folds a few hundred records/s: a 1M-event run takes hours


def _run(python: str, module: str, settings: Settings, workdir: Path, expected: int) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    result = workdir / f"{module.rsplit('.', 1)[-1]}.json"
    log = workdir / f"{module.rsplit('.', 1)[-1]}.log"
    command = [python, "-m", module, "--bootstrap", settings.bootstrap_servers, "--registry", settings.registry_url,
               "--topic", CUSTOMER_EVENTS_TOPIC, "--expect", str(expected), "--result", str(result),
               "--workdir", str(workdir / module.rsplit(".", 1)[-1]), "--timeout", str(TIMEOUT - 300)]
    with log.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    if done.returncode != 0 or not result.exists():
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise RuntimeError(f"{module} exited {done.returncode}; last lines of {log}:\n{tail}")
    return json.loads(result.read_text())


def faust(settings: Settings, workdir: Path, expected: int) -> dict:
    return _run(sys.executable, "touchstream.bench.peer_faust", settings, workdir, expected)


def quix(settings: Settings, workdir: Path, expected: int) -> dict:
    from touchstream.bench.peer_env import ensure_quix_python

    python = ensure_quix_python(settings.cache_dir)
    return _run(str(python), "touchstream.bench.peer_quix", settings, workdir, expected)
