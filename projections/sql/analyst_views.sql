-- Analyst views: the brief's questions (domain.md sections 2-7) answered over the interaction log, the
-- customer-360 and the complaint tables. Views only (CREATE OR REPLACE), run by the serving process
-- after every sink has created its tables and after complaint_customer_360.sql, so they may read
-- interactions, customer_360 / customer_channels / contact_findings / customer_timeline and every
-- complaint view. Each view answers on empty tables (no rows, or its fixed rows with zero counts).
-- Why views: the sinks rewrite their rows as events arrive, so a view is always in step and costs
-- nothing to keep up; and each question's logic lives once (these reuse complaint_case_facts,
-- complaint_loyalty_cases, complaint_sla_compliance, complaint_breaches rather than restating them).
-- Conventions (as complaint_kpis.sql): event time; days are UTC days; *_rate and *_share are
-- fractions rounded to 4 places, *_pct percentages rounded to 2; means of seconds to 1 place; a rate
-- is null when its denominator is 0. Known customers: identity resolution names anonymous profiles
-- (a cookie, a till receipt) anon-<hash>; any other customer id is a known customer (customer_360.known).
-- Cost: these views answer in process at 10M interactions and 1M customers, so none parses the JSON of
-- every interaction or profile (the sinks write what the views read as typed columns: the interaction
-- log's call_id, wait_seconds, in_reply_to...; customer_360's first_sale_at, known, company_contacts...)
-- and none unnests every customer's channel rows to join them back by customer id (customer_360_lists
-- keeps them in the customer's own row). cem_touchpoints reads the interaction log's rollups of calls, chats
-- and messages (cem_calls, cem_chats, cem_messages: one row per call, chat or message, merged as events arrive).
-- docs/views.md lists every view with its columns; tests/unit/test_analyst_views.py holds each
-- figure to a computation from the events and the pure folds.

-- The brief's channel table (domain.md section 2) as data, one row per symbol of the schemas' Channel
-- enum (schemas/common/touchstream.common.Channel.avsc), so every channel column can join it.
-- source: 'table' = the brief's channel table (store and field_sales are its "personal selling /
-- store" row); 'text' = the brief's prose (SMS: cheap, instant); 'inferred' = a meeting is personal
-- selling face to face, so it takes that row; 'none' = the brief gives no properties, left NULL
-- rather than guessed. synchronous (both sides present at once) is a property of the medium itself,
-- not of the brief; NULL for web, which carries both self-service pages and live chat. The brief
-- gives no richness or reach per channel, so there are no such columns.
-- relative_cost: the brief gives cost levels only, so this is a convention, not a measurement: each
-- level doubles the cost of a contact (low 1, medium 2, high 4, very high 8), in line with the one
-- ratio the brief states (phone tag "roughly doubles" the cost). Replace it with real unit costs.
-- Question: What does each channel cost, how fast, tangible, controllable and personal is it?
-- Example: SELECT channel, cost_level, relative_cost, speed, synchronous FROM channel_reference ORDER BY relative_cost DESC NULLS LAST, channel;
CREATE OR REPLACE VIEW channel_reference AS
SELECT channel, touchpoint, cost_level,
       CASE cost_level WHEN 'low' THEN 1 WHEN 'medium' THEN 2 WHEN 'high' THEN 4 WHEN 'very high' THEN 8 END
           AS relative_cost,
       speed, tangibility, control, personalisation, synchronous, source
FROM (VALUES
    ('web',         'web site, forms, chat',          'low',       'instant',       'medium', 'high',       'high',        NULL,  'table'),
    ('email',       'e-mail',                         'low',       'instant',       'medium', 'high',       'high',        false, 'table'),
    ('phone',       'phone / call centre',            'high',      'moderate-slow', 'low',    'medium-low', 'medium-high', true,  'table'),
    ('postal_mail', 'postal mail',                    'medium',    'slow',          'high',   'medium-low', 'low-high',    false, 'table'),
    ('store',       'physical store',                 'very high', 'moderate-slow', 'varies', 'medium-low', 'high',        true,  'table'),
    ('field_sales', 'personal selling in the field',  'very high', 'moderate-slow', 'varies', 'medium-low', 'high',        true,  'table'),
    ('meeting',     'meetings',                       'very high', 'moderate-slow', 'varies', 'medium-low', 'high',        true,  'inferred'),
    ('sms',         'SMS reminders and updates',      'low',       'instant',       NULL,     NULL,         NULL,          false, 'text'),
    ('social',      'social media comments, reviews', NULL,        NULL,            NULL,     NULL,         NULL,          false, 'none'),
    ('document',    'contracts, proposals',           NULL,        NULL,            NULL,     NULL,         NULL,          false, 'none'),
    ('unknown',     'channel not given',              NULL,        NULL,            NULL,     NULL,         NULL,          NULL,  'none')
) AS t(channel, touchpoint, cost_level, speed, tangibility, control, personalisation, synchronous, source);

