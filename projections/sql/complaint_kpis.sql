-- Complaint KPIs for analysts: views only, over complaint_cases (+ case_view JSON), complaint_sla,
-- complaint_sla_events, complaint_events and interactions. Run after complaint_resolution.sql and
-- complaint_sla.sql; every view answers (with no rows, or zero totals) while those tables are empty.
-- Why views and not tables: the sink already rewrites a case's row whenever the case changes, so a
-- view is always in step with the cases and costs nothing to keep up (domain.md section 5).
-- Conventions: times are event times; days are UTC days; rates are rounded to 4 places and means
-- of seconds to 1 place (as complaint_case_fcr.summarise rounds them); a rate is null when its
-- denominator is 0.

-- One row per case with the case_view facts the columns do not carry (who raised it, the
-- touchpoint it is about, phone tag, wait, satisfaction) and whether any SLA clock breached.
-- Question: what does each case contribute to the KPIs? (The base of the views below; the demo
-- report filters it to one run's cases.)
CREATE OR REPLACE VIEW complaint_case_facts AS
SELECT c.case_id, c.customer_id, c.state, c.is_open, c.origin_channel, c.product, c.category, c.cause,
       c.priority, c.assigned_team, c.opened_at, CAST(timezone('UTC', c.opened_at) AS DATE) AS day,
       c.resolved_at, c.closed_at, c.reopen_count, c.contacts, c.callbacks_promised, c.callbacks_missed,
       c.first_response_seconds, c.resolution_seconds, c.handle_seconds, c.fcr, c.fcr_reason,
       c.v[1] AS initiated_by,
       -- about_channel is set only when the complaint is about another touchpoint than where it was filed
       coalesce(c.v[2], c.origin_channel) AS touchpoint,
       coalesce(CAST(c.v[3] AS BOOLEAN), false) AS phone_tag,
       coalesce(CAST(c.v[4] AS INTEGER), 0) AS extra_contacts,
       CAST(c.v[5] AS DOUBLE) AS wait_seconds,
       -- complaint.satisfaction_given.score: 1 (very dissatisfied) to 5 (very satisfied); the latest one
       CAST(c.v[6] AS INTEGER) AS satisfaction_score,
       coalesce(s.clocks, 0) AS sla_clocks, coalesce(s.breached_clocks, 0) AS sla_breached_clocks,
       coalesce(s.breached_clocks, 0) > 0 AS sla_breached
FROM (SELECT *,   -- case_view parsed once per case for all its facts (one ->> per fact parsed it six times)
             json_extract_string(case_view, ['$.initiated_by', '$.about_channel', '$.metrics.phone_tag',
                                             '$.metrics.extra_contacts', '$.metrics.wait_seconds',
                                             '$.satisfaction.complaint_satisfaction.score']) AS v
      FROM complaint_cases) c
LEFT JOIN (SELECT case_id, count(*) AS clocks, count(*) FILTER (WHERE breached) AS breached_clocks
           FROM complaint_sla GROUP BY case_id) s USING (case_id);

-- Question: per day a case was opened (UTC), origin channel, product and team, how many cases came
-- in, how did they end, how efficient (response, resolution, handle time) and how effective (FCR,
-- reopens, phone tag, SLA, satisfaction) was the handling? resolved = resolved at least once;
-- closed = closed now; still_open = open now (a reopened case is open again). Satisfied: score 4-5.
CREATE OR REPLACE VIEW complaint_kpis AS
SELECT day, origin_channel, product, assigned_team,
       count(*) AS opened,
       count(*) FILTER (WHERE resolved_at IS NOT NULL) AS resolved,
       count(*) FILTER (WHERE state = 'closed') AS closed,
       count(*) FILTER (WHERE is_open) AS still_open,
       count(*) FILTER (WHERE reopen_count > 0) AS reopened_cases,
       sum(reopen_count) AS reopens,
       count(*) FILTER (WHERE fcr) AS fcr,
       count(fcr) AS fcr_judged,
       round(count(*) FILTER (WHERE fcr) / nullif(count(fcr), 0), 4) AS fcr_rate,
       sum(callbacks_promised) AS callbacks_promised,
       sum(callbacks_missed) AS callbacks_missed,
       count(*) FILTER (WHERE phone_tag) AS phone_tag_cases,
       sum(extra_contacts) AS extra_contacts,
       count(*) FILTER (WHERE sla_breached) AS sla_breached_cases,
       round(avg(wait_seconds), 1) AS mean_wait_seconds,
       round(avg(first_response_seconds), 1) AS mean_first_response_seconds,
       round(median(first_response_seconds), 1) AS median_first_response_seconds,
       round(avg(resolution_seconds), 1) AS mean_resolution_seconds,
       round(median(resolution_seconds), 1) AS median_resolution_seconds,
       round(avg(handle_seconds), 1) AS mean_handle_seconds,
       count(satisfaction_score) AS rated,
       round(avg(satisfaction_score), 2) AS mean_satisfaction,
       round(count(*) FILTER (WHERE satisfaction_score >= 4) / nullif(count(satisfaction_score), 0), 4)
           AS satisfied_share
FROM complaint_case_facts
GROUP BY ALL
ORDER BY day, origin_channel NULLS FIRST, product NULLS FIRST, assigned_team NULLS FIRST;

-- Question: which product, cause, category, origin channel, team and touchpoint do complaints
-- cluster on, and do the same customers come back with the same problem? A cause with a large
-- share of all cases, many customers or a high repeat share is a problem in the service system,
-- not a single case. A repeat case: its customer already had an earlier case with the same
-- product, category and cause.
CREATE OR REPLACE VIEW complaint_causes AS
WITH f AS (
    SELECT *, customer_id IS NOT NULL AND row_number() OVER (
                  PARTITION BY customer_id, product, category, cause ORDER BY opened_at, case_id) > 1 AS repeat
    FROM complaint_case_facts
)
SELECT product, cause, category, origin_channel, assigned_team, touchpoint,
       count(*) AS cases,
       count(DISTINCT customer_id) AS customers,
       round(count(*) / (SELECT count(*) FROM complaint_cases), 4) AS share_of_cases,
       count(*) FILTER (WHERE repeat) AS repeat_cases,
       round(count(*) FILTER (WHERE repeat) / count(*), 4) AS repeat_share,
       count(*) FILTER (WHERE reopen_count > 0) AS reopened_cases,
       min(opened_at) AS first_opened_at,
       max(opened_at) AS last_opened_at
FROM f
GROUP BY ALL
ORDER BY cases DESC, product NULLS FIRST, cause NULLS FIRST, category NULLS FIRST, origin_channel NULLS FIRST,
         assigned_team NULLS FIRST, touchpoint NULLS FIRST;

-- Question: are the guaranteed response times kept? Per clock kind, priority, origin channel and
-- policy version: clocks, met in time, breached (met late or unmet past due), still running
-- (warning included) and compliance = met / (met + breached), i.e. over the clocks already decided.
CREATE OR REPLACE VIEW complaint_sla_compliance AS
SELECT clock_kind, priority, channel, policy_version,
       count(*) AS clocks,
       count(*) FILTER (WHERE state = 'met') AS met,
       count(*) FILTER (WHERE breached) AS breached,
       count(*) FILTER (WHERE state IN ('running', 'warning')) AS running,
       count(*) FILTER (WHERE state = 'warning') AS warning,
       round(count(*) FILTER (WHERE state = 'met')
             / nullif(count(*) FILTER (WHERE state = 'met' OR breached), 0), 4) AS compliance_rate
FROM complaint_sla
GROUP BY ALL
ORDER BY clock_kind, priority NULLS FIRST, channel NULLS FIRST, policy_version;

-- Question: which clocks breached, on which case, whose, with which team, and is the case still
-- open? Newest due time first; breach_event_id is the complaint.sla_breached published for the
-- clock (null before the timer sent it, or once withdrawn).
CREATE OR REPLACE VIEW complaint_breaches AS
SELECT s.case_id, c.customer_id, s.clock, s.clock_kind, s.priority, s.channel, s.policy_version,
       s.started_at, s.due_at, s.met_at, s.breached_at,
       c.state AS case_state, c.is_open, c.assigned_team, c.origin_channel, e.breach_event_id
FROM complaint_sla s
LEFT JOIN complaint_cases c USING (case_id)
LEFT JOIN (SELECT case_id, clock, max(event_id) AS breach_event_id FROM complaint_sla_events
           WHERE event_type = 'complaint.sla_breached' AND withdrawn_at IS NULL
           GROUP BY case_id, clock) e ON e.case_id = s.case_id AND e.clock = s.clock
WHERE s.breached
ORDER BY s.due_at DESC, s.case_id, s.clock;

-- Question (closed loop): what does each complaining customer do in the 90 days after the case
-- was resolved (after it was opened, while unresolved)? One row per case with a customer id.
-- path: fcr (resolved at first contact), callback (resolved after a callback promise, not FCR),
-- other_resolved, unresolved (never resolved: open, or closed without a resolution).
-- Later interactions: the customer's rows of complaint_customer_interactions after that instant,
-- within 90 days, leaving out the case's own events (complaint_events threads them to the case).
-- purchases: commerce.order_placed and store.purchase_completed; revenue: their amounts (one
-- currency assumed); inbound: interactions the customer initiated; churned: no interaction at all.
-- full_window: the 90 days have passed by the latest event in the log, so churn is settled.
-- Every interaction with the customer it belongs to. Here: the events' own customer_id hint, so
-- events known only by another identifier (a store receipt with a loyalty card, an anonymous
-- visit) are missed. The serving process replaces it with the customer-360's touchmap
-- (projections/sql/complaint_customer_360.sql: every identifier resolved to its customer).
CREATE OR REPLACE VIEW complaint_customer_interactions AS
SELECT customer_id, event_id, event_type, occurred_at, amount, currency, initiated_by
FROM interactions WHERE customer_id IS NOT NULL;

-- The cases of complaint_loyalty_cases with their path and since, without the later interactions:
-- the views that only group cases by path (satisfaction_by_path) read this, not the 90-day join.
CREATE OR REPLACE VIEW complaint_case_paths AS
SELECT case_id, customer_id,
       CASE WHEN resolved_at IS NULL THEN 'unresolved'
            WHEN fcr THEN 'fcr'
            WHEN callbacks_promised > 0 THEN 'callback'
            ELSE 'other_resolved' END AS path,
       coalesce(resolved_at, opened_at) AS since, opened_at
FROM complaint_cases
WHERE customer_id IS NOT NULL AND opened_at IS NOT NULL;

CREATE OR REPLACE VIEW complaint_loyalty_cases AS
WITH base AS (
    SELECT case_id, customer_id, path, since FROM complaint_case_paths
),
later AS (
    SELECT b.case_id, i.event_type, i.amount, i.currency, i.initiated_by
    FROM base b
    JOIN complaint_customer_interactions i ON i.customer_id = b.customer_id
                       AND i.occurred_at > b.since AND i.occurred_at <= b.since + INTERVAL 90 DAY
    WHERE NOT EXISTS (SELECT 1 FROM complaint_events e WHERE e.event_id = i.event_id AND e.case_id = b.case_id)
)
SELECT b.case_id, b.customer_id, b.path, b.since,
       count(l.case_id) AS interactions,
       count(l.case_id) FILTER (WHERE l.initiated_by = 'customer') AS inbound,
       count(l.case_id) FILTER (WHERE l.event_type IN ('commerce.order_placed', 'store.purchase_completed'))
           AS purchases,
       coalesce(sum(l.amount) FILTER (WHERE l.event_type IN ('commerce.order_placed', 'store.purchase_completed')),
                0) AS revenue,
       string_agg(DISTINCT l.currency, ',' ORDER BY l.currency)
           FILTER (WHERE l.event_type IN ('commerce.order_placed', 'store.purchase_completed')) AS currencies,
       count(l.case_id) = 0 AS churned,
       b.since + INTERVAL 90 DAY <= (SELECT max(occurred_at) FROM interactions) AS full_window
FROM base b
LEFT JOIN later l USING (case_id)
GROUP BY b.case_id, b.customer_id, b.path, b.since;

-- Question (domain.md section 5: loyalty after resolution): do customers whose complaint was
-- resolved at first contact buy more and churn less in the following 90 days than those who got
-- a callback promise, another resolution, or none? Per path; see complaint_loyalty_cases.
CREATE OR REPLACE VIEW complaint_loyalty AS
SELECT path,
       count(*) AS cases,
       count(DISTINCT customer_id) AS customers,
       round(sum(purchases) / count(*), 4) AS purchases_per_case,
       round(CAST(sum(revenue) AS DOUBLE) / count(*), 2) AS revenue_per_case,
       round(sum(inbound) / count(*), 4) AS inbound_per_case,
       round(count(*) FILTER (WHERE inbound > 0) / count(*), 4) AS inbound_share,
       count(*) FILTER (WHERE churned) AS churned,
       round(count(*) FILTER (WHERE churned) / count(*), 4) AS churn_rate,
       count(*) FILTER (WHERE full_window) AS full_window_cases,
       string_agg(DISTINCT currencies, ',' ORDER BY currencies) AS currencies
FROM complaint_loyalty_cases
GROUP BY path
ORDER BY array_position(['fcr', 'callback', 'other_resolved', 'unresolved'], path), path;

-- Question (complaint discovery): what share of complaints did the company find by proactive
-- outreach ("is there anything we could do better?", initiated_by company on complaint.opened)
-- rather than wait for the customer to raise them? Per origin channel, and over all channels
-- (origin_channel 'all channels'). Cases opened implicitly (no complaint.opened) count in cases only.
CREATE OR REPLACE VIEW complaint_discovery AS
SELECT CASE WHEN grouping(origin_channel) = 1 THEN 'all channels' ELSE origin_channel END AS origin_channel,
       count(*) AS cases,
       count(*) FILTER (WHERE initiated_by = 'company') AS by_company,
       count(*) FILTER (WHERE initiated_by = 'customer') AS by_customer,
       round(count(*) FILTER (WHERE initiated_by = 'company') / nullif(count(*), 0), 4) AS company_share
FROM complaint_case_facts
GROUP BY GROUPING SETS ((origin_channel), ())
ORDER BY grouping(origin_channel), cases DESC, origin_channel NULLS FIRST;
