//! `SavedStore`: favourites, saved searches, the gigs saved searches
//! matched (`saved_search_matches`) and when each gig was first public
//! (`gig_publications`).
//!
//! Adding a favourite or a saved search first takes the user's row (`FOR
//! UPDATE` on PostgreSQL; SQLite's write transaction is exclusive anyway),
//! so two adds of one user queue there and the limit counted next holds.
//! Recording matches inserts each (search, gig) pair once; the user's alert
//! is appended to their event log (heads last, as everywhere) in the same
//! transaction, only when a pair is new and no match of the user's searches
//! for that gig was alerted before.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::{GigId, UserId};
use domain::live::StoredEvent;
use domain::ports::{DigestSearch, MatchWrite, SavedStore, StoreError};
use domain::saved::{Favourite, LimitReached, SavedQuery, SavedSearch, SavedSearchId, SearchName};
use uuid::Uuid;

use super::live::append_events;
use super::{on_pool, store_error, ts, Pool, SqlStore};

/// The columns of `saved_searches`, in [`SearchRow`]'s order.
const SEARCH_COLUMNS: &str =
    "id, user_id, name, query, alerts, email_digest, created_at, updated_at, last_digest_at";

/// Gigs named in one statement; far below either backend's limit on bound
/// parameters.
const CHUNK: usize = 400;

type SearchRow = (
    Uuid,
    Uuid,
    String,
    String,
    bool,
    bool,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

fn search_of(row: SearchRow) -> SavedSearch {
    let (id, user, name, query, alerts, email_digest, created_at, updated_at, last_digest_at) = row;
    SavedSearch {
        id: SavedSearchId::from_uuid(id),
        user_id: UserId::from_uuid(user),
        name: SearchName::from_trusted(name),
        query: SavedQuery::from_json(query),
        alerts,
        email_digest,
        created_at,
        updated_at,
        last_digest_at,
    }
}

fn favourite_of((user, gig, created_at): (Uuid, Uuid, DateTime<Utc>)) -> Favourite {
    Favourite {
        user_id: UserId::from_uuid(user),
        gig_id: GigId::from_uuid(gig),
        created_at,
    }
}

/// `$first, $first + 1, ...` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl SqlStore {
    /// Takes the user's row until the transaction ends: PostgreSQL locks
    /// it; SQLite's write transaction holds the whole database already.
    fn lock_user_sql(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "SELECT id FROM users WHERE id = $1",
            Pool::Postgres(_) => "SELECT id FROM users WHERE id = $1 FOR UPDATE",
        }
    }
}

