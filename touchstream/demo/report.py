"""The short report ``touchstream demo`` prints: SQL over the ``interactions`` table, the
complaint cases (``report_complaints``) and the customer-360 views (``report_360``), and its layout.

Why SQL through the query service: the report proves the events went the whole way
(SDK -> Kafka -> serving sinks -> DuckDB), instead of counting what was generated.
Every query is scoped to one demo run by its event-id prefix, so earlier runs or
real traffic in the same stack do not blur the numbers. Pure: the caller passes
``query(sql) -> {"columns": [...], "rows": [[...]]}`` (the CLI uses ``run_sql``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

_PREFIX_RE = re.compile(r"^[A-Za-z0-9._:-]+$")


def queries(prefix: str) -> dict[str, str]:
    """The report's statements for the run whose event ids start with ``prefix``."""
    from touchstream.demo import report_360, report_complaints  # they import table() from here

    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"unexpected event-id prefix {prefix!r}")
    run = f"event_id LIKE '{prefix}%'"
    return {**_log_queries(run), **report_complaints.queries(prefix), **report_360.queries(prefix)}


def _log_queries(run: str) -> dict[str, str]:
    return {
        "channels": f"""
            SELECT channel, count(*) AS events,
                   count(*) FILTER (WHERE initiated_by = 'customer') AS by_customer,
                   count(*) FILTER (WHERE initiated_by = 'company') AS by_company
            FROM interactions WHERE {run}
            GROUP BY channel ORDER BY events DESC, channel""",
        "contents": f"""
            SELECT content, count(*) AS events, count(DISTINCT event_type) AS event_types
            FROM interactions WHERE {run}
            GROUP BY content ORDER BY events DESC, content""",
        "identities": f"""
            SELECT count(DISTINCT customer_id) AS customer_ids, count(DISTINCT email) AS emails,
                   count(DISTINCT phone) AS phones, count(DISTINCT cookie_id) AS cookies,
                   count(DISTINCT loyalty_card) AS loyalty_cards, count(DISTINCT account_number) AS accounts,
                   count(*) FILTER (WHERE customer_id IS NULL) AS events_without_customer_id,
                   count(*) AS events
            FROM interactions WHERE {run}""",
    }


@dataclass(frozen=True)
class RunStats:
    """What the CLI measured around publishing."""

    events: int
    publish_seconds: float
    catchup_seconds: float  # last acknowledgement -> the whole pipeline applied it (wait_pipeline)
    sources: int
    sla_seconds: float = 0.0  # then until the SLA clocks judged the latest event time (wait_sla_settled)


def table(columns: list[str], rows: list[list]) -> str:
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [bool(cells) and all(r[i].replace(".", "", 1).isdigit() for r in cells if r[i])
               for i in range(len(columns))]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(columns), "  ".join("-" * w for w in widths)] + [line(r) for r in cells])


def _side_by_side(left: str, right: str, gap: int = 6) -> str:
    a, b = left.splitlines(), right.splitlines()
    width = max(len(x) for x in a)
    return "\n".join((a[i] if i < len(a) else "").ljust(width + gap) + (b[i] if i < len(b) else "")
                     for i in range(max(len(a), len(b)))).rstrip()


def render(results: dict[str, dict], stats: RunStats) -> str:
    """Lay out the query results and the measured rates as plain text."""
    from touchstream.demo import report_360, report_complaints

    out = [
        f"Published {stats.events:,} events from {stats.sources} channel systems in {stats.publish_seconds:.1f}s "
        f"({stats.events / max(stats.publish_seconds, 1e-9):,.0f} events/s, generation + validation + send); "
        f"serving caught up {stats.catchup_seconds:.1f}s after the last acknowledgement "
        "(interaction log, identity resolution, complaint cases and customer 360s); "
        f"the SLA clocks settled {stats.sla_seconds:.1f}s later (raw partitions idle, then the timer).",
        "",
        _side_by_side(table(results["channels"]["columns"], results["channels"]["rows"]),
                      table(results["contents"]["columns"], results["contents"]["rows"])),
    ]
    out += ["", "Identity hints seen (distinct values)",
            table(results["identities"]["columns"], results["identities"]["rows"])]
    return "\n".join(out + report_complaints.render(results) + report_360.render(results))


def build(query: Callable[[str], dict], prefix: str, stats: RunStats) -> str:
    """Run every report query through ``query`` and render the report."""
    return render({name: query(sql) for name, sql in queries(prefix).items()}, stats)
