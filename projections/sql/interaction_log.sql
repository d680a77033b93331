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

-- CEM rollups of the interaction log for cem_touchpoints (analyst_views.sql), so that the view reads one
-- row per call, chat and message instead of grouping the calls', chats' and messages' events of the log.
-- Merged in the log's own transaction from the rows new to it (interaction_rollups.sql): each is what
-- grouping the stored interactions gives, whatever the order or repetition of the events.
CREATE TABLE IF NOT EXISTS cem_calls (   -- one row per call_id of phone.call_started / call_answered / call_ended
    call_id       VARCHAR PRIMARY KEY,
    inbound       BOOLEAN NOT NULL,      -- a call_started or call_ended of it says direction inbound
    answered      BOOLEAN NOT NULL,      -- it has a phone.call_answered
    wait_seconds  DOUBLE,                -- the least wait_seconds of its call_answered events
    ended         BOOLEAN NOT NULL       -- it has a phone.call_ended
);
CREATE TABLE IF NOT EXISTS cem_chats (   -- one row per conversation_id of web.chat_message_sent
    conversation_id VARCHAR PRIMARY KEY,
    customer        BOOLEAN NOT NULL,    -- the customer wrote in it
    agent           BOOLEAN NOT NULL     -- an agent wrote in it
);
CREATE TABLE IF NOT EXISTS cem_messages (   -- a customer's message to the company and the first reply naming it
    channel       VARCHAR NOT NULL,
    message       VARCHAR NOT NULL,      -- received_message_id of the message, in_reply_to of the replies
    asked_at      TIMESTAMPTZ,           -- its first arrival (NULL: only replies naming it so far)
    replied_at    TIMESTAMPTZ,           -- the first email.sent, sms.sent, postal.mail_sent or social.reply_sent naming it
    PRIMARY KEY (channel, message)
);
-- The rollup rows of a relation of interaction rows (a table name): the interactions' own at a fill,
-- a batch's new rows at a merge (interaction_rollups.sql).
CREATE OR REPLACE MACRO cem_call_rows(rows) AS TABLE
SELECT call_id,
       coalesce(bool_or(direction = 'inbound' AND event_type IN ('phone.call_started', 'phone.call_ended')), false)
           AS inbound,
       bool_or(event_type = 'phone.call_answered') AS answered,
       min(wait_seconds) FILTER (WHERE event_type = 'phone.call_answered') AS wait_seconds,
       bool_or(event_type = 'phone.call_ended') AS ended
FROM query_table(rows)
WHERE call_id IS NOT NULL AND event_type IN ('phone.call_started', 'phone.call_answered', 'phone.call_ended')
GROUP BY call_id;
CREATE OR REPLACE MACRO cem_chat_rows(rows) AS TABLE
SELECT conversation_id, coalesce(bool_or(sender = 'customer'), false) AS customer,
       coalesce(bool_or(sender = 'agent'), false) AS agent
FROM query_table(rows)
WHERE conversation_id IS NOT NULL AND event_type = 'web.chat_message_sent'
GROUP BY conversation_id;
CREATE OR REPLACE MACRO cem_message_rows(rows) AS TABLE
SELECT channel, message, min(asked_at) AS asked_at, min(replied_at) AS replied_at
FROM (SELECT channel, received_message_id AS message, occurred_at AS asked_at, NULL::TIMESTAMPTZ AS replied_at
      FROM query_table(rows) WHERE received_message_id IS NOT NULL
      UNION ALL
      SELECT channel, in_reply_to, NULL, occurred_at
      FROM query_table(rows)
      WHERE in_reply_to IS NOT NULL AND event_type IN ('email.sent', 'sms.sent', 'postal.mail_sent', 'social.reply_sent'))
GROUP BY channel, message;
-- A log written before the rollups existed fills them here, once, from its rows (an empty rollup: once
-- the log has calls or messages the fill or the sink leaves a row, and the fill finds it not empty).
INSERT INTO cem_calls SELECT * FROM cem_call_rows('interactions') WHERE NOT EXISTS (SELECT 1 FROM cem_calls);
INSERT INTO cem_chats SELECT * FROM cem_chat_rows('interactions') WHERE NOT EXISTS (SELECT 1 FROM cem_chats);
INSERT INTO cem_messages SELECT * FROM cem_message_rows('interactions') WHERE NOT EXISTS (SELECT 1 FROM cem_messages);

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
