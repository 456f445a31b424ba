//! Production: Stripe's PaymentIntents API, or a local stand-in for it
//! (localstripe) when [`StripeConfig::api_base`] points elsewhere.
//!
//! Requests go through async-stripe's client, which authenticates, pins the
//! API version, sends idempotency keys and reports Stripe's errors; the
//! responses are read into the few fields this adapter needs rather than
//! async-stripe's complete types, which reject the partial objects
//! localstripe answers with (and would break on any field Stripe changes).
//!
//! - `create_intent` sends the request's idempotency key as
//!   `Idempotency-Key`, with `metadata[order_id]`, the description and card
//!   as the only payment method type (so the server can confirm without a
//!   return address).
//! - `confirm` attaches the payment method, then confirms. A payment method
//!   written as a card number (a test card such as `4242424242424242`) is
//!   first made into a PaymentMethod, which localstripe accepts and Stripe
//!   only for accounts allowed to send raw card numbers; otherwise it is a
//!   PaymentMethod id (`pm_...`, from Stripe.js, or a test token such as
//!   `pm_card_visa`). An intent that already succeeded is returned as it is.
//! - `refund` sends its idempotency key both as `Idempotency-Key` and as
//!   `metadata[idempotency_key]`, and looks for a refund with that key
//!   before making one: a retry finds the first refund even after Stripe
//!   forgot the key (24 hours), or on a server that ignores the header. An
//!   amount over what is left to refund is refused before asking.
//! - Events arrive by webhook: the gateway hands the raw body and the
//!   `Stripe-Signature` header to [`StripePayments::parse_webhook`], which
//!   checks the signature and age and reads the event.
//!
//! Against localstripe ([`StripeConfig::api_base`] set) the description is
//! sent as `metadata[description]`, since localstripe refuses the parameter.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use ::stripe::{ApiErrorsCode, ApiErrorsType, IdempotencyKey, RequestStrategy, StripeError};
use async_trait::async_trait;
use chrono::{DateTime, Datelike, Utc};
use domain::money::{Currency, Money};
use domain::payment::{
    IntentStatus, NewIntent, PaymentError, PaymentEvent, PaymentEventKind, PaymentIntent,
    ProviderRefund, RefundStatus,
};
use domain::ports::PaymentProvider;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use stripe_client_core::{RequestBuilder, StripeMethod};
use url::Url;

/// The provider's name, stored with each intent.
pub const STRIPE_PROVIDER: &str = "stripe";

/// How far a webhook's timestamp may be from now (Stripe's default).
pub const WEBHOOK_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// How long one request may take before it counts as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Refund pages read while looking for an earlier refund (100 a page).
const MAX_REFUND_PAGES: usize = 10;

/// The metadata key that marks a refund with its idempotency key.
const REFUND_KEY_METADATA: &str = "idempotency_key";

/// How to reach Stripe. `Debug` never shows the secrets.
#[derive(Clone, Debug)]
pub struct StripeConfig {
    /// The API key (`sk_live_...`, `sk_test_...`).
    pub secret_key: SecretString,
    /// `None` for Stripe itself; `Some` for a local stand-in such as
    /// localstripe (`http://127.0.0.1:8420/`).
    pub api_base: Option<Url>,
    /// The signing secret of the webhook endpoint (`whsec_...`).
    pub webhook_secret: SecretString,
}

/// Why a webhook delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The `Stripe-Signature` header is missing or malformed, or no
    /// signature in it matches the body.
    #[error("webhook signature rejected: {0}")]
    Signature(&'static str),
    /// Signed too long ago (or in the future): possibly a replay.
    #[error("webhook signed {skew_seconds} s away from now, more than the tolerated 300 s")]
    Stale { skew_seconds: u64 },
    /// Correctly signed, but not an event this adapter can read.
    #[error("webhook body is not a readable stripe event: {0}")]
    Malformed(String),
}

/// The Stripe payment provider (`stripe`).
pub struct StripePayments {
    client: ::stripe::Client,
    webhook_secret: SecretString,
    /// Talking to a local stand-in rather than Stripe.
    local: bool,
    api_base: Option<Url>,
}

