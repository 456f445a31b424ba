-- Conversations, their members' read pointers, messages and attachments; each
-- user's log of live events; last-seen times.
--
-- Same conventions as the earlier migrations: UUIDs as 16-byte BLOBs (they
-- compare byte-wise, in the same order as PostgreSQL's UUID), times as
-- RFC 3339 UTC text (it sorts in time order), JSON as serde_json text.
-- The tables, columns and constraints are the same as in the PostgreSQL
-- migration.

-- A conversation between two users, optionally about a subject. `user_a` is
-- the lower user id (`NewConversation::participants()` order), so a pair has
-- one spelling; `subject_key` is '' without a subject, else `Subject::key()`.
-- `last_seq` is the newest message's number (0 before the first);
-- `last_activity_at` is `last_message_at`, else `created_at`, and orders a
-- user's conversation list.
CREATE TABLE conversations (
    id               BLOB PRIMARY KEY NOT NULL,
    user_a           BLOB NOT NULL REFERENCES users (id),
    user_b           BLOB NOT NULL REFERENCES users (id),
    subject_key      TEXT NOT NULL DEFAULT '',
    started_by       BLOB NOT NULL,
    created_at       TEXT NOT NULL,
    last_seq         INTEGER NOT NULL DEFAULT 0,
    last_message_at  TEXT,
    last_activity_at TEXT NOT NULL,
    CHECK (user_a < user_b),
    CHECK (started_by IN (user_a, user_b)),
    UNIQUE (user_a, user_b, subject_key)
);

-- One row per participant: their read pointer (the last `seq` they read).
CREATE TABLE conversation_members (
    conversation_id BLOB NOT NULL REFERENCES conversations (id),
    user_id         BLOB NOT NULL REFERENCES users (id),
    last_read_seq   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);

-- A user's conversations, for their list.
CREATE INDEX conversation_members_user_id_idx ON conversation_members (user_id);

-- Messages, numbered 1, 2, 3, ... per conversation. The sender is a member;
-- `client_id` is the sender's own id for the message, so a retried send is
-- found instead of stored twice. `attachments` is a JSON array of
-- `Attachment`.
CREATE TABLE messages (
    id              BLOB PRIMARY KEY NOT NULL,
    conversation_id BLOB NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL CHECK (seq >= 1),
    sender_id       BLOB NOT NULL REFERENCES users (id),
    client_id       TEXT NOT NULL,
    body            TEXT NOT NULL,
    attachments     TEXT NOT NULL,
    sent_at         TEXT NOT NULL,
    FOREIGN KEY (conversation_id, sender_id)
        REFERENCES conversation_members (conversation_id, user_id),
    UNIQUE (conversation_id, seq),
    UNIQUE (conversation_id, sender_id, client_id)
);

-- Files a participant uploaded to a conversation (the bytes are in the media
-- store under `key`), before and after a message names them.
CREATE TABLE chat_attachments (
    key             TEXT PRIMARY KEY NOT NULL,
    conversation_id BLOB NOT NULL REFERENCES conversations (id),
    uploader_id     BLOB NOT NULL REFERENCES users (id),
    name            TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    bytes           INTEGER NOT NULL CHECK (bytes >= 0),
    created_at      TEXT NOT NULL,
    FOREIGN KEY (conversation_id, uploader_id)
        REFERENCES conversation_members (conversation_id, user_id)
);

-- Each user's newest event cursor. An append increments it (locking the row
-- until commit), so cursors are 1, 2, 3, ... without gaps and commit in
-- order. Pruning events keeps the head, so cursors never repeat.
CREATE TABLE event_heads (
    user_id     BLOB PRIMARY KEY NOT NULL REFERENCES users (id),
    last_cursor INTEGER NOT NULL
);

-- Each user's durable live events. `kind` is `LiveEvent::kind()`; `payload`
-- is the whole `LiveEvent` as JSON, which is what is read back.
CREATE TABLE user_events (
    user_id    BLOB NOT NULL REFERENCES users (id),
    cursor     INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, cursor)
);

-- Pruning by age.
CREATE INDEX user_events_created_at_idx ON user_events (created_at);

-- When each user was last connected.
CREATE TABLE last_seen (
    user_id BLOB PRIMARY KEY NOT NULL REFERENCES users (id),
    at      TEXT NOT NULL
);