-- Volume from the interaction log (every event; by_customer / by_company by envelope.initiated_by,
-- share_pct of all events). Customers and contacts from the customer-360 (customer_channels: one
-- contact per call, mail with its opens and clicks, web session...), anonymous profiles included.
-- Why cost on contacts and not on events: a mail sent, delivered, opened and clicked is four events
-- but one message the company paid for. cost_to_serve = contacts x relative_cost (channel_reference;
-- NULL where the brief gives no cost); cost_share_pct is its share of the costed total.
-- Question: Which channels carry the interactions, who starts them, and what do they cost to serve?
-- Example: SELECT channel, events, share_pct, contacts, cost_to_serve, cost_share_pct FROM channel_mix ORDER BY cost_to_serve DESC NULLS LAST;
CREATE OR REPLACE VIEW channel_mix AS
WITH logged AS (
    SELECT channel, count(*) AS events,
           count(*) FILTER (WHERE initiated_by = 'customer') AS by_customer,
           count(*) FILTER (WHERE initiated_by = 'company') AS by_company
    FROM interactions GROUP BY channel
), served AS (
    -- One customer_channels row per (customer, channel): count(*) counts customers, far cheaper than DISTINCT.
    SELECT channel, count(*) AS customers, CAST(sum(contacts) AS BIGINT) AS contacts,
           CAST(sum(customer_initiated) AS BIGINT) AS customer_contacts,
           CAST(sum(company_initiated) AS BIGINT) AS company_contacts
    FROM customer_channels GROUP BY channel
), mix AS (
    SELECT channel, coalesce(events, 0) AS events, coalesce(by_customer, 0) AS by_customer,
           coalesce(by_company, 0) AS by_company, coalesce(customers, 0) AS customers,
           coalesce(contacts, 0) AS contacts, coalesce(customer_contacts, 0) AS customer_contacts,
           coalesce(company_contacts, 0) AS company_contacts, r.cost_level, r.relative_cost,
           coalesce(contacts, 0) * r.relative_cost AS cost_to_serve
    FROM logged FULL JOIN served USING (channel) LEFT JOIN channel_reference r USING (channel)
)
SELECT channel, events, by_customer, by_company,
       round(100.0 * events / nullif(sum(events) OVER (), 0), 2) AS share_pct,
       customers, contacts, customer_contacts, company_contacts, cost_level, relative_cost, cost_to_serve,
       round(100.0 * cost_to_serve / nullif(sum(cost_to_serve) OVER (), 0), 2) AS cost_share_pct
FROM mix
ORDER BY events DESC, channel;

-- The preferred media package of known customers (a channel mix the company can address; an
-- anonymous profile cannot be written to). preferred: customers whose rank-1 channel it is ('(none)':
-- no package yet); share_pct of known customers; customers: known customers with contacts on the
-- channel; mean_score and mean_response_rate: means over those customers (customer_channels).
-- Question: Through which channels do our customers prefer to be reached, and how strongly?
-- Example: SELECT channel, preferred, share_pct, mean_score FROM pmp_distribution ORDER BY preferred DESC;
CREATE OR REPLACE VIEW pmp_distribution AS
WITH known AS (
    SELECT preferred_channel, channel_rows FROM customer_360_lists WHERE known
), pref AS (
    SELECT coalesce(preferred_channel, '(none)') AS channel, count(*) AS preferred FROM known GROUP BY ALL
), used AS (
    SELECT channel, count(*) AS customers, avg(pmp_score) AS mean_score, avg(response_rate) AS mean_response_rate
    FROM (SELECT unnest(channel_rows, recursive := true) FROM known) GROUP BY channel
)
SELECT channel, coalesce(preferred, 0) AS preferred,
       round(100.0 * coalesce(preferred, 0) / nullif((SELECT count(*) FROM known), 0), 2) AS share_pct,
       coalesce(customers, 0) AS customers, round(mean_score, 4) AS mean_score,
       round(mean_response_rate, 4) AS mean_response_rate
FROM pref FULL JOIN used USING (channel)
ORDER BY preferred DESC, customers DESC, channel;

