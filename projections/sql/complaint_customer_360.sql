-- Complaints meet the customer-360: the closed loop (complaint_loyalty_cases) sees every interaction
-- of the case's canonical customer, whatever identifier the event carried (a loyalty card at the
-- till, an e-mail address, a cookie once linked), from the 360's touchmap. Run by the serving
-- process once both sinks have created their tables (customer_timeline follows a 360 rebuild).
CREATE OR REPLACE VIEW complaint_customer_interactions AS
SELECT t.customer_id, t.event_id, t.event_type, t.occurred_at, t.amount, t.currency, t.initiated_by
FROM customer_timeline t;
