-- The interaction log: one row per event of any channel, the analysts' base table.
-- Written only by the serving process; offsets are committed in the same
-- transaction as the rows (sink_offsets), so a restart neither loses nor
-- double-counts. Duplicates (same event_id) are ignored.
CREATE TABLE IF NOT EXISTS interactions (
    event_id        VARCHAR PRIMARY KEY,
    event_type      VARCHAR NOT NULL,
    domain          VARCHAR NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    channel         VARCHAR NOT NULL,
    content         VARCHAR NOT NULL,
    initiated_by    VARCHAR NOT NULL,
    source          VARCHAR NOT NULL,
    correlation_id  VARCHAR,
    causation_id    VARCHAR,
    customer_id     VARCHAR,
    email           VARCHAR,   -- PII
    phone           VARCHAR,   -- PII
    cookie_id       VARCHAR,   -- PII
    device_id       VARCHAR,   -- PII
    loyalty_card    VARCHAR,   -- PII
    account_number  VARCHAR,   -- PII
    amount          DECIMAL(18, 2),
    currency        VARCHAR,
    payload         JSON NOT NULL,
    schema_id       INTEGER NOT NULL,
    topic           VARCHAR NOT NULL,
    "partition"     INTEGER NOT NULL,
    "offset"        BIGINT NOT NULL,
    ingested_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS sink_offsets (
    sink            VARCHAR NOT NULL,
    topic           VARCHAR NOT NULL,
    "partition"     INTEGER NOT NULL,
    next_offset     BIGINT NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sink, topic, "partition")
);

CREATE TABLE IF NOT EXISTS dead_letters (
    topic           VARCHAR NOT NULL,
    "partition"     INTEGER NOT NULL,
    "offset"        BIGINT NOT NULL,
    reason          VARCHAR NOT NULL,
    dead_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic, "partition", "offset")
);

-- Volume by channel and content: the catalogue as it is actually used.
CREATE OR REPLACE VIEW interaction_counts AS
SELECT channel, content, initiated_by, event_type, count(*) AS events,
       min(occurred_at) AS first_at, max(occurred_at) AS last_at
FROM interactions
GROUP BY ALL;
