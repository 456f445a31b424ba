-- E-mail preferences: which optional mail each user turned off, and who
-- each queued mail is for, so the mail worker can honour the choice when
-- it sends.
--
-- Same conventions as the earlier migrations (UUIDs as 16-byte BLOBs,
-- times as RFC 3339 UTC text, booleans as 0 or 1). The tables, columns and
-- constraints are the same as in the PostgreSQL migration.
--
-- `email_preferences` holds one row per user and optional category the
-- user ever changed (`category` is `MailCategory::as_str`: orders, offers,
-- reviews, saved_searches; the store never writes an essential one). A
-- category without a row is on.
CREATE TABLE email_preferences (
    user_id    BLOB NOT NULL REFERENCES users (id),
    category   TEXT NOT NULL,
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, category)
);

-- The recipient's account (NULL: mail for no account in particular, sent
-- as it is). A mail whose category its recipient turned off is settled as
-- `skipped`, final like `sent`. SQLite cannot change a CHECK constraint,
-- so the outbox is copied into a new table with the wider one (nothing
-- refers to it).
CREATE TABLE mail_outbox_new (
    id              BLOB PRIMARY KEY NOT NULL,
    key             TEXT NOT NULL UNIQUE,
    recipient       TEXT NOT NULL,
    mail            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead', 'skipped')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at TEXT NOT NULL,
    leased_until    TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT,
    user_id         BLOB REFERENCES users (id)
);

INSERT INTO mail_outbox_new (id, key, recipient, mail, status, attempts, next_attempt_at,
    leased_until, last_error, created_at, sent_at)
SELECT id, key, recipient, mail, status, attempts, next_attempt_at,
    leased_until, last_error, created_at, sent_at
FROM mail_outbox;

DROP TABLE mail_outbox;
ALTER TABLE mail_outbox_new RENAME TO mail_outbox;

-- Pending mail by when it is due, for the worker.
CREATE INDEX mail_outbox_pending_due_idx ON mail_outbox (next_attempt_at, id)
    WHERE status = 'pending';
