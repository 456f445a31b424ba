//! Orders: what a buyer bought from a seller, and the one rule ([`decide`])
//! for every change to it.
//!
//! ```text
//! awaiting_payment ──paid──▶ awaiting_requirements ──requirements──▶ in_progress
//!        │ (unpaid expiry,                                  ▲            │ deliver
//!        ▼  buyer abandons)                       revision  │            ▼
//!    cancelled ◀── mutual / late / admin ── revision_requested ◀──── delivered
//!                                                                        │ accept,
//!  disputed ◀── buyer or seller (any paid, unsettled state)              │ auto-complete
//!     └── admin: complete, or refund in full or in part ──▶ completed ◀──┘
//! ```
//!
//! Money moves only in [`Decision::transactions`] (see [`crate::ledger`]):
//! the payment into escrow, refunds out of it, the settlement that empties
//! it, and the clearance of the seller's earnings afterwards.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::gig::PackageTier;
use crate::ids::{ConversationId, GigId, OfferId, OrderId, UserId};
use crate::ledger::{Amounts, Transaction};
use crate::money::Money;

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    AwaitingPayment,
    /// Paid; the buyer owes the seller their requirements.
    AwaitingRequirements,
    InProgress,
    Delivered,
    RevisionRequested,
    Completed,
    Cancelled,
    /// Frozen until an admin resolves it.
    Disputed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::AwaitingPayment,
        OrderStatus::AwaitingRequirements,
        OrderStatus::InProgress,
        OrderStatus::Delivered,
        OrderStatus::RevisionRequested,
        OrderStatus::Completed,
        OrderStatus::Cancelled,
        OrderStatus::Disputed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::AwaitingPayment => "awaiting_payment",
            OrderStatus::AwaitingRequirements => "awaiting_requirements",
            OrderStatus::InProgress => "in_progress",
            OrderStatus::Delivered => "delivered",
            OrderStatus::RevisionRequested => "revision_requested",
            OrderStatus::Completed => "completed",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Disputed => "disputed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Paid and not yet settled: the money is in escrow.
    pub fn holds_escrow(self) -> bool {
        matches!(
            self,
            OrderStatus::AwaitingRequirements
                | OrderStatus::InProgress
                | OrderStatus::Delivered
                | OrderStatus::RevisionRequested
                | OrderStatus::Disputed
        )
    }

    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Completed | OrderStatus::Cancelled)
    }

    /// The seller is working (the delivery date runs).
    fn is_working(self) -> bool {
        matches!(
            self,
            OrderStatus::InProgress | OrderStatus::RevisionRequested
        )
    }
}

/// What was bought: a gig package or a custom offer, frozen at checkout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTerms {
    pub title: String,
    pub description: String,
    pub gig_id: Option<GigId>,
    pub package: Option<PackageTier>,
    pub offer_id: Option<OfferId>,
    pub delivery_days: u32,
    pub revisions: u32,
}

/// One delivery of the work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDelivery {
    pub message: String,
    /// Media keys of the delivered files.
    pub files: Vec<String>,
    pub delivered_at: DateTime<Utc>,
}

/// The seller asked for more time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionRequest {
    pub days: u32,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
}

/// Which side of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buyer,
    Seller,
}

impl Side {
    pub const ALL: [Side; 2] = [Side::Buyer, Side::Seller];

    /// `buyer` or `seller`, as stored and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buyer => "buyer",
            Side::Seller => "seller",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|side| side.as_str() == s)
    }

    pub fn other(self) -> Side {
        match self {
            Side::Buyer => Side::Seller,
            Side::Seller => Side::Buyer,
        }
    }
}

/// One side asked to cancel; the other must agree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationRequest {
    pub by: Side,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    pub opened_by: Side,
    pub reason: String,
    pub opened_at: DateTime<Utc>,
    /// The status the order was in when the dispute was opened.
    pub from: OrderStatus,
}

