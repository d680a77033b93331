-- Complaint cases, folded by the serving process from the raw topics. Offsets in sink_offsets
-- (sink 'complaint_resolution'), written in the same transaction as these rows.

-- Every event that names a case (complaint.* by case_id) or is threaded to one (case_id field or
-- envelope.correlation_id): the fold's own event store, so a case is refolded from its events.
CREATE TABLE IF NOT EXISTS complaint_events (
    event_id     VARCHAR PRIMARY KEY,
    case_id      VARCHAR NOT NULL,     -- the case id, or the correlation id that may name one
    occurred_at  TIMESTAMPTZ NOT NULL,
    value        BLOB NOT NULL,        -- the Confluent-framed Avro record, as published
    event_type   VARCHAR               -- envelope.event_type: complaint_funnel reads the case's complaint.*
                                       -- steps here rather than join a million events to the interaction log
);
-- A table written before event_type existed gets it here, filled once from the interaction log (the sink
-- sets it on every row it writes, so later starts find a typed row and fill nothing).
ALTER TABLE complaint_events ADD COLUMN IF NOT EXISTS event_type VARCHAR;
UPDATE complaint_events e SET event_type = i.event_type
FROM interactions i
WHERE i.event_id = e.event_id AND e.event_type IS NULL
  AND NOT EXISTS (SELECT 1 FROM complaint_events WHERE event_type IS NOT NULL);

CREATE TABLE IF NOT EXISTS complaint_cases (
    case_id             VARCHAR PRIMARY KEY,
    customer_id         VARCHAR,
    state               VARCHAR NOT NULL,   -- opened, acknowledged, in_progress, callback_promised, resolved, closed
    is_open             BOOLEAN NOT NULL,
    origin_channel      VARCHAR,
    channels_touched    VARCHAR[] NOT NULL,
    product             VARCHAR,
    category            VARCHAR,
    cause               VARCHAR,
    priority            VARCHAR,
    assigned_team       VARCHAR,
    opened_at           TIMESTAMPTZ,
    resolved_at         TIMESTAMPTZ,
    closed_at           TIMESTAMPTZ,
    resolution_code     VARCHAR,
    reopen_count        INTEGER NOT NULL,
    escalation_level    INTEGER,
    contacts            INTEGER NOT NULL,
    callbacks_promised  INTEGER NOT NULL,
    callbacks_missed    INTEGER NOT NULL,
    first_response_seconds DOUBLE,
    resolution_seconds  DOUBLE,
    handle_seconds      DOUBLE,
    fcr                 BOOLEAN,            -- null while unresolved
    fcr_reason          VARCHAR,
    anomalies           INTEGER NOT NULL,
    case_view           JSON NOT NULL,      -- complaint_resolution.view: the whole case
    fingerprint         VARCHAR NOT NULL,   -- sha256 of case_view
    updated_at          TIMESTAMPTZ NOT NULL,
    contact_rows        STRUCT(contact_key VARCHAR, channel VARCHAR, direction VARCHAR, started_at TIMESTAMPTZ,
                               ended_at TIMESTAMPTZ, wait_seconds DOUBLE, talk_seconds DOUBLE,
                               handle_seconds DOUBLE)[] NOT NULL
);

-- The identifier ("kind:value") that named the case's canonical customer in the customer-360 (or its
-- strongest hint while the 360 knows none): the reconcile refolds a case when its owner changes.
ALTER TABLE complaint_cases ADD COLUMN IF NOT EXISTS customer_anchor VARCHAR;

-- Every identifier a case's events carry, with its strength (0 = strongest kind): the case's customer
-- is the 360's owner of its strongest hint the 360 knows, so the reconcile also refolds a case when
-- the 360 learns a stronger hint than its anchor (not only when the anchor's owner changes).
CREATE TABLE IF NOT EXISTS complaint_case_hints (
    case_id     VARCHAR NOT NULL,
    identifier  VARCHAR NOT NULL,     -- "kind:value", normalised as identity resolution does
    strength    INTEGER NOT NULL,
    PRIMARY KEY (case_id, identifier)
);

-- Every contact of every case, on any channel (wait, talk and handle time per contact).
CREATE OR REPLACE VIEW complaint_contacts AS
SELECT case_id, customer_id, unnest(contact_rows, recursive := true) FROM complaint_cases;
