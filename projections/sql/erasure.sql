-- Erasures (issue 17): one row per customer forgotten, the erasure report's DuckDB part. Written by
-- processors/erasure_store.record_erasure in the transaction that erased the rows. No personal value:
-- the customer ids name whose erasure it was (the audit skips this table, projections/erasure.SKIPPED);
-- the identifiers, and the tombstone id that replaced the customer in the kept rows, are not stored.
CREATE TABLE IF NOT EXISTS erasures (
    erasure_id      VARCHAR PRIMARY KEY,
    customer_ids    VARCHAR[] NOT NULL,     -- every customer id of the person (empty: the subject was not found)
    requested_at    TIMESTAMPTZ NOT NULL,
    erased_at       TIMESTAMPTZ,            -- null while the request waits
    rows_by_table   JSON NOT NULL,          -- {"interactions": 52, "c360_identity_v1": 5, ...}: rows deleted or changed
    kids_deleted    INTEGER NOT NULL,       -- data keys deleted from the key topic
    refs            VARCHAR[] NOT NULL      -- pseudonyms of the erased subjects (the audit recognises their values by them)
);

-- Exports (issue 17): one row per Parquet snapshot handed out by GET /export, so that an erasure report
-- can list the snapshots taken before it (they are copies outside Touchstream's reach: re-export them).
CREATE TABLE IF NOT EXISTS exports (
    export_id       VARCHAR PRIMARY KEY,
    snapshot_at     TIMESTAMPTZ NOT NULL,   -- the instant the files describe
    taken_by        VARCHAR NOT NULL,       -- the API key's system (never the key)
    pii             BOOLEAN NOT NULL,       -- true: personal values included; false: customer ids only
    relations       VARCHAR[] NOT NULL
);
