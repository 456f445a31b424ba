-- Moderation: the queue of items for admins, its feed, the append-only
-- audit log of admin actions, and the status an admin-removed gig returns
-- to when restored.
--
-- Same conventions as the earlier migrations: UUIDs as 16-byte BLOBs (they
-- compare byte-wise, in the same order as PostgreSQL's UUID), times as
-- RFC 3339 UTC text (it sorts in time order), JSON as serde_json text. The
-- tables, columns and constraints are the same as in the PostgreSQL
-- migration; unique constraints the store reports as conflicts are matched
-- by `<table>_<column>` (SQLite names the columns, PostgreSQL the
-- constraint).
--
-- The feed and the audit log are numbered from one head row: a write takes
-- it first and increments it (holding the write lock until commit), so feed
-- numbers and audit ids are 1, 2, 3, ... without gaps and commit in order.

-- While an admin has removed a gig (`status` 'removed'): the status it had
-- before, which restoring it brings back.
ALTER TABLE gigs ADD COLUMN removed_from TEXT
    CHECK (removed_from IN ('draft', 'active', 'paused'));

-- Queue items. `data` is the whole `Item` as JSON (its serde form, which is
-- what is read back); the other columns copy the parts that are queried or
-- constrained, written in the same statement as `data`. `target_type` and
-- `target_id` are `Target::kind()` and `Target::id()`. `source_key` makes
-- raising idempotent. `version` counts writes: an update names the version
-- it replaces.
CREATE TABLE moderation_items (
    id           BLOB PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('gig_published', 'gig_edited',
        'message_flagged', 'report', 'dispute_opened', 'payment_failed', 'refund')),
    target_type  TEXT NOT NULL CHECK (target_type IN ('user', 'gig', 'message', 'order')),
    target_id    BLOB NOT NULL,
    subject_user BLOB REFERENCES users (id),
    reporter     BLOB REFERENCES users (id),
    status       TEXT NOT NULL CHECK (status IN ('open', 'claimed', 'resolved')),
    claimed_by   BLOB REFERENCES users (id),
    source_key   TEXT NOT NULL,
    data         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    CONSTRAINT moderation_items_source_key_key UNIQUE (source_key)
);

-- One unresolved report per reporter and target.
CREATE UNIQUE INDEX moderation_items_reporter_target_key
    ON moderation_items (reporter, target_type, target_id)
    WHERE kind = 'report' AND status <> 'resolved';

-- The queue, newest first (ids are UUID v7, so they order by time), by
-- status, by kind, by target and by claimer.
CREATE INDEX moderation_items_status_idx ON moderation_items (status, id);
CREATE INDEX moderation_items_kind_idx ON moderation_items (kind, status, id);
CREATE INDEX moderation_items_target_idx ON moderation_items (target_type, target_id, id);
CREATE INDEX moderation_items_claimed_by_idx ON moderation_items (claimed_by, id)
    WHERE claimed_by IS NOT NULL;

-- The one head row: the newest feed number and the newest audit id.
CREATE TABLE moderation_feed_head (
    id            INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    last_seq      INTEGER NOT NULL,
    last_audit_id INTEGER NOT NULL
);

INSERT INTO moderation_feed_head (id, last_seq, last_audit_id) VALUES (1, 0, 0);

-- The admins' feed. `kind` is `FeedEvent::kind()`; `payload` is the whole
-- `FeedEvent` as JSON, which is what is read back.
CREATE TABLE moderation_feed (
    seq        INTEGER PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- What admins did, never changed or deleted (the triggers below refuse
-- it). `id` comes from the head row. `target` is the whole `Target` as JSON
-- (a message's conversation is only there); `target_type` and `target_id`
-- copy it for queries. `action` is `AdminAction::as_str()`.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY NOT NULL,
    admin_id    BLOB NOT NULL REFERENCES users (id),
    action      TEXT NOT NULL CHECK (action IN ('suspend_user', 'reinstate_user',
        'warn_user', 'remove_gig', 'restore_gig', 'resolve_dispute', 'cancel_order',
        'dismiss_report', 'dismiss_item', 'claim_item', 'release_item')),
    target_type TEXT NOT NULL CHECK (target_type IN ('user', 'gig', 'message', 'order')),
    target_id   BLOB NOT NULL,
    target      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    details     TEXT,
    item_id     BLOB REFERENCES moderation_items (id),
    at          TEXT NOT NULL
);

-- The log newest first: by admin, by action, by target, by time.
CREATE INDEX audit_log_admin_id_idx ON audit_log (admin_id, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id, id);
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- The admins' totals: payments of the day, and open disputes.
CREATE INDEX ledger_transactions_payment_created_at_idx ON ledger_transactions (created_at)
    WHERE kind = 'payment';
CREATE INDEX orders_disputed_idx ON orders (id) WHERE status = 'disputed';