/// Where the buyer's payment stands at the provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRef {
    /// `dev` or `stripe`.
    pub provider: String,
    pub intent_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub buyer_id: UserId,
    pub seller_id: UserId,
    /// Where the order was agreed, for a custom offer.
    pub conversation_id: Option<ConversationId>,
    pub terms: OrderTerms,
    pub amounts: Amounts,
    pub status: OrderStatus,
    pub payment: Option<PaymentRef>,
    /// Why the last payment attempt failed.
    pub payment_error: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub requirements: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    /// When the work is due; set when the requirements arrive.
    pub due_at: Option<DateTime<Utc>>,
    /// The delivery date passed before a delivery.
    pub late: bool,
    pub deliveries: Vec<OrderDelivery>,
    pub revisions_used: u32,
    pub extension: Option<ExtensionRequest>,
    pub cancellation: Option<CancellationRequest>,
    pub dispute: Option<Dispute>,
    /// How much of the total went back to the buyer.
    pub refunded_minor: i64,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When the seller's earnings became available.
    pub cleared_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented by every stored change.
    pub version: i64,
}

/// The timings orders follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderPolicy {
    /// An order not paid within this is cancelled.
    pub unpaid_expiry: TimeDelta,
    /// A delivery the buyer does not answer within this is accepted.
    pub auto_complete_after: TimeDelta,
    /// A seller's earnings become available this long after completion.
    pub clearance_after: TimeDelta,
    /// The most days one extension may add.
    pub max_extension_days: u32,
}

impl Default for OrderPolicy {
    fn default() -> Self {
        Self {
            unpaid_expiry: TimeDelta::hours(24),
            auto_complete_after: TimeDelta::days(3),
            clearance_after: TimeDelta::days(14),
            max_extension_days: 30,
        }
    }
}

/// Who makes a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    Buyer,
    Seller,
    Admin,
    /// The clock and the payment provider.
    System,
}

impl Order {
    /// The part `user` plays in the order, if any; admins see every order.
    pub fn actor(&self, user: UserId, is_admin: bool) -> Option<Actor> {
        if user == self.buyer_id {
            Some(Actor::Buyer)
        } else if user == self.seller_id {
            Some(Actor::Seller)
        } else if is_admin {
            Some(Actor::Admin)
        } else {
            None
        }
    }

    pub fn parties(&self) -> [UserId; 2] {
        [self.buyer_id, self.seller_id]
    }

    /// The next time the clock has something to do with this order.
    pub fn next_deadline(&self, policy: &OrderPolicy) -> Option<DateTime<Utc>> {
        match self.status {
            OrderStatus::AwaitingPayment => Some(self.created_at + policy.unpaid_expiry),
            OrderStatus::InProgress | OrderStatus::RevisionRequested if !self.late => self.due_at,
            OrderStatus::Delivered => self
                .deliveries
                .last()
                .map(|d| d.delivered_at + policy.auto_complete_after),
            OrderStatus::Completed if self.cleared_at.is_none() => {
                let owed = self.amounts.split(self.refunded_minor).seller_net > 0;
                owed.then_some(self.completed_at?)
                    .map(|at| at + policy.clearance_after)
            }
            _ => None,
        }
    }
}

/// How an admin ends a dispute (or any order, for `Refund`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Resolution {
    /// The seller is paid as if the buyer had accepted.
    Complete,
    /// `amount_minor` of the total goes back to the buyer; the rest, if
    /// any, settles as a completed order.
    Refund { amount_minor: i64 },
}

/// A change someone asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderCommand {
    /// The provider collected the total (system).
    PaymentSucceeded {
        amount: Money,
    },
    /// A payment attempt failed (system); the order waits for another.
    PaymentFailed {
        reason: String,
    },
    /// The buyer answers the seller's questions; the delivery clock starts.
    SubmitRequirements {
        text: String,
    },
    Deliver {
        message: String,
        files: Vec<String>,
    },
    /// The buyer accepts the delivery.
    Accept,
    RequestRevision {
        reason: String,
    },
    RequestExtension {
        days: u32,
        reason: String,
    },
    /// The buyer answers the seller's extension request.
    AnswerExtension {
        approve: bool,
    },
    /// Before payment, the buyer abandons the order at once. After it, a
    /// late order is cancelled at once when the buyer asks; otherwise the
    /// other side must agree, or an admin cancels.
    Cancel {
        reason: String,
    },
    AnswerCancellation {
        accept: bool,
    },
    OpenDispute {
        reason: String,
    },
    Resolve(Resolution),
    /// The clock: expire an unpaid order, flag a late one, complete a
    /// quiet delivery, clear earnings.
    Tick,
}

