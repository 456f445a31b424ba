//! `MailOutbox`: the durable mail outbox.
//!
//! Each mail is one row of `mail_outbox`: the recipient (an address, and
//! the account whose preferences apply, if any), the whole `AccountMail`
//! as JSON (`mail`), and the columns the worker needs (`status`,
//! `attempts`, `next_attempt_at`, `leased_until`). Every write is one
//! statement, so none needs a transaction:
//!
//! - enqueueing inserts with `ON CONFLICT (key) DO NOTHING`, so a key
//!   enqueued before writes nothing;
//! - claiming is one conditional `UPDATE ... RETURNING` that sets the lease
//!   and counts the attempt only if the row is still pending, due and not
//!   leased (or its lease ran out). PostgreSQL re-checks the condition on
//!   the row a concurrent claim just committed, and SQLite has one writer
//!   at a time, so of several claims exactly one changes the row;
//! - marking sent, failed, dead or skipped frees the lease; sent, dead and
//!   skipped are final.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::account::Email;
use domain::ids::UserId;
use domain::mail::AccountMail;
use domain::ports::{MailOutbox, MailStatus, QueuedMail, StoreError};
use sqlx::types::Json;
use uuid::Uuid;

use super::{on_pool, store_error, ts, SqlStore};

const COLUMNS: &str = "id, key, recipient, user_id, mail, status, attempts, next_attempt_at, \
     leased_until, last_error, created_at, sent_at";

const INSERT: &str = "INSERT INTO mail_outbox (id, key, recipient, user_id, mail, status, \
     attempts, next_attempt_at, leased_until, last_error, created_at, sent_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
     ON CONFLICT (key) DO NOTHING";

/// Leases a pending mail that is due at `$2` and free, until `$3`.
const CLAIM: &str = "UPDATE mail_outbox SET leased_until = $3, attempts = attempts + 1 \
     WHERE id = $1 AND status = 'pending' AND next_attempt_at <= $2 \
     AND (leased_until IS NULL OR leased_until <= $2) \
     RETURNING id, key, recipient, user_id, mail, status, attempts, next_attempt_at, \
     leased_until, last_error, created_at, sent_at";

/// One outbox row.
#[derive(sqlx::FromRow)]
struct MailRow {
    id: Uuid,
    key: String,
    recipient: String,
    user_id: Option<Uuid>,
    mail: Json<AccountMail>,
    status: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    leased_until: Option<DateTime<Utc>>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

impl TryFrom<MailRow> for QueuedMail {
    type Error = StoreError;

