//! `ReviewStore`: reviews of completed orders, one per side, hidden until
//! both sides have written theirs or the order's review window closes.
//!
//! Each review is one row of `reviews`, keyed by `(order_id, side)`: the
//! primary key is the one-review-per-side guarantee. `side` is the side that
//! wrote it (`'buyer'` or `'seller'`); `author_id` and `subject_id` refer to
//! users and `order_id` to the order; `gig_id` is set on a buyer's review of
//! a gig order. `rating` is 1 to 5 (checked by the schema), `published_at`
//! is NULL while the review is hidden, and `reply_text`/`reply_at` hold the
//! seller's one reply, which the schema allows only on a published buyer
//! review. Partial indexes serve the published lists and ratings of a user
//! (by `subject_id`, `side`) and of a gig (by `gig_id`), newest published
//! first with `(published_at, order_id)` as the page cursor, and the hidden
//! reviews by `window_closes_at` for the clock.
//!
//! Submitting is one write transaction that first locks the order's row
//! (`FOR NO KEY UPDATE` on PostgreSQL; SQLite's write transaction holds the
//! database), so the submissions of one order queue there: the second side
//! always sees the first side's committed review and publishes both, and
//! exactly one submission does. The insert itself is `ON CONFLICT DO
//! NOTHING`; writing nothing means the side has reviewed already.
//!
//! Publishing due reviews and replying are single conditional updates
//! (`WHERE published_at IS NULL`, `WHERE reply_text IS NULL`): PostgreSQL
//! re-checks the condition on a row a concurrent writer just changed, so a
//! review is published once and replied to once whoever races.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::{GigId, OrderId, UserId};
use domain::order::Side;
use domain::ports::{ReviewStore, StoreError};
use domain::review::{RatingSubject, RatingSummary, Review, ReviewCursor, ReviewReply, Stars};
use uuid::Uuid;

use super::{on_pool, store_error, ts, Pool, SqlStore};

/// The columns of `reviews`, in `ReviewRow`'s order.
macro_rules! review_columns {
    () => {
        "order_id, side, author_id, subject_id, gig_id, rating, text, created_at, \
         window_closes_at, published_at, reply_text, reply_at"
    };
}

/// Stores a hidden review without a reply, or nothing if the side has
/// reviewed the order already.
const INSERT: &str = "INSERT INTO reviews (order_id, side, author_id, subject_id, gig_id, \
     rating, text, created_at, window_closes_at, published_at, reply_text, reply_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, NULL) \
     ON CONFLICT (order_id, side) DO NOTHING";

/// Publishes the order's hidden reviews at `$2`.
const PUBLISH_ORDER: &str = concat!(
    "UPDATE reviews SET published_at = $2 WHERE order_id = $1 AND published_at IS NULL \
     RETURNING ",
    review_columns!()
);

/// Adds the reply (`$2`, `$3`) to the published buyer review of order `$1`
/// if it has none.
const REPLY: &str = concat!(
    "UPDATE reviews SET reply_text = $2, reply_at = $3 \
     WHERE order_id = $1 AND side = 'buyer' AND published_at IS NOT NULL \
     AND reply_text IS NULL RETURNING ",
    review_columns!()
);

/// One row of `reviews`.
#[derive(sqlx::FromRow)]
struct ReviewRow {
    order_id: Uuid,
    side: String,
    author_id: Uuid,
    subject_id: Uuid,
    gig_id: Option<Uuid>,
    rating: i32,
    text: String,
    created_at: DateTime<Utc>,
    window_closes_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
    reply_text: Option<String>,
    reply_at: Option<DateTime<Utc>>,
}

impl TryFrom<ReviewRow> for Review {
    type Error = StoreError;

