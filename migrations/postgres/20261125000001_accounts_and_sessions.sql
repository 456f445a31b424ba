-- Accounts, seller profiles, one-time tokens, sessions and refresh tokens.
--
-- Unique constraints are named `<table>_<column>_key`; the store maps
-- violations to conflicts by that name (the SQLite schema uses the same names).

CREATE TABLE users (
    id                UUID PRIMARY KEY,
    email             TEXT NOT NULL,
    username          TEXT NOT NULL,
    password_hash     TEXT NOT NULL,
    role              TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    display_name      TEXT,
    country           TEXT,
    bio               TEXT,
    email_verified_at TIMESTAMPTZ,
    suspended_at      TIMESTAMPTZ,
    deleted_at        TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_username_key UNIQUE (username)
);

CREATE TABLE seller_profiles (
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    full_name    TEXT NOT NULL,
    one_liner    TEXT NOT NULL,
    description  TEXT NOT NULL,
    languages    JSONB NOT NULL,
    skills       JSONB NOT NULL,
    education    JSONB NOT NULL,
    certificates JSONB NOT NULL,
    links        JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    CONSTRAINT seller_profiles_user_id_key PRIMARY KEY (user_id)
);

CREATE TABLE one_time_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

CREATE INDEX one_time_tokens_user_id_idx ON one_time_tokens (user_id, purpose);

CREATE TABLE sessions (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    user_agent   TEXT,
    ip           TEXT
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id, created_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
