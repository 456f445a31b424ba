//! Order actors: one per active order, started on demand by the order
//! shard that owns the order's id (an [`EntityShard`]) and stopped after a
//! quiet period.
//!
//! The actor serialises the order's changes: it loads the order (or uses
//! its cached copy), checks who is asking, applies [`domain::order::decide`],
//! and stores the result with a version check, together with the ledger
//! transactions, the refund owed and the live events of both parties, in
//! one transaction. Only then does it answer and publish. If another
//! activation wrote first, it reloads and decides again, once.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::ids::{OrderId, UserId};
use domain::live::LiveEvent;
use domain::order::{decide, Actor as Party, Order, OrderChange, OrderCommand, OrderPolicy};
use domain::payment::{PaymentEvent, RefundStatus};
use domain::ports::{EventsFor, OrderStore, OrderWrite, RefundRecord, StoreError};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::Notify;

use crate::entity::{Entity, EntityShard, ShardMsg};
use crate::live::LiveEvents;
use crate::moderation::{order_items, AdminFeed};
use crate::notices::notices;

/// Who asks for a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    User {
        id: UserId,
        admin: bool,
    },
    /// The clock, or the payment provider.
    System,
}

/// Why an order action failed.
#[derive(Debug, thiserror::Error)]
pub enum OrderFailure {
    /// No such order, or the caller is not one of its parties.
    #[error("no such order")]
    NotFound,
    #[error(transparent)]
    Rule(#[from] domain::order::OrderError),
    #[error(transparent)]
    Offer(#[from] domain::offer::OfferError),
    #[error(transparent)]
    Checkout(#[from] CheckoutError),
    #[error(transparent)]
    Invalid(#[from] domain::validation::ValidationErrors),
    #[error(transparent)]
    Payment(#[from] domain::payment::PaymentError),
    #[error(transparent)]
    Withdrawal(#[from] domain::ledger::WithdrawalError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the order service is unavailable")]
    Unavailable,
}

/// Why a checkout was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckoutError {
    #[error("the Idempotency-Key was already used for a different checkout")]
    KeyReused,
    #[error("the Idempotency-Key header must be 1 to 255 visible ASCII characters")]
    BadKey,
    #[error("the gig is not available")]
    GigUnavailable,
    #[error("the gig has no {0} package")]
    NoSuchPackage(&'static str),
    #[error("you cannot buy from yourself")]
    OwnGig,
    #[error("only the buyer of an accepted offer can check it out")]
    OfferNotAccepted,
    #[error("this offer was already checked out")]
    OfferAlreadyOrdered,
    #[error("the order is not waiting for payment")]
    NotAwaitingPayment,
}

/// The order after an action, and what changed (`None`: nothing to do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acted {
    pub order: Order,
    pub change: Option<OrderChange>,
}

pub enum OrderMsg {
    Act {
        caller: Caller,
        command: OrderCommand,
        /// The provider event this command applies, recorded with it.
        payment_event: Option<PaymentEvent>,
        now: DateTime<Utc>,
        reply: RpcReplyPort<Result<Acted, OrderFailure>>,
    },
    /// Forget the cached copy (the order was written elsewhere).
    Forget,
    /// The cached copy's version, if one is held (tests, diagnostics).
    Snapshot(RpcReplyPort<Option<i64>>),
}

#[derive(Clone)]
pub struct OrderArgs {
    pub id: OrderId,
    pub store: Arc<dyn OrderStore>,
    pub live: LiveEvents,
    pub policy: OrderPolicy,
    /// Woken when a change sets a deadline, so the clock sees it.
    pub deadlines: Arc<Notify>,
    /// Woken when a change owes the buyer a refund.
    pub refunds: Arc<Notify>,
    /// Disputes, failed payments and refunds go to the admins' queue.
    pub feed: AdminFeed,
}

pub struct OrderState {
    args: OrderArgs,
    order: Option<Order>,
}

#[derive(Default)]
pub struct OrderActor;

impl OrderState {
    async fn load(&mut self) -> Result<&Order, OrderFailure> {
        if self.order.is_none() {
            self.order = self.args.store.order(self.args.id).await?;
        }
        self.order.as_ref().ok_or(OrderFailure::NotFound)
    }

    async fn act(
        &mut self,
        caller: Caller,
        command: OrderCommand,
        payment_event: Option<PaymentEvent>,
        now: DateTime<Utc>,
    ) -> Result<Acted, OrderFailure> {
        let mut retried = false;
        loop {
            let current = self.load().await?.clone();
            let party = match caller {
                Caller::System => Party::System,
                Caller::User { id, admin } => {
                    current.actor(id, admin).ok_or(OrderFailure::NotFound)?
                }
            };
            let Some(decision) = decide(&current, party, command.clone(), now, &self.args.policy)?
            else {
                return Ok(Acted {
                    order: current,
                    change: None,
                });
            };
            let refund = match (decision.refund_minor, &current.payment) {
                (Some(amount_minor), Some(payment)) => Some(RefundRecord {
                    id: uuid::Uuid::now_v7(),
                    order_id: current.id,
                    provider: payment.provider.clone(),
                    intent_id: payment.intent_id.clone(),
                    amount: domain::money::Money {
                        amount_minor,
                        currency: current.amounts.total.currency,
                    },
                    status: RefundStatus::Pending,
                    provider_refund_id: None,
                    created_at: now,
                }),
                _ => None,
            };
            let mut stored_order = decision.order.clone();
            stored_order.version = current.version + 1;
            let events = order_events(&stored_order, decision.change);
            let deadline = stored_order.next_deadline(&self.args.policy);
            let write = OrderWrite {
                order: &stored_order,
                expected_version: current.version,
                deadline,
                transactions: &decision.transactions,
                refund: refund.as_ref(),
                payment_event: payment_event.as_ref(),
                events: &events,
            };
            match self.args.store.save_order(&write).await {
                Ok(stored) => {
                    self.args.live.deliver(&stored);
                    if deadline.is_some() {
                        self.args.deadlines.notify_one();
                    }
                    if refund.is_some() {
                        self.args.refunds.notify_one();
                    }
                    let refunded = refund.as_ref().map(|r| r.amount.amount_minor);
                    for item in order_items(&stored_order, decision.change, refunded) {
                        self.args.feed.raise_later(item);
                    }
                    self.order = Some(stored_order.clone());
                    return Ok(Acted {
                        order: stored_order,
                        change: Some(decision.change),
                    });
                }
                Err(StoreError::Conflict("payment_event")) => {
                    // Delivered before and applied then: nothing to do.
                    self.order = None;
                    let order = self.load().await?.clone();
                    return Ok(Acted {
                        order,
                        change: None,
                    });
                }
                Err(StoreError::VersionConflict) if !retried => {
                    // Another activation wrote first: decide again on what
                    // is stored.
                    retried = true;
                    self.order = None;
                    tracing::info!(order_id = %self.args.id, "order version conflict, deciding again");
                }
                Err(error) => {
                    self.order = None;
                    return Err(error.into());
                }
            }
        }
    }
}

/// The live events of a change: both parties see the order, and each one
/// the change concerns gets a notification.
pub fn order_events(order: &Order, change: OrderChange) -> Vec<EventsFor> {
    let mut events = vec![EventsFor {
        users: order.parties().to_vec(),
        event: LiveEvent::OrderUpdated {
            change,
            order: Box::new(order.clone()),
        },
    }];
    for notice in notices(order, change) {
        events.push(EventsFor {
            users: vec![notice.user],
            event: LiveEvent::Notification(notice.notification),
        });
    }
    events
}

impl Actor for OrderActor {
    type Msg = OrderMsg;
    type State = OrderState;
    type Arguments = OrderArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: OrderArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(OrderState { args, order: None })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            OrderMsg::Act {
                caller,
                command,
                payment_event,
                now,
                reply,
            } => {
                let result = state.act(caller, command, payment_event, now).await;
                let unknown =
                    matches!(result, Err(OrderFailure::NotFound)) && state.order.is_none();
                let _ = reply.send(result);
                if unknown {
                    // No such order: keep nothing in memory for an id that
                    // may be made up.
                    myself.stop(None);
                }
            }
            OrderMsg::Forget => state.order = None,
            OrderMsg::Snapshot(reply) => {
                let _ = reply.send(state.order.as_ref().map(|order| order.version));
            }
        }
        Ok(())
    }
}

impl Entity for OrderActor {
    type Id = OrderId;
    const KIND: &'static str = "order";

    fn args(template: &OrderArgs, id: OrderId) -> OrderArgs {
        OrderArgs {
            id,
            ..template.clone()
        }
    }
}

/// The shard that starts order actors.
pub type OrderShard = EntityShard<OrderActor>;
pub type OrderShardMsg = ShardMsg<OrderActor>;