-- One row per customer-360 profile. company_contacts: contacts the company initiated (campaigns,
-- invoices, notices; a reply to the customer is not pressure). The rate is over the days from the
-- customer's first_seen to the latest last_seen of any profile (the 360's "now" in event time), at
-- least 30, so a customer met last week is not extrapolated from a burst. channels: channels with
-- contacts; company_channels: those the company used; findings: touchmap findings of every kind
-- (overload_findings: over the cap of company messages in a week, see customer_360_touchmap).
-- Question: How hard does the company press each customer, on how many channels, and with what findings?
-- Example: SELECT customer_id, company_contacts_per_30d, company_channels, findings FROM contact_pressure WHERE known ORDER BY company_contacts_per_30d DESC LIMIT 20;
CREATE OR REPLACE VIEW contact_pressure AS
WITH now_ AS (
    SELECT max(last_seen) AS until FROM customer_360
), p AS (   -- the sums of each customer's channel and finding rows are typed columns of its row
    SELECT c.customer_id, c.known, c.first_seen, c.last_seen, c.channels, c.findings, c.open_complaints,
           CAST(c.company_contacts AS BIGINT) AS company_contacts,
           CAST(c.customer_contacts AS BIGINT) AS customer_contacts,
           CAST(c.company_channels AS BIGINT) AS company_channels,
           CAST(c.overload_findings AS BIGINT) AS overload_findings,
           greatest(coalesce(epoch(n.until) - epoch(c.first_seen), 0) / 86400.0, 30.0) AS observed_days
    FROM customer_360 c CROSS JOIN now_ n
)
SELECT customer_id, known, first_seen, last_seen,
       round(observed_days, 2) AS observed_days, company_contacts, customer_contacts,
       round(company_contacts * 30.0 / observed_days, 2) AS company_contacts_per_30d,
       channels, company_channels, findings, overload_findings, open_complaints
FROM p;

-- Known customers by company-initiated contacts per 30 days (contact_pressure), in buckets that double
-- (the touchmap's overload cap, 5 company messages in 7 days, is about 21 per 30 days: the top
-- bucket). low < rate <= high (low NULL: exactly 0; high NULL: no upper bound). Every bucket is a row,
-- so a chart keeps its axis. with_findings / with_overload: customers of the bucket with any touchmap
-- finding / an overload finding: does pressure go with friction?
-- Question: How are customers spread over contact pressure, and where do the findings sit?
-- Example: SELECT bucket, customers, share_pct, with_findings FROM contact_pressure_distribution ORDER BY bucket_order;
CREATE OR REPLACE VIEW contact_pressure_distribution AS
WITH buckets(bucket_order, bucket, low, high) AS (
    VALUES (1, '0', NULL, 0), (2, '>0-2', 0, 2), (3, '>2-4', 2, 4), (4, '>4-8', 4, 8), (5, '>8-16', 8, 16),
           (6, '>16', 16, NULL)
), k AS (
    SELECT company_contacts_per_30d AS rate, findings, overload_findings FROM contact_pressure WHERE known
), g AS (   -- each customer's bucket: 1 + the lower bounds its rate exceeds (the buckets are in order)
    SELECT 1 + len(list_filter(l.lows, lambda low: k.rate > low)) AS bucket_order, count(*) AS customers,
           count(*) FILTER (WHERE k.findings > 0) AS with_findings,
           count(*) FILTER (WHERE k.overload_findings > 0) AS with_overload
    FROM k CROSS JOIN (SELECT list(low ORDER BY bucket_order) AS lows FROM buckets WHERE low IS NOT NULL) l
    GROUP BY ALL
)
SELECT b.bucket, b.bucket_order, b.low, b.high, coalesce(g.customers, 0) AS customers,
       round(100.0 * coalesce(g.customers, 0) / nullif((SELECT CAST(sum(customers) AS BIGINT) FROM g), 0), 2)
           AS share_pct,
       coalesce(g.with_findings, 0) AS with_findings, coalesce(g.with_overload, 0) AS with_overload
FROM buckets b LEFT JOIN g USING (bucket_order)
ORDER BY b.bucket_order;

