//! `AccountStore`: accounts, seller profiles and one-time tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::account::{Email, NewUser, ProfileUpdate, User, Username};
use domain::auth::{OneTimeToken, TokenPurpose};
use domain::ids::UserId;
use domain::ports::{AccountStore, SellerProfileRecord, StoreError};
use domain::seller::SellerProfile;
use sqlx::types::Json;
use uuid::Uuid;

use super::rows::{seller_profile_columns, user_columns, SellerProfileRow, UserRow};
use super::{on_pool, store_error, ts, SqlStore};

#[async_trait]
impl AccountStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
            .map_err(store_error)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user.id), err(level = "debug"))]
    async fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let row: UserRow = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "INSERT INTO users (id, email, username, password_hash, role, \
                 email_verified_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING ",
                user_columns!()
            ))
            .bind(user.id.as_uuid())
            .bind(user.email.as_str())
            .bind(user.username.as_str())
            .bind(&user.password_hash)
            .bind(user.role.as_str())
            .bind(user.email_verified_at.map(ts))
            .bind(ts(user.created_at))
            .fetch_one(pool)
            .await
        })
        .map_err(store_error)?;
        row.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %id), err(level = "debug"))]
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        row.map(User::try_from).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1"))
                .bind(email.as_str())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        row.map(User::try_from).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(username = %username), err(level = "debug"))]
    async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE username = $1"))
                .bind(username.as_str())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        row.map(User::try_from).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %id), err(level = "debug"))]
    async fn update_profile(
        &self,
        id: UserId,
        update: &ProfileUpdate,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        if update.is_empty() {
            return match self.user_by_id(id).await? {
                Some(user) if user.deleted_at.is_none() => Ok(user),
                _ => Err(StoreError::NotFound),
            };
        }
        // Each field comes as a flag (set it?) and a value (possibly NULL).
        let country = update
            .country
            .as_ref()
            .map(|c| c.as_ref().map(|c| c.as_str().to_owned()));
        let row: Option<UserRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "UPDATE users SET \
                 display_name = CASE WHEN $2 THEN $3 ELSE display_name END, \
                 country = CASE WHEN $4 THEN $5 ELSE country END, \
                 bio = CASE WHEN $6 THEN $7 ELSE bio END, \
                 updated_at = $8 \
                 WHERE id = $1 AND deleted_at IS NULL RETURNING ",
                user_columns!()
            ))
            .bind(id.as_uuid())
            .bind(update.display_name.is_some())
            .bind(update.display_name.clone().flatten())
            .bind(country.is_some())
            .bind(country.clone().flatten())
            .bind(update.bio.is_some())
            .bind(update.bio.clone().flatten())
            .bind(ts(now))
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %id), err(level = "debug"))]
    async fn mark_email_verified(&self, id: UserId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let done = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE users SET \
                 updated_at = CASE WHEN email_verified_at IS NULL THEN $2 ELSE updated_at END, \
                 email_verified_at = COALESCE(email_verified_at, $2) \
                 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(ts(now))
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(store_error)?;
        found(done)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %id), err(level = "debug"))]
    async fn set_password_hash(
        &self,
        id: UserId,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = on_pool!(self, pool => {
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(id.as_uuid())
                .bind(password_hash)
                .bind(ts(now))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(store_error)?;
        found(done)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %id, suspended), err(level = "debug"))]
    async fn set_suspended(
        &self,
        id: UserId,
        suspended: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Suspending a suspended account keeps the first time.
        let done = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE users SET \
                 suspended_at = CASE WHEN $2 THEN COALESCE(suspended_at, $3) ELSE NULL END, \
                 updated_at = $3 \
                 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(suspended)
            .bind(ts(now))
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(store_error)?;
        found(done)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %id), err(level = "debug"))]
    async fn anonymise_user(&self, id: UserId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let tombstone = id.as_uuid().simple().to_string();
        let username = format!("deleted-{tombstone}");
        let email = format!("deleted-{tombstone}@deleted.invalid");
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let updated = sqlx::query(
                "UPDATE users SET email = $2, username = $3, password_hash = '', \
                 display_name = NULL, country = NULL, bio = NULL, \
                 deleted_at = COALESCE(deleted_at, $4), updated_at = $4 \
                 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(&email)
            .bind(&username)
            .bind(ts(now))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?
            .rows_affected();
            if updated == 0 {
                tx.rollback().await.map_err(store_error)?;
                return Err(StoreError::NotFound);
            }
            // Reviews stay: they are part of other users' orders and ratings,
            // and show without a username once the author is gone.
            for statement in [
                "DELETE FROM seller_profiles WHERE user_id = $1",
                "DELETE FROM one_time_tokens WHERE user_id = $1",
                "DELETE FROM favourites WHERE user_id = $1",
                "DELETE FROM saved_search_matches WHERE search_id IN \
                 (SELECT id FROM saved_searches WHERE user_id = $1)",
                "DELETE FROM saved_searches WHERE user_id = $1",
                "DELETE FROM email_preferences WHERE user_id = $1",
            ] {
                sqlx::query(statement)
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
            }
            tx.commit().await.map_err(store_error)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), err(level = "debug"))]
    async fn create_seller_profile(
        &self,
        user_id: UserId,
        profile: &SellerProfile,
        now: DateTime<Utc>,
    ) -> Result<SellerProfileRecord, StoreError> {
        let row: SellerProfileRow = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "INSERT INTO seller_profiles (user_id, full_name, one_liner, description, \
                 languages, skills, education, certificates, links, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING ",
                seller_profile_columns!()
            ))
            .bind(user_id.as_uuid())
            .bind(&profile.full_name)
            .bind(&profile.one_liner)
            .bind(&profile.description)
            .bind(Json(&profile.languages))
            .bind(Json(&profile.skills))
            .bind(Json(&profile.education))
            .bind(Json(&profile.certificates))
            .bind(Json(&profile.links))
            .bind(ts(now))
            .fetch_one(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(row.into())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), err(level = "debug"))]
    async fn update_seller_profile(
        &self,
        user_id: UserId,
        profile: &SellerProfile,
        now: DateTime<Utc>,
    ) -> Result<SellerProfileRecord, StoreError> {
        let row: Option<SellerProfileRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "UPDATE seller_profiles SET full_name = $2, one_liner = $3, description = $4, \
                 languages = $5, skills = $6, education = $7, certificates = $8, links = $9, \
                 updated_at = $10 \
                 WHERE user_id = $1 RETURNING ",
                seller_profile_columns!()
            ))
            .bind(user_id.as_uuid())
            .bind(&profile.full_name)
            .bind(&profile.one_liner)
            .bind(&profile.description)
            .bind(Json(&profile.languages))
            .bind(Json(&profile.skills))
            .bind(Json(&profile.education))
            .bind(Json(&profile.certificates))
            .bind(Json(&profile.links))
            .bind(ts(now))
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(Into::into).ok_or(StoreError::NotFound)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), err(level = "debug"))]
    async fn seller_profile(
        &self,
        user_id: UserId,
    ) -> Result<Option<SellerProfileRecord>, StoreError> {
        let row: Option<SellerProfileRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ",
                seller_profile_columns!(),
                " FROM seller_profiles WHERE user_id = $1"
            ))
            .bind(user_id.as_uuid())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(user_id = %token.user_id, purpose = token.purpose.as_str()),
        err
    )]
    async fn insert_token(&self, token: &OneTimeToken) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO one_time_tokens (token_hash, user_id, purpose, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&token.token_hash)
            .bind(token.user_id.as_uuid())
            .bind(token.purpose.as_str())
            .bind(ts(token.created_at))
            .bind(ts(token.expires_at))
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(store_error)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(purpose = purpose.as_str()), err(level = "debug"))]
    async fn consume_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        // One statement: of two concurrent calls, the second finds `used_at`
        // set (PostgreSQL re-checks the row after the first commits; SQLite
        // runs writers one at a time).
        let owner: Option<(Uuid,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "UPDATE one_time_tokens SET used_at = $3 \
                 WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
                 RETURNING user_id",
            )
            .bind(token_hash)
            .bind(purpose.as_str())
            .bind(ts(now))
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(owner.map(|(id,)| UserId::from_uuid(id)))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(user_id = %user_id, purpose = purpose.as_str()),
        err
    )]
    async fn delete_tokens(
        &self,
        user_id: UserId,
        purpose: TokenPurpose,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "DELETE FROM one_time_tokens \
                 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
            )
            .bind(user_id.as_uuid())
            .bind(purpose.as_str())
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(store_error)
    }
}

/// `NotFound` when an update touched no row.
fn found(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}
