//! `EmailPreferences`: which optional mail each user turned off.
//!
//! `email_preferences` has a row per user and optional category the user
//! ever changed; a category without one is on. Changing several categories
//! is one transaction of upserts, so a change is all or nothing, and two
//! changes at once leave the later one's values.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::UserId;
use domain::mail::MailCategory;
use domain::ports::{EmailPreferences, StoreError};

use super::{on_pool, store_error, ts, SqlStore};

const UPSERT: &str = "INSERT INTO email_preferences (user_id, category, enabled, updated_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (user_id, category) DO UPDATE \
     SET enabled = excluded.enabled, updated_at = excluded.updated_at";

#[async_trait]
impl EmailPreferences for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user), err(level = "debug"))]
    async fn disabled_mail(&self, user: UserId) -> Result<Vec<MailCategory>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT category FROM email_preferences WHERE user_id = $1 AND NOT enabled",
            )
            .bind(user.as_uuid())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        let mut off = Vec::with_capacity(rows.len());
        for (name,) in rows {
            match MailCategory::parse(&name) {
                Some(category) if !category.is_essential() => off.push(category),
                _ => {
                    return Err(StoreError::Backend(format!(
                        "email preference of {user}: unknown category {name:?}"
                    )))
                }
            }
        }
        off.sort_by_key(|c| MailCategory::ALL.iter().position(|a| a == c));
        Ok(off)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user, category = category.as_str()), err(level = "debug"))]
    async fn mail_enabled(&self, user: UserId, category: MailCategory) -> Result<bool, StoreError> {
        if category.is_essential() {
            return Ok(true);
        }
        let row: Option<(bool,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT enabled FROM email_preferences WHERE user_id = $1 AND category = $2",
            )
            .bind(user.as_uuid())
            .bind(category.as_str())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(row.is_none_or(|(enabled,)| enabled))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user), err(level = "debug"))]
    async fn set_mail_enabled(
        &self,
        user: UserId,
        changes: &[(MailCategory, bool)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some((category, _)) = changes.iter().find(|(c, on)| c.is_essential() && !on) {
            return Err(StoreError::Backend(format!(
                "{} mail is essential and cannot be turned off",
                category.as_str()
            )));
        }
        // Essential mail is always on: nothing to store for it.
        let changes: Vec<_> = changes.iter().filter(|(c, _)| !c.is_essential()).collect();
        if changes.is_empty() {
            // Still tell an unknown user apart, as a write would.
            let known: Option<(i32,)> = on_pool!(self, pool => {
                sqlx::query_as("SELECT 1 FROM users WHERE id = $1")
                    .bind(user.as_uuid())
                    .fetch_optional(pool)
                    .await
            })
            .map_err(store_error)?;
            return known.map(|_| ()).ok_or(StoreError::NotFound);
        }
        let at = ts(now);
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            for (category, enabled) in changes {
                sqlx::query(UPSERT)
                    .bind(user.as_uuid())
                    .bind(category.as_str())
                    .bind(*enabled)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
            }
            tx.commit().await.map_err(store_error)
        })
    }
}