-- Profiles by their current journey stage (customer_360.journey_stage: the latest signal decides;
-- customer_360_timeline.decide_stage), in the brief's order research, attraction, sale, after-sales
-- support; '(none)': no journey signal yet. A stage the list does not know still shows, last. Every
-- listed stage is a row. Anonymous profiles count: a web visitor researching is in the funnel.
-- with_purchase: profiles that have bought at some time (first_sale_at), whatever their stage now.
-- Question: Where in the relationship are our customers now?
-- Example: SELECT stage, customers, share_pct, with_purchase FROM journey_funnel ORDER BY stage_order;
CREATE OR REPLACE VIEW journey_funnel AS
WITH stages(stage_order, stage) AS (
    VALUES (1, 'research'), (2, 'attraction'), (3, 'sale'), (4, 'support'), (5, '(none)')
), g AS (   -- counted per stage first: the stage list then joins five rows, not every profile
    SELECT coalesce(journey_stage, '(none)') AS stage, count(*) AS customers, count(*) FILTER (WHERE known) AS known,
           count(*) FILTER (WHERE NOT known) AS anonymous, count(first_sale_at) AS with_purchase
    FROM customer_360 GROUP BY ALL
)
SELECT stage, s.stage_order, coalesce(g.customers, 0) AS customers,
       round(100.0 * coalesce(g.customers, 0) / nullif((SELECT CAST(sum(customers) AS BIGINT) FROM g), 0), 2)
           AS share_pct,
       coalesce(g.known, 0) AS known, coalesce(g.anonymous, 0) AS anonymous,
       coalesce(g.with_purchase, 0) AS with_purchase
FROM stages s FULL JOIN g USING (stage)
ORDER BY s.stage_order NULLS LAST, stage;

-- Complaint cases by the lifecycle stages they ever reached. case_view keeps no state history, so the
-- stages are read off the case's accepted complaint.* steps (complaint_events threads them to the
-- case with their type and time; case_view.anomalies names the refused ones,
-- a <kind>_before_open step being applied all the same) following the state machine
-- (complaint_case_machine.TABLE), steps ordered by (occurred_at, event_id) as the machine orders them:
--   - opened: every case (an implicit open counts);
--   - acknowledged: an accepted acknowledgement while the case was still only opened, i.e. before its
--     first accepted update, callback promise, resolution or closure (later it changes no state);
--   - in_progress: an accepted update before the first resolution or closure, a reopen, or a kept
--     callback (phone.callback_made, case_view.callbacks.kept_at) before it (approximation: a kept
--     callback while a second promise is still pending does not take the machine there; here it counts);
--   - callback_promised: an accepted promise;
--   - resolved, closed, reopened: resolved_at, closed_at, reopen_count > 0.
-- Also: now_in_stage counts the cases whose state is the stage now. Every stage is a row.
-- Question: How far do complaint cases get through the lifecycle, and how many come back?
-- Example: SELECT stage, cases, share_pct, now_in_stage FROM complaint_funnel ORDER BY stage_order;
CREATE OR REPLACE VIEW complaint_funnel AS
WITH stages(stage_order, stage) AS (
    VALUES (1, 'opened'), (2, 'acknowledged'), (3, 'in_progress'), (4, 'callback_promised'), (5, 'resolved'),
           (6, 'closed'), (7, 'reopened')
), anomalies AS (   -- complaint_cases.anomalies and callbacks_promised count the lists: others are not parsed
    SELECT case_id, unnest(from_json(case_view -> 'anomalies', '[{"event_id": "VARCHAR", "reason": "VARCHAR"}]'),
                           recursive := true)
    FROM complaint_cases WHERE anomalies > 0
), steps AS (
    SELECT e.case_id, substr(e.event_type, length('complaint.') + 1) AS kind,
           {'at': e.occurred_at, 'id': e.event_id} AS mark
    FROM complaint_events e   -- its typed event_type: no join of a million events to the interaction log
    WHERE e.event_type LIKE 'complaint.%'
      AND NOT EXISTS (SELECT 1 FROM anomalies a WHERE a.case_id = e.case_id AND a.event_id = e.event_id
                                                  AND NOT ends_with(a.reason, '_before_open'))
), firsts AS (
    SELECT case_id,
           min(mark) FILTER (WHERE kind = 'acknowledged') AS acknowledged,
           min(mark) FILTER (WHERE kind IN ('updated', 'callback_promised', 'resolved', 'closed')) AS moved_on,
           min(mark) FILTER (WHERE kind = 'updated') AS updated,
           min(mark) FILTER (WHERE kind IN ('resolved', 'closed')) AS finished,
           count(*) FILTER (WHERE kind = 'callback_promised') AS promises
    FROM steps GROUP BY case_id
), kept AS (
    SELECT case_id, min(CAST(kept_at AS TIMESTAMPTZ)) AS kept_at
    FROM (SELECT case_id, unnest(from_json(case_view -> 'callbacks', '[{"kept_at": "VARCHAR"}]'), recursive := true)
          FROM complaint_cases WHERE callbacks_promised > 0)
    GROUP BY case_id
), reached AS (
    SELECT c.case_id, true AS opened,
           coalesce(f.acknowledged IS NOT NULL AND (f.moved_on IS NULL OR f.acknowledged < f.moved_on), false)
               AS acknowledged,
           coalesce((f.updated IS NOT NULL AND (f.finished IS NULL OR f.updated < f.finished))
                    OR (k.kept_at IS NOT NULL AND (f.finished IS NULL OR k.kept_at < f.finished.at)), false)
               OR c.reopen_count > 0 AS in_progress,
           coalesce(f.promises, 0) > 0 AS callback_promised, c.resolved_at IS NOT NULL AS resolved,
           c.closed_at IS NOT NULL AS closed, c.reopen_count > 0 AS reopened
    FROM complaint_cases c LEFT JOIN firsts f USING (case_id) LEFT JOIN kept k USING (case_id)
), hits AS (
    UNPIVOT reached ON opened, acknowledged, in_progress, callback_promised, resolved, closed, reopened
    INTO NAME stage VALUE hit
)
SELECT s.stage, s.stage_order, count(h.case_id) FILTER (WHERE h.hit) AS cases,
       round(100.0 * count(h.case_id) FILTER (WHERE h.hit) / nullif((SELECT count(*) FROM complaint_cases), 0), 2)
           AS share_pct,
       (SELECT count(*) FROM complaint_cases c WHERE c.state = s.stage) AS now_in_stage
