//! The relational store: one implementation of `AccountStore`,
//! `SessionStore`, `GigStore`, `ChatStore`, `EventLog`, `NotificationStore`,
//! `OrderStore` and `ModerationStore` over SQLite (the embedded default) and
//! PostgreSQL.
//!
//! Every query is written once. [`SqlStore`] wraps a pool of either backend and
//! the private `on_pool!` macro expands the same query code for both pool
//! types; sqlx's SQLite driver accepts PostgreSQL's `$1` placeholders. Rows are
//! decoded through `FromRow` structs that are generic over the backend.
//!
//! Layout:
//! - `rows`: row structs and their conversion into domain types.
//! - `account`: `AccountStore` (accounts, seller profiles, one-time tokens).
//! - `session`: `SessionStore` (sessions and rotating refresh tokens).
//! - `gig`: `GigStore` (gigs, the category taxonomy, the search outbox).
//! - `chat`: `ChatStore` (conversations, messages, read pointers,
//!   attachments, last-seen times).
//! - `live`: `EventLog` (each user's log of durable live events) and the
//!   helpers that append to it inside a write transaction, which every chat,
//!   order and offer write that produces events uses.
//! - `order`: `OrderStore` (orders and offers stored as JSON with versioned
//!   writes, checkout keys, the double-entry ledger with running account
//!   balances, refunds, provider events, seller withdrawals).
//! - `moderation`: `ModerationStore` (the moderation queue, its feed
//!   numbered without gaps, the append-only audit log, and the admins'
//!   lists of users, gigs and orders).
//! - `notifications`: `NotificationStore` (read state of the
//!   `notification` events in each user's log, one by one or all up to a
//!   cursor; each mark appends `notification.read` to the user's log).
//! - `mail_outbox`: `MailOutbox` (mail stored before it is sent, claimed
//!   under a lease by one conditional update, retried, given up on).
//! - `saved`: `SavedStore` (favourites, saved searches with their limits
//!   checked under the user's row, the gigs each search matched, when each
//!   gig was first public; an alert is appended with its match).
//!
//! Invariants both backends keep:
//! - Times are truncated to microseconds before they are stored (PostgreSQL's
//!   precision), so a value reads back equal on either backend.
//! - A unique violation becomes `StoreError::Conflict` naming the field, a
//!   foreign key violation `StoreError::NotFound`, anything else
//!   `StoreError::Backend`.
//! - Writes that take more than one statement run in a transaction that takes
//!   the write lock first (`BEGIN IMMEDIATE` on SQLite), so concurrent writers
//!   wait for each other through the busy timeout instead of failing.
//! - A change that produces live events appends them to the users' event
//!   logs in its own transaction; the logs' heads are locked last and in
//!   ascending user order, so PostgreSQL transactions cannot deadlock on them.
//!   Ledger account balances are likewise moved in ascending account order.
//! - A moderation write takes the one moderation head row first (it numbers
//!   the feed and the audit log), so moderation writers queue there and
//!   never lock item rows in different orders.

mod account;
mod chat;
mod email_preferences;
mod gig;
mod levels;
mod live;
mod mail_outbox;
mod moderation;
mod notifications;
mod order;
mod review;
mod rows;
mod saved;
mod session;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use domain::ports::StoreError;
use sqlx::error::ErrorKind;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// How long a SQLite connection waits for another writer before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The relational store. Cloning is cheap: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: Pool,
    /// SQLite has one writer at a time. Writers that collide wait in SQLite's
    /// busy handler, which sleeps in growing steps (up to 100 ms) and so
    /// leaves the database idle while they sleep; queueing write
    /// transactions here instead hands the lock over the moment it is free.
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's pool; the body is expanded
/// once per backend, so the same query text and bindings serve both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::sql::Pool::Sqlite($pool) => $body,
            $crate::sql::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

