//! The embedded default: a payment provider that never leaves the process.
//!
//! It behaves like a card processor in test mode, deciding each payment from
//! the test payment method the buyer gives (Stripe's test numbers and tokens):
//!
//! | payment method | outcome |
//! | --- | --- |
//! | `4242424242424242`, `pm_card_visa` | succeeds |
//! | `4000000000000002`, `pm_card_chargeDeclined` | declined: "Your card was declined." |
//! | `4000000000009995`, `pm_card_chargeDeclinedInsufficientFunds` | declined: "Your card has insufficient funds." |
//! | `4000000000000341`, `pm_card_chargeCustomerFail` | declined: "Your card was declined." (the decline localstripe also knows) |
//! | `4000002500003155`, `pm_card_authenticationRequired` | needs an extra step: the intent waits in `RequiresAction` until [`DevPayments::authenticate`] approves it (succeeded) or refuses it (failed) |
//! | anything else | refused as [`PaymentError::Invalid`] ("unknown test card") |
//!
//! Card numbers may be written with spaces or dashes.
//!
//! Events reach the marketplace by the path real webhooks take: the
//! [`PaymentEvents`] handed to [`DevPayments::connect`]. A call that changes
//! an intent (confirm, authenticate, refund) delivers its event before it
//! returns, so once it returns `Ok` (or `Declined`) the marketplace has
//! applied it. An event the handler refused stays queued and is delivered
//! again, with the same id, by the next call about that intent, as a
//! provider retries a webhook; meanwhile that call answers `Unavailable`.
//!
//! Intent ids carry their amount (`pi_dev_<uuid>_<amount in cents>`), so any
//! process can confirm an intent another created, or one created before a
//! restart: an id it has not seen is an intent waiting for a card. What only
//! memory holds (statuses, refunded totals, idempotency keys) is lost on a
//! restart; an intent paid before a restart can then no longer be refunded
//! here.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use domain::money::{Currency, Money};
use domain::payment::{
    IntentStatus, NewIntent, PaymentError, PaymentEvent, PaymentEventKind, PaymentIntent,
    ProviderRefund, RefundStatus,
};
use domain::ports::{PaymentEvents, PaymentProvider};
use parking_lot::Mutex;
use uuid::Uuid;

/// The provider's name, stored with each intent.
pub const DEV_PROVIDER: &str = "dev";

const INTENT_PREFIX: &str = "pi_dev_";
/// The largest amount a card payment may collect (Stripe's limit: eight
/// digits of cents).
const MAX_AMOUNT_MINOR: i64 = 99_999_999;

const DECLINED: &str = "Your card was declined.";
const INSUFFICIENT_FUNDS: &str = "Your card has insufficient funds.";
const AUTHENTICATION_FAILED: &str = "The provided PaymentMethod has failed authentication.";

/// What a test payment method does when charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TestCard {
    Succeeds,
    Declined(&'static str),
    NeedsAuthentication,
}

fn test_card(payment_method: &str) -> Option<TestCard> {
    let trimmed = payment_method.trim();
    let digits: String = trimmed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    let key = if digits.bytes().all(|b| b.is_ascii_digit()) && !digits.is_empty() {
        digits.as_str()
    } else {
        trimmed
    };
    match key {
        "4242424242424242" | "pm_card_visa" => Some(TestCard::Succeeds),
        "4000000000000002" | "pm_card_chargeDeclined" => Some(TestCard::Declined(DECLINED)),
        "4000000000009995" | "pm_card_chargeDeclinedInsufficientFunds" => {
            Some(TestCard::Declined(INSUFFICIENT_FUNDS))
        }
        "4000000000000341" | "pm_card_chargeCustomerFail" => Some(TestCard::Declined(DECLINED)),
        "4000002500003155" | "pm_card_authenticationRequired" => {
            Some(TestCard::NeedsAuthentication)
        }
        _ => None,
    }
}

/// The amount a well-formed dev intent id carries, or `None`.
fn amount_in_id(intent_id: &str) -> Option<Money> {
    let rest = intent_id.strip_prefix(INTENT_PREFIX)?;
    let (uuid, amount) = rest.split_once('_')?;
    if uuid.len() != 32 || !uuid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Uuid::try_parse(uuid).ok()?;
    if amount.is_empty() || amount.starts_with('0') || !amount.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount_minor: i64 = amount.parse().ok()?;
    (1..=MAX_AMOUNT_MINOR)
        .contains(&amount_minor)
        .then_some(Money {
            amount_minor,
            currency: Currency::MARKETPLACE,
        })
}

fn unknown_intent(intent_id: &str) -> PaymentError {
    PaymentError::Invalid(format!("unknown payment intent {intent_id:?}"))
}

