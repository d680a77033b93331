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
                             channels VARCHAR[], evidence VARCHAR[])[] NOT NULL,
    -- Typed for the analyst views (customer_360_summary.summary_row), so that none reads the profile
    -- JSON or sums every customer's lists:
    first_sale_at     TIMESTAMPTZ,      -- profile.journey.first_sale_at
    known             BOOLEAN,          -- not an anonymous profile (customer id "anon-..."); never NULL once filled
    company_contacts  INTEGER,          -- sum of channel_rows.company_initiated
    customer_contacts INTEGER,          -- sum of channel_rows.customer_initiated
    company_channels  INTEGER,          -- channel_rows with company_initiated > 0
    overload_findings INTEGER           -- finding_rows of kind overload
);
-- A table created before a column above existed gets it here, and its rows are filled once from what
-- they already hold (the sink sets known and company_contacts on every row it writes, so this finds
-- nothing to do after that).
ALTER TABLE customer_360_{v} ADD COLUMN IF NOT EXISTS first_sale_at TIMESTAMPTZ;
ALTER TABLE customer_360_{v} ADD COLUMN IF NOT EXISTS known BOOLEAN;
ALTER TABLE customer_360_{v} ADD COLUMN IF NOT EXISTS company_contacts INTEGER;
ALTER TABLE customer_360_{v} ADD COLUMN IF NOT EXISTS customer_contacts INTEGER;
ALTER TABLE customer_360_{v} ADD COLUMN IF NOT EXISTS company_channels INTEGER;
ALTER TABLE customer_360_{v} ADD COLUMN IF NOT EXISTS overload_findings INTEGER;
UPDATE customer_360_{v}
SET first_sale_at = CAST(profile -> 'journey' ->> 'first_sale_at' AS TIMESTAMPTZ),
    known = NOT starts_with(customer_id, 'anon-'),
    company_contacts = coalesce(list_sum(list_transform(channel_rows, lambda r: r.company_initiated)), 0),
    customer_contacts = coalesce(list_sum(list_transform(channel_rows, lambda r: r.customer_initiated)), 0),
    company_channels = len(list_filter(channel_rows, lambda r: r.company_initiated > 0)),
    overload_findings = len(list_filter(finding_rows, lambda f: f.kind = 'overload'))
WHERE known IS NULL OR company_contacts IS NULL;
