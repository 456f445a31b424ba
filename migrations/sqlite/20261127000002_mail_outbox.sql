-- The durable mail outbox: account mail and order notices are stored here
-- before anyone is told they will be sent; a worker sends them, retrying
-- with backoff, and leases each row while it sends it.
--
-- Same conventions as the earlier migrations: UUIDs as 16-byte BLOBs (they
-- compare byte-wise, in the same order as PostgreSQL's UUID), times as
-- RFC 3339 UTC text (it sorts in time order), JSON as serde_json text. The
-- tables, columns and constraints are the same as in the PostgreSQL
-- migration; unique constraints the store reports as conflicts are matched
-- by `<table>_<column>` (SQLite names the columns, PostgreSQL the
-- constraint).
--
-- `mail` is the serde form of `AccountMail` (tagged by `kind`; tags are
-- never renamed). `key` is chosen by the caller and unique, so enqueueing
-- the same mail twice writes one row. A worker claims a due row with one
-- conditional update that sets `leased_until` and counts the attempt; a row
-- whose lease ran out (a worker that crashed mid-send) is due again.
-- `sent` and `dead` rows stay for inspection.
CREATE TABLE mail_outbox (
    id              BLOB PRIMARY KEY NOT NULL,
    key             TEXT NOT NULL UNIQUE,
    recipient       TEXT NOT NULL,
    mail            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at TEXT NOT NULL,
    leased_until    TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);

-- Pending mail by when it is due, for the worker.
CREATE INDEX mail_outbox_pending_due_idx ON mail_outbox (next_attempt_at, id)
    WHERE status = 'pending';
