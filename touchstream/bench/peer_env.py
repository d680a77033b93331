"""The quixstreams peer's own venv: ``ensure_quix_python(home) -> python``.

Why a second venv: quixstreams 3.28.1 pins confluent-kafka<2.13 while Touchstream
needs >=2.16, so the two cannot share one environment. The peer venv gets
quixstreams (and through it its confluent-kafka, whose ``schema_registry``
``AvroCodec`` needs) plus the few libraries the pure projections import, and this
repository installed editable with ``--no-deps``: the peer folds with exactly the
code under test, not a copy, without dragging in faust or our confluent-kafka.

Created once: a stamp file records the pinned requirements and the repository
path; a venv whose stamp differs (or that a failed install left without one) is
rebuilt from scratch. pip's output goes to a log, shown only when it fails.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

# What the peer imports: quixstreams (brings confluent-kafka[schemaregistry,avro] <2.13),
# fastavro (AvroCodec), duckdb (the sink), phonenumbers (identity_normalise, imported by
# the projections package), orjson and lz4 (the 360's canonical JSON and its stored fold states).
REQUIREMENTS = ("quixstreams==3.28.1", "fastavro>=1.13,<2", "duckdb>=2.0,<3", "phonenumbers>=8.13", "orjson>=3.10",
                "lz4>=4")
# The modules that must import for the peer to run; checked after every (re)build.
IMPORT_CHECK = ("quixstreams", "duckdb", "touchstream.codec.avro_codec", "touchstream.projections.customer_360",
                "touchstream.bench.peer_fold")
STAMP = ".touchstream-peer-stamp.json"


def repo_root() -> Path:
    """The checkout this module lives in (touchstream/bench/peer_env.py -> repo root)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise RuntimeError(f"{root} has no pyproject.toml; the quix peer needs a source checkout of touchstream")
    return root


def venv_dir(home: Path) -> Path:
    return Path(home) / "bench" / "quix-venv"


def _stamp() -> dict:
    return {"requirements": list(REQUIREMENTS), "repo": str(repo_root()), "base_python": sys.version.split()[0]}


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _is_current(venv: Path) -> bool:
    try:
        return json.loads((venv / STAMP).read_text()) == _stamp() and _python(venv).exists()
    except (OSError, ValueError):
        return False


def ensure_quix_python(home: Path) -> Path:
    """The quix venv's python, creating the venv under ``home/bench/quix-venv`` first if needed.

    Idempotent and safe against a concurrent call (a file lock beside the venv).
    Raises ``RuntimeError`` with the tail of the pip log when the build fails."""
    venv = venv_dir(home)
    if _is_current(venv):
        return _python(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    log_path = venv.parent / "quix-venv-install.log"
    with open(venv.parent / ".quix-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_current(venv):     # another process built it while we waited
            return _python(venv)
        if venv.exists():
            shutil.rmtree(venv)
        with open(log_path, "w") as log:
            # No pip inside the venv (ensurepip alone takes most of a minute on a busy machine):
            # this interpreter's pip installs into it through ``--python``, if it has one.
            if importlib.util.find_spec("pip") is not None:
                create = [sys.executable, "-m", "venv", "--without-pip", str(venv)]
                pip = [sys.executable, "-m", "pip", "--python", str(_python(venv)), "install"]
            else:
                create = [sys.executable, "-m", "venv", str(venv)]
                pip = [str(_python(venv)), "-m", "pip", "install"]
            pip += ["--disable-pip-version-check", "--no-input"]
            steps = [
                create,
                [*pip, *REQUIREMENTS],
                [*pip, "--no-deps", "-e", str(repo_root())],
                [str(_python(venv)), "-c", "import importlib, sys; "
                 "[importlib.import_module(m) for m in sys.argv[1:]]", *IMPORT_CHECK],
            ]
            for cmd in steps:
                log.write(f"$ {' '.join(cmd)}\n")
                log.flush()
                started = time.monotonic()
                code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=venv.parent).returncode
                log.write(f"# exit {code} after {time.monotonic() - started:.1f}s\n")
                if code != 0:
                    log.close()
                    _fail(log_path, cmd, code)
        (venv / STAMP).write_text(json.dumps(_stamp(), indent=2))
    return _python(venv)


def _fail(log_path: Path, cmd: list[str], code: int) -> None:
    tail = log_path.read_text(errors="replace").splitlines()[-60:]
    print("\n".join(tail), file=sys.stderr)
    raise RuntimeError(f"building the quixstreams peer venv failed (exit {code}) at: {' '.join(cmd)}; "
                       f"full log: {log_path}")


if __name__ == "__main__":   # python -m touchstream.bench.peer_env HOME  -> prints the venv's python
    print(ensure_quix_python(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.home() / ".touchstream"))