    fn try_from(row: MailRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Backend(format!("mail {}: {what}", row.id));
        Ok(QueuedMail {
            id: row.id,
            to: Email::parse(&row.recipient).map_err(|_| corrupt("invalid recipient"))?,
            user_id: row.user_id.map(UserId::from_uuid),
            status: MailStatus::parse(&row.status).ok_or_else(|| corrupt("unknown status"))?,
            attempts: u32::try_from(row.attempts).map_err(|_| corrupt("negative attempts"))?,
            key: row.key,
            mail: row.mail.0,
            next_attempt_at: row.next_attempt_at,
            leased_until: row.leased_until,
            last_error: row.last_error,
            created_at: row.created_at,
            sent_at: row.sent_at,
        })
    }
}

/// Errors are kept for inspection, not whole server transcripts.
fn clip(error: &str) -> &str {
    const MAX: usize = 2000;
    if error.len() <= MAX {
        return error;
    }
    let mut end = MAX;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    &error[..end]
}

impl SqlStore {
    /// Runs an `UPDATE` of one mail by id; `NotFound` if there is none.
    async fn update_mail(
        &self,
        query: &str,
        id: Uuid,
        binds: MailUpdate<'_>,
    ) -> Result<(), StoreError> {
        let written = on_pool!(self, pool => {
            let mut q = sqlx::query(query).bind(id);
            q = match binds {
                MailUpdate::Sent(now) => q.bind(ts(now)),
                MailUpdate::Failed(error, at) => q.bind(clip(error)).bind(ts(at)),
                MailUpdate::Dead(error) => q.bind(clip(error)),
                MailUpdate::Skipped => q,
            };
            q.execute(pool).await.map(|done| done.rows_affected())
        })
        .map_err(store_error)?;
        if written == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

enum MailUpdate<'a> {
    Sent(DateTime<Utc>),
    Failed(&'a str, DateTime<Utc>),
    Dead(&'a str),
    Skipped,
}

#[async_trait]
impl MailOutbox for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(mail_id = %mail.id, key = %mail.key), err(level = "debug"))]
    async fn enqueue(&self, mail: &QueuedMail) -> Result<bool, StoreError> {
        let attempts = i32::try_from(mail.attempts)
            .map_err(|_| StoreError::Backend("too many attempts".into()))?;
        let written = on_pool!(self, pool => {
            sqlx::query(INSERT)
                .bind(mail.id)
                .bind(&mail.key)
                .bind(mail.to.as_str())
                .bind(mail.user_id.map(|user| user.as_uuid()))
                .bind(Json(&mail.mail))
                .bind(mail.status.as_str())
                .bind(attempts)
                .bind(ts(mail.next_attempt_at))
                .bind(mail.leased_until.map(ts))
                .bind(mail.last_error.as_deref())
                .bind(ts(mail.created_at))
                .bind(mail.sent_at.map(ts))
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(store_error)?;
        Ok(written == 1)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit), err(level = "debug"))]
    async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<QueuedMail>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM mail_outbox WHERE status = 'pending' \
             AND next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until <= $1) \
             ORDER BY next_attempt_at, id LIMIT $2"
        );
        let rows: Vec<MailRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(ts(now))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })
        .map_err(store_error)?;
        rows.into_iter().map(QueuedMail::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(mail_id = %id), err(level = "debug"))]
    async fn claim(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<QueuedMail>, StoreError> {
        let row: Option<MailRow> = on_pool!(self, pool => {
            sqlx::query_as(CLAIM)
                .bind(id)
                .bind(ts(now))
                .bind(ts(lease_until))
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        row.map(QueuedMail::try_from).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(mail_id = %id), err(level = "debug"))]
    async fn mark_sent(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.update_mail(
            "UPDATE mail_outbox SET status = 'sent', sent_at = $2, leased_until = NULL, \
             last_error = NULL WHERE id = $1",
            id,
            MailUpdate::Sent(now),
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(mail_id = %id), err(level = "debug"))]
    async fn mark_failed(
        &self,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_mail(
            "UPDATE mail_outbox SET last_error = $2, next_attempt_at = $3, \
             leased_until = NULL WHERE id = $1 AND status = 'pending'",
            id,
            MailUpdate::Failed(error, next_attempt_at),
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(mail_id = %id), err(level = "debug"))]
    async fn mark_dead(&self, id: Uuid, error: &str) -> Result<(), StoreError> {
        self.update_mail(
            "UPDATE mail_outbox SET status = 'dead', last_error = $2, leased_until = NULL \
             WHERE id = $1 AND status = 'pending'",
            id,
            MailUpdate::Dead(error),
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(mail_id = %id), err(level = "debug"))]
    async fn mark_skipped(&self, id: Uuid) -> Result<(), StoreError> {
        self.update_mail(
            "UPDATE mail_outbox SET status = 'skipped', last_error = NULL, leased_until = NULL \
             WHERE id = $1 AND status = 'pending'",
            id,
            MailUpdate::Skipped,
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<(DateTime<Utc>,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT next_attempt_at FROM mail_outbox \
                 WHERE status = 'pending' AND leased_until IS NULL \
                 ORDER BY next_attempt_at, id LIMIT 1",
            )
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(next.map(|(at,)| at))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn mail_by_key(&self, key: &str) -> Result<Option<QueuedMail>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM mail_outbox WHERE key = $1");
        let row: Option<MailRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(key).fetch_optional(pool).await
        })
        .map_err(store_error)?;
        row.map(QueuedMail::try_from).transpose()
    }
}
