-- E-mail preferences: which optional mail each user turned off, and who
-- each queued mail is for, so the mail worker can honour the choice when
-- it sends.
--
-- The tables, columns and constraints are the same as in the SQLite
-- migration.
--
-- `email_preferences` holds one row per user and optional category the
-- user ever changed (`category` is `MailCategory::as_str`: orders, offers,
-- reviews, saved_searches; the store never writes an essential one). A
-- category without a row is on.
CREATE TABLE email_preferences (
    user_id    UUID NOT NULL REFERENCES users (id),
    category   TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, category)
);

-- The recipient's account (NULL: mail for no account in particular, sent
-- as it is). A mail whose category its recipient turned off is settled as
-- `skipped`, final like `sent`.
ALTER TABLE mail_outbox ADD COLUMN user_id UUID REFERENCES users (id);
ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_status_check;
ALTER TABLE mail_outbox ADD CONSTRAINT mail_outbox_status_check
    CHECK (status IN ('pending', 'sent', 'dead', 'skipped'));
