-- Each seller's level as last computed, with the record it was computed
-- from (`SellerRecord` as JSON: completed and on-time orders, rating,
-- median response time, days selling). Recomputed on a schedule.
CREATE TABLE seller_levels (
    user_id     UUID PRIMARY KEY REFERENCES users (id),
    level       TEXT NOT NULL CHECK (level IN ('new', 'level_1', 'level_2', 'top_rated')),
    record      JSONB NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL
);

-- A seller's completed orders, for their record.
CREATE INDEX orders_seller_completed_idx ON orders (seller_id) WHERE status = 'completed';
-- The first messages of each sender in a conversation, for response times.
CREATE INDEX messages_sender_seq_idx ON messages (conversation_id, sender_id, seq);

-- When each order completed, for review reminders (also in `data`).
ALTER TABLE orders ADD COLUMN completed_at TIMESTAMPTZ;
UPDATE orders SET completed_at = (data->>'completed_at')::timestamptz WHERE status = 'completed';
CREATE INDEX orders_completed_at_idx ON orders (completed_at, id) WHERE status = 'completed';
