-- Favourites and saved searches.
--
-- Same tables, columns and constraints as the PostgreSQL migration: UUIDs
-- as 16-byte BLOBs, times as RFC 3339 UTC text, booleans as 0 or 1.
--
-- `favourites`: the gigs each user keeps, once each, newest first.
-- `saved_searches`: a user's searches; `query` is the search parameters as a
-- JSON object, kept as text exactly as the server wrote it (never queried
-- in SQL). `alerts` sends a live notification per new matching gig,
-- `email_digest` puts new matching gigs in the daily e-mail, which covered
-- the matches up to `last_digest_at`.
-- `saved_search_matches`: which new gigs each search matched, once per
-- pair; `alerted` marks the match the user was notified of (a user hears of
-- a gig once, whichever of their searches matched it). Deleting a search
-- deletes its matches.
-- `gig_publications`: when each gig was first seen public, so that a gig
-- counts as new for a search only if it became public after the search
-- was saved, whatever edits or re-indexing come later. Gigs public (or
-- once public) before this migration count from their creation.
CREATE TABLE favourites (
    user_id    BLOB NOT NULL REFERENCES users (id),
    gig_id     BLOB NOT NULL REFERENCES gigs (id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, gig_id)
);

-- A user's favourites, newest first.
CREATE INDEX favourites_user_created_idx ON favourites (user_id, created_at, gig_id);

CREATE TABLE saved_searches (
    id             BLOB PRIMARY KEY NOT NULL,
    user_id        BLOB NOT NULL REFERENCES users (id),
    name           TEXT NOT NULL,
    query          TEXT NOT NULL,
    alerts         INTEGER NOT NULL,
    email_digest   INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    last_digest_at TEXT
);

-- A user's saved searches, newest first.
CREATE INDEX saved_searches_user_idx ON saved_searches (user_id, created_at);

CREATE TABLE saved_search_matches (
    search_id  BLOB NOT NULL REFERENCES saved_searches (id) ON DELETE CASCADE,
    gig_id     BLOB NOT NULL REFERENCES gigs (id),
    matched_at TEXT NOT NULL,
    alerted    INTEGER NOT NULL,
    PRIMARY KEY (search_id, gig_id)
);

-- Whether a user was alerted to a gig already.
CREATE INDEX saved_search_matches_gig_idx ON saved_search_matches (gig_id);

CREATE TABLE gig_publications (
    gig_id          BLOB PRIMARY KEY NOT NULL REFERENCES gigs (id),
    first_public_at TEXT NOT NULL
);

INSERT INTO gig_publications (gig_id, first_public_at)
    SELECT id, created_at FROM gigs WHERE status <> 'draft';