FROM stages s LEFT JOIN hits h USING (stage)
GROUP BY s.stage, s.stage_order
ORDER BY s.stage_order;

-- Breached SLA clocks (complaint_breaches: met late, or unmet past due) by the UTC day they fell due
-- and clock kind. cases: distinct cases; open_cases: of those, still open now.
-- Question: On which days did we break our response-time promises, and which promises?
-- Example: SELECT day, clock_kind, breaches, open_cases FROM sla_breaches_daily ORDER BY day DESC, clock_kind;
CREATE OR REPLACE VIEW sla_breaches_daily AS
SELECT CAST(timezone('UTC', due_at) AS DATE) AS day, clock_kind, count(*) AS breaches,
       count(DISTINCT case_id) AS cases, count(DISTINCT case_id) FILTER (WHERE is_open) AS open_cases
FROM complaint_breaches
GROUP BY ALL
ORDER BY day, clock_kind;

-- First-contact resolution (complaint_case_facts.fcr: resolved in the first contact, no callback, no
-- reopen, no further contact about it on any channel within 7 days) by dimension: the case's origin
-- channel, product, assigned team, cause and touchpoint (domain.md section 5: analyse complaints by
-- product, channel, cause and touchpoint). judged: cases with an FCR verdict (resolved ones);
-- fcr_rate = fcr / judged. value NULL: the case does not name it.
-- Question: Where do we resolve complaints at the first contact, and where not?
-- Example: SELECT dimension, value, cases, judged, fcr_rate FROM fcr_by_dimension WHERE dimension = 'team' ORDER BY fcr_rate;
CREATE OR REPLACE VIEW fcr_by_dimension AS
WITH d AS (
    SELECT fcr, unnest([{'dimension': 'channel', 'value': origin_channel}, {'dimension': 'product', 'value': product},
                        {'dimension': 'team', 'value': assigned_team}, {'dimension': 'cause', 'value': cause},
                        {'dimension': 'touchpoint', 'value': touchpoint}], recursive := true)
    FROM complaint_case_facts
)
SELECT dimension, value, count(*) AS cases, count(*) FILTER (WHERE fcr) AS fcr, count(fcr) AS judged,
       round(count(*) FILTER (WHERE fcr) / nullif(count(fcr), 0), 4) AS fcr_rate
FROM d
GROUP BY dimension, value
ORDER BY array_position(['channel', 'product', 'team', 'cause', 'touchpoint'], dimension), cases DESC,
         value NULLS FIRST;

-- The channel rows of fcr_by_dimension: channel is the case's origin channel.
-- Question: Which channels resolve complaints at the first contact?
-- Example: SELECT channel, cases, fcr, judged, fcr_rate FROM fcr_by_channel ORDER BY cases DESC;
CREATE OR REPLACE VIEW fcr_by_channel AS
SELECT value AS channel, cases, fcr, judged, fcr_rate FROM fcr_by_dimension WHERE dimension = 'channel';

