"""Owner-only files under ``$TOUCHSTREAM_HOME``: folders 0700, files 0600.

Why: the home holds personal data (the DuckDB file, the identity checkpoint, Kafka's logs)
and secrets (API key hashes, the operator key, the pseudonym salt, the anonymous-id key), and
on a shared machine a 0644 file is readable by every local user. Two mechanisms, because
not every file is ours to open:

- the files Touchstream writes itself are created owner-only whatever the caller's umask
  (``private_dir``, ``write_private``, ``secret_file``);
- files written by others (Kafka's JVM, DuckDB, log files opened for the services) inherit
  the umask of the process that starts them: ``touchstream up`` runs under ``private_umask``,
  and ``restrict_tree`` takes group and other access off what an older install left behind.
"""

from __future__ import annotations

import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

PRIVATE_UMASK = 0o077
DIR_MODE, FILE_MODE = 0o700, 0o600


def private_dir(path: Path) -> Path:
    """``path`` and any missing parent created 0700 (``Path.mkdir(parents=True)`` makes parents 0755)."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue   # a racing process made it; its mode is its own business
        os.chmod(folder, DIR_MODE)   # mkdir's mode is masked by the umask
    return path


def _temp_beside(path: Path) -> Path:
    """A temp name no other thread or process uses: a shared one lets one writer publish another's half file."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _write_new(path: Path, text: str) -> None:
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, mode 0600: a reader sees the old file or the new one."""
    path = Path(path)
    private_dir(path.parent)
    tmp = _temp_beside(path)
    try:
        _write_new(tmp, text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def secret_file(path: Path, make: Callable[[], str]) -> str:
    """The secret in ``path``; if absent, ``make()`` is written beside it (0600) and linked in, so a
    reader never sees a half-written file and of two racing writers the first one wins."""
    path = Path(path)
    if not path.exists():
        private_dir(path.parent)
        tmp = _temp_beside(path)
        try:
            _write_new(tmp, make() + "\n")
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()


@contextmanager
def private_umask() -> Iterator[None]:
    """Umask 077 inside the block: what this process and the children it starts create is owner-only.
    Children keep it after the block (a process inherits its parent's umask at fork)."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def restrict_tree(root: Path) -> int:
    """Take group and other access off ``root`` and everything below it; returns how many were changed.
    Symlinks are not followed (a link could point out of the home)."""
    root = Path(root)
    if not root.is_dir() or root.is_symlink():
        return 0
    changed = _restrict(root)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            changed += _restrict(Path(folder) / name)
    return changed


def _restrict(path: Path) -> int:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return 0   # removed meanwhile (a Kafka segment, a temp file)
    if stat.S_ISLNK(mode) or not stat.S_IMODE(mode) & 0o077:
        return 0
    try:
        os.chmod(path, stat.S_IMODE(mode) & ~0o077)
    except FileNotFoundError:
        return 0
    return 1