    fn try_from(row: ReviewRow) -> Result<Self, StoreError> {
        let corrupt =
            |what: &str| StoreError::Backend(format!("review of order {}: {what}", row.order_id));
        let reply = match (row.reply_text, row.reply_at) {
            (Some(text), Some(created_at)) => Some(ReviewReply { text, created_at }),
            (None, None) => None,
            _ => return Err(corrupt("half a reply")),
        };
        Ok(Review {
            order_id: OrderId::from_uuid(row.order_id),
            side: Side::parse(&row.side).ok_or_else(|| corrupt("unknown side"))?,
            author_id: UserId::from_uuid(row.author_id),
            subject_id: UserId::from_uuid(row.subject_id),
            gig_id: row.gig_id.map(GigId::from_uuid),
            rating: Stars::new(i64::from(row.rating)).ok_or_else(|| corrupt("invalid rating"))?,
            text: row.text,
            created_at: row.created_at,
            window_closes_at: row.window_closes_at,
            published_at: row.published_at,
            reply,
        })
    }
}

/// The condition selecting the reviews that count towards `subject` (`$1`
/// is its id), written with literal sides so the partial indexes apply.
fn subject_filter(subject: RatingSubject) -> (&'static str, Uuid) {
    match subject {
        RatingSubject::Gig(gig) => ("gig_id = $1 AND side = 'buyer'", gig.as_uuid()),
        RatingSubject::Seller(user) => ("subject_id = $1 AND side = 'buyer'", user.as_uuid()),
        RatingSubject::Buyer(user) => ("subject_id = $1 AND side = 'seller'", user.as_uuid()),
    }
}

fn into_reviews(rows: Vec<ReviewRow>) -> Result<Vec<Review>, StoreError> {
    rows.into_iter().map(Review::try_from).collect()
}

impl SqlStore {
    /// Locks the order's row until the transaction ends; returns whether
    /// the order exists. On SQLite the write transaction already holds the
    /// database.
    fn lock_order_sql(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "SELECT id FROM orders WHERE id = $1",
            Pool::Postgres(_) => "SELECT id FROM orders WHERE id = $1 FOR NO KEY UPDATE",
        }
    }

    /// Publishes up to `$2` hidden reviews due at `$1`, oldest window first.
    /// PostgreSQL skips rows another transaction is publishing, so
    /// concurrent callers share the work instead of queueing on it.
    fn publish_due_sql(&self) -> String {
        let skip_locked = match self.pool {
            Pool::Sqlite(_) => "",
            Pool::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        format!(
            "UPDATE reviews SET published_at = $1 \
             WHERE (order_id, side) IN (\
                 SELECT order_id, side FROM reviews \
                 WHERE published_at IS NULL AND window_closes_at <= $1 \
                 ORDER BY window_closes_at, order_id, side LIMIT $2{skip_locked}) \
             AND published_at IS NULL RETURNING {}",
            review_columns!()
        )
    }
}

