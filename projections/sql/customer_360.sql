-- Customer-360, one version of it: every table carries the version suffix {v}, so a
-- rebuild fills a fresh version beside the live one; the unsuffixed views below
-- point at the active version and are switched in one transaction.
-- Written only by the serving process, with the offsets of touchstream.customer-events
-- (sink_offsets, sink 'customer_360_{v}') in the same transaction as the rows.

-- The fold's own event store: each event once, with the identifier that decides its customer.
CREATE TABLE IF NOT EXISTS c360_events_{v} (
    event_id     VARCHAR PRIMARY KEY,
    anchor       VARCHAR NOT NULL,      -- "kind:value" (PII)
    occurred_at  TIMESTAMPTZ NOT NULL,
    value        BLOB NOT NULL          -- the Confluent-framed Avro record, as published
);

-- Which customer each identifier belongs to; the highest identity sequence number wins.
CREATE TABLE IF NOT EXISTS c360_identity_{v} (
    identifier   VARCHAR PRIMARY KEY,   -- "kind:value" (PII)
    customer_id  VARCHAR NOT NULL,
    seq          UBIGINT NOT NULL
);

-- One row per customer, upserted by primary key (one statement per batch). Channels and
-- findings ride along as lists; the views customer_channels and contact_findings unnest them.
CREATE TABLE IF NOT EXISTS customer_360_{v} (
    customer_id       VARCHAR PRIMARY KEY,
    events            INTEGER NOT NULL,
    first_seen        TIMESTAMPTZ,
    last_seen         TIMESTAMPTZ,
    journey_stage     VARCHAR,
    preferred_channel VARCHAR,          -- rank 1 of the preferred media package
    identifiers       INTEGER NOT NULL,
    channels          INTEGER NOT NULL,
    open_complaints   INTEGER NOT NULL,
    last_csat         DOUBLE,
    last_nps          DOUBLE,
    findings          INTEGER NOT NULL,
    profile           JSON NOT NULL,    -- the whole 360 (customer_360.view), as served and published
    fingerprint       VARCHAR NOT NULL, -- sha256 of profile
    updated_at        TIMESTAMPTZ NOT NULL,
    channel_rows      STRUCT(channel VARCHAR, contacts INTEGER, customer_initiated INTEGER,
                             company_initiated INTEGER, last_contact_at TIMESTAMPTZ, pmp_rank INTEGER,
                             pmp_score DOUBLE, response_rate DOUBLE)[] NOT NULL,
    finding_rows      STRUCT(finding_id VARCHAR, kind VARCHAR, raised_at TIMESTAMPTZ, subject VARCHAR,
                             channels VARCHAR[], evidence VARCHAR[])[] NOT NULL
);
