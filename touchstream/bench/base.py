"""The bench's contract: every stage returns ``Figure`` rows; the report turns them into a table and JSON.

A figure names its baseline (another figure's key) rather than carrying a ratio
computed elsewhere, so every ratio is taken between two figures of this run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Figure:
    """One measured line. ``key`` is unique in a run (``limits.raw_decode``); ``higher_is_better``
    says which way a ratio against ``baseline`` (another figure's key) reads."""

    key: str
    label: str
    value: float
    unit: str                      # "ev/s", "ms", "MB", "s"
    baseline: str | None = None
    higher_is_better: bool = True
    detail: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def rate(events: int, seconds: float) -> float:
    """Events per second; a stage that measured no time has no rate (0), never infinity."""
    return events / seconds if seconds > 0 else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    if not values:
        raise ValueError("percentile of an empty sample")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))   # ceil(n*q/100), at least 1
    return ordered[int(rank) - 1]