#[async_trait]
impl ReviewStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %review.order_id, side = ?review.side), err(level = "debug"))]
    async fn submit(&self, review: &Review, now: DateTime<Utc>) -> Result<Vec<Review>, StoreError> {
        let order_id = review.order_id.as_uuid();
        let lock_order = self.lock_order_sql();
        let rows: Vec<ReviewRow> = on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let order: Option<(Uuid,)> = sqlx::query_as(lock_order)
                .bind(order_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
            if order.is_none() {
                tx.rollback().await.map_err(store_error)?;
                return Err(StoreError::NotFound);
            }
            let inserted = sqlx::query(INSERT)
                .bind(order_id)
                .bind(review.side.as_str())
                .bind(review.author_id.as_uuid())
                .bind(review.subject_id.as_uuid())
                .bind(review.gig_id.map(|id| id.as_uuid()))
                .bind(i32::from(review.rating.get()))
                .bind(&review.text)
                .bind(ts(review.created_at))
                .bind(ts(review.window_closes_at))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?
                .rows_affected();
            if inserted == 0 {
                tx.rollback().await.map_err(store_error)?;
                return Err(StoreError::Conflict("review"));
            }
            let other: Option<(Option<DateTime<Utc>>,)> = sqlx::query_as(
                "SELECT published_at FROM reviews WHERE order_id = $1 AND side = $2",
            )
            .bind(order_id)
            .bind(review.side.other().as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
            // Only a hidden review of the other side is published with this
            // one: one the clock already published leaves this one to the
            // clock too.
            let rows: Vec<ReviewRow> = if matches!(other, Some((None,))) {
                sqlx::query_as(PUBLISH_ORDER)
                    .bind(order_id)
                    .bind(ts(now))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(store_error)?
            } else {
                Vec::new()
            };
            tx.commit().await.map_err(store_error)?;
            rows
        });
        let mut published = into_reviews(rows)?;
        published.sort_by_key(|review| review.side.as_str());
        Ok(published)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %order), err(level = "debug"))]
    async fn reviews_of_order(&self, order: OrderId) -> Result<Vec<Review>, StoreError> {
        let sql = concat!(
            "SELECT ",
            review_columns!(),
            " FROM reviews WHERE order_id = $1 ORDER BY side"
        );
        let rows: Vec<ReviewRow> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(order.as_uuid()).fetch_all(pool).await
        })
        .map_err(store_error)?;
        into_reviews(rows)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit), err(level = "debug"))]
    async fn publish_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Review>, StoreError> {
        let sql = self.publish_due_sql();
        let rows: Vec<ReviewRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(ts(now))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })
        .map_err(store_error)?;
        let mut published = into_reviews(rows)?;
        published.sort_by_key(|review| {
            (
                review.window_closes_at,
                review.order_id,
                review.side.as_str(),
            )
        });
        Ok(published)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn next_window_close(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<(DateTime<Utc>,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT window_closes_at FROM reviews WHERE published_at IS NULL \
                 ORDER BY window_closes_at LIMIT 1",
            )
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(next.map(|(at,)| at))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %order), err(level = "debug"))]
    async fn reply(&self, order: OrderId, reply: &ReviewReply) -> Result<Review, StoreError> {
        let row: Option<ReviewRow> = on_pool!(self, pool => {
            sqlx::query_as(REPLY)
                .bind(order.as_uuid())
                .bind(&reply.text)
                .bind(ts(reply.created_at))
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        if let Some(row) = row {
            return Review::try_from(row);
        }
        // Nothing changed: a published buyer review that has a reply is a
        // conflict; anything else (no buyer review, or a hidden one) was
        // not there to reply to.
        let replied: Option<(i32,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT 1 FROM reviews WHERE order_id = $1 AND side = 'buyer' \
                 AND published_at IS NOT NULL AND reply_text IS NOT NULL",
            )
            .bind(order.as_uuid())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        Err(match replied {
            Some(_) => StoreError::Conflict("reply"),
            None => StoreError::NotFound,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(?subject, limit), err(level = "debug"))]
    async fn reviews(
        &self,
        subject: RatingSubject,
        before: Option<ReviewCursor>,
        limit: u32,
    ) -> Result<Vec<Review>, StoreError> {
        let (filter, id) = subject_filter(subject);
        let after_cursor = if before.is_some() {
            " AND (published_at, order_id) < ($3, $4)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {} FROM reviews WHERE {filter} AND published_at IS NOT NULL{after_cursor} \
             ORDER BY published_at DESC, order_id DESC LIMIT $2",
            review_columns!()
        );
        let rows: Vec<ReviewRow> = on_pool!(self, pool => {
            let mut query = sqlx::query_as(&sql).bind(id).bind(i64::from(limit));
            if let Some(cursor) = before {
                query = query
                    .bind(ts(cursor.published_at))
                    .bind(cursor.order_id.as_uuid());
            }
            query.fetch_all(pool).await
        })
        .map_err(store_error)?;
        into_reviews(rows)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(?subject), err(level = "debug"))]
    async fn rating(&self, subject: RatingSubject) -> Result<RatingSummary, StoreError> {
        let (filter, id) = subject_filter(subject);
        let sql = format!(
            "SELECT rating, COUNT(*) FROM reviews WHERE {filter} AND published_at IS NOT NULL \
             GROUP BY rating"
        );
        let rows: Vec<(i32, i64)> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(id).fetch_all(pool).await
        })
        .map_err(store_error)?;
        let mut histogram = [0u32; 5];
        for (rating, count) in rows {
            let slot = Stars::new(i64::from(rating))
                .map(|stars| usize::from(stars.get() - 1))
                .ok_or_else(|| StoreError::Backend(format!("invalid rating {rating}")))?;
            histogram[slot] = u32::try_from(count)
                .map_err(|_| StoreError::Backend(format!("{count} reviews of one rating")))?;
        }
        Ok(RatingSummary::from_histogram(histogram))
    }
}
