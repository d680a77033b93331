-- Identity decisions (touchstream.identity.decisions): every merge, split, link, unlink and
-- guard-rail finding, with why, which event and which identifiers. The audit trail of the
-- 360; redelivered decisions are ignored by decision_id. Offsets in sink_offsets
-- (sink 'identity_decisions'), written in the same transaction.
CREATE TABLE IF NOT EXISTS identity_decisions (
    decision_id        VARCHAR PRIMARY KEY,
    decision           VARCHAR NOT NULL,   -- customer.merged, customer.split, identity.linked, identity.unlinked, identity.finding
    seq                UBIGINT NOT NULL,
    decided_by         VARCHAR NOT NULL,   -- event_id of the observed event
    decided_at         TIMESTAMPTZ NOT NULL,
    customer_id        VARCHAR,
    from_ids           VARCHAR[] NOT NULL,
    into_ids           VARCHAR[] NOT NULL,
    identifiers        STRUCT(kind VARCHAR, value VARCHAR)[] NOT NULL,   -- PII
    trust              VARCHAR,
    reason             VARCHAR,
    rule               VARCHAR,
    evidence_event_id  VARCHAR,
    topic              VARCHAR NOT NULL,
    "partition"        INTEGER NOT NULL,
    "offset"           BIGINT NOT NULL
);
