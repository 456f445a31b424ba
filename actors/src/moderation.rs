//! The admins' feed: raising moderation items, and telling every admin's
//! socket about each change to the queue as it happens.
//!
//! The store numbers feed events without gaps; this module only publishes
//! them after they are stored. An admin socket subscribes before it reads
//! the store, drops what it has already written, and fills any gap from
//! the store, so the in-process channel may lag or reorder without an admin
//! missing anything.
//!
//! Items are raised after the change that causes them has been stored
//! (a gig saved, a message sent, an order disputed). A crash between the
//! two loses the push, not the fact: the admin lists read orders, gigs and
//! users from their own tables.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::moderation::{FeedRecord, Item, ItemKind, NewItem, Target};
use domain::order::{Order, OrderChange, Side};
use domain::ports::{Clock, ModerationStore, StoreError};
use tokio::sync::broadcast;
use tracing::Instrument as _;

/// Feed events buffered per subscriber before it counts as lagging (it
/// then reads what it missed from the store).
const CHANNEL: usize = 1024;

#[derive(Clone)]
pub struct AdminFeed {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ModerationStore>,
    clock: Arc<dyn Clock>,
    tx: broadcast::Sender<Arc<FeedRecord>>,
}

impl AdminFeed {
    pub fn new(store: Arc<dyn ModerationStore>, clock: Arc<dyn Clock>) -> Self {
        let (tx, _) = broadcast::channel(CHANNEL);
        Self {
            inner: Arc::new(Inner { store, clock, tx }),
        }
    }

    pub fn store(&self) -> &Arc<dyn ModerationStore> {
        &self.inner.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Every feed event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedRecord>> {
        self.inner.tx.subscribe()
    }

    /// Tells the admins' sockets about stored feed events.
    pub fn publish(&self, records: impl IntoIterator<Item = FeedRecord>) {
        for record in records {
            // No receiver just means no admin is connected.
            let _ = self.inner.tx.send(Arc::new(record));
        }
    }

    /// Stores a new item and tells the admins; `Ok(None)` if an item with
    /// the same source key exists already.
    pub async fn raise(&self, new: NewItem) -> Result<Option<Item>, StoreError> {
        let item = Item::raise(new, self.now());
        match self.inner.store.raise(&item).await? {
            Some(record) => {
                tracing::info!(item_id = %item.id, kind = item.kind.as_str(), "moderation item raised");
                self.publish([record]);
                Ok(Some(item))
            }
            None => Ok(None),
        }
    }

    /// [`AdminFeed::raise`] in the background, for a change already
    /// stored: the caller's answer does not wait for the queue.
    pub fn raise_later(&self, new: NewItem) {
        let feed = self.clone();
        tokio::spawn(
            async move {
                let kind = new.kind.as_str();
                if let Err(error) = feed.raise(new).await {
                    tracing::error!(%error, kind, "raising a moderation item failed");
                }
            }
            .instrument(tracing::Span::current()),
        );
    }
}

/// The item an order change raises, if any: an opened dispute, a failed
/// payment, or money going back to the buyer (`refund_minor`).
pub fn order_items(order: &Order, change: OrderChange, refund_minor: Option<i64>) -> Vec<NewItem> {
    let target = Target::Order { id: order.id };
    let title = &order.terms.title;
    let mut items = Vec::new();
    match change {
        OrderChange::Disputed => {
            let dispute = order.dispute.as_ref();
            let opened_by = dispute.map_or(Side::Buyer, |d| d.opened_by);
            items.push(NewItem {
                kind: ItemKind::DisputeOpened,
                target,
                subject_user: Some(match opened_by {
                    Side::Buyer => order.buyer_id,
                    Side::Seller => order.seller_id,
                }),
                summary: format!("The {} opened a dispute on \"{title}\"", opened_by.as_str()),
                excerpt: dispute.map(|d| d.reason.clone()),
                flags: Vec::new(),
                reporter: None,
                reason: None,
                amount: Some(order.amounts.total),
                source_key: format!("dispute:{}:{}", order.id, order.version),
            });
        }
        OrderChange::PaymentFailed => items.push(NewItem {
            kind: ItemKind::PaymentFailed,
            target,
            subject_user: Some(order.buyer_id),
            summary: format!("A payment for \"{title}\" failed"),
            excerpt: order.payment_error.clone(),
            flags: Vec::new(),
            reporter: None,
            reason: None,
            amount: Some(order.amounts.total),
            source_key: format!("payment_failed:{}:{}", order.id, order.version),
        }),
        _ => {}
    }
    if let Some(amount_minor) = refund_minor.filter(|a| *a > 0) {
        let amount = domain::money::Money {
            amount_minor,
            currency: order.amounts.total.currency,
        };
        items.push(NewItem {
            kind: ItemKind::Refund,
            target,
            subject_user: Some(order.buyer_id),
            summary: format!("{amount} goes back to the buyer of \"{title}\""),
            excerpt: None,
            flags: Vec::new(),
            reporter: None,
            reason: None,
            amount: Some(amount),
            source_key: format!("refund:{}:{}", order.id, order.version),
        });
    }
    items
}
