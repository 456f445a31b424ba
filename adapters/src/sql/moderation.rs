//! `ModerationStore`: the moderation queue, its feed, the append-only audit
//! log, and the admins' lists of users, gigs and orders.
//!
//! An item is stored as an order is: the whole `Item` as JSON (`data`) next
//! to the columns that are queried or constrained, with a `version` every
//! update checks. Raising an item inserts it unless its `source_key` is
//! stored already (`ON CONFLICT DO NOTHING`); a second unresolved report by
//! one reporter on one target breaks a partial unique index, reported as
//! `Conflict("report")`.
//!
//! Every write takes the single head row (`moderation_feed_head`) first:
//! one statement adds the feed events and audit entries it is about to
//! store to the head's counters and returns them, and the row stays locked
//! until the transaction ends. Feed numbers and audit ids are therefore
//! 1, 2, 3, ... without gaps (a refused write rolls its numbers back with
//! it) and commit in order. As every moderation write locks the head before
//! anything else, the item rows it then locks cannot deadlock; none of these
//! transactions touches the users' event heads.
//!
//! The lists (items, audit entries, users, gigs, orders) are newest first by
//! id (UUID v7 ids order by time; audit ids by recording), `before` is the
//! last id of the previous page, and a limit of 0 means [`DEFAULT_LIMIT`];
//! none returns more than [`MAX_LIMIT`] rows. `feed_after` returns as many
//! events as asked. Text queries match a lowercased substring with `LIKE`'s
//! wildcards escaped; SQLite lowercases ASCII letters only.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::account::User;
use domain::gig::Gig;
use domain::ids::ItemId;
use domain::moderation::{
    AccountState, ActionRecord, AuditEntry, AuditFilter, FeedEvent, FeedRecord, GigFilter, Item,
    ItemChange, ItemFilter, OrderFilter, Totals, UserFilter,
};
use domain::money::Currency;
use domain::order::Order;
use domain::ports::{ModerationStore, StoreError};
use sqlx::types::Json;

use super::live::{on_conn, WriteConn};
use super::rows::{
    audit_columns, gig_columns, user_columns, AuditRow, FeedRow, GigRow, ItemRow, OrderRow, UserRow,
};
use super::{on_pool, store_error, ts, SqlStore};

/// Rows a list returns when the filter's limit is 0.
const DEFAULT_LIMIT: u32 = 50;
/// The most rows a list returns.
const MAX_LIMIT: u32 = 200;

/// Adds `$1` feed numbers and `$2` audit ids to the head's counters and
/// returns the newest of each; locks the head row until commit.
const TAKE_HEAD: &str = "UPDATE moderation_feed_head \
     SET last_seq = last_seq + $1, last_audit_id = last_audit_id + $2 \
     WHERE id = 1 RETURNING last_seq, last_audit_id";

/// Inserts an item, or nothing if its source key is stored already.
const INSERT_ITEM: &str = "INSERT INTO moderation_items (id, kind, target_type, target_id, \
     subject_user, reporter, status, claimed_by, source_key, data, version, updated_at, \
     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (source_key) DO NOTHING";

/// Replaces an item that still has the expected version (`$13`). The id
/// and the creation time never change.
const UPDATE_ITEM: &str = "UPDATE moderation_items SET kind = $2, target_type = $3, \
     target_id = $4, subject_user = $5, reporter = $6, status = $7, claimed_by = $8, \
     source_key = $9, data = $10, version = $11, updated_at = $12 \
     WHERE id = $1 AND version = $13";

const INSERT_FEED: &str = "INSERT INTO moderation_feed (seq, kind, payload, created_at) \
     VALUES ($1, $2, $3, $4)";

const INSERT_AUDIT: &str = concat!(
    "INSERT INTO audit_log (",
    audit_columns!(),
    ", target_type, target_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);

/// Binds `$1` to `$12` of an item write: the id and every column an update
/// replaces. The insert adds `$13` the creation time, the update `$13` the
/// expected version.
macro_rules! bind_item {
    ($query:expr, $item:expr) => {
        $query
            .bind($item.id.as_uuid())
            .bind($item.kind.as_str())
            .bind($item.target.kind())
            .bind($item.target.id())
            .bind($item.subject_user.map(|id| id.as_uuid()))
            .bind($item.reporter.map(|id| id.as_uuid()))
            .bind($item.status.as_str())
            .bind($item.claimed_by.map(|id| id.as_uuid()))
            .bind(&$item.source_key)
            .bind(Json(&$item))
            .bind($item.version)
            .bind(ts($item.updated_at))
    };
}

/// The number of rows a list returns for `limit`.
fn page(limit: u32) -> i64 {
    i64::from(match limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    })
}

