-- Merged into the CEM rollups (interaction_log.sql) in the interaction log's transaction, from the
-- batch's rows that were new to the log (_new_rows: those its INSERT returned), so a redelivered event,
-- already stored, merges nothing. Every merge is an OR or a minimum: the order in which events
-- arrive does not matter, so live equals a replay.
INSERT INTO cem_calls SELECT * FROM cem_call_rows('_new_rows')
ON CONFLICT (call_id) DO UPDATE SET
    inbound = cem_calls.inbound OR excluded.inbound, answered = cem_calls.answered OR excluded.answered,
    wait_seconds = least(cem_calls.wait_seconds, excluded.wait_seconds), ended = cem_calls.ended OR excluded.ended;
INSERT INTO cem_chats SELECT * FROM cem_chat_rows('_new_rows')
ON CONFLICT (conversation_id) DO UPDATE SET
    customer = cem_chats.customer OR excluded.customer, agent = cem_chats.agent OR excluded.agent;
INSERT INTO cem_messages SELECT * FROM cem_message_rows('_new_rows')
ON CONFLICT (channel, message) DO UPDATE SET
    asked_at = least(cem_messages.asked_at, excluded.asked_at),
    replied_at = least(cem_messages.replied_at, excluded.replied_at);