impl OrderCommand {
    pub fn name(&self) -> &'static str {
        match self {
            OrderCommand::PaymentSucceeded { .. } => "payment_succeeded",
            OrderCommand::PaymentFailed { .. } => "payment_failed",
            OrderCommand::SubmitRequirements { .. } => "submit_requirements",
            OrderCommand::Deliver { .. } => "deliver",
            OrderCommand::Accept => "accept",
            OrderCommand::RequestRevision { .. } => "request_revision",
            OrderCommand::RequestExtension { .. } => "request_extension",
            OrderCommand::AnswerExtension { .. } => "answer_extension",
            OrderCommand::Cancel { .. } => "cancel",
            OrderCommand::AnswerCancellation { .. } => "answer_cancellation",
            OrderCommand::OpenDispute { .. } => "open_dispute",
            OrderCommand::Resolve(_) => "resolve",
            OrderCommand::Tick => "tick",
        }
    }
}

/// What happened, for live updates, notifications and e-mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderChange {
    Placed,
    Paid,
    PaymentFailed,
    RequirementsSubmitted,
    Delivered,
    RevisionRequested,
    ExtensionRequested,
    ExtensionApproved,
    ExtensionRejected,
    CancellationRequested,
    CancellationDeclined,
    Cancelled,
    Late,
    Completed,
    Disputed,
    DisputeResolved,
    Cleared,
}

impl OrderChange {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderChange::Placed => "placed",
            OrderChange::Paid => "paid",
            OrderChange::PaymentFailed => "payment_failed",
            OrderChange::RequirementsSubmitted => "requirements_submitted",
            OrderChange::Delivered => "delivered",
            OrderChange::RevisionRequested => "revision_requested",
            OrderChange::ExtensionRequested => "extension_requested",
            OrderChange::ExtensionApproved => "extension_approved",
            OrderChange::ExtensionRejected => "extension_rejected",
            OrderChange::CancellationRequested => "cancellation_requested",
            OrderChange::CancellationDeclined => "cancellation_declined",
            OrderChange::Cancelled => "cancelled",
            OrderChange::Late => "late",
            OrderChange::Completed => "completed",
            OrderChange::Disputed => "disputed",
            OrderChange::DisputeResolved => "dispute_resolved",
            OrderChange::Cleared => "cleared",
        }
    }
}

/// What [`decide`] asks the caller to store, atomically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The order after the change (same version: the store increments it).
    pub order: Order,
    pub change: OrderChange,
    /// Ledger transactions, each balanced.
    pub transactions: Vec<Transaction>,
    /// Money to send back to the buyer through the provider.
    pub refund_minor: Option<i64>,
}

/// Why a change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// This party may not make this change at all.
    #[error("only {allowed} may {action}")]
    NotAllowed {
        action: &'static str,
        allowed: &'static str,
    },
    /// Not in the order's current state.
    #[error("cannot {action} an order that is {status}")]
    WrongState {
        action: &'static str,
        status: &'static str,
    },
    /// The order's rules forbid it (no revisions left, nothing pending, a
    /// wrong amount); the text says why.
    #[error("{0}")]
    Refused(String),
    /// An input field is wrong.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// The most characters of free text (requirements, messages, reasons).
pub const MAX_TEXT_CHARS: usize = 5_000;
/// The most files in one delivery.
pub const MAX_DELIVERY_FILES: usize = 10;

fn text(field: &'static str, value: &str, required: bool) -> Result<String, OrderError> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(OrderError::Invalid {
            field,
            message: "must not be empty".into(),
        });
    }
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(OrderError::Invalid {
            field,
            message: format!("at most {MAX_TEXT_CHARS} characters"),
        });
    }
    Ok(value.to_owned())
}

fn only(allowed: &'static str, action: &'static str) -> OrderError {
    OrderError::NotAllowed { action, allowed }
}