-- Phone tag (domain.md section 5: a callback promise roughly doubles the cost): cases with a callback
-- promise against cases without, with their contacts on any channel, extra contacts (started after
-- the first promise until the case was finished) and handle time (talk, visit, chat and help-desk
-- effort). contacts_ratio / handle_ratio: per case, relative to cases without a callback. Open cases
-- count with the contacts and time spent so far (open_cases says how many). Both rows always show.
-- Question: What does a callback promise cost in contacts and handling time?
-- Example: SELECT cases_with, cases, contacts_per_case, handle_minutes_per_case, handle_ratio FROM callback_cost;
CREATE OR REPLACE VIEW callback_cost AS
WITH g AS (
    SELECT t.phone_tag, count(f.case_id) AS cases, count(f.case_id) FILTER (WHERE f.is_open) AS open_cases,
           CAST(coalesce(sum(f.callbacks_promised), 0) AS BIGINT) AS callbacks_promised,
           CAST(coalesce(sum(f.callbacks_missed), 0) AS BIGINT) AS callbacks_missed,
           CAST(coalesce(sum(f.contacts), 0) AS BIGINT) AS contacts, avg(f.contacts) AS contacts_per_case,
           CAST(coalesce(sum(f.extra_contacts), 0) AS BIGINT) AS extra_contacts,
           avg(f.extra_contacts) AS extra_contacts_per_case,
           coalesce(sum(f.handle_seconds), 0) / 60 AS handle_minutes, avg(f.handle_seconds) / 60 AS handle_minutes_per_case
    FROM (VALUES (true), (false)) AS t(phone_tag)
    LEFT JOIN complaint_case_facts f ON f.phone_tag = t.phone_tag
    GROUP BY t.phone_tag
)
SELECT CASE WHEN g.phone_tag THEN 'callback promised' ELSE 'no callback' END AS cases_with, g.phone_tag,
       g.cases, g.open_cases, g.callbacks_promised, g.callbacks_missed, g.contacts,
       round(g.contacts_per_case, 2) AS contacts_per_case, g.extra_contacts,
       round(g.extra_contacts_per_case, 2) AS extra_contacts_per_case, round(g.handle_minutes, 1) AS handle_minutes,
       round(g.handle_minutes_per_case, 1) AS handle_minutes_per_case,
       round(g.contacts_per_case / nullif(n.contacts_per_case, 0), 2) AS contacts_ratio,
       round(g.handle_minutes_per_case / nullif(n.handle_minutes_per_case, 0), 2) AS handle_ratio
FROM g CROSS JOIN (SELECT * FROM g WHERE NOT phone_tag) n
ORDER BY g.phone_tag DESC;

-- Complaint satisfaction (complaint.satisfaction_given, 1-5, the latest) by resolution path as
-- complaint_loyalty_cases classifies it (fcr, callback, other_resolved, unresolved; cases with a
-- customer). rated: cases with a score; satisfied: score 4-5. Every path is a row.
-- Question: Are customers resolved at first contact more satisfied than those given a callback?
-- Example: SELECT path, cases, rated, mean_score, satisfied_share FROM satisfaction_by_path;
CREATE OR REPLACE VIEW satisfaction_by_path AS
WITH paths(path_order, path) AS (
    VALUES (1, 'fcr'), (2, 'callback'), (3, 'other_resolved'), (4, 'unresolved')
), c AS (
    SELECT l.path, f.satisfaction_score AS score
    FROM complaint_case_paths l JOIN complaint_case_facts f USING (case_id)
)
SELECT p.path, count(c.path) AS cases, count(c.score) AS rated, round(avg(c.score), 2) AS mean_score,
       count(c.score) FILTER (WHERE c.score >= 4) AS satisfied,
       round(count(c.score) FILTER (WHERE c.score >= 4) / nullif(count(c.score), 0), 4) AS satisfied_share
FROM paths p LEFT JOIN c USING (path)
GROUP BY p.path, p.path_order
ORDER BY p.path_order;

