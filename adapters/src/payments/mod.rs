//! Payment providers: the two [`PaymentProvider`](domain::ports::PaymentProvider)s
//! that collect an order's total and refund it.
//!
//! - [`DevPayments`]: the embedded default. No network; Stripe's test cards
//!   decide each payment, and its events are delivered at once to the
//!   [`PaymentEvents`](domain::ports::PaymentEvents) it is connected to.
//! - [`StripePayments`]: production. Stripe's PaymentIntents API (or a local
//!   stand-in, localstripe); its events arrive by webhook, which the gateway
//!   checks with [`StripePayments::parse_webhook`] before handing them to
//!   the same `PaymentEvents`.

mod dev;
mod stripe;

pub use self::stripe::{
    StripeConfig, StripePayments, WebhookError, STRIPE_PROVIDER, WEBHOOK_TOLERANCE,
};
pub use dev::{DevPayments, DEV_PROVIDER};
