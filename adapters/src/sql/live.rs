//! `EventLog`: each user's log of durable live events, and the one helper
//! that appends to it inside a caller's write transaction.
//!
//! A user's head row (`event_heads`) holds their newest cursor. Appending
//! increments it, which locks the row until the transaction ends, then stores
//! the event under the new cursor: cursors are 1, 2, 3, ... with no gaps, and
//! the transaction that takes `n` commits before the one that takes `n + 1`.
//! Heads are always taken last in a transaction and in ascending user order,
//! so two transactions that touch the same users cannot deadlock; a change
//! with several events for different users ([`append_batches`]) locks all
//! their heads at once, in that order, before appending.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::UserId;
use domain::live::{LiveEvent, StoredEvent};
use domain::ports::{EventLog, EventsFor, StoreError};
use sqlx::types::Json;
use sqlx::{PgConnection, SqliteConnection};

use super::rows::EventRow;
use super::{on_pool, store_error, ts, SqlStore};

/// Takes the next cursor of each user in `$1..$n` (ascending ids, so the
/// head rows are locked in one order by everyone): creates a head at 1, or
/// increments it.
fn next_cursors_sql(users: usize) -> String {
    let values: Vec<String> = (1..=users).map(|i| format!("(${i}, 1)")).collect();
    format!(
        "INSERT INTO event_heads (user_id, last_cursor) VALUES {} \
         ON CONFLICT (user_id) DO UPDATE SET last_cursor = event_heads.last_cursor + 1 \
         RETURNING user_id, last_cursor",
        values.join(", ")
    )
}

/// Stores one event row per user: `(user, cursor)` pairs from `$1`, then the
/// kind, payload and time shared by all.
fn insert_events_sql(users: usize) -> String {
    let (kind, payload, at) = (2 * users + 1, 2 * users + 2, 2 * users + 3);
    let values: Vec<String> = (0..users)
        .map(|i| {
            format!(
                "(${}, ${}, ${kind}, ${payload}, ${at})",
                2 * i + 1,
                2 * i + 2
            )
        })
        .collect();
    format!(
        "INSERT INTO user_events (user_id, cursor, kind, payload, created_at) VALUES {}",
        values.join(", ")
    )
}

/// The connection of an open write transaction, of either backend.
pub(super) enum WriteConn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl<'a> From<&'a mut SqliteConnection> for WriteConn<'a> {
    fn from(conn: &'a mut SqliteConnection) -> Self {
        WriteConn::Sqlite(conn)
    }
}

impl<'a> From<&'a mut PgConnection> for WriteConn<'a> {
    fn from(conn: &'a mut PgConnection) -> Self {
        WriteConn::Postgres(conn)
    }
}

impl WriteConn<'_> {
    /// The same connection, borrowed again for one more call.
    pub(super) fn reborrow(&mut self) -> WriteConn<'_> {
        match self {
            WriteConn::Sqlite(conn) => WriteConn::Sqlite(conn),
            WriteConn::Postgres(conn) => WriteConn::Postgres(conn),
        }
    }
}

/// Runs `$body` with `$conn` bound to the transaction's connection; like
/// `on_pool!`, the body is expanded once per backend.
macro_rules! on_conn {
    ($write:expr, $conn:ident => $body:expr) => {
        match $write {
            $crate::sql::live::WriteConn::Sqlite($conn) => $body,
            $crate::sql::live::WriteConn::Postgres($conn) => $body,
        }
    };
}
pub(super) use on_conn;

