//! `OrderStore`: orders, custom offers, checkout keys, the double-entry
//! ledger, refunds, provider events and seller withdrawals.
//!
//! An order and an offer are stored whole as JSON (`data`) next to the
//! columns that are queried; reading one deserialises `data` and takes the
//! `version` column. Every write of either checks the version it replaces
//! and stores the new one (`expected + 1`) in both places.
//!
//! A change is one write transaction, in this order: the provider event it
//! applies (a second delivery is recognised and the change refused), the
//! order or offer row, the ledger (transactions, postings, then the account
//! balances), the refund, and last the live events. Account balances are
//! updated in ascending account order and event heads are taken last, so
//! PostgreSQL writers queue on rows instead of deadlocking; on SQLite the
//! write transaction serialises them anyway.
//!
//! Placing an order takes its checkout key first (a retried checkout is
//! `Conflict("checkout")`, whatever else it would conflict with), then
//! inserts the order (one per offer: `orders.offer_id` is unique), then
//! records it on its accepted offer. A withdrawal spends the seller's
//! available balance with one conditional update, which locks the balance
//! row: concurrent withdrawals queue there and never overspend.
//!
//! Events of a change are stamped with its time: the order's or offer's
//! `updated_at`. A provider event recorded with an order change is received
//! at that time too. Ledger transactions are numbered as stored, which is
//! the order `transactions_for` returns them in.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::{ConversationId, OfferId, OrderId, UserId};
use domain::ledger::{
    check_withdrawal, Account, Balance, Transaction, Withdrawal, WithdrawalError,
};
use domain::live::StoredEvent;
use domain::offer::{Offer, OfferStatus};
use domain::order::{Order, OrderStatus, Side};
use domain::payment::{PaymentEvent, RefundStatus};
use domain::ports::{
    CheckoutKey, EventsFor, OrderPage, OrderStore, OrderWrite, RefundRecord, StoreError,
};
use sqlx::types::Json;
use uuid::Uuid;

use super::live::{append_batches, on_conn, WriteConn};
use super::rows::{
    refund_columns, refund_status_str, LedgerRow, OfferRow, OrderRow, RefundRow, WithdrawalRow,
};
use super::{on_pool, store_error, ts, SqlStore};

/// Inserts a checkout key, or nothing if the buyer used it before.
const INSERT_CHECKOUT_KEY: &str = "INSERT INTO checkout_keys \
     (buyer_id, key, fingerprint, order_id, created_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (buyer_id, key) DO NOTHING";

const INSERT_ORDER: &str = "INSERT INTO orders (id, buyer_id, seller_id, conversation_id, \
     offer_id, gig_id, status, payment_provider, payment_intent_id, total_minor, currency, \
     deadline, data, version, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

/// Replaces an order that still has the expected version (`$9`). The
/// parties, the offer, the gig and the amounts never change.
const UPDATE_ORDER: &str = "UPDATE orders SET status = $2, payment_provider = $3, \
     payment_intent_id = $4, deadline = $5, data = $6, version = $7, updated_at = $8, \
     completed_at = $10 WHERE id = $1 AND version = $9";

const ORDER_BY_ID: &str = "SELECT data, version FROM orders WHERE id = $1";

const INSERT_OFFER: &str = "INSERT INTO offers (id, conversation_id, seller_id, buyer_id, \
     status, expires_at, order_id, data, version, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// Replaces an offer that still has the expected version (`$8`).
const UPDATE_OFFER: &str = "UPDATE offers SET status = $2, expires_at = $3, order_id = $4, \
     data = $5, version = $6, updated_at = $7 WHERE id = $1 AND version = $8";

/// Records the order on the accepted offer it was checked out from, if the
/// offer is still as read (`$6` its version) and has no order yet.
const CHECK_OUT_OFFER: &str = "UPDATE offers SET order_id = $2, data = $3, version = $4, \
     updated_at = $5 WHERE id = $1 AND version = $6 AND status = 'accepted' \
     AND order_id IS NULL";

const OFFER_BY_ID: &str = "SELECT data, version FROM offers WHERE id = $1";

/// Records a provider event, or nothing if it was recorded before.
const INSERT_PAYMENT_EVENT: &str = "INSERT INTO payment_events \
     (provider, event_id, data, received_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (provider, event_id) DO NOTHING";

