-- Read state of notifications: the `notification` events in each user's
-- log (`user_events`), read one by one (`notification_reads`) or all up to
-- a cursor (`notification_marks.read_through`, which only moves forward).
-- A notification is read when its cursor is at or below the user's
-- `read_through` or it has a row in `notification_reads`.
CREATE TABLE notification_reads (
    user_id UUID NOT NULL REFERENCES users (id),
    cursor  BIGINT NOT NULL,
    read_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, cursor)
);

CREATE TABLE notification_marks (
    user_id      UUID PRIMARY KEY REFERENCES users (id),
    read_through BIGINT NOT NULL,
    at           TIMESTAMPTZ NOT NULL
);

-- Listing and counting a user's notifications.
CREATE INDEX user_events_notifications_idx ON user_events (user_id, cursor)
    WHERE kind = 'notification';