fn new_event(kind: PaymentEventKind) -> PaymentEvent {
    PaymentEvent {
        id: format!("evt_dev_{}", Uuid::now_v7().simple()),
        provider: DEV_PROVIDER.to_owned(),
        kind,
    }
}

/// One intent as this process knows it.
#[derive(Clone, Debug)]
struct Intent {
    amount: Money,
    status: IntentStatus,
    last_error: Option<String>,
    /// Cents refunded so far.
    refunded: i64,
    /// Events not yet applied by the marketplace, oldest first.
    outbox: Vec<PaymentEvent>,
}

impl Intent {
    fn waiting(amount: Money) -> Self {
        Intent {
            amount,
            status: IntentStatus::RequiresPaymentMethod,
            last_error: None,
            refunded: 0,
            outbox: Vec::new(),
        }
    }

    fn view(&self, id: &str) -> PaymentIntent {
        PaymentIntent {
            id: id.to_owned(),
            amount: self.amount,
            status: self.status,
            client_secret: Some(format!("{id}_secret")),
            last_error: self.last_error.clone(),
        }
    }
}

/// A create request as remembered under its idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CreateRequest {
    order_id: domain::ids::OrderId,
    amount: Money,
    description: String,
}

#[derive(Default)]
struct State {
    intents: HashMap<String, Intent>,
    /// Idempotency key of a create → (the request, the intent id).
    creates: HashMap<String, (CreateRequest, String)>,
    /// Idempotency key of a refund → the refund.
    refunds: HashMap<String, ProviderRefund>,
}

impl State {
    /// The intent `intent_id` names: what memory holds, or a fresh one
    /// waiting for a card if the id is well formed.
    fn intent_mut(&mut self, intent_id: &str) -> Result<&mut Intent, PaymentError> {
        if !self.intents.contains_key(intent_id) {
            let amount = amount_in_id(intent_id).ok_or_else(|| unknown_intent(intent_id))?;
            self.intents
                .insert(intent_id.to_owned(), Intent::waiting(amount));
        }
        self.intents
            .get_mut(intent_id)
            .ok_or_else(|| unknown_intent(intent_id))
    }
}

/// The development payment provider (`dev`). See the module documentation
/// for its test payment methods.
#[derive(Default)]
pub struct DevPayments {
    state: Mutex<State>,
    events: OnceLock<Arc<dyn PaymentEvents>>,
}

impl std::fmt::Debug for DevPayments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevPayments")
            .field("intents", &self.state.try_lock().map(|s| s.intents.len()))
            .field("connected", &self.events.get().is_some())
            .finish()
    }
}

impl DevPayments {
    /// A provider that knows no intents and is not yet connected: calls that
    /// change an intent answer `Unavailable` until [`Self::connect`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets where events go. The first connection stays: connecting again
    /// is refused (`Invalid`), so events never change destination midway.
    pub fn connect(&self, events: Arc<dyn PaymentEvents>) -> Result<(), PaymentError> {
        self.events
            .set(events)
            .map_err(|_| PaymentError::Invalid("dev payments are already connected".into()))
    }

    fn events(&self) -> Result<Arc<dyn PaymentEvents>, PaymentError> {
        self.events.get().cloned().ok_or_else(|| {
            PaymentError::Unavailable("dev payments are not connected to an event handler".into())
        })
    }

    /// Completes the extra step an intent waits for (`RequiresAction`), as
    /// the buyer would in their bank's window: approved, the payment
    /// succeeds (a `Succeeded` event); refused, the intent waits for another
    /// card with the reason in `last_error` (a `Failed` event). Either way
    /// the intent is returned as it now stands.
    pub async fn authenticate(
        &self,
        intent_id: &str,
        approve: bool,
    ) -> Result<PaymentIntent, PaymentError> {
        let events = self.events()?;
        let view = {
            let mut state = self.state.lock();
            let intent = state.intent_mut(intent_id)?;
            if intent.status != IntentStatus::RequiresAction {
                return Err(PaymentError::Invalid(format!(
                    "payment intent {intent_id} does not wait for authentication"
                )));
            }
            let kind = if approve {
                intent.status = IntentStatus::Succeeded;
                intent.last_error = None;
                PaymentEventKind::Succeeded {
                    intent_id: intent_id.to_owned(),
                    amount: intent.amount,
                }
            } else {
                intent.status = IntentStatus::RequiresPaymentMethod;
                intent.last_error = Some(AUTHENTICATION_FAILED.to_owned());
                PaymentEventKind::Failed {
                    intent_id: intent_id.to_owned(),
                    reason: AUTHENTICATION_FAILED.to_owned(),
                }
            };
            intent.outbox.push(new_event(kind));
            intent.view(intent_id)
        };
        self.deliver(events.as_ref(), intent_id).await?;
        Ok(view)
    }