impl fmt::Debug for StripePayments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripePayments")
            .field("api_base", &self.api_base.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

fn settings_error(why: impl fmt::Display) -> PaymentError {
    PaymentError::Invalid(format!("stripe settings: {why}"))
}

impl StripePayments {
    /// Builds the client. Nothing is sent yet: a wrong key shows on the
    /// first request.
    pub fn new(config: StripeConfig) -> Result<Self, PaymentError> {
        let secret = config.secret_key.expose_secret();
        if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(settings_error("the secret key is empty or not printable"));
        }
        if config.webhook_secret.expose_secret().is_empty() {
            return Err(settings_error("the webhook secret is empty"));
        }
        let mut builder = ::stripe::ClientBuilder::new(secret)
            .timeout(REQUEST_TIMEOUT)
            .app_info("marketplace", Some(env!("CARGO_PKG_VERSION").into()), None);
        if let Some(base) = &config.api_base {
            if !matches!(base.scheme(), "http" | "https")
                || base.cannot_be_a_base()
                || base.query().is_some()
                || base.fragment().is_some()
            {
                return Err(settings_error(format!(
                    "the API base must be an http(s) address without query, not {base}"
                )));
            }
            // The client appends `v1/...` to the base as it is written.
            let mut base = base.as_str().to_owned();
            if !base.ends_with('/') {
                base.push('/');
            }
            builder = builder.url(base);
        }
        let client = builder.build().map_err(settings_error)?;
        Ok(StripePayments {
            client,
            webhook_secret: config.webhook_secret,
            local: config.api_base.is_some(),
            api_base: config.api_base,
        })
    }

    /// Sends one request and reads the answer into `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        what: &str,
        request: RequestBuilder,
        idempotency_key: Option<&str>,
    ) -> Result<T, PaymentError> {
        let mut request = request.customize::<miniserde::json::Value>();
        if let Some(key) = idempotency_key {
            let key = IdempotencyKey::new(key)
                .map_err(|e| PaymentError::Invalid(format!("{what}: idempotency key: {e}")))?;
            request = request.request_strategy(RequestStrategy::Idempotent(key));
        }
        let value = request
            .send(&self.client)
            .await
            .map_err(|e| stripe_error(what, e))?;
        serde_json::from_str(&miniserde::json::to_string(&value)).map_err(|e| {
            PaymentError::Unavailable(format!("{what}: unexpected answer from stripe: {e}"))
        })
    }

    async fn retrieve(&self, intent_id: &str) -> Result<WireIntent, PaymentError> {
        let path = format!("/payment_intents/{intent_id}");
        self.call(
            "retrieve the payment intent",
            RequestBuilder::new(StripeMethod::Get, path),
            None,
        )
        .await
    }

    /// The PaymentMethod id to charge: `payment_method` itself, or a new
    /// PaymentMethod made from a card number.
    async fn payment_method(&self, payment_method: &str) -> Result<String, PaymentError> {
        let trimmed = payment_method.trim();
        let digits: String = trimmed
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        if (12..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            let form = CreatePaymentMethodForm {
                kind: "card",
                card: CardForm {
                    number: &digits,
                    exp_month: 12,
                    exp_year: Utc::now().year() + 5,
                    cvc: "123",
                },
            };
            let created: WireObject = self
                .call(
                    "create a payment method from the card number",
                    RequestBuilder::new(StripeMethod::Post, "/payment_methods").form(&form),
                    None,
                )
                .await?;
            return Ok(created.id);
        }
        if !is_object_id(trimmed) {
            return Err(PaymentError::Invalid(
                "the payment method is neither a card number nor a payment method id".into(),
            ));
        }
        Ok(trimmed.to_owned())
    }

    /// Every refund of the intent, oldest last (Stripe lists newest first).
    async fn refunds_of(&self, intent_id: &str) -> Result<Vec<WireRefund>, PaymentError> {
        let mut refunds: Vec<WireRefund> = Vec::new();
        for _ in 0..MAX_REFUND_PAGES {
            let query = ListRefundsQuery {
                payment_intent: intent_id,
                limit: 100,
                starting_after: refunds.last().map(|r| r.id.as_str()),
            };
            let page: WireList<WireRefund> = self
                .call(
                    "list the intent's refunds",
                    RequestBuilder::new(StripeMethod::Get, "/refunds").query(&query),
                    None,
                )
                .await?;
            let more = page.has_more && !page.data.is_empty();
            refunds.extend(page.data);
            if !more {
                return Ok(refunds);
            }
        }
        Err(PaymentError::Unavailable(format!(
            "payment intent {intent_id} has more than {} refunds",
            MAX_REFUND_PAGES * 100
        )))
    }

    /// Checks a webhook delivery and reads its event: `Ok(None)` for a
    /// genuine event of a type the marketplace does not follow.
    ///
    /// The `Stripe-Signature` header (`t=<unix time>,v1=<hex>[,v1=...]`)
    /// must hold at least one HMAC-SHA256 of `"<t>.<body>"` under the
    /// webhook secret, and `t` must be within [`WEBHOOK_TOLERANCE`] of
    /// `now`. Events read:
    /// - `payment_intent.succeeded`: `Succeeded` (the amount received);
    /// - `payment_intent.payment_failed`: `Failed` (the error's message);
    /// - `refund.created` with status `succeeded`, and `refund.updated`
    ///   whose status just became `succeeded`: `Refunded`. These name one
    ///   refund each; `charge.refunded` (the charge's running total) and
    ///   `charge.refund.updated` (a twin of `refund.updated`) are ignored.
    ///
    /// A refund can be reported more than once under different event ids
    /// (its own answer, and `refund.created`): apply refunds by refund id.
    pub fn parse_webhook(
        &self,
        body: &[u8],
        signature_header: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<PaymentEvent>, WebhookError> {
        let timestamp = verify_signature(
            self.webhook_secret.expose_secret().as_bytes(),
            body,
            signature_header,
        )?;
        let skew_seconds = now.timestamp().abs_diff(timestamp);
        if skew_seconds > WEBHOOK_TOLERANCE.as_secs() {
            return Err(WebhookError::Stale { skew_seconds });
        }
        read_event(body)
    }
}

