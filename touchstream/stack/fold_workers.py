"""The stack's fold workers (``touchstream up --workers N``): their names and their place in the start order.

Why names of their own: each worker is a process the supervisor watches, restarts and reports
(``fold-1`` .. ``fold-N``), all in the one consumer group ``touchstream-fold``; ``down`` and
``status`` find them by their pid files, without being told how many were started.
"""

from __future__ import annotations

from touchstream.config import Settings

FOLD_MODULE, FOLD_PREFIX = "touchstream.fold", "fold-"


def worker_names(count: int) -> list[str]:
    return [f"{FOLD_PREFIX}{n}" for n in range(1, count + 1)]


def known_workers(settings: Settings) -> list[str]:
    """The fold workers this stack has pid files of, running or crashed (``down`` and ``status`` find
    them without being told how many ``up --workers`` started)."""
    names = [p.stem for p in settings.run_dir.glob(f"{FOLD_PREFIX}*.pid")]
    return sorted(names, key=lambda name: int(name.removeprefix(FOLD_PREFIX) or 0))


def with_workers(names: list[str], workers: list[str]) -> list[str]:
    """Start order: the fold workers right before serving (serving's query tier reads what they publish)."""
    if "serving" not in names:
        return names
    at = names.index("serving")
    return [*names[:at], *workers, *names[at:]]