const INSERT_TRANSACTION: &str = "INSERT INTO ledger_transactions \
     (kind, order_id, withdrawal_id, currency, created_at) VALUES ($1, $2, $3, $4, $5) \
     RETURNING id";

const INSERT_POSTING: &str = "INSERT INTO ledger_postings \
     (transaction_id, position, account, amount_minor) VALUES ($1, $2, $3, $4)";

/// Adds `$2` to an account's balance, creating it at `$2`.
const ADD_TO_BALANCE: &str = "INSERT INTO account_balances (account, balance_minor) \
     VALUES ($1, $2) ON CONFLICT (account) \
     DO UPDATE SET balance_minor = account_balances.balance_minor + excluded.balance_minor";

/// Spends `$2` of a seller's available earnings (a liability: its balance
/// is negative), only if they cover it; locks the balance row, so two
/// withdrawals cannot both spend the same money.
const SPEND_AVAILABLE: &str = "UPDATE account_balances \
     SET balance_minor = balance_minor + $2 \
     WHERE account = $1 AND balance_minor + $2 <= 0 RETURNING balance_minor";

const INSERT_WITHDRAWAL: &str = "INSERT INTO withdrawals \
     (id, seller_id, amount_minor, currency, requested_at) VALUES ($1, $2, $3, $4, $5)";

const INSERT_REFUND: &str = concat!(
    "INSERT INTO refunds (",
    refund_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);

/// An order's ledger, one row per posting, in order.
const LEDGER_OF_ORDER: &str = "SELECT t.id, t.kind, t.order_id, t.withdrawal_id, t.currency, \
     t.created_at, p.account, p.amount_minor \
     FROM ledger_transactions t LEFT JOIN ledger_postings p ON p.transaction_id = t.id \
     WHERE t.order_id = $1 ORDER BY t.id, p.position";

