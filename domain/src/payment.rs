//! Payments as the marketplace sees them, whatever the provider: intents to
//! collect an order's total, refunds, and the events a provider reports.
//!
//! The provider's own ids (`pi_...`, `re_...`, `evt_...`) are kept as
//! strings: they are opaque to us and only ever handed back to it.

use serde::{Deserialize, Serialize};

use crate::ids::OrderId;
use crate::money::Money;

/// Where a payment intent stands at the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Waiting for a card (or a new one after a decline).
    RequiresPaymentMethod,
    /// Waiting for the buyer to confirm.
    RequiresConfirmation,
    /// The buyer must complete an extra step (3-D Secure and the like).
    RequiresAction,
    Processing,
    Succeeded,
    Canceled,
}

/// A request to collect an order's total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIntent {
    pub order_id: OrderId,
    pub amount: Money,
    /// Sent to the provider so a retried create makes no second intent.
    pub idempotency_key: String,
    /// Shown on the buyer's statement and the provider's dashboard.
    pub description: String,
}

/// A payment intent as the provider reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub amount: Money,
    pub status: IntentStatus,
    /// Handed to the buyer's browser to confirm the payment there.
    pub client_secret: Option<String>,
    /// Why the last attempt failed (a decline), for the buyer.
    pub last_error: Option<String>,
}

/// Where a refund stands at the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

/// A refund of part or all of a succeeded intent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRefund {
    pub id: String,
    pub intent_id: String,
    pub amount: Money,
    pub status: RefundStatus,
}

/// What a provider reported, through a webhook (Stripe) or at once (the
/// development provider). Both reach the marketplace by the same path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEvent {
    /// The provider's event id: an event is applied once, however often
    /// it is delivered.
    pub id: String,
    /// The provider's name (`dev`, `stripe`).
    pub provider: String,
    pub kind: PaymentEventKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PaymentEventKind {
    /// The intent's amount was collected.
    Succeeded { intent_id: String, amount: Money },
    /// An attempt to pay failed (declined, or the extra step was refused).
    Failed { intent_id: String, reason: String },
    /// Money went back to the buyer.
    Refunded {
        intent_id: String,
        refund_id: String,
        amount: Money,
    },
}

/// Why a provider call failed.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The card was declined; the text is for the buyer.
    #[error("{0}")]
    Declined(String),
    /// The provider refused the request (unknown intent, bad amount); the
    /// text is for logs.
    #[error("payment request refused: {0}")]
    Invalid(String),
    /// The provider could not be reached or failed; retry later. For logs.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
}
