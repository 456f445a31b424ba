-- Reviews of completed orders: each side reviews the other once, hidden
-- until both have written or the order's review window closes.
--
-- Same conventions as the earlier migrations: UUIDs as 16-byte BLOBs (they
-- compare byte-wise, in the same order as PostgreSQL's UUID), times as
-- RFC 3339 UTC text (it sorts in time order). The tables, columns and
-- constraints are the same as in the PostgreSQL migration.
--
-- The primary key (order_id, side) is the one-review-per-side guarantee.
-- `side` is the side that wrote the review: a 'buyer' review is about the
-- seller (`subject_id`) and, on a gig order, the gig (`gig_id`); a 'seller'
-- review is about the buyer. `gig_id` has no foreign key, as on `orders`.
-- `published_at` is NULL while the review is hidden; the seller's reply
-- (`reply_text`, `reply_at`) is only ever on a published buyer review.
CREATE TABLE reviews (
    order_id         BLOB NOT NULL REFERENCES orders (id),
    side             TEXT NOT NULL CHECK (side IN ('buyer', 'seller')),
    author_id        BLOB NOT NULL REFERENCES users (id),
    subject_id       BLOB NOT NULL REFERENCES users (id),
    gig_id           BLOB,
    rating           INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    text             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    window_closes_at TEXT NOT NULL,
    published_at     TEXT,
    reply_text       TEXT,
    reply_at         TEXT,
    PRIMARY KEY (order_id, side),
    CHECK (gig_id IS NULL OR side = 'buyer'),
    CHECK ((reply_text IS NULL) = (reply_at IS NULL)),
    CHECK (reply_text IS NULL OR (side = 'buyer' AND published_at IS NOT NULL))
);

-- Published reviews of a user as seller (side 'buyer') or as buyer (side
-- 'seller'), newest published first with (published_at, order_id) as the
-- page cursor; `rating` is carried so a rating is counted from the index
-- alone.
CREATE INDEX reviews_subject_published_idx
    ON reviews (subject_id, side, published_at, order_id, rating)
    WHERE published_at IS NOT NULL;
-- The same for a gig (only buyer reviews have a gig).
CREATE INDEX reviews_gig_published_idx
    ON reviews (gig_id, side, published_at, order_id, rating)
    WHERE published_at IS NOT NULL AND gig_id IS NOT NULL;
-- Hidden reviews by when their window closes, for the clock.
CREATE INDEX reviews_hidden_window_idx ON reviews (window_closes_at, order_id, side)
    WHERE published_at IS NULL;