/// A `LIKE` pattern matching text that contains `text`, lowercased, with
/// `LIKE`'s wildcards escaped (`ESCAPE '\'`).
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Takes `events` feed numbers and `audits` audit ids from the head row
/// within the caller's open write transaction; returns the first of each.
async fn take_head(
    write: WriteConn<'_>,
    events: usize,
    audits: usize,
) -> Result<(i64, i64), StoreError> {
    let count =
        |n: usize| i64::try_from(n).map_err(|_| StoreError::Backend("too many feed events".into()));
    let (events, audits) = (count(events)?, count(audits)?);
    let (last_seq, last_audit): (i64, i64) = on_conn!(write, conn => {
        sqlx::query_as(TAKE_HEAD)
            .bind(events)
            .bind(audits)
            .fetch_one(&mut *conn)
            .await
            .map_err(store_error)?
    });
    Ok((last_seq - events + 1, last_audit - audits + 1))
}

/// Stores a feed event under `seq` within the caller's open write
/// transaction.
async fn append_feed(
    write: WriteConn<'_>,
    seq: i64,
    event: &FeedEvent,
    at: DateTime<Utc>,
) -> Result<FeedRecord, StoreError> {
    let at = ts(at);
    on_conn!(write, conn => {
        sqlx::query(INSERT_FEED)
            .bind(seq)
            .bind(event.kind())
            .bind(Json(event))
            .bind(at)
            .execute(&mut *conn)
            .await
            .map_err(store_error)?;
    });
    Ok(FeedRecord {
        seq,
        at,
        event: event.clone(),
    })
}

/// Refuses a change that does not move the item one version on, which
/// would let two writers both pass the version check.
fn check_change(change: &ItemChange) -> Result<(), StoreError> {
    if change.item.version != change.expected_version + 1 {
        return Err(StoreError::Backend(format!(
            "refusing item {} at version {} in place of version {}",
            change.item.id, change.item.version, change.expected_version
        )));
    }
    Ok(())
}

/// Replaces the item if it still has the expected version, within the
/// caller's open write transaction: `VersionConflict` if it has another,
/// `NotFound` if there is none.
async fn replace_item(write: WriteConn<'_>, change: &ItemChange) -> Result<(), StoreError> {
    let item = &change.item;
    on_conn!(write, conn => {
        let written = bind_item!(sqlx::query(UPDATE_ITEM), item)
            .bind(change.expected_version)
            .execute(&mut *conn)
            .await
            .map_err(store_error)?
            .rows_affected();
        if written == 0 {
            // Inside the write transaction: the answer is current.
            let stored: Option<(i64,)> =
                sqlx::query_as("SELECT version FROM moderation_items WHERE id = $1")
                    .bind(item.id.as_uuid())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(store_error)?;
            return Err(if stored.is_some() {
                StoreError::VersionConflict
            } else {
                StoreError::NotFound
            });
        }
    });
    Ok(())
}