-- Closed loop (domain.md section 7): purchases (commerce.order_placed, store.purchase_completed) and
-- their revenue in the 90 days up to the case's opening against the 90 days after it, by resolution
-- path (complaint_loyalty_cases), over every interaction of the canonical customer whatever
-- identifier it carried (complaint_customer_interactions). Before: (opened - 90 days, opened];
-- after: (opened, opened + 90 days]. One currency assumed, as complaint_loyalty. full_window_cases:
-- both windows lie inside the interaction log (first to latest event), so neither is cut short.
-- Only complaint cases: other inbound service contacts have no resolution path and no single moment
-- to measure around. Every path is a row.
-- Question: Do customers buy more or less after a complaint, depending on how it was handled?
-- Example: SELECT path, cases, revenue_before, revenue_after, revenue_change_pct FROM revenue_around_contact;
CREATE OR REPLACE VIEW revenue_around_contact AS
WITH paths(path_order, path) AS (
    VALUES (1, 'fcr'), (2, 'callback'), (3, 'other_resolved'), (4, 'unresolved')
), c AS (
    SELECT case_id, customer_id, path, opened_at FROM complaint_case_paths
), bought AS (
    SELECT c.case_id, i.occurred_at > c.opened_at AS after, i.amount
    FROM c JOIN complaint_customer_interactions i ON i.customer_id = c.customer_id
    WHERE i.event_type IN ('commerce.order_placed', 'store.purchase_completed')
      AND i.occurred_at > c.opened_at - INTERVAL 90 DAY AND i.occurred_at <= c.opened_at + INTERVAL 90 DAY
), per_case AS (
    SELECT c.case_id, c.customer_id, c.path,
           count(b.case_id) FILTER (WHERE NOT b.after) AS purchases_before,
           count(b.case_id) FILTER (WHERE b.after) AS purchases_after,
           coalesce(sum(b.amount) FILTER (WHERE NOT b.after), 0) AS revenue_before,
           coalesce(sum(b.amount) FILTER (WHERE b.after), 0) AS revenue_after,
           c.opened_at - INTERVAL 90 DAY >= (SELECT min(occurred_at) FROM interactions)
               AND c.opened_at + INTERVAL 90 DAY <= (SELECT max(occurred_at) FROM interactions) AS full_window
    FROM c LEFT JOIN bought b USING (case_id)
    GROUP BY c.case_id, c.customer_id, c.path, c.opened_at
)
SELECT p.path, count(pc.case_id) AS cases, count(DISTINCT pc.customer_id) AS customers,
       CAST(coalesce(sum(pc.purchases_before), 0) AS BIGINT) AS purchases_before,
       CAST(coalesce(sum(pc.purchases_after), 0) AS BIGINT) AS purchases_after,
       CAST(coalesce(sum(pc.revenue_before), 0) AS DECIMAL(18, 2)) AS revenue_before,
       CAST(coalesce(sum(pc.revenue_after), 0) AS DECIMAL(18, 2)) AS revenue_after,
       CAST(coalesce(sum(pc.revenue_after), 0) - coalesce(sum(pc.revenue_before), 0) AS DECIMAL(18, 2)) AS revenue_change,
       round(100.0 * (sum(pc.revenue_after) - sum(pc.revenue_before)) / nullif(sum(pc.revenue_before), 0), 2)
           AS revenue_change_pct,
       count(pc.case_id) FILTER (WHERE pc.full_window) AS full_window_cases
FROM paths p LEFT JOIN per_case pc USING (path)
GROUP BY p.path, p.path_order
ORDER BY p.path_order;

