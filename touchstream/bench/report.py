"""The bench's table and JSON: every figure beside its baseline from the same run, and the targets.

Pure: it only formats what the stages measured. A ratio is always
``value / baseline`` for rates and ``baseline / value`` for latencies (so above
1.0 reads "better than the baseline" either way).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from touchstream.bench.base import Figure


@dataclass(frozen=True)
class Target:
    """A goal from the performance issue: ``figure`` against ``baseline`` (a ratio), or an absolute
    ceiling/floor in the figure's own unit when ``baseline`` is None."""

    label: str
    figure: str
    bound: float
    baseline: str | None = None
    at_most: bool = False   # for absolute latency ceilings


TARGETS = (
    Target("end-to-end >= 0.5x raw consume+decode (fastest client)", "touchstream.end_to_end", 0.5,
           "limits.raw_decode_best"),
    Target("end-to-end >= 3x per-event faust peer", "touchstream.end_to_end", 3.0, "peers.faust"),
    Target("end-to-end >= 1.0x quixstreams peer (fold + DuckDB)", "touchstream.end_to_end", 1.0, "peers.quix"),
    Target("freshness p99 <= 1 s at 2k ev/s (interaction log)", "touchstream.freshness_log_p99", 1000, at_most=True),
    Target("freshness p99 <= 1 s at 2k ev/s (customer-360)", "touchstream.freshness_360_p99", 1000, at_most=True),
    Target("rebuild >= 0.7x raw consume+decode", "touchstream.rebuild", 0.7, "limits.raw_decode_best"),
    Target("360 lookup p99 <= 5 ms in process", "touchstream.lookup_inproc_p99", 5, at_most=True),
    Target("360 lookup p99 <= 25 ms over HTTP", "touchstream.lookup_http_p99", 25, at_most=True),
    Target("each KPI query <= 300 ms at scale", "touchstream.kpi_scaled_worst", 300, at_most=True),
    Target("SDK publish >= 0.5x Kafka producer-perf", "ingest.sdk", 0.5, "limits.kafka_produce"),
    Target("collector, batches of 100 >= 15k ev/s", "ingest.collector_batch100", 15_000),
    Target("collector, single events at 32 clients >= 2,000 ev/s", "ingest.collector_32", 2_000),
    Target("collector p99 to the 202 <= 100 ms at 32 clients", "ingest.collector_32_p99", 100, at_most=True),
    Target("collector at 32 clients >= 4x at 1 client", "ingest.collector_32", 4.0, "ingest.collector_1"),
    Target("sealing <= 15 µs CPU per event published", "privacy.seal", 15, at_most=True),
    Target("opening <= 15 µs CPU per event per decoding process", "privacy.open", 15, at_most=True),
)


def ratio(figure: Figure, figures: dict[str, Figure]) -> float | None:
    base = figures.get(figure.baseline) if figure.baseline else None
    if base is None or not base.value or not figure.value:
        return None
    return figure.value / base.value if figure.higher_is_better else base.value / figure.value


def judge(figures: dict[str, Figure]) -> list[dict]:
    """Each target: met, not met, or not measured in this run."""
    out = []
    for t in TARGETS:
        fig = figures.get(t.figure)
        if fig is None or (t.baseline and t.baseline not in figures):
            out.append({"target": t.label, "value": None, "met": None})
            continue
        if t.baseline:
            value = fig.value / figures[t.baseline].value if figures[t.baseline].value else None
            met = value is not None and value >= t.bound
        else:
            value = fig.value
            met = value <= t.bound if t.at_most else value >= t.bound
        out.append({"target": t.label, "value": value, "met": met})
    return out


def _number(value: float, unit: str) -> str:
    if unit == "ev/s":
        return f"{value:,.0f}"
    if unit in ("ms", "s"):
        return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


GROUPS = ("limits", "touchstream", "ingest", "privacy", "peers", "ratios", "rss")


def table(figures: list[Figure]) -> str:
    """Markdown: one row per figure, with its ratio to the baseline it names, grouped as in ``GROUPS``."""
    by_key = {f.key: f for f in figures}
    order = {g: i for i, g in enumerate(GROUPS)}
    figures = sorted(figures, key=lambda f: order.get(f.key.split(".")[0], len(GROUPS)))
    lines = ["| group | measure | value | unit | ratio | vs | detail |", "| --- | --- | ---: | --- | ---: | --- | --- |"]
    for f in figures:
        r = ratio(f, by_key)
        base = by_key[f.baseline].label if f.baseline in by_key else ""
        lines.append(f"| {f.key.split('.')[0]} | {f.label} | {_number(f.value, f.unit)} | {f.unit} | "
                     f"{'' if r is None else f'{r:.2f}x'} | {base} | {f.detail} |")
    return "\n".join(lines)


def targets_table(judged: list[dict]) -> str:
    lines = ["| target | measured | met |", "| --- | ---: | --- |"]
    for j in judged:
        value = "not measured" if j["value"] is None else f"{j['value']:,.2f}"
        met = "-" if j["met"] is None else ("yes" if j["met"] else "**no**")
        lines.append(f"| {j['target']} | {value} | {met} |")
    return "\n".join(lines)


def cpu_table(details: dict) -> str | None:
    """Per stage and process: cores busy on average and CPU ms per event (what the stage is bound on)."""
    rows = []
    for stage, usage in details.get("cpu", {}).items():
        events = details.get(stage, {}).get("events")
        for name, u in sorted(usage.items(), key=lambda kv: -kv[1]["cpu_seconds"]):
            per_event = f"{u['cpu_seconds'] * 1000 / events:.2f}" if events else ""
            rows.append(f"| {stage} | {name} | {u['cores']:.2f} | {per_event} |")
    if not rows:
        return None
    return "\n".join(["| stage | process | cores busy | CPU ms/event |", "| --- | --- | ---: | ---: |", *rows])


def document(machine: dict, params: dict, figures: list[Figure], extra: dict) -> dict:
    by_key = {f.key: f for f in figures}
    return {"machine": machine, "params": params,
            "figures": [dict(f.as_dict(), ratio=ratio(f, by_key)) for f in figures],
            "targets": judge(by_key), **extra}


def render(doc: dict) -> str:
    m = doc["machine"]
    figures = [Figure(**{k: v for k, v in f.items() if k != "ratio"}) for f in doc["figures"]]
    head = (f"machine: {m['cores']} cores, {m['memory_gb']:.1f} GB, {m['cpu']}; python {m['python']}; "
            + ", ".join(f"{k} {v}" for k, v in sorted(m["versions"].items())))
    params = ", ".join(f"{k}={v}" for k, v in doc["params"].items())
    parts = [head, f"run: {params}", table(figures), targets_table(doc["targets"]),
             cpu_table(doc.get("details", {}))]
    return "\n\n".join(p for p in parts if p)


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2, default=str)
