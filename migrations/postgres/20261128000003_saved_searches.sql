-- Favourites and saved searches.
--
-- The tables, columns and constraints are the same as in the SQLite
-- migration.
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
    user_id    UUID NOT NULL REFERENCES users (id),
    gig_id     UUID NOT NULL REFERENCES gigs (id),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, gig_id)
);

-- A user's favourites, newest first.
CREATE INDEX favourites_user_created_idx ON favourites (user_id, created_at, gig_id);

CREATE TABLE saved_searches (
    id             UUID PRIMARY KEY,
    user_id        UUID NOT NULL REFERENCES users (id),
    name           TEXT NOT NULL,
    query          TEXT NOT NULL,
    alerts         BOOLEAN NOT NULL,
    email_digest   BOOLEAN NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    last_digest_at TIMESTAMPTZ
);

-- A user's saved searches, newest first.
CREATE INDEX saved_searches_user_idx ON saved_searches (user_id, created_at);

CREATE TABLE saved_search_matches (
    search_id  UUID NOT NULL REFERENCES saved_searches (id) ON DELETE CASCADE,
    gig_id     UUID NOT NULL REFERENCES gigs (id),
    matched_at TIMESTAMPTZ NOT NULL,
    alerted    BOOLEAN NOT NULL,
    PRIMARY KEY (search_id, gig_id)
);

-- Whether a user was alerted to a gig already.
CREATE INDEX saved_search_matches_gig_idx ON saved_search_matches (gig_id);

CREATE TABLE gig_publications (
    gig_id          UUID PRIMARY KEY REFERENCES gigs (id),
    first_public_at TIMESTAMPTZ NOT NULL
);

INSERT INTO gig_publications (gig_id, first_public_at)
    SELECT id, created_at FROM gigs WHERE status <> 'draft';