/// Appends `event` to each user's log within the caller's open write
/// transaction (pass `(&mut *tx).into()`), so the events commit exactly when
/// the change that produced them does. Returns the stored events in the order
/// of `users`; the heads are taken in ascending user order.
pub(super) async fn append_events(
    write: WriteConn<'_>,
    users: &[UserId],
    event: &LiveEvent,
    now: DateTime<Utc>,
) -> Result<Vec<StoredEvent>, StoreError> {
    let created_at = ts(now);
    let mut sorted: Vec<UserId> = users.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.is_empty() {
        return Ok(Vec::new());
    }
    let heads_sql = next_cursors_sql(sorted.len());
    let events_sql = insert_events_sql(sorted.len());
    let heads: Vec<(uuid::Uuid, i64)> = on_conn!(write, conn => {
        let mut heads = sqlx::query_as(&heads_sql);
        for user in &sorted {
            heads = heads.bind(user.as_uuid());
        }
        let heads: Vec<(uuid::Uuid, i64)> =
            heads.fetch_all(&mut *conn).await.map_err(store_error)?;
        let mut insert = sqlx::query(&events_sql);
        for (user, cursor) in &heads {
            insert = insert.bind(*user).bind(*cursor);
        }
        insert
            .bind(event.kind())
            .bind(Json(event))
            .bind(created_at)
            .execute(&mut *conn)
            .await
            .map_err(store_error)?;
        heads
    });
    let cursor_of = |user: &UserId| {
        heads
            .iter()
            .find(|(id, _)| *id == user.as_uuid())
            .map(|(_, cursor)| *cursor)
            .ok_or_else(|| StoreError::Backend("an event head was not returned".into()))
    };
    let cursors = users
        .iter()
        .map(cursor_of)
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(users
        .iter()
        .zip(cursors)
        .map(|(&user_id, cursor)| StoredEvent {
            user_id,
            cursor,
            event: event.clone(),
            created_at,
        })
        .collect())
}

/// Appends several events, each to its own users' logs, within the caller's
/// open write transaction; returns the stored events batch by batch. With
/// more than one batch, the heads of every user named are first locked
/// together in ascending order (a head that does not exist yet is created
/// at 0), so the batches may name users in any order without breaking the
/// one lock order.
pub(super) async fn append_batches(
    mut write: WriteConn<'_>,
    batches: &[EventsFor],
    now: DateTime<Utc>,
) -> Result<Vec<StoredEvent>, StoreError> {
    if batches.len() > 1 {
        let mut users: Vec<UserId> = batches
            .iter()
            .flat_map(|batch| batch.users.iter().copied())
            .collect();
        users.sort_unstable();
        users.dedup();
        if !users.is_empty() {
            let values: Vec<String> = (1..=users.len()).map(|i| format!("(${i}, 0)")).collect();
            let lock_sql = format!(
                "INSERT INTO event_heads (user_id, last_cursor) VALUES {} \
                 ON CONFLICT (user_id) DO UPDATE SET last_cursor = event_heads.last_cursor",
                values.join(", ")
            );
            on_conn!(write.reborrow(), conn => {
                let mut lock = sqlx::query(&lock_sql);
                for user in &users {
                    lock = lock.bind(user.as_uuid());
                }
                lock.execute(&mut *conn).await.map_err(store_error)?;
            });
        }
    }
    let mut stored = Vec::new();
    for batch in batches {
        stored.extend(append_events(write.reborrow(), &batch.users, &batch.event, now).await?);
    }
    Ok(stored)
}

#[async_trait]
impl EventLog for SqlStore {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(users = users.len(), kind = event.kind()),
        err(level = "debug")
    )]
    async fn append(
        &self,
        users: &[UserId],
        event: &LiveEvent,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let events = append_events((&mut *tx).into(), users, event, now).await?;
            tx.commit().await.map_err(store_error)?;
            Ok(events)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user, after, limit), err(level = "debug"))]
    async fn events_after(
        &self,
        user: UserId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows: Vec<EventRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT user_id, cursor, payload, created_at FROM user_events \
                 WHERE user_id = $1 AND cursor > $2 ORDER BY cursor LIMIT $3",
            )
            .bind(user.as_uuid())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user), err(level = "debug"))]
    async fn head(&self, user: UserId) -> Result<i64, StoreError> {
        let head: Option<(i64,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT last_cursor FROM event_heads WHERE user_id = $1")
                .bind(user.as_uuid())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        Ok(head.map_or(0, |(cursor,)| cursor))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%before), err(level = "debug"))]
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM user_events WHERE created_at < $1")
                .bind(ts(before))
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(store_error)
    }
}