#[async_trait]
impl SavedStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user, gig_id = %gig), err(level = "debug"))]
    async fn add_favourite(
        &self,
        user: UserId,
        gig: GigId,
        now: DateTime<Utc>,
        max: u32,
    ) -> Result<Result<(Favourite, bool), LimitReached>, StoreError> {
        let lock = self.lock_user_sql();
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let found: Option<(Uuid,)> = sqlx::query_as(lock)
                .bind(user.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
            if found.is_none() {
                tx.rollback().await.map_err(store_error)?;
                return Err(StoreError::NotFound);
            }
            let existing: Option<(Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
                "SELECT user_id, gig_id, created_at FROM favourites \
                 WHERE user_id = $1 AND gig_id = $2",
            )
            .bind(user.as_uuid())
            .bind(gig.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
            if let Some(row) = existing {
                tx.rollback().await.map_err(store_error)?;
                return Ok(Ok((favourite_of(row), false)));
            }
            let (count,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM favourites WHERE user_id = $1")
                    .bind(user.as_uuid())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(store_error)?;
            if count >= i64::from(max) {
                tx.rollback().await.map_err(store_error)?;
                return Ok(Err(LimitReached { limit: max }));
            }
            let favourite = Favourite {
                user_id: user,
                gig_id: gig,
                created_at: ts(now),
            };
            sqlx::query("INSERT INTO favourites (user_id, gig_id, created_at) VALUES ($1, $2, $3)")
                .bind(user.as_uuid())
                .bind(gig.as_uuid())
                .bind(favourite.created_at)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
            Ok(Ok((favourite, true)))
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user, gig_id = %gig), err(level = "debug"))]
    async fn remove_favourite(&self, user: UserId, gig: GigId) -> Result<bool, StoreError> {
        let deleted = on_pool!(self, pool => {
            sqlx::query("DELETE FROM favourites WHERE user_id = $1 AND gig_id = $2")
                .bind(user.as_uuid())
                .bind(gig.as_uuid())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(store_error)?;
        Ok(deleted > 0)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user, limit), err(level = "debug"))]
    async fn favourites(
        &self,
        user: UserId,
        before: Option<(DateTime<Utc>, GigId)>,
        limit: u32,
    ) -> Result<Vec<Favourite>, StoreError> {
        let rows: Vec<(Uuid, Uuid, DateTime<Utc>)> = on_pool!(self, pool => {
            match before {
                None => {
                    sqlx::query_as(
                        "SELECT user_id, gig_id, created_at FROM favourites WHERE user_id = $1 \
                         ORDER BY created_at DESC, gig_id DESC LIMIT $2",
                    )
                    .bind(user.as_uuid())
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await
                }
                Some((at, gig)) => {
                    sqlx::query_as(
                        "SELECT user_id, gig_id, created_at FROM favourites WHERE user_id = $1 \
                         AND (created_at < $2 OR (created_at = $2 AND gig_id < $3)) \
                         ORDER BY created_at DESC, gig_id DESC LIMIT $4",
                    )
                    .bind(user.as_uuid())
                    .bind(ts(at))
                    .bind(gig.as_uuid())
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await
                }
            }
        })
        .map_err(store_error)?;
        Ok(rows.into_iter().map(favourite_of).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(search_id = %search.id, user_id = %search.user_id), err(level = "debug"))]
    async fn create_saved_search(
        &self,
        search: &SavedSearch,
        max: u32,
    ) -> Result<Result<(), LimitReached>, StoreError> {
        let lock = self.lock_user_sql();
        let insert = format!(
            "INSERT INTO saved_searches ({SEARCH_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let found: Option<(Uuid,)> = sqlx::query_as(lock)
                .bind(search.user_id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
            if found.is_none() {
                tx.rollback().await.map_err(store_error)?;
                return Err(StoreError::NotFound);
            }
            let (count,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM saved_searches WHERE user_id = $1")
                    .bind(search.user_id.as_uuid())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(store_error)?;
            if count >= i64::from(max) {
                tx.rollback().await.map_err(store_error)?;
                return Ok(Err(LimitReached { limit: max }));
            }
            sqlx::query(&insert)
                .bind(search.id.as_uuid())
                .bind(search.user_id.as_uuid())
                .bind(search.name.as_str())
                .bind(search.query.as_json())
                .bind(search.alerts)
                .bind(search.email_digest)
                .bind(ts(search.created_at))
                .bind(ts(search.updated_at))
                .bind(search.last_digest_at.map(ts))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
            Ok(Ok(()))
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(search_id = %id), err(level = "debug"))]
    async fn saved_search(&self, id: SavedSearchId) -> Result<Option<SavedSearch>, StoreError> {
        let sql = format!("SELECT {SEARCH_COLUMNS} FROM saved_searches WHERE id = $1");
        let row: Option<SearchRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(id.as_uuid()).fetch_optional(pool).await
        })
        .map_err(store_error)?;
        Ok(row.map(search_of))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user), err(level = "debug"))]
    async fn saved_searches_of(&self, user: UserId) -> Result<Vec<SavedSearch>, StoreError> {
        let sql = format!(
            "SELECT {SEARCH_COLUMNS} FROM saved_searches WHERE user_id = $1 \
             ORDER BY created_at DESC, id DESC"
        );
        let rows: Vec<SearchRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(user.as_uuid()).fetch_all(pool).await
        })
        .map_err(store_error)?;
        Ok(rows.into_iter().map(search_of).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(search_id = %search.id), err(level = "debug"))]
    async fn update_saved_search(&self, search: &SavedSearch) -> Result<(), StoreError> {
        let updated = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE saved_searches SET name = $3, alerts = $4, email_digest = $5, \
                 updated_at = $6, last_digest_at = $7 WHERE id = $1 AND user_id = $2",
            )
            .bind(search.id.as_uuid())
            .bind(search.user_id.as_uuid())
            .bind(search.name.as_str())
            .bind(search.alerts)
            .bind(search.email_digest)
            .bind(ts(search.updated_at))
            .bind(search.last_digest_at.map(ts))
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(store_error)?;
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user, search_id = %id), err(level = "debug"))]
    async fn delete_saved_search(
        &self,
        user: UserId,
        id: SavedSearchId,
    ) -> Result<bool, StoreError> {
        let deleted = on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            sqlx::query(
                "DELETE FROM saved_search_matches WHERE search_id IN \
                 (SELECT id FROM saved_searches WHERE id = $1 AND user_id = $2)",
            )
            .bind(id.as_uuid())
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            let deleted = sqlx::query("DELETE FROM saved_searches WHERE id = $1 AND user_id = $2")
                .bind(id.as_uuid())
                .bind(user.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?
                .rows_affected();
            tx.commit().await.map_err(store_error)?;
            deleted
        });
        Ok(deleted > 0)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit), err(level = "debug"))]
    async fn watching_searches(
        &self,
        after: Option<SavedSearchId>,
        limit: u32,
    ) -> Result<Vec<SavedSearch>, StoreError> {
        let sql = format!(
            "SELECT {SEARCH_COLUMNS} FROM saved_searches \
             WHERE (alerts OR email_digest) AND id > $1 ORDER BY id LIMIT $2"
        );
        let after = after.map_or(Uuid::nil(), |id| id.as_uuid());
        let rows: Vec<SearchRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })
        .map_err(store_error)?;
        Ok(rows.into_iter().map(search_of).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(gigs = gigs.len()), err(level = "debug"))]
    async fn first_public(
        &self,
        gigs: &[GigId],
        now: DateTime<Utc>,
    ) -> Result<Vec<(GigId, DateTime<Utc>)>, StoreError> {
        let at = ts(now);
        let mut known = std::collections::HashMap::new();
        for chunk in gigs.chunks(CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, $1)", i + 2))
                .collect();
            let insert = format!(
                "INSERT INTO gig_publications (gig_id, first_public_at) VALUES {} \
                 ON CONFLICT (gig_id) DO NOTHING",
                values.join(", ")
            );
            let select = format!(
                "SELECT gig_id, first_public_at FROM gig_publications WHERE gig_id IN ({})",
                placeholders(1, chunk.len())
            );
            let rows: Vec<(Uuid, DateTime<Utc>)> = on_pool!(self, pool => {
                let _gate = self.write_gate().await;
                let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
                let mut query = sqlx::query(&insert).bind(at);
                for gig in chunk {
                    query = query.bind(gig.as_uuid());
                }
                query.execute(&mut *tx).await.map_err(store_error)?;
                let mut query = sqlx::query_as(&select);
                for gig in chunk {
                    query = query.bind(gig.as_uuid());
                }
                let rows: Vec<(Uuid, DateTime<Utc>)> =
                    query.fetch_all(&mut *tx).await.map_err(store_error)?;
                tx.commit().await.map_err(store_error)?;
                rows
            });
            known.extend(rows);
        }
        gigs.iter()
            .map(|gig| {
                known
                    .get(&gig.as_uuid())
                    .map(|at| (*gig, *at))
                    .ok_or(StoreError::NotFound)
            })
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %write.user_id, gig_id = %write.gig_id), err(level = "debug"))]
    async fn record_matches(&self, write: &MatchWrite<'_>) -> Result<Vec<StoredEvent>, StoreError> {
        if write.searches.is_empty() {
            return Ok(Vec::new());
        }
        let at = ts(write.now);
        let alerted_before = "SELECT COUNT(*) FROM saved_search_matches m \
             JOIN saved_searches s ON s.id = m.search_id \
             WHERE s.user_id = $1 AND m.gig_id = $2 AND m.alerted";
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let mut new = Vec::new();
            for search in write.searches {
                // Only the user's own searches: a search deleted meanwhile
                // (or another user's) stores nothing.
                let inserted = sqlx::query(
                    "INSERT INTO saved_search_matches (search_id, gig_id, matched_at, alerted) \
                     SELECT id, $3, $4, $5 FROM saved_searches WHERE id = $1 AND user_id = $2 \
                     ON CONFLICT (search_id, gig_id) DO NOTHING",
                )
                .bind(search.as_uuid())
                .bind(write.user_id.as_uuid())
                .bind(write.gig_id.as_uuid())
                .bind(at)
                .bind(false)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?
                .rows_affected();
                if inserted > 0 {
                    new.push(*search);
                }
            }
            let mut events = Vec::new();
            if let (Some(alert), Some(first)) = (write.alert, new.first()) {
                let (before,): (i64,) = sqlx::query_as(alerted_before)
                    .bind(write.user_id.as_uuid())
                    .bind(write.gig_id.as_uuid())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(store_error)?;
                if before == 0 {
                    sqlx::query(
                        "UPDATE saved_search_matches SET alerted = $3 \
                         WHERE search_id = $1 AND gig_id = $2",
                    )
                    .bind(first.as_uuid())
                    .bind(write.gig_id.as_uuid())
                    .bind(true)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                    events =
                        append_events((&mut *tx).into(), &[write.user_id], alert, write.now)
                            .await?;
                }
            }
            tx.commit().await.map_err(store_error)?;
            Ok(events)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit), err(level = "debug"))]
    async fn digest_users(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError> {
        let after = after.map_or(Uuid::nil(), |id| id.as_uuid());
        let rows: Vec<(Uuid,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT DISTINCT s.user_id FROM saved_searches s \
                 JOIN saved_search_matches m ON m.search_id = s.id \
                 WHERE s.email_digest AND s.user_id > $1 \
                 AND (s.last_digest_at IS NULL OR m.matched_at > s.last_digest_at) \
                 ORDER BY s.user_id LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(id,)| UserId::from_uuid(id))
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user), err(level = "debug"))]
    async fn digest_pending(&self, user: UserId) -> Result<Vec<DigestSearch>, StoreError> {
        let columns: String = SEARCH_COLUMNS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, m.gig_id, m.matched_at FROM saved_searches s \
             JOIN saved_search_matches m ON m.search_id = s.id \
             WHERE s.user_id = $1 AND s.email_digest \
             AND (s.last_digest_at IS NULL OR m.matched_at > s.last_digest_at) \
             ORDER BY s.created_at, s.id, m.matched_at, m.gig_id"
        );
        type Row = (
            Uuid,
            Uuid,
            String,
            String,
            bool,
            bool,
            DateTime<Utc>,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            Uuid,
            DateTime<Utc>,
        );
        let rows: Vec<Row> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(user.as_uuid()).fetch_all(pool).await
        })
        .map_err(store_error)?;
        let mut pending: Vec<DigestSearch> = Vec::new();
        for (id, owner, name, query, alerts, digest, created, updated, last, gig, matched) in rows {
            let entry = (GigId::from_uuid(gig), matched);
            match pending.last_mut() {
                Some(current) if current.search.id.as_uuid() == id => current.gigs.push(entry),
                _ => pending.push(DigestSearch {
                    search: search_of((
                        id, owner, name, query, alerts, digest, created, updated, last,
                    )),
                    gigs: vec![entry],
                }),
            }
        }
        Ok(pending)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user), err(level = "debug"))]
    async fn mark_digested(&self, user: UserId, through: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE saved_searches SET last_digest_at = $2 WHERE user_id = $1 \
                 AND email_digest AND (last_digest_at IS NULL OR last_digest_at < $2)",
            )
            .bind(user.as_uuid())
            .bind(ts(through))
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(store_error)
    }
}