#[async_trait]
impl ModerationStore for SqlStore {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(item_id = %item.id, kind = item.kind.as_str()),
        err(level = "debug")
    )]
    async fn raise(&self, item: &Item) -> Result<Option<FeedRecord>, StoreError> {
        let event = FeedEvent::ItemRaised(Box::new(item.clone()));
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let (seq, _) = take_head((&mut *tx).into(), 1, 0).await?;
            // A second unresolved report fails here on the partial unique
            // index (`Conflict("report")`); a stored source key inserts
            // nothing.
            let inserted = bind_item!(sqlx::query(INSERT_ITEM), item)
                .bind(ts(item.created_at))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?
                .rows_affected();
            if inserted == 0 {
                tx.rollback().await.map_err(store_error)?;
                return Ok(None);
            }
            let record = append_feed((&mut *tx).into(), seq, &event, item.created_at).await?;
            tx.commit().await.map_err(store_error)?;
            Ok(Some(record))
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(item_id = %id), err(level = "debug"))]
    async fn item(&self, id: ItemId) -> Result<Option<Item>, StoreError> {
        let row: Option<ItemRow> = on_pool!(self, pool => {
            sqlx::query_as("SELECT data, version FROM moderation_items WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        Ok(row.map(Item::from))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(item_id = %change.item.id, expected_version = change.expected_version, kind = change.event.kind()),
        err(level = "debug")
    )]
    async fn update_item(&self, change: &ItemChange) -> Result<FeedRecord, StoreError> {
        check_change(change)?;
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let (seq, _) = take_head((&mut *tx).into(), 1, 0).await?;
            if let Err(error) = replace_item((&mut *tx).into(), change).await {
                tx.rollback().await.map_err(store_error)?;
                return Err(error);
            }
            let record =
                append_feed((&mut *tx).into(), seq, &change.event, change.item.updated_at).await?;
            tx.commit().await.map_err(store_error)?;
            Ok(record)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(?filter), err(level = "debug"))]
    async fn items(&self, filter: &ItemFilter) -> Result<Vec<Item>, StoreError> {
        let rows: Vec<ItemRow> = on_pool!(self, pool => {
            let mut query =
                sqlx::QueryBuilder::new("SELECT data, version FROM moderation_items WHERE 1 = 1");
            if let Some(status) = filter.status {
                query.push(" AND status = ").push_bind(status.as_str());
            }
            if filter.unresolved {
                query.push(" AND status <> 'resolved'");
            }
            if let Some(kind) = filter.kind {
                query.push(" AND kind = ").push_bind(kind.as_str());
            }
            if let Some(target_type) = &filter.target_type {
                query.push(" AND target_type = ").push_bind(target_type.as_str());
            }
            if let Some(target_id) = filter.target_id {
                query.push(" AND target_id = ").push_bind(target_id);
            }
            if let Some(claimed_by) = filter.claimed_by {
                query.push(" AND claimed_by = ").push_bind(claimed_by.as_uuid());
            }
            if let Some(before) = filter.before {
                query.push(" AND id < ").push_bind(before.as_uuid());
            }
            query.push(" ORDER BY id DESC LIMIT ").push_bind(page(filter.limit));
            query.build_query_as().fetch_all(pool).await
        })
        .map_err(store_error)?;
        Ok(rows.into_iter().map(Item::from).collect())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            admin_id = %record.audit.admin_id,
            action = record.audit.action.as_str(),
            item_id = ?record.item.as_ref().map(|change| change.item.id),
        ),
        err(level = "debug")
    )]
    async fn record_action(
        &self,
        record: &ActionRecord,
    ) -> Result<(AuditEntry, Vec<FeedRecord>), StoreError> {
        if let Some(change) = &record.item {
            check_change(change)?;
        }
        let audit = &record.audit;
        let events = 1 + usize::from(record.item.is_some());
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let (mut seq, audit_id) = take_head((&mut *tx).into(), events, 1).await?;
            if let Some(change) = &record.item {
                if let Err(error) = replace_item((&mut *tx).into(), change).await {
                    tx.rollback().await.map_err(store_error)?;
                    return Err(error);
                }
            }
            let entry = AuditEntry {
                id: audit_id,
                admin_id: audit.admin_id,
                action: audit.action,
                target: audit.target,
                reason: audit.reason.clone(),
                details: audit.details.clone(),
                item_id: audit.item_id,
                at: ts(audit.at),
            };
            sqlx::query(INSERT_AUDIT)
                .bind(entry.id)
                .bind(entry.admin_id.as_uuid())
                .bind(entry.action.as_str())
                .bind(Json(&entry.target))
                .bind(&entry.reason)
                .bind(entry.details.as_deref())
                .bind(entry.item_id.map(|id| id.as_uuid()))
                .bind(entry.at)
                .bind(entry.target.kind())
                .bind(entry.target.id())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            let mut records = Vec::with_capacity(events);
            if let Some(change) = &record.item {
                records.push(
                    append_feed((&mut *tx).into(), seq, &change.event, change.item.updated_at)
                        .await?,
                );
                seq += 1;
            }
            let recorded = FeedEvent::AuditRecorded(Box::new(entry.clone()));
            records.push(append_feed((&mut *tx).into(), seq, &recorded, entry.at).await?);
            tx.commit().await.map_err(store_error)?;
            Ok((entry, records))
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(?filter), err(level = "debug"))]
    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = on_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit_log WHERE 1 = 1"
            ));
            if let Some(admin_id) = filter.admin_id {
                query.push(" AND admin_id = ").push_bind(admin_id.as_uuid());
            }
            if let Some(action) = filter.action {
                query.push(" AND action = ").push_bind(action.as_str());
            }
            if let Some(target_type) = &filter.target_type {
                query.push(" AND target_type = ").push_bind(target_type.as_str());
            }
            if let Some(target_id) = filter.target_id {
                query.push(" AND target_id = ").push_bind(target_id);
            }
            if let Some(from) = filter.from {
                query.push(" AND at >= ").push_bind(ts(from));
            }
            if let Some(to) = filter.to {
                query.push(" AND at < ").push_bind(ts(to));
            }
            if let Some(before) = filter.before {
                query.push(" AND id < ").push_bind(before);
            }
            query.push(" ORDER BY id DESC LIMIT ").push_bind(page(filter.limit));
            query.build_query_as().fetch_all(pool).await
        })
        .map_err(store_error)?;
        rows.into_iter().map(AuditEntry::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn feed_head(&self) -> Result<i64, StoreError> {
        let (head,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as("SELECT last_seq FROM moderation_feed_head WHERE id = 1")
                .fetch_one(pool)
                .await
        })
        .map_err(store_error)?;
        Ok(head)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(after, limit), err(level = "debug"))]
    async fn feed_after(&self, after: i64, limit: u32) -> Result<Vec<FeedRecord>, StoreError> {
        let rows: Vec<FeedRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT seq, payload, created_at FROM moderation_feed \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(rows.into_iter().map(FeedRecord::from).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(?filter), err(level = "debug"))]
    async fn users(&self, filter: &UserFilter) -> Result<Vec<User>, StoreError> {
        let pattern = filter.query.as_deref().map(contains_pattern);
        let rows: Vec<UserRow> = on_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE 1 = 1"
            ));
            if let Some(role) = filter.role {
                query.push(" AND role = ").push_bind(role.as_str());
            }
            match filter.state {
                None => {}
                Some(AccountState::Active) => {
                    query.push(" AND suspended_at IS NULL AND deleted_at IS NULL");
                }
                Some(AccountState::Suspended) => {
                    query.push(" AND suspended_at IS NOT NULL AND deleted_at IS NULL");
                }
                Some(AccountState::Deleted) => {
                    query.push(" AND deleted_at IS NOT NULL");
                }
            }
            if let Some(pattern) = &pattern {
                query
                    .push(" AND (LOWER(username) LIKE ")
                    .push_bind(pattern.as_str())
                    .push(" ESCAPE '\\' OR LOWER(email) LIKE ")
                    .push_bind(pattern.as_str())
                    .push(" ESCAPE '\\')");
            }
            if let Some(before) = filter.before {
                query.push(" AND id < ").push_bind(before.as_uuid());
            }
            query.push(" ORDER BY id DESC LIMIT ").push_bind(page(filter.limit));
            query.build_query_as().fetch_all(pool).await
        })
        .map_err(store_error)?;
        rows.into_iter().map(User::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(?filter), err(level = "debug"))]
    async fn gigs(&self, filter: &GigFilter) -> Result<Vec<Gig>, StoreError> {
        let pattern = filter.query.as_deref().map(contains_pattern);
        let rows: Vec<GigRow> = on_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(concat!(
                "SELECT ",
                gig_columns!(),
                " FROM gigs WHERE 1 = 1"
            ));
            if let Some(status) = filter.status {
                query.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(seller_id) = filter.seller_id {
                query.push(" AND seller_id = ").push_bind(seller_id.as_uuid());
            }
            if let Some(pattern) = &pattern {
                query
                    .push(" AND LOWER(title) LIKE ")
                    .push_bind(pattern.as_str())
                    .push(" ESCAPE '\\'");
            }
            if !filter.include_deleted {
                query.push(" AND deleted_at IS NULL");
            }
            if let Some(before) = filter.before {
                query.push(" AND id < ").push_bind(before.as_uuid());
            }
            query.push(" ORDER BY id DESC LIMIT ").push_bind(page(filter.limit));
            query.build_query_as().fetch_all(pool).await
        })
        .map_err(store_error)?;
        rows.into_iter().map(Gig::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(?filter), err(level = "debug"))]
    async fn orders(&self, filter: &OrderFilter) -> Result<Vec<Order>, StoreError> {
        // `dispute` is in the order's JSON, `null` until one is opened.
        let disputed = match self.backend() {
            "postgres" => " AND jsonb_typeof(data -> 'dispute') = 'object'",
            _ => " AND json_type(data, '$.dispute') = 'object'",
        };
        let rows: Vec<OrderRow> = on_pool!(self, pool => {
            let mut query =
                sqlx::QueryBuilder::new("SELECT data, version FROM orders WHERE 1 = 1");
            if let Some(status) = filter.status {
                query.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(party) = filter.party {
                query
                    .push(" AND (buyer_id = ")
                    .push_bind(party.as_uuid())
                    .push(" OR seller_id = ")
                    .push_bind(party.as_uuid())
                    .push(")");
            }
            if let Some(buyer_id) = filter.buyer_id {
                query.push(" AND buyer_id = ").push_bind(buyer_id.as_uuid());
            }
            if let Some(seller_id) = filter.seller_id {
                query.push(" AND seller_id = ").push_bind(seller_id.as_uuid());
            }
            if filter.disputed {
                query.push(disputed);
            }
            if let Some(before) = filter.before {
                query.push(" AND id < ").push_bind(before.as_uuid());
            }
            query.push(" ORDER BY id DESC LIMIT ").push_bind(page(filter.limit));
            query.build_query_as().fetch_all(pool).await
        })
        .map_err(store_error)?;
        Ok(rows.into_iter().map(Order::from).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%day_start), err(level = "debug"))]
    async fn totals(&self, day_start: DateTime<Utc>) -> Result<Totals, StoreError> {
        // One statement, so every figure is read from one snapshot. An
        // order is paid by its `payment` transaction, which debits the
        // `provider` account with what the buyer paid.
        type Row = (i64, i64, i64, i64, i64);
        let (orders_today, gmv_today_minor, open_disputes, open_reports, open_items): Row =
            on_pool!(self, pool => {
                sqlx::query_as(
                    "SELECT \
                     (SELECT COUNT(DISTINCT order_id) FROM ledger_transactions \
                      WHERE kind = 'payment' AND created_at >= $1), \
                     (SELECT CAST(COALESCE(SUM(p.amount_minor), 0) AS BIGINT) \
                      FROM ledger_transactions t \
                      JOIN ledger_postings p ON p.transaction_id = t.id \
                      WHERE t.kind = 'payment' AND t.created_at >= $1 \
                      AND t.currency = $2 AND p.account = 'provider'), \
                     (SELECT COUNT(*) FROM orders WHERE status = 'disputed'), \
                     (SELECT COUNT(*) FROM moderation_items \
                      WHERE kind = 'report' AND status <> 'resolved'), \
                     (SELECT COUNT(*) FROM moderation_items WHERE status <> 'resolved')",
                )
                .bind(ts(day_start))
                .bind(Currency::MARKETPLACE.code())
                .fetch_one(pool)
                .await
            })
            .map_err(store_error)?;
        Ok(Totals {
            orders_today,
            gmv_today_minor,
            open_disputes,
            open_reports,
            open_items,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{contains_pattern, page, DEFAULT_LIMIT, MAX_LIMIT};

    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(contains_pattern("Ada"), "%ada%");
        assert_eq!(contains_pattern("100%_x\\"), "%100\\%\\_x\\\\%");
        assert_eq!(contains_pattern(""), "%%");
    }

    #[test]
    fn limits_default_and_cap() {
        assert_eq!(page(0), i64::from(DEFAULT_LIMIT));
        assert_eq!(page(7), 7);
        assert_eq!(page(10_000), i64::from(MAX_LIMIT));
    }
}
