-- The analysts' names, pointing at the active customer-360 version {v}.
CREATE OR REPLACE VIEW customer_360 AS SELECT * EXCLUDE (channel_rows, finding_rows) FROM customer_360_{v};
-- The same rows without the profile JSON, the channel and finding rows kept as lists: for the analyst
-- views, which filter customers on the typed columns (known, findings > 0) or sum a customer's lists in
-- its own row, rather than unnest two million channel rows and join them back by customer id.
CREATE OR REPLACE VIEW customer_360_lists AS SELECT * EXCLUDE (profile) FROM customer_360_{v};
-- Contacts per customer and channel, with the channel's place in the preferred media package.
CREATE OR REPLACE VIEW customer_channels AS
SELECT customer_id, unnest(channel_rows, recursive := true) FROM customer_360_{v};
-- Touchmap findings: overload, redundant campaign, promotion during an open complaint,
-- repeated question or request. finding_id is "<customer_id>/<kind>:<subject...>".
-- findings counts a customer's finding rows, so the rows without any are skipped unread.
CREATE OR REPLACE VIEW contact_findings AS
SELECT customer_id, unnest(finding_rows, recursive := true) FROM customer_360_{v} WHERE findings > 0;
CREATE OR REPLACE VIEW customer_identifiers AS
SELECT split_part(identifier, ':', 1) AS kind, substr(identifier, strpos(identifier, ':') + 1) AS value,
       customer_id, seq
FROM c360_identity_{v};
-- The touchmap: every interaction of every customer across channels, in event time
-- (the whole history from the interaction log, not only the profile's last N).
CREATE OR REPLACE VIEW customer_timeline AS
SELECT m.customer_id, i.occurred_at, i.channel, i.content, i.initiated_by, i.event_type,
       i.event_id, i.correlation_id, i.amount, i.currency
FROM c360_events_{v} e
JOIN c360_identity_{v} m ON m.identifier = e.anchor
JOIN interactions i ON i.event_id = e.event_id;
