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
    ingested_at     TIMESTAMPTZ NOT NULL,
    -- Payload fields the analyst views read (cem_touchpoints), typed so that no view parses the JSON of
    -- millions of rows; NULL where the payload has no such field (interaction_log.TYPED_COLUMNS).
    call_id             VARCHAR,   -- phone.*: the call
    conversation_id     VARCHAR,   -- web.chat_message_sent: the chat
    in_reply_to         VARCHAR,   -- a message's reply to received_message_id (or to a company message)
    direction           VARCHAR,   -- phone.call_started / call_ended: inbound, outbound, unknown
    sender              VARCHAR,   -- web.chat_message_sent: customer, agent, bot, unknown
    wait_seconds        DOUBLE,    -- phone.call_answered / call_ended
    response_seconds    DOUBLE,    -- web.chat_message_sent
    received_message_id VARCHAR    -- a customer's message to the company (e-mail, SMS, letter, social comment
                                   -- or review): its message_id, mail_id, comment_id or review_id
);
-- An interaction log written before the typed columns existed gets them here, filled once from the
-- payload in one statement (then some row has a value, so later starts skip it: no JSON is parsed again).
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS call_id VARCHAR;
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS conversation_id VARCHAR;
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS in_reply_to VARCHAR;
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS direction VARCHAR;
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS sender VARCHAR;
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS wait_seconds DOUBLE;
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS response_seconds DOUBLE;
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS received_message_id VARCHAR;
UPDATE interactions
SET call_id = payload ->> 'call_id', conversation_id = payload ->> 'conversation_id',
    in_reply_to = payload ->> 'in_reply_to', direction = payload ->> 'direction', sender = payload ->> 'sender',
    wait_seconds = CAST(payload ->> 'wait_seconds' AS DOUBLE),
    response_seconds = CAST(payload ->> 'response_seconds' AS DOUBLE),
    received_message_id = CASE WHEN event_type IN ('email.received', 'sms.received', 'postal.mail_received',
                                                   'social.comment_posted', 'social.review_posted')
                               THEN coalesce(payload ->> 'message_id', payload ->> 'mail_id',
                                             payload ->> 'comment_id', payload ->> 'review_id') END
WHERE domain IN ('phone', 'web', 'email', 'sms', 'postal', 'social')   -- the contracts with those fields
  AND NOT EXISTS (SELECT 1 FROM interactions
                  WHERE coalesce(call_id, conversation_id, in_reply_to, direction, sender, received_message_id)
                        IS NOT NULL OR coalesce(wait_seconds, response_seconds) IS NOT NULL);

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
