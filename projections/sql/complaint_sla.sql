-- SLA clocks of complaint cases and the SLA events published for them. Written by the
-- complaint_resolution sink in the same DuckDB transaction as complaint_cases and its offsets.

-- Every clock of every case, evaluated at the sink's event-time watermark (complaint_sla_watermark):
-- state running / warning / breached / met (see touchstream.projections.complaint_sla).
CREATE TABLE IF NOT EXISTS complaint_sla (
    case_id         VARCHAR NOT NULL,
    clock           VARCHAR NOT NULL,   -- first_response, resolution[:<reopen>], next_response:<event>,
                                        -- periodic_update:<event>, callback:<callback_id>
    clock_kind      VARCHAR NOT NULL,   -- the clock name before the colon
    policy_version  VARCHAR NOT NULL,
    priority        VARCHAR,
    channel         VARCHAR,            -- the case's origin channel (the policy's channel)
    started_at      TIMESTAMPTZ NOT NULL,
    warning_at      TIMESTAMPTZ NOT NULL,
    due_at          TIMESTAMPTZ NOT NULL,
    met_at          TIMESTAMPTZ,        -- null while running
    state           VARCHAR NOT NULL,   -- running, warning, breached, met
    breached        BOOLEAN NOT NULL,   -- state = 'breached' (met late, or unmet past due_at)
    breached_at     TIMESTAMPTZ,        -- the due instant of a breached clock
    started_by      VARCHAR NOT NULL,   -- event id that started the clock
    met_by          VARCHAR,            -- event id that met (or stopped) it
    PRIMARY KEY (case_id, clock)
);

-- Every SLA event the sink has published to touchstream.complaint-sla (ids are deterministic, so a
-- replay or a restart finds them here and re-sends nothing). withdrawn_at: a later-arriving event
-- showed the clock was met in time after all, and a complaint.sla_withdrawn was published.
CREATE TABLE IF NOT EXISTS complaint_sla_events (
    event_id        VARCHAR PRIMARY KEY,
    case_id         VARCHAR NOT NULL,
    event_type      VARCHAR NOT NULL,   -- complaint.sla_warning, complaint.sla_breached, complaint.escalated
    clock           VARCHAR,            -- null on an escalation
    occurred_at     TIMESTAMPTZ NOT NULL,  -- warning or due instant (event time)
    published_at    TIMESTAMPTZ NOT NULL,  -- wall clock of the first send
    withdrawn_at    TIMESTAMPTZ,
    withdrawal_id   VARCHAR
);

-- The sink's event-time clock (the watermark: it never goes back), the latest occurred_at consumed
-- per raw partition (the watermark is the least of the partitions still delivering), and per case
-- the next instant (a warning or a due time) at which an SLA event may fall due: the timer's agenda.
CREATE TABLE IF NOT EXISTS complaint_sla_watermark (
    sink            VARCHAR PRIMARY KEY,
    watermark       TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS complaint_sla_partitions (
    topic           VARCHAR NOT NULL,
    "partition"     INTEGER NOT NULL,
    latest          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic, "partition")
);
CREATE TABLE IF NOT EXISTS complaint_sla_agenda (
    case_id         VARCHAR PRIMARY KEY,
    next_at         TIMESTAMPTZ NOT NULL
);
