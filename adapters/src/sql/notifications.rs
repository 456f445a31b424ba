//! `NotificationStore`: read state of the `notification` events in each
//! user's event log, read one by one (`notification_reads`) or all up to a
//! cursor (`notification_marks`).
//!
//! A mark first takes the user's `notification_marks` row (creating it at
//! 0), which locks it until the transaction ends, so one user's marks queue
//! up and `read_through` never moves backwards; the `notification.read`
//! event is then appended to the user's own log, heads last as everywhere.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::UserId;
use domain::live::{LiveEvent, StoredEvent};
use domain::ports::{NotificationItem, NotificationStore, StoreError};
use sqlx::types::Json;

use super::live::append_events;
use super::{on_pool, store_error, ts, SqlStore};

/// The user's notifications that are unread (`$1` is the user).
const UNREAD_SQL: &str = "SELECT COUNT(*) FROM user_events e \
     WHERE e.user_id = $1 AND e.kind = 'notification' \
     AND e.cursor > COALESCE((SELECT m.read_through FROM notification_marks m \
                              WHERE m.user_id = e.user_id), 0) \
     AND NOT EXISTS (SELECT 1 FROM notification_reads r \
                     WHERE r.user_id = e.user_id AND r.cursor = e.cursor)";

/// Takes (and locks) the user's mark row, creating it at 0; returns its
/// `read_through`. `$1` is the user, `$2` the time.
const LOCK_MARK_SQL: &str = "INSERT INTO notification_marks (user_id, read_through, at) \
     VALUES ($1, 0, $2) \
     ON CONFLICT (user_id) DO UPDATE SET read_through = notification_marks.read_through \
     RETURNING read_through";

#[async_trait]
impl NotificationStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user, before, limit), err(level = "debug"))]
    async fn notifications(
        &self,
        user: UserId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<NotificationItem>, StoreError> {
        type Row = (i64, Json<LiveEvent>, DateTime<Utc>, Option<i64>, i64);
        let rows: Vec<Row> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT e.cursor, e.payload, e.created_at, r.cursor, \
                        COALESCE((SELECT m.read_through FROM notification_marks m \
                                  WHERE m.user_id = e.user_id), 0) \
                 FROM user_events e \
                 LEFT JOIN notification_reads r ON r.user_id = e.user_id AND r.cursor = e.cursor \
                 WHERE e.user_id = $1 AND e.kind = 'notification' AND e.cursor < $2 \
                 ORDER BY e.cursor DESC LIMIT $3",
            )
            .bind(user.as_uuid())
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .filter_map(|(cursor, payload, created_at, single, through)| {
                let LiveEvent::Notification(notification) = payload.0 else {
                    return None;
                };
                Some(NotificationItem {
                    cursor,
                    notification,
                    created_at,
                    read: cursor <= through || single.is_some(),
                })
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user), err(level = "debug"))]
    async fn unread_notifications(&self, user: UserId) -> Result<i64, StoreError> {
        let (unread,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as(UNREAD_SQL)
                .bind(user.as_uuid())
                .fetch_one(pool)
                .await
        })
        .map_err(store_error)?;
        Ok(unread)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user, cursor), err(level = "debug"))]
    async fn mark_notification_read(
        &self,
        user: UserId,
        cursor: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<(i64, Vec<StoredEvent>)>, StoreError> {
        let at = ts(now);
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let (through,): (i64,) = sqlx::query_as(LOCK_MARK_SQL)
                .bind(user.as_uuid())
                .bind(at)
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
            let found: Option<(i64,)> = sqlx::query_as(
                "SELECT cursor FROM user_events \
                 WHERE user_id = $1 AND cursor = $2 AND kind = 'notification'",
            )
            .bind(user.as_uuid())
            .bind(cursor)
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
            if found.is_none() {
                tx.rollback().await.map_err(store_error)?;
                return Err(StoreError::NotFound);
            }
            if cursor <= through {
                tx.rollback().await.map_err(store_error)?;
                return Ok(None);
            }
            let inserted = sqlx::query(
                "INSERT INTO notification_reads (user_id, cursor, read_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, cursor) DO NOTHING",
            )
            .bind(user.as_uuid())
            .bind(cursor)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?
            .rows_affected();
            if inserted == 0 {
                tx.rollback().await.map_err(store_error)?;
                return Ok(None);
            }
            let (unread,): (i64,) = sqlx::query_as(UNREAD_SQL)
                .bind(user.as_uuid())
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
            let event = LiveEvent::NotificationsRead {
                cursors: vec![cursor],
                through: None,
                unread,
            };
            let events = append_events((&mut *tx).into(), &[user], &event, now).await?;
            tx.commit().await.map_err(store_error)?;
            Ok(Some((unread, events)))
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user, through), err(level = "debug"))]
    async fn mark_all_notifications_read(
        &self,
        user: UserId,
        through: i64,
        now: DateTime<Utc>,
    ) -> Result<(i64, i64, Vec<StoredEvent>), StoreError> {
        let at = ts(now);
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let (current,): (i64,) = sqlx::query_as(LOCK_MARK_SQL)
                .bind(user.as_uuid())
                .bind(at)
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
            // Never past the newest event: later notifications are unread.
            let head: Option<(i64,)> =
                sqlx::query_as("SELECT last_cursor FROM event_heads WHERE user_id = $1")
                    .bind(user.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(store_error)?;
            let through = through.min(head.map_or(0, |(head,)| head));
            if through <= current {
                let (unread,): (i64,) = sqlx::query_as(UNREAD_SQL)
                    .bind(user.as_uuid())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(store_error)?;
                tx.rollback().await.map_err(store_error)?;
                return Ok((0, unread, Vec::new()));
            }
            let (marked,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM user_events e \
                 WHERE e.user_id = $1 AND e.kind = 'notification' \
                 AND e.cursor > $2 AND e.cursor <= $3 \
                 AND NOT EXISTS (SELECT 1 FROM notification_reads r \
                                 WHERE r.user_id = e.user_id AND r.cursor = e.cursor)",
            )
            .bind(user.as_uuid())
            .bind(current)
            .bind(through)
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
            sqlx::query("UPDATE notification_marks SET read_through = $2, at = $3 WHERE user_id = $1")
                .bind(user.as_uuid())
                .bind(through)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            // Single reads the mark now covers are no longer needed.
            sqlx::query("DELETE FROM notification_reads WHERE user_id = $1 AND cursor <= $2")
                .bind(user.as_uuid())
                .bind(through)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            let (unread,): (i64,) = sqlx::query_as(UNREAD_SQL)
                .bind(user.as_uuid())
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
            let events = if marked > 0 {
                let event = LiveEvent::NotificationsRead {
                    cursors: Vec::new(),
                    through: Some(through),
                    unread,
                };
                append_events((&mut *tx).into(), &[user], &event, now).await?
            } else {
                Vec::new()
            };
            tx.commit().await.map_err(store_error)?;
            Ok((marked, unread, events))
        })
    }
}