    /// Delivers the intent's queued events in order, each removed once the
    /// handler applied it. The lock is not held while the handler runs.
    async fn deliver(
        &self,
        events: &dyn PaymentEvents,
        intent_id: &str,
    ) -> Result<(), PaymentError> {
        let pending = self
            .state
            .lock()
            .intents
            .get(intent_id)
            .map(|intent| intent.outbox.clone())
            .unwrap_or_default();
        for event in pending {
            let id = event.id.clone();
            if let Err(e) = events.received(event).await {
                tracing::warn!(intent_id, event_id = %id, error = %e, "payment event not applied");
                return Err(PaymentError::Unavailable(format!(
                    "payment event {id} was not applied ({e}); it will be delivered again"
                )));
            }
            if let Some(intent) = self.state.lock().intents.get_mut(intent_id) {
                intent.outbox.retain(|queued| queued.id != id);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl PaymentProvider for DevPayments {
    fn name(&self) -> &'static str {
        DEV_PROVIDER
    }

    #[tracing::instrument(skip(self, intent), fields(order_id = %intent.order_id, amount = %intent.amount))]
    async fn create_intent(&self, intent: &NewIntent) -> Result<PaymentIntent, PaymentError> {
        if !(1..=MAX_AMOUNT_MINOR).contains(&intent.amount.amount_minor) {
            return Err(PaymentError::Invalid(format!(
                "the amount must be between 0.01 and 999999.99, not {}",
                intent.amount
            )));
        }
        if intent.amount.currency != Currency::MARKETPLACE {
            return Err(PaymentError::Invalid(format!(
                "dev payments collect {} only",
                Currency::MARKETPLACE.code()
            )));
        }
        if intent.idempotency_key.is_empty() {
            return Err(PaymentError::Invalid("the idempotency key is empty".into()));
        }
        let request = CreateRequest {
            order_id: intent.order_id,
            amount: intent.amount,
            description: intent.description.clone(),
        };
        let mut state = self.state.lock();
        let id = match state.creates.get(&intent.idempotency_key) {
            Some((earlier, id)) if *earlier == request => id.clone(),
            Some(_) => {
                return Err(PaymentError::Invalid(
                    "idempotency key already used for a different intent".into(),
                ))
            }
            None => {
                let id = format!(
                    "{INTENT_PREFIX}{}_{}",
                    Uuid::now_v7().simple(),
                    intent.amount.amount_minor
                );
                state
                    .creates
                    .insert(intent.idempotency_key.clone(), (request, id.clone()));
                id
            }
        };
        Ok(state.intent_mut(&id)?.view(&id))
    }

    #[tracing::instrument(skip(self, payment_method))]
    async fn confirm(
        &self,
        intent_id: &str,
        payment_method: &str,
    ) -> Result<PaymentIntent, PaymentError> {
        let events = self.events()?;
        let (view, declined) = {
            let mut state = self.state.lock();
            let intent = state.intent_mut(intent_id)?;
            match intent.status {
                // Already paid: unchanged, nothing new to report.
                IntentStatus::Succeeded => (intent.view(intent_id), None),
                IntentStatus::Canceled | IntentStatus::Processing => {
                    return Err(PaymentError::Invalid(format!(
                        "payment intent {intent_id} cannot be confirmed now"
                    )));
                }
                IntentStatus::RequiresPaymentMethod
                | IntentStatus::RequiresConfirmation
                | IntentStatus::RequiresAction => {
                    let card = test_card(payment_method).ok_or_else(|| {
                        PaymentError::Invalid(
                            "unknown test card (see the dev provider's test payment methods)"
                                .into(),
                        )
                    })?;
                    let declined = match card {
                        TestCard::Succeeds => {
                            intent.status = IntentStatus::Succeeded;
                            intent.last_error = None;
                            let kind = PaymentEventKind::Succeeded {
                                intent_id: intent_id.to_owned(),
                                amount: intent.amount,
                            };
                            intent.outbox.push(new_event(kind));
                            None
                        }
                        TestCard::Declined(reason) => {
                            intent.status = IntentStatus::RequiresPaymentMethod;
                            intent.last_error = Some(reason.to_owned());
                            let kind = PaymentEventKind::Failed {
                                intent_id: intent_id.to_owned(),
                                reason: reason.to_owned(),
                            };
                            intent.outbox.push(new_event(kind));
                            Some(reason)
                        }
                        TestCard::NeedsAuthentication => {
                            intent.status = IntentStatus::RequiresAction;
                            intent.last_error = None;
                            None
                        }
                    };
                    (intent.view(intent_id), declined)
                }
            }
        };
        // Queued events go out in every case, including any that an earlier
        // failed delivery left behind.
        self.deliver(events.as_ref(), intent_id).await?;
        match declined {
            Some(reason) => Err(PaymentError::Declined(reason.to_owned())),
            None => Ok(view),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn intent(&self, intent_id: &str) -> Result<PaymentIntent, PaymentError> {
        if let Some(intent) = self.state.lock().intents.get(intent_id) {
            return Ok(intent.view(intent_id));
        }
        let amount = amount_in_id(intent_id).ok_or_else(|| unknown_intent(intent_id))?;
        Ok(Intent::waiting(amount).view(intent_id))
    }

    #[tracing::instrument(skip(self, idempotency_key), fields(amount = %amount))]
    async fn refund(
        &self,
        intent_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<ProviderRefund, PaymentError> {
        let events = self.events()?;
        if idempotency_key.is_empty() {
            return Err(PaymentError::Invalid("the idempotency key is empty".into()));
        }
        let refund = self
            .state
            .lock()
            .refund(intent_id, amount, idempotency_key)?;
        // A retried refund delivers its event again if that failed before.
        self.deliver(events.as_ref(), intent_id).await?;
        Ok(refund)
    }
}

impl State {
    /// The refund recorded under `idempotency_key`, or a new one with its
    /// event queued.
    fn refund(
        &mut self,
        intent_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<ProviderRefund, PaymentError> {
        if let Some(earlier) = self.refunds.get(idempotency_key) {
            return if earlier.intent_id == intent_id && earlier.amount == amount {
                Ok(earlier.clone())
            } else {
                Err(PaymentError::Invalid(
                    "idempotency key already used for a different refund".into(),
                ))
            };
        }
        let remembered = self.intents.contains_key(intent_id);
        let intent = self.intent_mut(intent_id)?;
        if !remembered {
            // Paid before this process started (the development provider
            // keeps nothing across restarts): the marketplace only refunds
            // what its ledger says was collected, so take its word.
            intent.status = IntentStatus::Succeeded;
        }
        if intent.status != IntentStatus::Succeeded {
            return Err(PaymentError::Invalid(format!(
                "payment intent {intent_id} has collected nothing to refund"
            )));
        }
        if amount.currency != intent.amount.currency {
            return Err(PaymentError::Invalid(format!(
                "a refund must be in {}",
                intent.amount.currency.code()
            )));
        }
        let left = Money {
            amount_minor: intent.amount.amount_minor - intent.refunded,
            currency: intent.amount.currency,
        };
        if amount.amount_minor <= 0 || amount.amount_minor > left.amount_minor {
            return Err(PaymentError::Invalid(format!(
                "a refund must be more than 0 and at most the {left} left to refund, not {amount}"
            )));
        }
        intent.refunded += amount.amount_minor;
        let refund = ProviderRefund {
            id: format!("re_dev_{}", Uuid::now_v7().simple()),
            intent_id: intent_id.to_owned(),
            amount,
            status: RefundStatus::Succeeded,
        };
        intent.outbox.push(new_event(PaymentEventKind::Refunded {
            intent_id: intent_id.to_owned(),
            refund_id: refund.id.clone(),
            amount,
        }));
        self.refunds
            .insert(idempotency_key.to_owned(), refund.clone());
        Ok(refund)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_amount() {
        let uuid = Uuid::now_v7().simple().to_string();
        let id = format!("pi_dev_{uuid}_1234");
        assert_eq!(amount_in_id(&id).map(|m| m.amount_minor), Some(1234));
        for bad in [
            "".to_owned(),
            "pi_dev_".to_owned(),
            format!("pi_dev_{uuid}"),
            format!("pi_dev_{uuid}_"),
            format!("pi_dev_{uuid}_0"),
            format!("pi_dev_{uuid}_012"),
            format!("pi_dev_{uuid}_-5"),
            format!("pi_dev_{uuid}_12x"),
            format!("pi_dev_{uuid}_1_2"),
            format!("pi_dev_{uuid}_100000000"),
            format!("pi_dev_{uuid}_99999999999999999999999"),
            format!("pi_dev_{}_12", &uuid[1..]),
            format!("pi_dev_{}g_12", &uuid[1..]),
            format!("pi_xyz_{uuid}_12"),
        ] {
            assert_eq!(amount_in_id(&bad), None, "{bad}");
        }
    }

    #[test]
    fn test_cards() {
        assert_eq!(test_card("4242 4242 4242 4242"), Some(TestCard::Succeeds));
        assert_eq!(test_card(" 4242-4242-4242-4242 "), Some(TestCard::Succeeds));
        assert_eq!(test_card("pm_card_visa"), Some(TestCard::Succeeds));
        assert_eq!(
            test_card("4000000000009995"),
            Some(TestCard::Declined(INSUFFICIENT_FUNDS))
        );
        assert_eq!(test_card(""), None);
        assert_eq!(test_card("4111111111111111"), None);
        assert_eq!(test_card("pm_card_mastercard"), None);
    }
}