impl SqlStore {
    /// Connects to `url`: `sqlite://path/to/file.db` (created if missing),
    /// `sqlite::memory:`, or `postgres://...` / `postgresql://...`.
    ///
    /// Opens one connection straight away, so an unreachable server or an
    /// unwritable file is reported here.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let max_connections = max_connections.max(1);
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Backend(format!("invalid sqlite url: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .synchronous(SqliteSynchronous::Normal);
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let pool = if in_memory {
                // An in-memory database lives as long as one connection to it:
                // keep exactly one, forever. Shared-cache connections would
                // lock each other out instead of waiting.
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
            } else {
                SqlitePoolOptions::new().max_connections(max_connections)
            }
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot open sqlite database: {e}")))?;
            Ok(Self {
                pool: Pool::Sqlite(pool),
                write_gate: Default::default(),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .connect(url)
                .await
                .map_err(|e| StoreError::Backend(format!("cannot connect to postgres: {e}")))?;
            Ok(Self {
                pool: Pool::Postgres(pool),
                write_gate: Default::default(),
            })
        } else {
            Err(StoreError::Backend(
                "unsupported database url: expected sqlite:, postgres:// or postgresql://".into(),
            ))
        }
    }

    /// Applies the migrations embedded for this backend that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let result = match &self.pool {
            Pool::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await,
            Pool::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await,
        };
        result.map_err(|e| StoreError::Backend(format!("migration failed: {e}")))
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection; waits for connections in use to be returned.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Runs one SQL statement as given; returns how many rows it changed.
    /// Only for tests that check what the schema itself refuses (the audit
    /// log's append-only triggers): the store never calls it.
    #[doc(hidden)]
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        on_pool!(self, pool => {
            sqlx::query(sql)
                .persistent(false)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(store_error)
    }

    /// The statement that opens a transaction which writes: SQLite's default
    /// deferred transaction would fail with `SQLITE_BUSY` instead of waiting
    /// when it upgrades from reading to writing under concurrency.
    fn begin_write(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "BEGIN IMMEDIATE",
            Pool::Postgres(_) => "BEGIN",
        }
    }

    /// Held for the whole of a write transaction on SQLite, so write
    /// transactions queue in order instead of polling for the lock;
    /// PostgreSQL locks rows and needs no gate.
    async fn write_gate(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.pool {
            Pool::Sqlite(_) => Some(self.write_gate.lock().await),
            Pool::Postgres(_) => None,
        }
    }
}

/// A time as both backends store it: truncated to microseconds.
fn ts(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

/// Maps a sqlx error to the store's error: unique violations to the field
/// they concern, foreign key violations to `NotFound`.
fn store_error(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        match db.kind() {
            ErrorKind::UniqueViolation => {
                // PostgreSQL names the constraint (`users_email_key`); SQLite's
                // message names the columns (`UNIQUE constraint failed:
                // users.email`). Both read `users_email` once dots become
                // underscores.
                let source = db.constraint().unwrap_or_else(|| db.message());
                if let Some(field) = conflict_field(source) {
                    return StoreError::Conflict(field);
                }
            }
            ErrorKind::ForeignKeyViolation => return StoreError::NotFound,
            _ => {}
        }
    }
    StoreError::Backend(err.to_string())
}

fn conflict_field(source: &str) -> Option<&'static str> {
    let source = source.replace('.', "_");
    [
        ("users_email", "email"),
        ("users_username", "username"),
        ("seller_profiles_user_id", "seller_profile"),
        ("chat_attachments_pkey", "attachment"),
        ("chat_attachments_key", "attachment"),
        ("orders_offer_id", "offer"),
        ("orders_payment_intent", "payment_intent"),
        ("orders_pkey", "order"),
        ("orders_id", "order"),
        ("offers_pkey", "offer"),
        ("offers_id", "offer"),
        ("checkout_keys", "checkout"),
        ("payment_events", "payment_event"),
        ("refunds_pkey", "refund"),
        ("refunds_id", "refund"),
        ("withdrawals_pkey", "withdrawal"),
        ("withdrawals_id", "withdrawal"),
        // The partial index of unresolved reports: PostgreSQL names the
        // index, SQLite its first column.
        ("moderation_items_reporter", "report"),
        ("moderation_items_source_key", "source_key"),
        ("moderation_items_pkey", "item"),
        ("moderation_items_id", "item"),
    ]
    .into_iter()
    .find(|(needle, _)| source.contains(needle))
    .map(|(_, field)| field)
}

#[cfg(test)]
mod tests {
    use super::conflict_field;

    #[test]
    fn conflicts_are_named_from_either_backend() {
        assert_eq!(conflict_field("users_email_key"), Some("email"));
        assert_eq!(
            conflict_field("UNIQUE constraint failed: users.email"),
            Some("email")
        );
        assert_eq!(conflict_field("users_username_key"), Some("username"));
        assert_eq!(
            conflict_field("UNIQUE constraint failed: users.username"),
            Some("username")
        );
        assert_eq!(
            conflict_field("seller_profiles_user_id_key"),
            Some("seller_profile")
        );
        assert_eq!(
            conflict_field("UNIQUE constraint failed: seller_profiles.user_id"),
            Some("seller_profile")
        );
        assert_eq!(conflict_field("chat_attachments_pkey"), Some("attachment"));
        assert_eq!(
            conflict_field("UNIQUE constraint failed: chat_attachments.key"),
            Some("attachment")
        );
        assert_eq!(
            conflict_field("UNIQUE constraint failed: refresh_tokens.token_hash"),
            None
        );
        assert_eq!(conflict_field("orders_offer_id_key"), Some("offer"));
        assert_eq!(
            conflict_field("UNIQUE constraint failed: orders.offer_id"),
            Some("offer")
        );
        assert_eq!(
            conflict_field("orders_payment_intent_key"),
            Some("payment_intent")
        );
        assert_eq!(
            conflict_field(
                "UNIQUE constraint failed: orders.payment_provider, orders.payment_intent_id"
            ),
            Some("payment_intent")
        );
        assert_eq!(conflict_field("orders_pkey"), Some("order"));
        assert_eq!(
            conflict_field("UNIQUE constraint failed: orders.id"),
            Some("order")
        );
        assert_eq!(conflict_field("offers_pkey"), Some("offer"));
        assert_eq!(
            conflict_field("UNIQUE constraint failed: offers.id"),
            Some("offer")
        );
        assert_eq!(conflict_field("withdrawals_pkey"), Some("withdrawal"));
        assert_eq!(
            conflict_field("UNIQUE constraint failed: refunds.id"),
            Some("refund")
        );
        assert_eq!(
            conflict_field("UNIQUE constraint failed: ledger_transactions.order_id"),
            None
        );
        assert_eq!(
            conflict_field("moderation_items_reporter_target_key"),
            Some("report")
        );
        assert_eq!(
            conflict_field(
                "UNIQUE constraint failed: moderation_items.reporter, \
                 moderation_items.target_type, moderation_items.target_id"
            ),
            Some("report")
        );
        assert_eq!(
            conflict_field("moderation_items_source_key_key"),
            Some("source_key")
        );
        assert_eq!(
            conflict_field("UNIQUE constraint failed: moderation_items.id"),
            Some("item")
        );
    }
}
