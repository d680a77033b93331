"""Where a bench stage's CPU went: each stack process, the fold workers and the bench itself.

Why per process: the stage is bound on whichever process is busiest, and that is the next
bottleneck to work on (serving, identity, or a fold worker when ``--workers`` runs them).
"""

from __future__ import annotations

import resource
import time

from touchstream.bench import bench_stack
from touchstream.bench.profile_sampler import ProfileSampler
from touchstream.stack.fold_workers import worker_names


def services(settings, *names: str) -> tuple[str, ...]:
    """``names`` and, when the stack runs fold workers, ``fold-1`` .. ``fold-N`` (they start and stop
    with serving)."""
    return (*names, *worker_names(settings.fold_workers))


class Profiled:
    """While a stage runs: the CPU seconds each stack process and the bench itself spent, and py-spy on
    the Python services named in ``sampled`` (when the run profiles)."""

    def __init__(self, run, stage: str, processes=("identity", "serving"), sampled=("identity", "serving"),
                 since: float | None = None):
        self.run, self.stage, self.since, self.started = run, stage, since, processes if since else ()
        self.pids = {name: bench_stack.pid(run.settings, name) for name in ("broker", "registry", *processes)}
        self.samplers = {name: ProfileSampler(self.pids[name], run.work / "profiles" / f"{stage}-{name}.txt")
                         for name in sampled if name in self.pids} if run.params.profile else {}

    def _cpu(self) -> dict[str, float | None]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {**{name: bench_stack.cpu_seconds(pid) for name, pid in self.pids.items()},
                "bench": usage.ru_utime + usage.ru_stime}

    def __enter__(self):
        # ``since``: the stage began at that perf_counter time by starting ``processes``, so all they spent
        # counts (a fold worker may finish its share during serving's start-up)
        self.cpu0, self.t0 = self._cpu(), self.since or time.perf_counter()
        self.cpu0.update({name: 0.0 for name in self.started if self.cpu0.get(name) is not None})
        for sampler in self.samplers.values():
            sampler.__enter__()
        return self

    def __exit__(self, *exc):
        for sampler in self.samplers.values():
            sampler.__exit__(*exc)
        wall, cpu1 = time.perf_counter() - self.t0, self._cpu()
        self.run.details.setdefault("cpu", {})[self.stage] = {
            name: {"cpu_seconds": round(cpu1[name] - self.cpu0[name], 2),
                   "cores": round((cpu1[name] - self.cpu0[name]) / wall, 2) if wall else None}
            for name in cpu1 if cpu1[name] is not None and self.cpu0.get(name) is not None}
        summaries = {name: s.summary() for name, s in self.samplers.items()}
        if summaries:
            self.run.details.setdefault("profiles", {})[self.stage] = summaries