/// Checks the signature header against the body; the signed timestamp.
fn verify_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<i64, WebhookError> {
    let header = header.ok_or(WebhookError::Signature("no Stripe-Signature header"))?;
    let mut timestamp: Option<&str> = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            return Err(WebhookError::Signature("malformed Stripe-Signature header"));
        };
        match key {
            "t" if timestamp.is_none() => timestamp = Some(value),
            "t" => {
                return Err(WebhookError::Signature(
                    "two timestamps in Stripe-Signature",
                ))
            }
            // A value that is not 32 bytes of hex cannot match; skip it.
            "v1" => signatures.extend(decode_hex32(value)),
            // Other schemes (v0 in test mode) are not trusted.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::Signature("no timestamp in Stripe-Signature"))?;
    let seconds = match timestamp.bytes().all(|b| b.is_ascii_digit()) {
        true => timestamp.parse::<i64>().ok(),
        false => None,
    }
    .ok_or(WebhookError::Signature(
        "malformed timestamp in Stripe-Signature",
    ))?;
    if signatures.is_empty() {
        return Err(WebhookError::Signature(
            "no v1 signature in Stripe-Signature",
        ));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| WebhookError::Signature("unusable webhook secret"))?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    // `verify_slice` compares in constant time.
    if signatures
        .iter()
        .any(|signature| mac.clone().verify_slice(signature).is_ok())
    {
        Ok(seconds)
    } else {
        Err(WebhookError::Signature("no signature matches the body"))
    }
}

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn read_event(body: &[u8]) -> Result<Option<PaymentEvent>, WebhookError> {
    let malformed = |e: serde_json::Error| WebhookError::Malformed(e.to_string());
    let event: WireEvent = serde_json::from_slice(body).map_err(malformed)?;
    let kind = match event.kind.as_str() {
        "payment_intent.succeeded" => {
            let intent: WireIntent =
                serde_json::from_value(event.data.object).map_err(malformed)?;
            let amount = money(intent.collected(), &intent.currency)
                .map_err(|e| WebhookError::Malformed(e.to_string()))?;
            PaymentEventKind::Succeeded {
                intent_id: intent.id,
                amount,
            }
        }
        "payment_intent.payment_failed" => {
            let intent: WireIntent =
                serde_json::from_value(event.data.object).map_err(malformed)?;
            PaymentEventKind::Failed {
                reason: intent
                    .last_payment_error
                    .and_then(|e| e.message)
                    .unwrap_or_else(|| "The payment failed.".to_owned()),
                intent_id: intent.id,
            }
        }
        "refund.created" | "refund.updated" => {
            let refund: WireRefund =
                serde_json::from_value(event.data.object).map_err(malformed)?;
            let status_changed = event.kind == "refund.created"
                || event
                    .data
                    .previous_attributes
                    .as_ref()
                    .is_some_and(|previous| previous.get("status").is_some());
            let Some(intent_id) = refund.payment_intent.filter(|_| status_changed) else {
                return Ok(None);
            };
            if refund.status.as_deref() != Some("succeeded") {
                return Ok(None);
            }
            PaymentEventKind::Refunded {
                intent_id,
                amount: money(refund.amount, &refund.currency)
                    .map_err(|e| WebhookError::Malformed(e.to_string()))?,
                refund_id: refund.id,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(PaymentEvent {
        id: event.id,
        provider: STRIPE_PROVIDER.to_owned(),
        kind,
    }))
}

/// A Stripe object id as it may appear in a path: `[A-Za-z0-9_]`, at most
/// 255 characters.
fn is_object_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn intent_id(id: &str) -> Result<&str, PaymentError> {
    if id.starts_with("pi_") && is_object_id(id) {
        Ok(id)
    } else {
        Err(PaymentError::Invalid(format!(
            "unknown payment intent {id:?}"
        )))
    }
}

fn idempotency_key(key: &str) -> Result<&str, PaymentError> {
    if !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(key)
    } else {
        Err(PaymentError::Invalid(
            "the idempotency key must be 1 to 255 printable ASCII characters".into(),
        ))
    }
}

fn stripe_error(what: &str, error: StripeError) -> PaymentError {
    match error {
        StripeError::Stripe(api, status) => {
            let message = api
                .message
                .clone()
                .unwrap_or_else(|| "no message".to_owned());
            let declined = matches!(api.type_, ApiErrorsType::CardError)
                || matches!(api.code, Some(ApiErrorsCode::CardDeclined));
            if declined {
                PaymentError::Declined(message)
            } else if status == 429 || status >= 500 {
                tracing::warn!(status, message, "stripe failed: {what}");
                PaymentError::Unavailable(format!("{what}: stripe answered {status}: {message}"))
            } else {
                PaymentError::Invalid(format!("{what}: stripe answered {status}: {message}"))
            }
        }
        StripeError::ClientError(e) | StripeError::JSONDeserialize(e) => {
            tracing::warn!(error = e, "stripe unreachable: {what}");
            PaymentError::Unavailable(format!("{what}: {e}"))
        }
        StripeError::Timeout => {
            tracing::warn!("stripe timed out: {what}");
            PaymentError::Unavailable(format!("{what}: no answer from stripe in time"))
        }
        StripeError::ConfigError(e) => PaymentError::Invalid(format!("{what}: {e}")),
    }
}

fn money(amount_minor: i64, currency: &str) -> Result<Money, PaymentError> {
    let currency = Currency::parse(currency).ok_or_else(|| {
        PaymentError::Invalid(format!(
            "the marketplace does not use the currency {currency:?}"
        ))
    })?;
    Ok(Money {
        amount_minor,
        currency,
    })
}

fn status(status: &str) -> IntentStatus {
    match status {
        "requires_payment_method" => IntentStatus::RequiresPaymentMethod,
        "requires_confirmation" => IntentStatus::RequiresConfirmation,
        "requires_action" => IntentStatus::RequiresAction,
        "succeeded" => IntentStatus::Succeeded,
        "canceled" => IntentStatus::Canceled,
        // `requires_capture` (authorised, not yet collected) never happens
        // with automatic capture; it and anything new count as in progress.
        "processing" | "requires_capture" => IntentStatus::Processing,
        other => {
            tracing::warn!(status = other, "unknown payment intent status");
            IntentStatus::Processing
        }
    }
}

fn refund_status(status: Option<&str>) -> RefundStatus {
    match status {
        Some("succeeded") => RefundStatus::Succeeded,
        Some("failed" | "canceled") => RefundStatus::Failed,
        _ => RefundStatus::Pending,
    }
}

// ---------------------------------------------------------------------------
// What is sent and read: only the fields used, so that a stand-in's partial
// objects and Stripe's new fields both read.
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct CreateIntentForm<'a> {
    amount: i64,
    currency: String,
    payment_method_types: [&'static str; 1],
    metadata: HashMap<&'static str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
}

#[derive(Serialize)]
struct AttachForm<'a> {
    payment_method: &'a str,
}

