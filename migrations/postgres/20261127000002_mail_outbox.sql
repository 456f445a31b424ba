-- The durable mail outbox: account mail and order notices are stored here
-- before anyone is told they will be sent; a worker sends them, retrying
-- with backoff, and leases each row while it sends it.
--
-- The tables, columns and constraints are the same as in the SQLite
-- migration; unique constraints the store reports as conflicts are named
-- `<table>_<column>_key` (or `<table>_pkey`), which the store matches.
--
-- `mail` is the serde form of `AccountMail` (tagged by `kind`; tags are
-- never renamed). `key` is chosen by the caller and unique, so enqueueing
-- the same mail twice writes one row. A worker claims a due row with one
-- conditional update that sets `leased_until` and counts the attempt; a row
-- whose lease ran out (a worker that crashed mid-send) is due again.
-- `sent` and `dead` rows stay for inspection.
CREATE TABLE mail_outbox (
    id              UUID PRIMARY KEY,
    key             TEXT NOT NULL UNIQUE,
    recipient       TEXT NOT NULL,
    mail            JSONB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL,
    leased_until    TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ
);

-- Pending mail by when it is due, for the worker.
CREATE INDEX mail_outbox_pending_due_idx ON mail_outbox (next_attempt_at, id)
    WHERE status = 'pending';
