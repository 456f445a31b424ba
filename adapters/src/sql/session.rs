//! `SessionStore`: login sessions and their rotating refresh tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::auth::{NewSession, Rotation, Session};
use domain::ids::{SessionId, UserId};
use domain::ports::{SessionStore, StoreError};
use uuid::Uuid;

use super::rows::{session_columns, SessionRow};
use super::{on_pool, store_error, ts, SqlStore};

#[async_trait]
impl SessionStore for SqlStore {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(session_id = %session.id, user_id = %session.user_id),
        err
    )]
    async fn create_session(&self, session: &NewSession) -> Result<Session, StoreError> {
        let created_at = ts(session.created_at);
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let row: SessionRow = sqlx::query_as(concat!(
                "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, \
                 user_agent, ip) VALUES ($1, $2, $3, $3, $4, $5, $6) RETURNING ",
                session_columns!()
            ))
            .bind(session.id.as_uuid())
            .bind(session.user_id.as_uuid())
            .bind(created_at)
            .bind(ts(session.expires_at))
            .bind(session.user_agent.as_deref())
            .bind(session.ip.as_deref())
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, session_id, created_at) \
                 VALUES ($1, $2, $3)",
            )
            .bind(&session.refresh_token_hash)
            .bind(session.id.as_uuid())
            .bind(created_at)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
            Ok(row.into())
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = %id), err(level = "debug"))]
    async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let row: Option<SessionRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!("SELECT ", session_columns!(), " FROM sessions WHERE id = $1"))
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn rotate(
        &self,
        presented_hash: &str,
        next_token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        let now = ts(now);
        on_pool!(self, pool => {
            // The transaction starts by writing, so concurrent rotations of one
            // token queue up on its row (PostgreSQL) or on the write lock
            // (SQLite): exactly one consumes it, the others see it used.
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let consumed: Option<(Uuid,)> = sqlx::query_as(
                "UPDATE refresh_tokens SET used_at = $2 \
                 WHERE token_hash = $1 AND used_at IS NULL RETURNING session_id",
            )
            .bind(presented_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;

            let Some((session_id,)) = consumed else {
                // Unknown, or consumed before: a consumed token presented again
                // has leaked, so its whole session is revoked.
                let revoked: Option<(Uuid, Uuid)> = sqlx::query_as(
                    "UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2) \
                     WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1) \
                     RETURNING id, user_id",
                )
                .bind(presented_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
                tx.commit().await.map_err(store_error)?;
                return Ok(match revoked {
                    Some((session_id, user_id)) => {
                        tracing::warn!(
                            session_id = %session_id,
                            user_id = %user_id,
                            "refresh token reused, session revoked"
                        );
                        Rotation::Reused {
                            session_id: SessionId::from_uuid(session_id),
                            user_id: UserId::from_uuid(user_id),
                        }
                    }
                    None => Rotation::Invalid,
                });
            };

            let extended: Option<SessionRow> = sqlx::query_as(concat!(
                "UPDATE sessions SET last_used_at = $2, expires_at = $3 \
                 WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2 RETURNING ",
                session_columns!()
            ))
            .bind(session_id)
            .bind(now)
            .bind(ts(expires_at))
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
            let Some(session) = extended else {
                // Revoked or expired: leave the token as it was.
                tx.rollback().await.map_err(store_error)?;
                return Ok(Rotation::Invalid);
            };
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, session_id, created_at) \
                 VALUES ($1, $2, $3)",
            )
            .bind(next_token_hash)
            .bind(session_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
            Ok(Rotation::Rotated(session.into()))
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = %id), err(level = "debug"))]
    async fn revoke(&self, id: SessionId, now: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
                .bind(id.as_uuid())
                .bind(ts(now))
                .execute(pool)
                .await
                .map(|_| ())
        })
        .map_err(store_error)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn revoke_by_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionId>, StoreError> {
        let revoked: Option<(Uuid,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2) \
                 WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1) \
                 RETURNING id",
            )
            .bind(token_hash)
            .bind(ts(now))
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(revoked.map(|(id,)| SessionId::from_uuid(id)))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(user_id = %user_id, except = ?except),
        err
    )]
    async fn revoke_all_for_user(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $3 \
                 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $3 \
                 AND ($2 IS NULL OR id <> $2)",
            )
            .bind(user_id.as_uuid())
            .bind(except.map(|id| id.as_uuid()))
            .bind(ts(now))
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(store_error)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), err(level = "debug"))]
    async fn sessions_for_user(&self, user_id: UserId) -> Result<Vec<Session>, StoreError> {
        let rows: Vec<SessionRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ",
                session_columns!(),
                " FROM sessions WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
            ))
            .bind(user_id.as_uuid())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
