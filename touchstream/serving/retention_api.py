"""Retention in the serving process: the timer's expiry and ``/admin/retention`` for ``touchstream retention``.

Why through serving: serving owns the DuckDB file (one writer process), so the CLI asks it over HTTP,
as ``touchstream rebuild`` does. ``GET`` says what is due, ``POST`` removes it; both need the admin scope
(the report counts personal data, and removing it cannot be undone).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from touchstream.config import Settings
from touchstream.kafka_access import kafka_access
from touchstream.processors.outages import outage_of
from touchstream.processors.retention_expiry import BrokerTime, ExpiringOnWrite, RetentionExpiry
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.serving.access import require
from touchstream.topics import load_retention

# Seconds between the serving timer's runs: retention is counted in days, and a run that finds nothing
# reads only the partitions' offsets by time and one indexed scan, so every 5 minutes costs little.
RETENTION_INTERVAL = 300.0


def retention_expiry(settings: Settings, store: DuckDBStore, keys=None) -> RetentionExpiry:
    """The catalogue's retention over ``store``, judged by the broker ``settings`` reach; ``keys``: the key
    ring whose months' free-text keys it deletes."""
    return RetentionExpiry(store, load_retention(settings.topic_config), BrokerTime(kafka_access(settings)),
                           keys=keys)


def expiring_on_write(sink, expiry: RetentionExpiry) -> ExpiringOnWrite:
    """The interaction-log sink behind the same retention (a rebuild writes no expired free text)."""
    return ExpiringOnWrite(sink, expiry.retention)


def retention_router(expiry: RetentionExpiry, keys=None) -> APIRouter:
    admin = require("admin", keys)
    router = APIRouter()

    @router.get("/admin/retention", dependencies=[Depends(admin)])
    def due() -> dict:
        """What expiry would remove now (nothing is changed)."""
        return _run(expiry, apply=False)

    @router.post("/admin/retention", dependencies=[Depends(admin)])
    def expire() -> dict:
        """Remove what is due now, in one DuckDB transaction; returns what was removed."""
        return _run(expiry, apply=True)

    return router


def _run(expiry: RetentionExpiry, *, apply: bool) -> dict:
    try:
        return expiry.run(apply=apply).as_dict()
    except Exception as exc:
        if outage_of(exc, rerunnable=True) is None:
            raise
        raise HTTPException(503, f"the broker did not say which records are old ({exc}); nothing was removed") from None