/// The rule for every change to an order. `Ok(None)` means there was
/// nothing to do (the clock ticked early, a payment was reported twice):
/// the caller stores nothing.
pub fn decide(
    current: &Order,
    by: Actor,
    command: OrderCommand,
    now: DateTime<Utc>,
    policy: &OrderPolicy,
) -> Result<Option<Decision>, OrderError> {
    let action = command.name();
    let status = current.status;
    let wrong_state = || OrderError::WrongState {
        action,
        status: status.as_str(),
    };
    let mut order = current.clone();
    order.updated_at = now;
    let mut transactions = Vec::new();
    let mut refund_minor = None;
    let party = match by {
        Actor::Buyer => Some(Side::Buyer),
        Actor::Seller => Some(Side::Seller),
        Actor::Admin | Actor::System => None,
    };

    let change = match command {
        OrderCommand::PaymentSucceeded { amount } => {
            if by != Actor::System {
                return Err(only("the payment provider", action));
            }
            if status != OrderStatus::AwaitingPayment {
                // Reported again, or after the order expired; nothing to do
                // here (a payment for an expired order is refunded by the
                // caller, which sees the order is not awaiting payment).
                return Ok(None);
            }
            if amount != current.amounts.total {
                return Err(OrderError::Refused(format!(
                    "the payment of {amount} does not match the total {}",
                    current.amounts.total
                )));
            }
            order.status = OrderStatus::AwaitingRequirements;
            order.paid_at = Some(now);
            order.payment_error = None;
            transactions.push(Transaction::payment(
                order.id,
                current.amounts.total.amount_minor,
                now,
            ));
            OrderChange::Paid
        }
        OrderCommand::PaymentFailed { reason } => {
            if by != Actor::System {
                return Err(only("the payment provider", action));
            }
            if status != OrderStatus::AwaitingPayment {
                return Ok(None);
            }
            order.payment_error = Some(reason);
            OrderChange::PaymentFailed
        }
        OrderCommand::SubmitRequirements { text: answers } => {
            if by != Actor::Buyer {
                return Err(only("the buyer", action));
            }
            if status != OrderStatus::AwaitingRequirements {
                return Err(wrong_state());
            }
            order.requirements = Some(text("requirements", &answers, true)?);
            order.status = OrderStatus::InProgress;
            order.started_at = Some(now);
            order.due_at = Some(now + TimeDelta::days(i64::from(current.terms.delivery_days)));
            OrderChange::RequirementsSubmitted
        }
        OrderCommand::Deliver { message, files } => {
            if by != Actor::Seller {
                return Err(only("the seller", action));
            }
            if !status.is_working() {
                return Err(wrong_state());
            }
            if files.len() > MAX_DELIVERY_FILES {
                return Err(OrderError::Invalid {
                    field: "files",
                    message: format!("at most {MAX_DELIVERY_FILES} files"),
                });
            }
            order.deliveries.push(OrderDelivery {
                message: text("message", &message, true)?,
                files,
                delivered_at: now,
            });
            order.status = OrderStatus::Delivered;
            // A pending extension no longer matters once the work is in.
            order.extension = None;
            if current.due_at.is_some_and(|due| now > due) {
                order.late = true;
            }
            OrderChange::Delivered
        }
        OrderCommand::Accept => {
            if by != Actor::Buyer {
                return Err(only("the buyer", action));
            }
            if status != OrderStatus::Delivered {
                return Err(wrong_state());
            }
            complete(&mut order, now, &mut transactions);
            OrderChange::Completed
        }
        OrderCommand::RequestRevision { reason } => {
            if by != Actor::Buyer {
                return Err(only("the buyer", action));
            }
            if status != OrderStatus::Delivered {
                return Err(wrong_state());
            }
            if current.revisions_used >= current.terms.revisions {
                return Err(OrderError::Refused(format!(
                    "all {} revisions of this order have been used",
                    current.terms.revisions
                )));
            }
            text("reason", &reason, true)?;
            order.revisions_used += 1;
            order.status = OrderStatus::RevisionRequested;
            OrderChange::RevisionRequested
        }
        OrderCommand::RequestExtension { days, reason } => {
            if by != Actor::Seller {
                return Err(only("the seller", action));
            }
            if !status.is_working() {
                return Err(wrong_state());
            }
            if days == 0 || days > policy.max_extension_days {
                return Err(OrderError::Invalid {
                    field: "days",
                    message: format!("from 1 to {} days", policy.max_extension_days),
                });
            }
            if current.extension.is_some() {
                return Err(OrderError::Refused(
                    "an extension request is already waiting for the buyer".into(),
                ));
            }
            order.extension = Some(ExtensionRequest {
                days,
                reason: text("reason", &reason, true)?,
                requested_at: now,
            });
            OrderChange::ExtensionRequested
        }
        OrderCommand::AnswerExtension { approve } => {
            if by != Actor::Buyer {
                return Err(only("the buyer", action));
            }
            let Some(request) = current.extension.as_ref() else {
                return Err(OrderError::Refused("no extension was requested".into()));
            };
            if !status.is_working() {
                return Err(wrong_state());
            }
            order.extension = None;
            if approve {
                let due = current.due_at.unwrap_or(now) + TimeDelta::days(i64::from(request.days));
                order.due_at = Some(due);
                order.terms.delivery_days += request.days;
                if due > now {
                    order.late = false;
                }
                OrderChange::ExtensionApproved
            } else {
                OrderChange::ExtensionRejected
            }
        }
        OrderCommand::Cancel { reason } => {
            // Who may cancel is checked before what they wrote, as for
            // every other command.
            let allowed = "the buyer, the seller or an admin";
            if by == Actor::System {
                return Err(only(allowed, action));
            }
            let reason = text("reason", &reason, false)?;
            match (by, status) {
                (Actor::Buyer | Actor::Admin, OrderStatus::AwaitingPayment) => {
                    cancel(&mut order, now, &mut transactions, &mut refund_minor);
                    OrderChange::Cancelled
                }
                (Actor::System, _) => return Err(only(allowed, action)),
                (_, s) if !s.holds_escrow() => return Err(wrong_state()),
                (Actor::Admin, _) => {
                    cancel(&mut order, now, &mut transactions, &mut refund_minor);
                    OrderChange::Cancelled
                }
                (_, OrderStatus::Disputed) => return Err(wrong_state()),
                (Actor::Buyer, s) if s.is_working() && current.late => {
                    cancel(&mut order, now, &mut transactions, &mut refund_minor);
                    OrderChange::Cancelled
                }
                (Actor::Buyer | Actor::Seller, _) => {
                    let side = party.unwrap_or(Side::Buyer);
                    match &current.cancellation {
                        Some(request) if request.by == side => {
                            return Err(OrderError::Refused(
                                "your cancellation request is already waiting for an answer".into(),
                            ))
                        }
                        // Both sides asked: that is agreement.
                        Some(_) => {
                            cancel(&mut order, now, &mut transactions, &mut refund_minor);
                            OrderChange::Cancelled
                        }
                        None => {
                            if reason.is_empty() {
                                return Err(OrderError::Invalid {
                                    field: "reason",
                                    message: "must not be empty".into(),
                                });
                            }
                            order.cancellation = Some(CancellationRequest {
                                by: side,
                                reason,
                                requested_at: now,
                            });
                            OrderChange::CancellationRequested
                        }
                    }
                }
            }
        }
        OrderCommand::AnswerCancellation { accept } => {
            let Some(side) = party else {
                return Err(only("the buyer or the seller", action));
            };
            let Some(request) = current.cancellation.as_ref() else {
                return Err(OrderError::Refused("no cancellation was requested".into()));
            };
            if request.by != side.other() {
                return Err(OrderError::Refused(
                    "only the other side answers a cancellation request".into(),
                ));
            }
            if !status.holds_escrow() || status == OrderStatus::Disputed {
                return Err(wrong_state());
            }
            if accept {
                cancel(&mut order, now, &mut transactions, &mut refund_minor);
                OrderChange::Cancelled
            } else {
                order.cancellation = None;
                OrderChange::CancellationDeclined
            }
        }
        OrderCommand::OpenDispute { reason } => {
            let Some(side) = party else {
                return Err(only("the buyer or the seller", action));
            };
            if !status.holds_escrow() || status == OrderStatus::Disputed {
                return Err(wrong_state());
            }
            order.dispute = Some(Dispute {
                opened_by: side,
                reason: text("reason", &reason, true)?,
                opened_at: now,
                from: status,
            });
            order.status = OrderStatus::Disputed;
            OrderChange::Disputed
        }
        OrderCommand::Resolve(resolution) => {
            if by != Actor::Admin {
                return Err(only("an admin", action));
            }
            if status != OrderStatus::Disputed {
                return Err(wrong_state());
            }
            match resolution {
                Resolution::Complete => complete(&mut order, now, &mut transactions),
                Resolution::Refund { amount_minor } => {
                    let total = current.amounts.total.amount_minor;
                    if amount_minor <= 0 || amount_minor > total {
                        return Err(OrderError::Invalid {
                            field: "amount_minor",
                            message: format!("from 1 to the order total, {total}"),
                        });
                    }
                    if amount_minor == total {
                        cancel(&mut order, now, &mut transactions, &mut refund_minor);
                    } else {
                        order.refunded_minor = amount_minor;
                        refund_minor = Some(amount_minor);
                        transactions.push(Transaction::refund(order.id, amount_minor, now));
                        complete(&mut order, now, &mut transactions);
                    }
                }
            }
            OrderChange::DisputeResolved
        }
        OrderCommand::Tick => {
            if by != Actor::System {
                return Err(only("the clock", action));
            }
            let due = current.next_deadline(policy).is_some_and(|at| at <= now);
            if !due {
                return Ok(None);
            }
            match status {
                OrderStatus::AwaitingPayment => {
                    cancel(&mut order, now, &mut transactions, &mut refund_minor);
                    OrderChange::Cancelled
                }
                OrderStatus::InProgress | OrderStatus::RevisionRequested => {
                    order.late = true;
                    OrderChange::Late
                }
                OrderStatus::Delivered => {
                    complete(&mut order, now, &mut transactions);
                    OrderChange::Completed
                }
                OrderStatus::Completed => {
                    let owed = current.amounts.split(current.refunded_minor).seller_net;
                    transactions.push(Transaction::clearance(order.id, order.seller_id, owed, now));
                    order.cleared_at = Some(now);
                    OrderChange::Cleared
                }
                _ => return Ok(None),
            }
        }
    };
    Ok(Some(Decision {
        order,
        change,
        transactions,
        refund_minor,
    }))
}