-- Reliability per touchpoint (domain.md section 6: responsiveness, availability, consistency,
-- timeliness), one row per channel of channel_reference. A column is NULL where its measure does not
-- apply to the channel; a count is 0 where it applies and nothing happened.
-- Responsiveness:
--   - *_wait_seconds (phone): wait_seconds of answered inbound calls (phone.call_answered; inbound by
--     the call's phone.call_started / call_ended direction);
--   - *_reply_seconds (written channels): from a customer's message to the company's first reply
--     naming it (in_reply_to: email.received -> email.sent, sms.received -> sms.sent,
--     postal.mail_received -> mail_sent, social comment or review -> social.reply_sent); for web, the
--     response_seconds of the agents' chat messages; NULL for store, meeting, field sales and
--     documents, whose events name no request they answer;
--   - *_first_response_seconds (every channel): complaint cases by origin channel (complaint_case_facts).
-- Availability: the share of attempts that reached somebody (availability_rate = contacts_reached /
--   contact_attempts):
--   - phone: inbound calls answered against inbound calls ended unanswered (abandoned, no answer,
--     voicemail); calls still ringing are not counted yet;
--   - web: customer chat conversations, reached when an agent wrote in them;
--   - other channels: NULL, no event records a failed attempt to reach the company by mail, SMS,
--     social, store or meeting.
-- Consistency: consistency_rate = share of the customers with contacts on the channel whose touchmap
--   has no inconsistency finding naming it: conflict (a promotion sent there while a complaint was
--   open) or a question or form field asked again (repeat_question, repeated_request). Not
--   measurable: whether two agents gave a customer contradicting answers (events carry no answers).
-- Timeliness: sla_met_share = SLA clocks of complaints from the channel met in time among those
--   decided (complaint_sla_compliance, by the case's origin channel).
-- Question: How reliable is each touchpoint: quick to answer, reachable, consistent, on time?
-- Example: SELECT channel, median_wait_seconds, median_reply_seconds, availability_rate, consistency_rate, sla_met_share FROM cem_touchpoints;
CREATE OR REPLACE VIEW cem_touchpoints AS
WITH phone AS (   -- one cem_calls row per call (the interaction log's rollup of its phone.call_* events)
    SELECT 'phone' AS channel, count(*) FILTER (WHERE answered) AS answered_calls,
           avg(wait_seconds) FILTER (WHERE answered) AS mean_wait,
           median(wait_seconds) FILTER (WHERE answered) AS median_wait, count(*) FILTER (WHERE answered) AS reached,
           count(*) FILTER (WHERE answered OR ended) AS attempts
    FROM cem_calls WHERE inbound
), chats AS (   -- one cem_chats row per conversation (the interaction log's rollup of its chat messages)
    SELECT 'web' AS channel, count(*) AS attempts, count(*) FILTER (WHERE agent) AS reached
    FROM cem_chats WHERE customer
), replies AS (   -- cem_messages: a customer's message with the first reply naming it (interaction log rollup)
    SELECT channel, epoch(replied_at) - epoch(asked_at) AS seconds FROM cem_messages
    WHERE asked_at IS NOT NULL AND replied_at IS NOT NULL
    UNION ALL
    SELECT 'web', response_seconds FROM interactions
    WHERE response_seconds IS NOT NULL AND sender = 'agent' AND conversation_id IS NOT NULL
      AND event_type = 'web.chat_message_sent'
), reply AS (
    SELECT channel, count(*) AS replies, avg(seconds) AS mean_reply, median(seconds) AS median_reply
    FROM replies GROUP BY channel
), first_response AS (
    SELECT origin_channel AS channel, count(*) AS cases, avg(first_response_seconds) AS mean_first,
           median(first_response_seconds) AS median_first
    FROM complaint_case_facts GROUP BY origin_channel
), users AS (
    SELECT channel, count(*) AS customers FROM customer_channels GROUP BY channel   -- one row per pair
), findings AS (
    SELECT channel, count(*) FILTER (WHERE kind = 'conflict') AS conflicts,
           count(*) FILTER (WHERE kind <> 'conflict') AS repeats,
           -- a share of the channel's customers: only those with contacts on it
           count(DISTINCT customer_id) FILTER (WHERE list_contains(used, channel)) AS customers
    FROM (SELECT customer_id, f.kind, unnest(f.channels) AS channel,
                 list_transform(channel_rows, lambda c: c.channel) AS used
          FROM (SELECT customer_id, channel_rows, unnest(finding_rows) AS f FROM customer_360_lists WHERE findings > 0)
          WHERE f.kind IN ('conflict', 'repeat_question', 'repeated_request'))
    GROUP BY channel
), sla AS (
    SELECT channel, CAST(sum(met) AS BIGINT) AS met, CAST(sum(met) + sum(breached) AS BIGINT) AS decided
    FROM complaint_sla_compliance GROUP BY channel
), writes AS (   -- the channels whose replies can be timed
    SELECT unnest(['email', 'sms', 'postal_mail', 'social', 'web']) AS channel
)
SELECT r.channel,
       CASE WHEN r.channel = 'phone' THEN p.answered_calls END AS answered_calls,
       round(p.mean_wait, 1) AS mean_wait_seconds, round(p.median_wait, 1) AS median_wait_seconds,
       CASE WHEN w.channel IS NOT NULL THEN coalesce(rp.replies, 0) END AS replies,
       round(rp.mean_reply, 1) AS mean_reply_seconds, round(rp.median_reply, 1) AS median_reply_seconds,
       coalesce(fr.cases, 0) AS complaint_cases, round(fr.mean_first, 1) AS mean_first_response_seconds,
       round(fr.median_first, 1) AS median_first_response_seconds,
       coalesce(p.attempts, ch.attempts) AS contact_attempts, coalesce(p.reached, ch.reached) AS contacts_reached,
       round(coalesce(p.reached, ch.reached) / nullif(coalesce(p.attempts, ch.attempts), 0), 4) AS availability_rate,
       coalesce(u.customers, 0) AS customers, coalesce(fi.customers, 0) AS customers_with_inconsistency,
       coalesce(fi.conflicts, 0) AS conflict_findings, coalesce(fi.repeats, 0) AS repeat_findings,
       round(1 - coalesce(fi.customers, 0) / nullif(u.customers, 0), 4) AS consistency_rate,
       coalesce(s.decided, 0) AS sla_decided, coalesce(s.met, 0) AS sla_met,
       round(s.met / nullif(s.decided, 0), 4) AS sla_met_share
FROM channel_reference r
LEFT JOIN phone p USING (channel) LEFT JOIN chats ch USING (channel) LEFT JOIN writes w USING (channel)
LEFT JOIN reply rp USING (channel) LEFT JOIN first_response fr USING (channel) LEFT JOIN users u USING (channel)
LEFT JOIN findings fi USING (channel) LEFT JOIN sla s USING (channel)
ORDER BY r.channel;
