//! `SellerLevelStore`: each seller's record, read from their completed
//! orders, their chats and their seller profile, and the level last
//! computed from it (`seller_levels`).
//!
//! Response time: in each conversation of the last
//! [`RESPONSE_WINDOW_DAYS`] days, the time from the other member's first
//! message to the seller's first message after it; a message still
//! unanswered counts with the time it has waited so far. The record holds
//! the median.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use domain::ids::UserId;
use domain::order::Order;
use domain::ports::{SellerLevelStore, StoreError, StoredLevel};
use domain::review::{SellerLevel, SellerRecord};
use sqlx::types::Json;

use super::{on_pool, store_error, ts, SqlStore};

/// How far back response times are measured.
pub const RESPONSE_WINDOW_DAYS: i64 = 90;

#[async_trait]
impl SellerLevelStore for SqlStore {
    async fn sellers_after(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError> {
        let rows: Vec<(uuid::Uuid,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT user_id FROM seller_profiles WHERE user_id > $1 \
                 ORDER BY user_id LIMIT $2",
            )
            .bind(after.map_or(uuid::Uuid::nil(), |id| id.as_uuid()))
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

    #[tracing::instrument(level = "debug", skip_all, fields(seller_id = %seller), err(level = "debug"))]
    async fn seller_record(
        &self,
        seller: UserId,
        now: DateTime<Utc>,
    ) -> Result<SellerRecord, StoreError> {
        let id = seller.as_uuid();
        let since = ts(now - TimeDelta::days(RESPONSE_WINDOW_DAYS));
        type Exchange = (DateTime<Utc>, Option<DateTime<Utc>>);
        let (orders, exchanges, since_profile): (
            Vec<(Json<Order>,)>,
            Vec<Exchange>,
            Option<(DateTime<Utc>,)>,
        ) = on_pool!(self, pool => async {
            let orders = sqlx::query_as(
                "SELECT data FROM orders WHERE seller_id = $1 AND status = 'completed'",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            let exchanges = sqlx::query_as(
                "SELECT f.sent_at, \
                        (SELECT MIN(r.sent_at) FROM messages r \
                         WHERE r.conversation_id = f.conversation_id \
                           AND r.sender_id = $1 AND r.seq > f.seq) \
                 FROM messages f \
                 JOIN conversation_members cm \
                   ON cm.conversation_id = f.conversation_id AND cm.user_id = $1 \
                 WHERE f.sender_id <> $1 AND f.sent_at >= $2 \
                   AND f.seq = (SELECT MIN(m.seq) FROM messages m \
                                WHERE m.conversation_id = f.conversation_id \
                                  AND m.sender_id <> $1)",
            )
            .bind(id)
            .bind(since)
            .fetch_all(pool)
            .await?;
            let profile = sqlx::query_as("SELECT created_at FROM seller_profiles WHERE user_id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok::<_, sqlx::Error>((orders, exchanges, profile))
        }.await)
        .map_err(store_error)?;

        let completed_orders = u32::try_from(orders.len()).unwrap_or(u32::MAX);
        let on_time = orders.iter().filter(|(order,)| !order.0.late).count();
        let mut waits: Vec<i64> = exchanges
            .iter()
            .map(|(asked, answered)| (answered.unwrap_or(now) - *asked).num_seconds().max(0))
            .collect();
        waits.sort_unstable();
        let response_secs =
            (!waits.is_empty()).then(|| u32::try_from(waits[waits.len() / 2]).unwrap_or(u32::MAX));
        let seller_days = since_profile
            .map(|(at,)| u32::try_from((now - at).num_days().max(0)).unwrap_or(u32::MAX))
            .unwrap_or(0);
        Ok(SellerRecord {
            completed_orders,
            on_time_orders: u32::try_from(on_time).unwrap_or(u32::MAX),
            rating: Default::default(),
            response_secs,
            seller_days,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(seller_id = %seller, level = level.as_str()), err(level = "debug"))]
    async fn set_level(
        &self,
        seller: UserId,
        level: SellerLevel,
        record: &SellerRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<SellerLevel>, StoreError> {
        let previous: Option<(String,)> = on_pool!(self, pool => async {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await?;
            let previous = sqlx::query_as("SELECT level FROM seller_levels WHERE user_id = $1")
                .bind(seller.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO seller_levels (user_id, level, record, computed_at) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id) DO UPDATE SET level = excluded.level, \
                 record = excluded.record, computed_at = excluded.computed_at",
            )
            .bind(seller.as_uuid())
            .bind(level.as_str())
            .bind(Json(record))
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(previous)
        }.await)
        .map_err(store_error)?;
        Ok(previous.and_then(|(level,)| SellerLevel::parse(&level)))
    }

    async fn level(&self, seller: UserId) -> Result<Option<StoredLevel>, StoreError> {
        let row: Option<(String, Json<SellerRecord>, DateTime<Utc>)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT level, record, computed_at FROM seller_levels WHERE user_id = $1",
            )
            .bind(seller.as_uuid())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(|(level, record, computed_at)| {
            let level = SellerLevel::parse(&level)
                .ok_or_else(|| StoreError::Backend(format!("unknown seller level {level:?}")))?;
            Ok(StoredLevel {
                level,
                record: record.0,
                computed_at,
            })
        })
        .transpose()
    }
}