#[derive(Serialize)]
struct CreatePaymentMethodForm<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    card: CardForm<'a>,
}

#[derive(Serialize)]
struct CardForm<'a> {
    number: &'a str,
    exp_month: u32,
    exp_year: i32,
    cvc: &'static str,
}

#[derive(Serialize)]
struct CreateRefundForm<'a> {
    payment_intent: &'a str,
    amount: i64,
    metadata: HashMap<&'static str, &'a str>,
}

#[derive(Serialize)]
struct ListRefundsQuery<'a> {
    payment_intent: &'a str,
    limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    starting_after: Option<&'a str>,
}

#[derive(Deserialize)]
struct WireObject {
    id: String,
}

#[derive(Deserialize)]
struct WireIntent {
    id: String,
    amount: i64,
    currency: String,
    status: String,
    /// Missing from localstripe's intents.
    #[serde(default)]
    amount_received: Option<i64>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    last_payment_error: Option<WireError>,
}

impl WireIntent {
    /// What the intent collected.
    fn collected(&self) -> i64 {
        self.amount_received
            .filter(|received| *received > 0)
            .unwrap_or(self.amount)
    }

    fn into_intent(self) -> Result<PaymentIntent, PaymentError> {
        Ok(PaymentIntent {
            amount: money(self.amount, &self.currency)?,
            status: status(&self.status),
            client_secret: self.client_secret,
            last_error: self.last_payment_error.and_then(|e| e.message),
            id: self.id,
        })
    }
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct WireRefund {
    id: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    payment_intent: Option<String>,
    #[serde(default)]
    metadata: Option<HashMap<String, String>>,
}

impl WireRefund {
    fn key(&self) -> Option<&str> {
        self.metadata
            .as_ref()
            .and_then(|metadata| metadata.get(REFUND_KEY_METADATA))
            .map(String::as_str)
    }

