"""Where the time goes: py-spy samples a running stack process (no change to it, no restart).

Why py-spy: it reads the interpreter's stacks from outside, so the services run
exactly as they do unprofiled, and it sees every thread (the faust loop and the
sink threads). Summaries are shares of samples: by leaf function (self time) and
by Touchstream function on the stack (inclusive time), which is what says which
step of ours to make faster.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


class ProfileSampler:
    """``with ProfileSampler(pid, out):`` records collapsed stacks while the block runs."""

    def __init__(self, pid: int | None, out: Path, rate: int = 10):
        self.pid, self.out, self.rate = pid, out, rate
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> "ProfileSampler":
        tool = py_spy()
        if tool is None or self.pid is None:
            return self
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [tool, "record", "--pid", str(self.pid), "--format", "raw", "--rate", str(self.rate),
             "--nonblocking", "--output", str(self.out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def __exit__(self, *exc) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGINT)   # py-spy writes its file on SIGINT
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()

    def summary(self, top: int = 12) -> dict | None:
        if not self.out.exists():
            return None
        return summarise(self.out.read_text().splitlines(), top)


FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^():]*)(?::\d+)?\)$")
OURS = ("touchstream/", "processors/", "projections/", "events/", "schemas/")   # py-spy's short paths


def _frame(text: str) -> tuple[str, bool]:
    """``function (path:line)`` -> ("function (short path)", is it ours)."""
    match = FRAME.match(text)
    if match is None:
        return text, False
    path = match["path"]
    ours = path.startswith(OURS)
    return f"{match['function']} ({path if ours else '/'.join(path.split('/')[-2:])})", ours


def summarise(lines: list[str], top: int = 12) -> dict:
    """Collapsed stacks (``frame;frame;... count``) -> total samples, the top leaf functions (self time)
    and the top Touchstream functions (inclusive: counted once per sample whose stack holds them)."""
    leaves, ours, total = Counter(), Counter(), 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        total += n
        leaves[frames[-1][0]] += n
        for label in {label for label, mine in frames if mine}:
            ours[label] += n
    return {"samples": total, "self": _shares(leaves, total, top), "touchstream": _shares(ours, total, top)}


def _shares(counts: Counter, total: int, top: int) -> list[dict]:
    return [{"function": f, "share": round(n / total, 3)} for f, n in counts.most_common(top)] if total else []