/// Settles what is left in escrow: the platform's share and the seller's
/// pending earnings.
fn complete(order: &mut Order, now: DateTime<Utc>, transactions: &mut Vec<Transaction>) {
    let split = order.amounts.split(order.refunded_minor);
    transactions.push(Transaction::settlement(
        order.id,
        order.seller_id,
        split,
        now,
    ));
    order.status = OrderStatus::Completed;
    order.completed_at = Some(now);
    order.extension = None;
    order.cancellation = None;
}

/// Cancels the order; money paid goes back to the buyer in full.
fn cancel(
    order: &mut Order,
    now: DateTime<Utc>,
    transactions: &mut Vec<Transaction>,
    refund_minor: &mut Option<i64>,
) {
    if order.status.holds_escrow() {
        let back = order.amounts.total.amount_minor - order.refunded_minor;
        transactions.push(Transaction::refund(order.id, back, now));
        order.refunded_minor += back;
        *refund_minor = Some(back);
    }
    order.status = OrderStatus::Cancelled;
    order.cancelled_at = Some(now);
    order.extension = None;
}

/// A new order for what was agreed, waiting for payment.
pub fn place(
    buyer_id: UserId,
    seller_id: UserId,
    conversation_id: Option<ConversationId>,
    terms: OrderTerms,
    price: Money,
    now: DateTime<Utc>,
) -> Order {
    Order {
        id: OrderId::new(),
        buyer_id,
        seller_id,
        conversation_id,
        terms,
        amounts: Amounts::for_price(price),
        status: OrderStatus::AwaitingPayment,
        payment: None,
        payment_error: None,
        paid_at: None,
        requirements: None,
        started_at: None,
        due_at: None,
        late: false,
        deliveries: Vec::new(),
        revisions_used: 0,
        extension: None,
        cancellation: None,
        dispute: None,
        refunded_minor: 0,
        completed_at: None,
        cancelled_at: None,
        cleared_at: None,
        created_at: now,
        updated_at: now,
        version: 0,
    }
}