    fn counts(&self) -> bool {
        !matches!(self.status.as_deref(), Some("failed" | "canceled"))
    }

    fn into_refund(self, intent_id: &str) -> Result<ProviderRefund, PaymentError> {
        Ok(ProviderRefund {
            amount: money(self.amount, &self.currency)?,
            status: refund_status(self.status.as_deref()),
            intent_id: self.payment_intent.unwrap_or_else(|| intent_id.to_owned()),
            id: self.id,
        })
    }
}

#[derive(Deserialize)]
struct WireList<T> {
    data: Vec<T>,
    #[serde(default)]
    has_more: bool,
}

#[derive(Deserialize)]
struct WireEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: WireEventData,
}

#[derive(Deserialize)]
struct WireEventData {
    object: serde_json::Value,
    #[serde(default)]
    previous_attributes: Option<serde_json::Value>,
}

#[async_trait]
impl PaymentProvider for StripePayments {
    fn name(&self) -> &'static str {
        STRIPE_PROVIDER
    }

    #[tracing::instrument(skip(self, intent), fields(order_id = %intent.order_id, amount = %intent.amount))]
    async fn create_intent(&self, intent: &NewIntent) -> Result<PaymentIntent, PaymentError> {
        let key = idempotency_key(&intent.idempotency_key)?;
        if intent.amount.amount_minor <= 0 {
            return Err(PaymentError::Invalid(format!(
                "the amount must be positive, not {}",
                intent.amount
            )));
        }
        let order_id = intent.order_id.to_string();
        let mut metadata = HashMap::from([("order_id", order_id.as_str())]);
        // localstripe refuses `description`; keep it where it is accepted.
        let description = if self.local {
            metadata.insert("description", intent.description.as_str());
            None
        } else {
            Some(intent.description.as_str())
        };
        let form = CreateIntentForm {
            amount: intent.amount.amount_minor,
            currency: intent.amount.currency.code().to_ascii_lowercase(),
            payment_method_types: ["card"],
            metadata,
            description,
        };
        let created: WireIntent = self
            .call(
                "create a payment intent",
                RequestBuilder::new(StripeMethod::Post, "/payment_intents").form(&form),
                Some(key),
            )
            .await?;
        created.into_intent()
    }

    #[tracing::instrument(skip(self, payment_method))]
    async fn confirm(
        &self,
        intent_id: &str,
        payment_method: &str,
    ) -> Result<PaymentIntent, PaymentError> {
        let id = self::intent_id(intent_id)?;
        let current = self.retrieve(id).await?.into_intent()?;
        if current.status == IntentStatus::Succeeded {
            return Ok(current);
        }
        let method = self.payment_method(payment_method).await?;
        // Attached first, then confirmed: localstripe cannot confirm with
        // a payment method given to the confirmation itself.
        let _: WireObject = self
            .call(
                "attach the payment method",
                RequestBuilder::new(StripeMethod::Post, format!("/payment_intents/{id}")).form(
                    &AttachForm {
                        payment_method: &method,
                    },
                ),
                None,
            )
            .await?;
        let confirmed: WireIntent = self
            .call(
                "confirm the payment intent",
                RequestBuilder::new(StripeMethod::Post, format!("/payment_intents/{id}/confirm")),
                None,
            )
            .await?;
        confirmed.into_intent()
    }

    #[tracing::instrument(skip(self))]
    async fn intent(&self, intent_id: &str) -> Result<PaymentIntent, PaymentError> {
        self.retrieve(self::intent_id(intent_id)?)
            .await?
            .into_intent()
    }

    #[tracing::instrument(skip(self, idempotency_key), fields(amount = %amount))]
    async fn refund(
        &self,
        intent_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<ProviderRefund, PaymentError> {
        let id = self::intent_id(intent_id)?;
        let key = self::idempotency_key(idempotency_key)?;
        let intent = self.retrieve(id).await?;
        if status(&intent.status) != IntentStatus::Succeeded {
            return Err(PaymentError::Invalid(format!(
                "payment intent {id} has collected nothing to refund"
            )));
        }
        let collected = money(intent.collected(), &intent.currency)?;
        if amount.currency != collected.currency {
            return Err(PaymentError::Invalid(format!(
                "a refund must be in {}",
                collected.currency.code()
            )));
        }
        let mut refunds = self.refunds_of(id).await?;
        if let Some(earlier) = refunds.iter().position(|r| r.key() == Some(key)) {
            let earlier = refunds.swap_remove(earlier);
            if earlier.amount != amount.amount_minor {
                return Err(PaymentError::Invalid(
                    "idempotency key already used for a different refund".into(),
                ));
            }
            return earlier.into_refund(id);
        }
        let refunded: i64 = refunds
            .iter()
            .filter(|r| r.counts())
            .map(|r| r.amount)
            .sum();
        let left = Money {
            amount_minor: collected.amount_minor - refunded,
            currency: collected.currency,
        };
        if amount.amount_minor <= 0 || amount.amount_minor > left.amount_minor {
            return Err(PaymentError::Invalid(format!(
                "a refund must be more than 0 and at most the {left} left to refund, not {amount}"
            )));
        }
        let form = CreateRefundForm {
            payment_intent: id,
            amount: amount.amount_minor,
            metadata: HashMap::from([(REFUND_KEY_METADATA, key)]),
        };
        let refund: WireRefund = self
            .call(
                "create a refund",
                RequestBuilder::new(StripeMethod::Post, "/refunds").form(&form),
                Some(key),
            )
            .await?;
        refund.into_refund(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn signature_headers() {
        let body = br#"{"id":"evt_1"}"#;
        let good = sign("whsec_x", "1700000000", body);
        let ok = |header: &str| verify_signature(b"whsec_x", body, Some(header));
        assert_eq!(
            ok(&format!("t=1700000000,v1={good}")).unwrap(),
            1_700_000_000
        );
        assert_eq!(
            ok(&format!(
                "t=1700000000, v1={}, v1={good}, v0=abc",
                "0".repeat(64)
            ))
            .unwrap(),
            1_700_000_000
        );
        assert_eq!(
            ok(&format!("t=1700000000,v1={}", good.to_uppercase())).unwrap(),
            1_700_000_000
        );
        for bad in [
            String::new(),
            "garbage".to_owned(),
            format!("v1={good}"),
            "t=1700000000".to_owned(),
            format!("t=1700000000,v0={good}"),
            format!("t=1700000001,v1={good}"),
            format!("t=+1700000000,v1={good}"),
            format!("t=1700000000,t=1700000000,v1={good}"),
            format!("t=1700000000,v1={}", &good[1..]),
            format!("t=99999999999999999999999,v1={good}"),
        ] {
            assert!(
                matches!(ok(&bad), Err(WebhookError::Signature(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            verify_signature(b"whsec_x", body, None),
            Err(WebhookError::Signature(_))
        ));
    }

    #[test]
    fn object_ids() {
        assert!(is_object_id("pi_3MtwBwLkdIwHu7ix28a3tqPa"));
        for bad in ["", "pi_1/../../customers", "pi_1?x=1", "pi 1", "pi_é"] {
            assert!(!is_object_id(bad), "{bad}");
        }
    }
}
