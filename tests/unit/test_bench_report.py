"""The bench's pure parts: ratios, targets, the table, percentiles, profile summaries, traffic size."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from touchstream.bench import report
from touchstream.bench.base import Figure, percentile, rate
from touchstream.bench.profile_sampler import summarise
from touchstream.bench.traffic_producer import demo_events


def fig(key, value, unit="ev/s", baseline=None, higher=True):
    return Figure(key, key, value, unit, baseline=baseline, higher_is_better=higher)


def test_ratios_read_better_than_baseline_above_one_for_rates_and_latencies():
    figures = {f.key: f for f in (fig("limits.raw", 20_000), fig("touchstream.e2e", 5_000, baseline="limits.raw"),
                                  fig("a.lat", 10, "ms"), fig("b.lat", 5, "ms", baseline="a.lat", higher=False))}
    assert report.ratio(figures["touchstream.e2e"], figures) == 0.25
    assert report.ratio(figures["b.lat"], figures) == 2.0
    assert report.ratio(figures["limits.raw"], figures) is None


def test_targets_are_met_not_met_or_not_measured():
    figures = {f.key: f for f in (
        fig("limits.raw_decode_best", 10_000), fig("touchstream.end_to_end", 6_000, baseline="limits.raw_decode_best"),
        fig("peers.faust", 3_000), fig("touchstream.freshness_log_p99", 1200, "ms", higher=False),
        fig("touchstream.lookup_http_p99", 20, "ms", higher=False))}
    judged = {j["target"]: j for j in report.judge(figures)}
    assert judged["end-to-end >= 0.5x raw consume+decode (fastest client)"]["met"] is True
    assert judged["end-to-end >= 0.5x raw consume+decode (fastest client)"]["value"] == 0.6
    assert judged["end-to-end >= 3x per-event faust peer"]["met"] is False
    assert judged["freshness p99 <= 1 s at 2k ev/s (interaction log)"]["met"] is False
    assert judged["360 lookup p99 <= 25 ms over HTTP"]["met"] is True
    assert judged["end-to-end >= 1.0x quixstreams peer (fold + DuckDB)"]["met"] is None


def test_table_shows_each_figure_with_its_ratio_and_baseline_label():
    figures = [fig("limits.raw", 20_000), fig("touchstream.e2e", 5_000, baseline="limits.raw")]
    lines = report.table(figures).splitlines()
    assert lines[2].startswith("| limits | limits.raw | 20,000 | ev/s |  |")
    assert "| 0.25x | limits.raw |" in lines[3]


def test_render_and_dumps_round_trip_a_document():
    doc = report.document({"cores": 2, "memory_gb": 24.0, "cpu": "x", "python": "3.11", "versions": {"duckdb": "2"}},
                          {"events": 10}, [fig("limits.raw", 1.0)], {"details": {}})
    text = report.render(doc)
    assert "2 cores" in text and "events=10" in text and "| target |" in text
    assert '"figures"' in report.dumps(doc)


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200), st.floats(min_value=1, max_value=100))
def test_percentile_is_an_element_and_monotone(values, q):
    p = percentile(values, q)
    assert p in values
    assert sum(v <= p for v in values) >= len(values) * q / 100
    assert percentile(values, 100) == max(values) and percentile(values, 1) <= p


def test_rate_of_no_time_is_zero():
    assert rate(10, 0) == 0.0 and rate(10, 2) == 5.0


def test_profile_summary_counts_self_and_our_frames_once_per_sample():
    lines = [
        "main (touchstream/serving/__main__.py:1);handle (processors/customer_360.py:9);"
        "decode (touchstream/codec/avro_codec.py:3);read (fastavro/_read.py:2) 6",
        "main (touchstream/serving/__main__.py:1);select (selectors.py:4) 4",
        "not a sample line",
    ]
    summary = summarise(lines)
    assert summary["samples"] == 10
    assert summary["self"][0] == {"function": "read (fastavro/_read.py)", "share": 0.6}
    ours = {s["function"]: s["share"] for s in summary["touchstream"]}
    assert ours == {"main (touchstream/serving/__main__.py)": 1.0, "handle (processors/customer_360.py)": 0.6,
                    "decode (touchstream/codec/avro_codec.py)": 0.6}


def test_demo_traffic_has_exactly_the_events_asked_for():
    stream, days = demo_events(700, 40, 3)
    events = list(stream)
    assert len(events) == 700 and days >= 1
    assert len({e["envelope"]["event_id"] for e in events}) == 700


def test_cpu_table_gives_cores_and_cpu_per_event_per_process():
    details = {"end_to_end": {"events": 1000},
               "cpu": {"end_to_end": {"serving": {"cpu_seconds": 3.0, "cores": 0.6},
                                      "broker": {"cpu_seconds": 1.5, "cores": 0.3}}}}
    lines = report.cpu_table(details).splitlines()
    assert lines[2] == "| end_to_end | serving | 0.60 | 3.00 |"
    assert lines[3] == "| end_to_end | broker | 0.30 | 1.50 |"
    assert report.cpu_table({}) is None
