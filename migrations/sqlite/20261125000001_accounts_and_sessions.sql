-- Accounts, seller profiles, one-time tokens, sessions and refresh tokens.
--
-- Ids are UUIDs stored as 16-byte BLOBs and times as RFC 3339 UTC text, the
-- way sqlx encodes `uuid::Uuid` and `chrono::DateTime<Utc>` for SQLite; that
-- text sorts in time order, so `<`, `>` and ORDER BY work on it. JSON
-- columns hold serde_json text. Unique indexes are named `<table>_<column>_key`
-- as in the PostgreSQL schema. SQLite reports a violation by its columns
-- (`users.email`), which the store maps to a conflict like PostgreSQL's
-- constraint name.

CREATE TABLE users (
    id                BLOB PRIMARY KEY NOT NULL,
    email             TEXT NOT NULL,
    username          TEXT NOT NULL,
    password_hash     TEXT NOT NULL,
    role              TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    display_name      TEXT,
    country           TEXT,
    bio               TEXT,
    email_verified_at TEXT,
    suspended_at      TEXT,
    deleted_at        TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE UNIQUE INDEX users_username_key ON users (username);

CREATE TABLE seller_profiles (
    user_id      BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    full_name    TEXT NOT NULL,
    one_liner    TEXT NOT NULL,
    description  TEXT NOT NULL,
    languages    TEXT NOT NULL,
    skills       TEXT NOT NULL,
    education    TEXT NOT NULL,
    certificates TEXT NOT NULL,
    links        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE one_time_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);

CREATE INDEX one_time_tokens_user_id_idx ON one_time_tokens (user_id, purpose);

CREATE TABLE sessions (
    id           BLOB PRIMARY KEY NOT NULL,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    revoked_at   TEXT,
    user_agent   TEXT,
    ip           TEXT
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id, created_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    session_id BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    used_at    TEXT
);

CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