/// The statement listing a user's orders on one side, newest first, with
/// the optional filters; binds `$1` user, then the status and the `before`
/// id if filtered, then the limit.
fn orders_for_sql(side: Side, status: bool, before: bool) -> String {
    let column = match side {
        Side::Buyer => "buyer_id",
        Side::Seller => "seller_id",
    };
    let mut sql = format!("SELECT data, version FROM orders WHERE {column} = $1");
    let mut next = 2;
    if status {
        sql.push_str(&format!(" AND status = ${next}"));
        next += 1;
    }
    if before {
        sql.push_str(&format!(" AND id < ${next}"));
        next += 1;
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${next}"));
    sql
}

/// Refuses a transaction whose postings do not sum to zero.
fn ensure_balanced(transactions: &[Transaction]) -> Result<(), StoreError> {
    match transactions.iter().find(|t| !t.is_balanced()) {
        Some(t) => Err(StoreError::Backend(format!(
            "refusing an unbalanced {} transaction (order {:?}, withdrawal {:?})",
            t.kind.as_str(),
            t.order_id,
            t.withdrawal_id
        ))),
        None => Ok(()),
    }
}

/// Stores ledger transactions with their postings and moves the running
/// balances of the seller accounts they touch, in ascending account order
/// (one lock order for every writer). `applied` names an account whose balance the caller
/// already moved by its postings here.
async fn record_transactions(
    mut write: WriteConn<'_>,
    transactions: &[Transaction],
    applied: Option<&str>,
) -> Result<(), StoreError> {
    let mut moves: BTreeMap<String, i64> = BTreeMap::new();
    for transaction in transactions {
        let (id,): (i64,) = on_conn!(write.reborrow(), conn => {
            sqlx::query_as(INSERT_TRANSACTION)
                .bind(transaction.kind.as_str())
                .bind(transaction.order_id.map(|id| id.as_uuid()))
                .bind(transaction.withdrawal_id.map(|id| id.as_uuid()))
                .bind(transaction.currency.code())
                .bind(ts(transaction.at))
                .fetch_one(&mut *conn)
                .await
                .map_err(store_error)?
        });
        for (position, posting) in (0_i64..).zip(&transaction.postings) {
            let account = posting.account.to_string();
            on_conn!(write.reborrow(), conn => {
                sqlx::query(INSERT_POSTING)
                    .bind(id)
                    .bind(position)
                    .bind(&account)
                    .bind(posting.amount_minor)
                    .execute(&mut *conn)
                    .await
                    .map_err(store_error)?;
            });
            *moves.entry(account).or_default() += posting.amount_minor;
        }
    }
    if let Some(account) = applied {
        moves.remove(account);
    }
    // Every seller account a posting named gets a row, even when its moves
    // net to zero here. The platform-wide accounts get none: every payment
    // touches them, and a row each would serialise all payments.
    for (account, amount) in moves
        .iter()
        .filter(|(account, _)| account.starts_with("seller_"))
    {
        on_conn!(write.reborrow(), conn => {
            sqlx::query(ADD_TO_BALANCE)
                .bind(account)
                .bind(*amount)
                .execute(&mut *conn)
                .await
                .map_err(store_error)?;
        });
    }
    Ok(())
}

/// Stores a refund within the caller's write transaction.
async fn insert_refund(write: WriteConn<'_>, refund: &RefundRecord) -> Result<(), StoreError> {
    on_conn!(write, conn => {
        sqlx::query(INSERT_REFUND)
            .bind(refund.id)
            .bind(refund.order_id.as_uuid())
            .bind(&refund.provider)
            .bind(&refund.intent_id)
            .bind(refund.amount.amount_minor)
            .bind(refund.amount.currency.code())
            .bind(refund_status_str(refund.status))
            .bind(refund.provider_refund_id.as_deref())
            .bind(ts(refund.created_at))
            .execute(&mut *conn)
            .await
            .map_err(store_error)?;
    });
    Ok(())
}

/// The payment columns of an order: both set or both NULL.
fn payment_columns(order: &Order) -> (Option<&str>, Option<&str>) {
    match &order.payment {
        Some(payment) => (
            Some(payment.provider.as_str()),
            Some(payment.intent_id.as_str()),
        ),
        None => (None, None),
    }
}

/// The seller's three earnings accounts, as stored.
fn seller_accounts(seller: UserId) -> [String; 3] {
    [
        Account::SellerPending(seller).to_string(),
        Account::SellerAvailable(seller).to_string(),
        Account::SellerWithdrawn(seller).to_string(),
    ]
}

#[async_trait]
impl OrderStore for SqlStore {
    async fn completed_between(
        &self,
        after: (DateTime<Utc>, Option<OrderId>),
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        let (from, after_id) = after;
        let rows: Vec<(Json<Order>,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT data FROM orders WHERE status = 'completed' \
                 AND (completed_at > $1 OR (completed_at = $1 AND id > $2)) \
                 AND completed_at <= $3 ORDER BY completed_at, id LIMIT $4",
            )
            .bind(ts(from))
            .bind(after_id.map_or(uuid::Uuid::nil(), |id| id.as_uuid()))
            .bind(ts(until))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(rows.into_iter().map(|(order,)| order.0).collect())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(order_id = %order.id, buyer_id = %order.buyer_id, offer_id = ?order.terms.offer_id),
        err(level = "debug")
    )]
    async fn place_order(
        &self,
        order: &Order,
        key: &CheckoutKey,
        deadline: Option<DateTime<Utc>>,
        events: &[EventsFor],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let now = order.updated_at;
        let (provider, intent) = payment_columns(order);
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            // The key first: a retried checkout is reported as such, whatever
            // else it would conflict with.
            let keyed = sqlx::query(INSERT_CHECKOUT_KEY)
                .bind(key.buyer_id.as_uuid())
                .bind(&key.key)
                .bind(&key.fingerprint)
                .bind(order.id.as_uuid())
                .bind(ts(order.created_at))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?
                .rows_affected();
            if keyed == 0 {
                tx.rollback().await.map_err(store_error)?;
                return Err(StoreError::Conflict("checkout"));
            }
            // A second order for the offer fails here on `orders_offer_id_key`
            // (`Conflict("offer")`), waiting for a concurrent one to commit.
            sqlx::query(INSERT_ORDER)
                .bind(order.id.as_uuid())
                .bind(order.buyer_id.as_uuid())
                .bind(order.seller_id.as_uuid())
                .bind(order.conversation_id.map(|id| id.as_uuid()))
                .bind(order.terms.offer_id.map(|id| id.as_uuid()))
                .bind(order.terms.gig_id.map(|id| id.as_uuid()))
                .bind(order.status.as_str())
                .bind(provider)
                .bind(intent)
                .bind(order.amounts.total.amount_minor)
                .bind(order.amounts.total.currency.code())
                .bind(deadline.map(ts))
                .bind(Json(order))
                .bind(order.version)
                .bind(ts(order.created_at))
                .bind(ts(order.updated_at))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            if let Some(offer_id) = order.terms.offer_id {
                let row: Option<OfferRow> = sqlx::query_as(OFFER_BY_ID)
                    .bind(offer_id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(store_error)?;
                let Some(row) = row else {
                    tx.rollback().await.map_err(store_error)?;
                    return Err(StoreError::NotFound);
                };
                let read = Offer::from(row);
                // The offer changes at the order's placement time.
                let checked_out = Offer {
                    order_id: Some(order.id),
                    version: read.version + 1,
                    updated_at: now,
                    ..read.clone()
                };
                let written = if read.status == OfferStatus::Accepted && read.order_id.is_none() {
                    sqlx::query(CHECK_OUT_OFFER)
                        .bind(offer_id.as_uuid())
                        .bind(order.id.as_uuid())
                        .bind(Json(&checked_out))
                        .bind(checked_out.version)
                        .bind(ts(now))
                        .bind(read.version)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_error)?
                        .rows_affected()
                } else {
                    0
                };
                if written == 0 {
                    tx.rollback().await.map_err(store_error)?;
                    return Err(StoreError::Conflict("offer"));
                }
            }
            let stored = append_batches((&mut *tx).into(), events, now).await?;
            tx.commit().await.map_err(store_error)?;
            Ok(stored)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(buyer_id = %buyer), err(level = "debug"))]
    async fn checkout(
        &self,
        buyer: UserId,
        key: &str,
    ) -> Result<Option<(String, OrderId)>, StoreError> {
        let row: Option<(String, Uuid)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT fingerprint, order_id FROM checkout_keys WHERE buyer_id = $1 AND key = $2",
            )
            .bind(buyer.as_uuid())
            .bind(key)
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(row.map(|(fingerprint, order)| (fingerprint, OrderId::from_uuid(order))))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %id), err(level = "debug"))]
    async fn order(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        let row: Option<OrderRow> = on_pool!(self, pool => {
            sqlx::query_as(ORDER_BY_ID)
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        Ok(row.map(Order::from))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(provider = %provider, intent_id = %intent_id), err(level = "debug"))]
    async fn order_by_intent(
        &self,
        provider: &str,
        intent_id: &str,
    ) -> Result<Option<Order>, StoreError> {
        let row: Option<OrderRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT data, version FROM orders \
                 WHERE payment_provider = $1 AND payment_intent_id = $2",
            )
            .bind(provider)
            .bind(intent_id)
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(row.map(Order::from))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(user_id = %user, ?side, ?status, limit),
        err(level = "debug")
    )]
    async fn orders_for(
        &self,
        user: UserId,
        side: Side,
        status: Option<OrderStatus>,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<OrderPage, StoreError> {
        // One row more than asked tells whether there is a next page.
        let sql = orders_for_sql(side, status.is_some(), before.is_some());
        let rows: Vec<OrderRow> = on_pool!(self, pool => {
            let mut query = sqlx::query_as(&sql).bind(user.as_uuid());
            if let Some(status) = status {
                query = query.bind(status.as_str());
            }
            if let Some(before) = before {
                query = query.bind(before.as_uuid());
            }
            query
                .bind(i64::from(limit) + 1)
                .fetch_all(pool)
                .await
        })
        .map_err(store_error)?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut orders: Vec<Order> = rows.into_iter().map(Order::from).collect();
        let more = orders.len() > limit;
        orders.truncate(limit);
        let next = if more {
            orders.last().map(|order| order.id)
        } else {
            None
        };
        Ok(OrderPage { orders, next })
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            order_id = %write.order.id,
            expected_version = write.expected_version,
            status = write.order.status.as_str(),
        ),
        err(level = "debug")
    )]
    async fn save_order(&self, write: &OrderWrite<'_>) -> Result<Vec<StoredEvent>, StoreError> {
        ensure_balanced(write.transactions)?;
        let order = Order {
            version: write.expected_version + 1,
            ..write.order.clone()
        };
        let now = order.updated_at;
        let (provider, intent) = payment_columns(&order);
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            if let Some(event) = write.payment_event {
                let recorded = sqlx::query(INSERT_PAYMENT_EVENT)
                    .bind(&event.provider)
                    .bind(&event.id)
                    .bind(Json(event))
                    .bind(ts(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?
                    .rows_affected();
                if recorded == 0 {
                    tx.rollback().await.map_err(store_error)?;
                    return Err(StoreError::Conflict("payment_event"));
                }
            }
            let written = sqlx::query(UPDATE_ORDER)
                .bind(order.id.as_uuid())
                .bind(order.status.as_str())
                .bind(provider)
                .bind(intent)
                .bind(write.deadline.map(ts))
                .bind(Json(&order))
                .bind(order.version)
                .bind(ts(order.updated_at))
                .bind(write.expected_version)
                .bind(order.completed_at.map(ts))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?
                .rows_affected();
            if written == 0 {
                // Inside the write transaction: the answer is current.
                let stored: Option<(i64,)> =
                    sqlx::query_as("SELECT version FROM orders WHERE id = $1")
                        .bind(order.id.as_uuid())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(store_error)?;
                tx.rollback().await.map_err(store_error)?;
                return Err(if stored.is_some() {
                    StoreError::VersionConflict
                } else {
                    StoreError::NotFound
                });
            }
            record_transactions((&mut *tx).into(), write.transactions, None).await?;
            if let Some(refund) = write.refund {
                insert_refund((&mut *tx).into(), refund).await?;
            }
            let stored = append_batches((&mut *tx).into(), write.events, now).await?;
            tx.commit().await.map_err(store_error)?;
            Ok(stored)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%now, limit), err(level = "debug"))]
    async fn due_orders(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<OrderId>, StoreError> {
        let rows: Vec<(Uuid,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id FROM orders WHERE deadline IS NOT NULL AND deadline <= $1 \
                 ORDER BY deadline, id LIMIT $2",
            )
            .bind(ts(now))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(id,)| OrderId::from_uuid(id))
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        type Earliest = (Option<DateTime<Utc>>,);
        let ((order,), (offer,)): (Earliest, Earliest) = on_pool!(self, pool => {
            let order = sqlx::query_as(
                "SELECT MIN(deadline) FROM orders WHERE deadline IS NOT NULL",
            )
            .fetch_one(pool)
            .await
            .map_err(store_error)?;
            let offer = sqlx::query_as(
                "SELECT MIN(expires_at) FROM offers WHERE status = 'pending'",
            )
            .fetch_one(pool)
            .await
            .map_err(store_error)?;
            (order, offer)
        });
        Ok(match (order, offer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(provider = %event.provider, event_id = %event.id),
        err(level = "debug")
    )]
    async fn record_payment_event(
        &self,
        event: &PaymentEvent,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let recorded = on_pool!(self, pool => {
            sqlx::query(INSERT_PAYMENT_EVENT)
                .bind(&event.provider)
                .bind(&event.id)
                .bind(Json(event))
                .bind(ts(now))
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(store_error)?;
        Ok(recorded == 1)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit), err(level = "debug"))]
    async fn pending_refunds(&self, limit: u32) -> Result<Vec<RefundRecord>, StoreError> {
        let rows: Vec<RefundRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ",
                refund_columns!(),
                " FROM refunds WHERE status = 'pending' ORDER BY created_at, id LIMIT $1"
            ))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        rows.into_iter().map(RefundRecord::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(refund_id = %id, ?status), err(level = "debug"))]
    async fn update_refund(
        &self,
        id: Uuid,
        status: RefundStatus,
        provider_refund_id: Option<&str>,
    ) -> Result<(), StoreError> {
        // An answer without the provider's id keeps the one known before.
        let written = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE refunds SET status = $2, \
                 provider_refund_id = COALESCE($3, provider_refund_id) WHERE id = $1",
            )
            .bind(id)
            .bind(refund_status_str(status))
            .bind(provider_refund_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(store_error)?;
        if written == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %order), err(level = "debug"))]
    async fn refunds_for(&self, order: OrderId) -> Result<Vec<RefundRecord>, StoreError> {
        let rows: Vec<RefundRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ",
                refund_columns!(),
                " FROM refunds WHERE order_id = $1 ORDER BY created_at, id"
            ))
            .bind(order.as_uuid())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        rows.into_iter().map(RefundRecord::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %order), err(level = "debug"))]
    async fn transactions_for(&self, order: OrderId) -> Result<Vec<Transaction>, StoreError> {
        // One statement, so the transactions and their postings are read
        // from one snapshot.
        let rows: Vec<LedgerRow> = on_pool!(self, pool => {
            sqlx::query_as(LEDGER_OF_ORDER)
                .bind(order.as_uuid())
                .fetch_all(pool)
                .await
        })
        .map_err(store_error)?;
        let mut transactions: Vec<Transaction> = Vec::new();
        let mut current = None;
        for row in rows {
            if current != Some(row.id) {
                transactions.push(row.transaction()?);
                current = Some(row.id);
            }
            if let (Some(posting), Some(transaction)) = (row.posting()?, transactions.last_mut()) {
                transaction.postings.push(posting);
            }
        }
        Ok(transactions)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(seller_id = %seller), err(level = "debug"))]
    async fn balance(&self, seller: UserId) -> Result<Balance, StoreError> {
        let [pending, available, withdrawn] = seller_accounts(seller);
        let rows: Vec<(String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT account, balance_minor FROM account_balances \
                 WHERE account IN ($1, $2, $3)",
            )
            .bind(&pending)
            .bind(&available)
            .bind(&withdrawn)
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        // Liabilities: what the seller sees is the balance negated.
        let shown = |account: &str| {
            rows.iter()
                .find(|(name, _)| name == account)
                .map_or(0, |(_, balance)| -balance)
        };
        Ok(Balance {
            pending_minor: shown(&pending),
            available_minor: shown(&available),
            withdrawn_minor: shown(&withdrawn),
        })
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn account_balances(&self) -> Result<Vec<(Account, i64)>, StoreError> {
        let mut rows: Vec<(String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT account, CAST(SUM(amount_minor) AS BIGINT) FROM ledger_postings \
                 GROUP BY account",
            )
                .fetch_all(pool)
                .await
        })
        .map_err(store_error)?;
        // In the accounts' text order, byte by byte: the same on either
        // backend, whatever PostgreSQL's collation.
        rows.sort_unstable();
        rows.into_iter()
            .map(|(account, balance)| {
                account
                    .parse::<Account>()
                    .map(|account| (account, balance))
                    .map_err(|e| StoreError::Backend(format!("stored account balance: {e}")))
            })
            .collect()
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(withdrawal_id = %withdrawal.id, seller_id = %withdrawal.seller_id),
        err(level = "debug")
    )]
    async fn withdraw(
        &self,
        withdrawal: &Withdrawal,
    ) -> Result<Result<(), WithdrawalError>, StoreError> {
        let amount = withdrawal.amount.amount_minor;
        // Against a balance that exactly covers it: only the minimum is
        // checked here; the balance is checked in the transaction.
        let covered = Balance {
            available_minor: amount,
            ..Balance::default()
        };
        if let Err(refused) = check_withdrawal(&covered, amount) {
            return Ok(Err(refused));
        }
        let seller = withdrawal.seller_id;
        let available = Account::SellerAvailable(seller).to_string();
        let transaction =
            Transaction::withdrawal(withdrawal.id, seller, amount, ts(withdrawal.requested_at));
        ensure_balanced(std::slice::from_ref(&transaction))?;
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            // Spending first locks the seller's available balance: a
            // concurrent withdrawal waits here and sees what is left.
            let spent: Option<(i64,)> = sqlx::query_as(SPEND_AVAILABLE)
                .bind(&available)
                .bind(amount)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
            if spent.is_none() {
                let balance: Option<(i64,)> = sqlx::query_as(
                    "SELECT balance_minor FROM account_balances WHERE account = $1",
                )
                .bind(&available)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
                tx.rollback().await.map_err(store_error)?;
                let available_minor = balance.map_or(0, |(balance,)| -balance);
                let balance = Balance {
                    available_minor,
                    ..Balance::default()
                };
                let refused = check_withdrawal(&balance, amount)
                    .err()
                    .unwrap_or(WithdrawalError::MoreThanAvailable { available: available_minor });
                return Ok(Err(refused));
            }
            sqlx::query(INSERT_WITHDRAWAL)
                .bind(withdrawal.id.as_uuid())
                .bind(seller.as_uuid())
                .bind(amount)
                .bind(withdrawal.amount.currency.code())
                .bind(ts(withdrawal.requested_at))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            // The available balance moved above: only the other postings
            // move balances here.
            record_transactions(
                (&mut *tx).into(),
                std::slice::from_ref(&transaction),
                Some(&available),
            )
            .await?;
            tx.commit().await.map_err(store_error)?;
            Ok(Ok(()))
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(seller_id = %seller), err(level = "debug"))]
    async fn withdrawals(&self, seller: UserId) -> Result<Vec<Withdrawal>, StoreError> {
        let rows: Vec<WithdrawalRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, seller_id, amount_minor, currency, requested_at FROM withdrawals \
                 WHERE seller_id = $1 ORDER BY requested_at DESC, id DESC",
            )
            .bind(seller.as_uuid())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        rows.into_iter().map(Withdrawal::try_from).collect()
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(offer_id = %offer.id, conversation_id = %offer.conversation_id),
        err(level = "debug")
    )]
    async fn create_offer(
        &self,
        offer: &Offer,
        events: &[EventsFor],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let now = offer.updated_at;
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            sqlx::query(INSERT_OFFER)
                .bind(offer.id.as_uuid())
                .bind(offer.conversation_id.as_uuid())
                .bind(offer.seller_id.as_uuid())
                .bind(offer.buyer_id.as_uuid())
                .bind(offer.status.as_str())
                .bind(ts(offer.expires_at))
                .bind(offer.order_id.map(|id| id.as_uuid()))
                .bind(Json(offer))
                .bind(offer.version)
                .bind(ts(offer.created_at))
                .bind(ts(offer.updated_at))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            let stored = append_batches((&mut *tx).into(), events, now).await?;
            tx.commit().await.map_err(store_error)?;
            Ok(stored)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(offer_id = %id), err(level = "debug"))]
    async fn offer(&self, id: OfferId) -> Result<Option<Offer>, StoreError> {
        let row: Option<OfferRow> = on_pool!(self, pool => {
            sqlx::query_as(OFFER_BY_ID)
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        Ok(row.map(Offer::from))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation), err(level = "debug"))]
    async fn offers_in(&self, conversation: ConversationId) -> Result<Vec<Offer>, StoreError> {
        let rows: Vec<OfferRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT data, version FROM offers WHERE conversation_id = $1 \
                 ORDER BY created_at DESC, id DESC",
            )
            .bind(conversation.as_uuid())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(rows.into_iter().map(Offer::from).collect())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(offer_id = %offer.id, expected_version, status = offer.status.as_str()),
        err(level = "debug")
    )]
    async fn save_offer(
        &self,
        offer: &Offer,
        expected_version: i64,
        events: &[EventsFor],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let offer = Offer {
            version: expected_version + 1,
            ..offer.clone()
        };
        let now = offer.updated_at;
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let written = sqlx::query(UPDATE_OFFER)
                .bind(offer.id.as_uuid())
                .bind(offer.status.as_str())
                .bind(ts(offer.expires_at))
                .bind(offer.order_id.map(|id| id.as_uuid()))
                .bind(Json(&offer))
                .bind(offer.version)
                .bind(ts(offer.updated_at))
                .bind(expected_version)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?
                .rows_affected();
            if written == 0 {
                let stored: Option<(i64,)> =
                    sqlx::query_as("SELECT version FROM offers WHERE id = $1")
                        .bind(offer.id.as_uuid())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(store_error)?;
                tx.rollback().await.map_err(store_error)?;
                return Err(if stored.is_some() {
                    StoreError::VersionConflict
                } else {
                    StoreError::NotFound
                });
            }
            let stored = append_batches((&mut *tx).into(), events, now).await?;
            tx.commit().await.map_err(store_error)?;
            Ok(stored)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%now, limit), err(level = "debug"))]
    async fn due_offers(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<OfferId>, StoreError> {
        let rows: Vec<(Uuid,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id FROM offers WHERE status = 'pending' AND expires_at <= $1 \
                 ORDER BY expires_at, id LIMIT $2",
            )
            .bind(ts(now))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(id,)| OfferId::from_uuid(id))
            .collect())
    }
}
