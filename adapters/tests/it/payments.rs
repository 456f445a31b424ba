//! The payment providers end to end: one scenario set run against
//! `DevPayments` and against `StripePayments` talking to a real localstripe
//! (installed by `scripts/test.sh`).
//!
//! Events reach a recording `PaymentEvents` by each provider's own path:
//! the dev provider calls it before returning; localstripe posts signed
//! webhooks to a small HTTP server here, which checks them with
//! `parse_webhook` as the gateway does. The Stripe adapter reaches
//! localstripe through a recording proxy, which shows what was sent (the
//! `Idempotency-Key` headers localstripe ignores) and can fail requests.
//!
//! Where localstripe falls short of Stripe, the scenarios say so and check
//! what can be checked:
//! - it ignores `Idempotency-Key` (the header sent is checked instead);
//! - it sends no refund events;
//! - a refused 3-D Secure step sends no `payment_intent.payment_failed`;
//! - it declines only some test cards at charge time: `4000000000000341`
//!   is the decline both providers know.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::payments::{DevPayments, StripeConfig, StripePayments, WebhookError};
use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::ids::OrderId;
use domain::money::{Currency, Money};
use domain::payment::{
    IntentStatus, NewIntent, PaymentError, PaymentEvent, PaymentEventKind, PaymentIntent,
    RefundStatus,
};
use domain::ports::{PaymentEvents, PaymentProvider};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;
use tokio::task::JoinHandle;

use crate::service::{self, Service};

/// Test cards both providers treat alike.
const SUCCEEDS: &str = "4242424242424242";
const DECLINES: &str = "4000000000000341";
const NEEDS_AUTHENTICATION: &str = "4000002500003155";
const DECLINED: &str = "Your card was declined.";

const SECRET_KEY: &str = "sk_test_marketplace";
const WEBHOOK_SECRET: &str = "whsec_marketplace_test";

fn usd(cents: i64) -> Money {
    Money {
        amount_minor: cents,
        currency: Currency::Usd,
    }
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn new_intent(cents: i64) -> NewIntent {
    NewIntent {
        order_id: OrderId::new(),
        amount: usd(cents),
        idempotency_key: key(),
        description: "Logo design, basic package".into(),
    }
}

/// Waits, a bounded time, for `check` to give a value.
async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp},v1={hex}")
}

// ---------------------------------------------------------------------------
// The event sink
// ---------------------------------------------------------------------------

/// Records every event delivered, duplicates included; refuses the next
/// `refuse` deliveries.
#[derive(Default)]
struct Recorder {
    delivered: Mutex<Vec<PaymentEvent>>,
    refuse: AtomicUsize,
}

#[async_trait]
impl PaymentEvents for Recorder {
    async fn received(&self, event: PaymentEvent) -> Result<(), PaymentError> {
        let refuse = self
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if refuse.is_ok() {
            return Err(PaymentError::Unavailable("refused by the test".into()));
        }
        self.delivered.lock().push(event);
        Ok(())
    }
}

impl Recorder {
    fn about(&self, intent: &str) -> Vec<PaymentEventKind> {
        self.delivered
            .lock()
            .iter()
            .filter(|e| match &e.kind {
                PaymentEventKind::Succeeded { intent_id, .. }
                | PaymentEventKind::Failed { intent_id, .. }
                | PaymentEventKind::Refunded { intent_id, .. } => intent_id == intent,
            })
            .map(|e| e.kind.clone())
            .collect()
    }
}

// ---------------------------------------------------------------------------
// localstripe, its webhook target and the proxy in front of it
// ---------------------------------------------------------------------------

/// A request the proxy passed on.
#[derive(Clone, Debug)]
struct Sent {
    method: Method,
    path: String,
    idempotency_key: Option<String>,
}

/// Forwards to localstripe, recording each request; the next `fail`
/// requests get a 500 instead.
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    sent: Mutex<Vec<Sent>>,
    fail: AtomicUsize,
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let idempotency_key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap().to_owned());
    proxy.sent.lock().push(Sent {
        method: method.clone(),
        path: uri.path().to_owned(),
        idempotency_key,
    });
    let fail = proxy
        .fail
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if fail.is_ok() {
        let body = r#"{"error":{"type":"api_error","message":"injected by the test"}}"#;
        return (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = proxy
        .client
        .request(method, format!("{}{path}", proxy.upstream))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response.headers().get("content-type").cloned();
    let body = response.bytes().await.unwrap();
    let mut out = (status, body).into_response();
    if let Some(content_type) = content_type {
        out.headers_mut().insert("content-type", content_type);
    }
    out
}

/// A webhook delivery as received.
#[derive(Clone, Debug)]
struct Delivery {
    body: Vec<u8>,
    signature: Option<String>,
}

struct WebhookTarget {
    payments: Arc<StripePayments>,
    events: Arc<Recorder>,
    deliveries: Mutex<Vec<Delivery>>,
}

/// What the gateway's route does: check, then hand over.
async fn webhook(
    State(target): State<Arc<WebhookTarget>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    target.deliveries.lock().push(Delivery {
        body: body.to_vec(),
        signature: signature.map(str::to_owned),
    });
    match target.payments.parse_webhook(&body, signature, Utc::now()) {
        Ok(Some(event)) => match target.events.received(event).await {
            Ok(()) => StatusCode::OK,
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        },
        Ok(None) => StatusCode::OK,
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

/// Serves `router` on a loopback port until aborted: (base URL, task).
async fn serve(router: axum::Router) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (url, task)
}

fn stripe_payments(api_base: &str, webhook_secret: &str) -> StripePayments {
    StripePayments::new(StripeConfig {
        secret_key: SECRET_KEY.to_owned().into(),
        api_base: Some(api_base.parse().unwrap()),
        webhook_secret: webhook_secret.to_owned().into(),
    })
    .unwrap()
}

/// localstripe with everything around it; the servers stop on drop.
struct StripeSide {
    localstripe: Service,
    proxy: Arc<Proxy>,
    target: Arc<WebhookTarget>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for StripeSide {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl StripeSide {
    fn localstripe_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.localstripe.port())
    }

    /// The requests sent for `method path`.
    fn sent(&self, method: Method, path: &str) -> Vec<Sent> {
        self.proxy
            .sent
            .lock()
            .iter()
            .filter(|s| s.method == method && s.path == path)
            .cloned()
            .collect()
    }
}

// ---------------------------------------------------------------------------
// The providers under test
// ---------------------------------------------------------------------------

struct Subject {
    provider: Arc<dyn PaymentProvider>,
    events: Arc<Recorder>,
    dev: Option<Arc<DevPayments>>,
    stripe: Option<StripeSide>,
}

async fn dev() -> Subject {
    let events = Arc::new(Recorder::default());
    let dev = Arc::new(DevPayments::new());
    dev.connect(events.clone()).unwrap();
    Subject {
        provider: dev.clone(),
        events,
        dev: Some(dev),
        stripe: None,
    }
}

async fn stripe() -> Subject {
    let localstripe = service::localstripe();
    let proxy = Arc::new(Proxy {
        upstream: format!("http://127.0.0.1:{}", localstripe.port()),
        client: reqwest::Client::new(),
        sent: Mutex::new(Vec::new()),
        fail: AtomicUsize::new(0),
    });
    let (proxy_url, proxy_task) = serve(
        axum::Router::new()
            .fallback(forward)
            .with_state(proxy.clone()),
    )
    .await;
    let payments = Arc::new(stripe_payments(&proxy_url, WEBHOOK_SECRET));
    let events = Arc::new(Recorder::default());
    let target = Arc::new(WebhookTarget {
        payments: payments.clone(),
        events: events.clone(),
        deliveries: Mutex::new(Vec::new()),
    });
    let (target_url, target_task) = serve(
        axum::Router::new()
            .route("/webhooks/stripe", axum::routing::post(webhook))
            .with_state(target.clone()),
    )
    .await;
    service::localstripe_webhook(
        &localstripe,
        "marketplace",
        &format!("{target_url}/webhooks/stripe"),
        WEBHOOK_SECRET,
    );
    Subject {
        provider: payments,
        events,
        dev: None,
        stripe: Some(StripeSide {
            localstripe,
            proxy,
            target,
            tasks: vec![proxy_task, target_task],
        }),
    }
}

impl Subject {
    fn provider(&self) -> &dyn PaymentProvider {
        self.provider.as_ref()
    }

    /// Waits until exactly... at least `n` events about `intent` arrived;
    /// the dev provider has delivered them already.
    async fn events_about(&self, intent: &str, n: usize) -> Vec<PaymentEventKind> {
        wait_for(&format!("{n} events about {intent}"), || {
            let events = self.events.about(intent);
            (events.len() >= n).then_some(events)
        })
        .await
    }

    /// Completes the extra step as the buyer would: the dev provider's
    /// call, or localstripe's stand-in for Stripe.js's 3-D Secure window.
    async fn authenticate(&self, intent: &PaymentIntent, approve: bool) -> PaymentIntent {
        if let Some(dev) = &self.dev {
            return dev.authenticate(&intent.id, approve).await.unwrap();
        }
        let side = self.stripe.as_ref().unwrap();
        let status = service::post_form(
            side.localstripe.port(),
            &format!("/v1/payment_intents/{}/_authenticate", intent.id),
            &[
                ("client_secret", intent.client_secret.as_deref().unwrap()),
                ("success", if approve { "true" } else { "false" }),
                ("key", "pk_test_marketplace"),
            ],
        );
        assert_eq!(status, 200, "{}", side.localstripe.log());
        self.provider().intent(&intent.id).await.unwrap()
    }

    async fn paid_intent(&self, cents: i64) -> PaymentIntent {
        let intent = self
            .provider()
            .create_intent(&new_intent(cents))
            .await
            .unwrap();
        let paid = self.provider().confirm(&intent.id, SUCCEEDS).await.unwrap();
        assert_eq!(paid.status, IntentStatus::Succeeded);
        paid
    }
}

fn invalid<T: std::fmt::Debug>(result: Result<T, PaymentError>) -> String {
    match result {
        Err(PaymentError::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The scenarios, the same for both providers
// ---------------------------------------------------------------------------

async fn creating_is_idempotent(s: &Subject) {
    let p = s.provider();
    let request = new_intent(2_500);
    let first = p.create_intent(&request).await.unwrap();
    assert!(first.id.starts_with("pi_"), "{}", first.id);
    assert_eq!(first.amount, usd(2_500));
    assert_eq!(first.status, IntentStatus::RequiresPaymentMethod);
    assert!(first.client_secret.is_some());
    assert_eq!(first.last_error, None);

    let again = p.create_intent(&request).await.unwrap();
    match &s.stripe {
        None => assert_eq!(again, first),
        Some(side) => {
            // localstripe ignores the key; Stripe answers the first intent
            // again for a key it saw. Check that the key was sent.
            // What localstripe holds: the order and the description.
            let stored: serde_json::Value = reqwest::Client::new()
                .get(format!(
                    "{}/v1/payment_intents/{}",
                    side.localstripe_url(),
                    first.id
                ))
                .bearer_auth(SECRET_KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(stored["currency"], "usd");
            assert_eq!(stored["metadata"]["order_id"], request.order_id.to_string());
            assert_eq!(stored["metadata"]["description"], request.description);
            let creates = side.sent(Method::POST, "/v1/payment_intents");
            assert_eq!(creates.len(), 2);
            for create in creates {
                assert_eq!(
                    create.idempotency_key.as_deref(),
                    Some(request.idempotency_key.as_str())
                );
            }
        }
    }

    let other = p.create_intent(&new_intent(2_500)).await.unwrap();
    assert_ne!(other.id, first.id);

    let read = p.intent(&first.id).await.unwrap();
    assert_eq!(read.id, first.id);
    assert_eq!(read.amount, usd(2_500));
    assert_eq!(read.status, IntentStatus::RequiresPaymentMethod);
}

async fn a_payment_succeeds_once(s: &Subject) {
    let p = s.provider();
    let intent = p.create_intent(&new_intent(4_200)).await.unwrap();
    let paid = p.confirm(&intent.id, SUCCEEDS).await.unwrap();
    assert_eq!(paid.id, intent.id);
    assert_eq!(paid.status, IntentStatus::Succeeded);
    assert_eq!(paid.amount, usd(4_200));
    assert_eq!(paid.last_error, None);

    let succeeded = PaymentEventKind::Succeeded {
        intent_id: intent.id.clone(),
        amount: usd(4_200),
    };
    assert_eq!(s.events_about(&intent.id, 1).await, vec![succeeded.clone()]);
    assert_eq!(
        p.intent(&intent.id).await.unwrap().status,
        IntentStatus::Succeeded
    );

    // Confirming again (a retry, or a second click) changes nothing and
    // charges nothing, whatever the card.
    let again = p.confirm(&intent.id, DECLINES).await.unwrap();
    assert_eq!(again.status, IntentStatus::Succeeded);
    if let Some(side) = &s.stripe {
        let confirms = side.sent(
            Method::POST,
            &format!("/v1/payment_intents/{}/confirm", intent.id),
        );
        assert_eq!(confirms.len(), 1);
    }
    assert_eq!(s.events.about(&intent.id), vec![succeeded]);
    for event in s.events.delivered.lock().iter() {
        assert_eq!(event.provider, p.name());
    }
}

async fn a_decline_is_reported(s: &Subject) {
    let p = s.provider();
    let intent = p.create_intent(&new_intent(1_500)).await.unwrap();
    match p.confirm(&intent.id, DECLINES).await {
        Err(PaymentError::Declined(message)) => assert_eq!(message, DECLINED),
        other => panic!("expected a decline, got {other:?}"),
    }
    assert_eq!(
        s.events_about(&intent.id, 1).await,
        vec![PaymentEventKind::Failed {
            intent_id: intent.id.clone(),
            reason: DECLINED.into(),
        }]
    );
    let read = p.intent(&intent.id).await.unwrap();
    assert_eq!(read.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(read.last_error.as_deref(), Some(DECLINED));
}

async fn an_approved_extra_step_pays(s: &Subject) {
    let p = s.provider();
    let intent = p.create_intent(&new_intent(3_000)).await.unwrap();
    let waiting = p.confirm(&intent.id, NEEDS_AUTHENTICATION).await.unwrap();
    assert_eq!(waiting.status, IntentStatus::RequiresAction);
    assert_eq!(
        p.intent(&intent.id).await.unwrap().status,
        IntentStatus::RequiresAction
    );
    assert!(s.events.about(&intent.id).is_empty());

    let done = s.authenticate(&waiting, true).await;
    assert_eq!(done.status, IntentStatus::Succeeded);
    assert_eq!(
        s.events_about(&intent.id, 1).await,
        vec![PaymentEventKind::Succeeded {
            intent_id: intent.id.clone(),
            amount: usd(3_000),
        }]
    );
}

async fn a_refused_extra_step_fails(s: &Subject) {
    let p = s.provider();
    let intent = p.create_intent(&new_intent(3_100)).await.unwrap();
    let waiting = p.confirm(&intent.id, NEEDS_AUTHENTICATION).await.unwrap();
    assert_eq!(waiting.status, IntentStatus::RequiresAction);

    let refused = s.authenticate(&waiting, false).await;
    assert_eq!(refused.status, IntentStatus::RequiresPaymentMethod);
    let reason = refused.last_error.expect("a reason for the buyer");
    if s.stripe.is_none() {
        // localstripe sends no event for a refused 3-D Secure step (Stripe
        // sends payment_intent.payment_failed).
        assert_eq!(
            s.events_about(&intent.id, 1).await,
            vec![PaymentEventKind::Failed {
                intent_id: intent.id.clone(),
                reason,
            }]
        );
    }
}

async fn refunds_partly_then_fully(s: &Subject) {
    let p = s.provider();
    let paid = s.paid_intent(10_000).await;
    let (first_key, second_key) = (key(), key());

    let first = p.refund(&paid.id, usd(3_000), &first_key).await.unwrap();
    assert!(first.id.starts_with("re_"), "{}", first.id);
    assert_eq!(first.intent_id, paid.id);
    assert_eq!(first.amount, usd(3_000));
    assert_eq!(first.status, RefundStatus::Succeeded);
    // The same key: the same refund, not a second one.
    assert_eq!(
        p.refund(&paid.id, usd(3_000), &first_key).await.unwrap(),
        first
    );

    // 7000 left: more is refused.
    let message = invalid(p.refund(&paid.id, usd(7_001), &key()).await);
    assert!(message.contains("70.00 USD"), "{message}");

    let rest = p.refund(&paid.id, usd(7_000), &second_key).await.unwrap();
    assert_eq!(rest.amount, usd(7_000));
    assert_ne!(rest.id, first.id);
    invalid(p.refund(&paid.id, usd(1), &key()).await);
    // Retries still answer the refunds made.
    assert_eq!(
        p.refund(&paid.id, usd(3_000), &first_key).await.unwrap(),
        first
    );
    assert_eq!(
        p.refund(&paid.id, usd(7_000), &second_key).await.unwrap(),
        rest
    );
    // A key names one refund.
    invalid(p.refund(&paid.id, usd(2_000), &first_key).await);

    match &s.stripe {
        None => {
            let refunds: Vec<_> = s.events.about(&paid.id).into_iter().skip(1).collect();
            assert_eq!(
                refunds,
                vec![
                    PaymentEventKind::Refunded {
                        intent_id: paid.id.clone(),
                        refund_id: first.id.clone(),
                        amount: usd(3_000),
                    },
                    PaymentEventKind::Refunded {
                        intent_id: paid.id.clone(),
                        refund_id: rest.id.clone(),
                        amount: usd(7_000),
                    },
                ]
            );
        }
        Some(side) => {
            // localstripe sends no refund events. Two refunds were made,
            // each with its key in the header.
            let keys: Vec<_> = side
                .sent(Method::POST, "/v1/refunds")
                .into_iter()
                .map(|sent| sent.idempotency_key)
                .collect();
            assert_eq!(keys, vec![Some(first_key), Some(second_key)]);
        }
    }
}

async fn refunds_need_a_payment(s: &Subject) {
    let p = s.provider();
    let intent = p.create_intent(&new_intent(5_000)).await.unwrap();
    invalid(p.refund(&intent.id, usd(1_000), &key()).await);
    let paid = s.paid_intent(5_000).await;
    invalid(p.refund(&paid.id, usd(0), &key()).await);
    invalid(p.refund(&paid.id, usd(-100), &key()).await);
    invalid(p.refund(&paid.id, usd(100), "").await);
}

async fn unknown_intents_are_refused(s: &Subject) {
    let p = s.provider();
    for id in [
        "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "pi_dev_nothing",
        "pi_1/../../v1/customers",
        "pi_1?expand=x",
        "ch_3MtwBwLkdIwHu7ix28a3tqPa",
        "",
    ] {
        invalid(p.intent(id).await);
        invalid(p.confirm(id, SUCCEEDS).await);
        invalid(p.refund(id, usd(100), &key()).await);
    }
}

async fn unknown_payment_methods_are_refused(s: &Subject) {
    let p = s.provider();
    let intent = p.create_intent(&new_intent(900)).await.unwrap();
    for method in ["pm_does_not_exist", "not a card", ""] {
        invalid(p.confirm(&intent.id, method).await);
    }
    assert!(s.events.about(&intent.id).is_empty());
}

macro_rules! scenarios {
    ($provider:ident: $($scenario:ident),* $(,)?) => {
        mod $provider {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let subject = super::$provider().await;
                    super::$scenario(&subject).await;
                }
            )*
        }
    };
}

scenarios!(dev:
    creating_is_idempotent,
    a_payment_succeeds_once,
    a_decline_is_reported,
    an_approved_extra_step_pays,
    a_refused_extra_step_fails,
    refunds_partly_then_fully,
    refunds_need_a_payment,
    unknown_intents_are_refused,
    unknown_payment_methods_are_refused,
);

scenarios!(stripe:
    creating_is_idempotent,
    a_payment_succeeds_once,
    a_decline_is_reported,
    an_approved_extra_step_pays,
    a_refused_extra_step_fails,
    refunds_partly_then_fully,
    refunds_need_a_payment,
    unknown_intents_are_refused,
    unknown_payment_methods_are_refused,
);

// ---------------------------------------------------------------------------
// The development provider only
// ---------------------------------------------------------------------------

#[tokio::test]
async fn dev_test_cards() {
    let s = dev().await;
    let p = s.provider();
    for card in ["4242 4242 4242 4242", "pm_card_visa"] {
        let intent = p.create_intent(&new_intent(700)).await.unwrap();
        assert_eq!(
            p.confirm(&intent.id, card).await.unwrap().status,
            IntentStatus::Succeeded
        );
    }
    for (card, message) in [
        ("4000000000000002", DECLINED),
        ("pm_card_chargeDeclined", DECLINED),
        ("4000000000009995", "Your card has insufficient funds."),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "Your card has insufficient funds.",
        ),
        ("pm_card_chargeCustomerFail", DECLINED),
    ] {
        let intent = p.create_intent(&new_intent(700)).await.unwrap();
        match p.confirm(&intent.id, card).await {
            Err(PaymentError::Declined(got)) => assert_eq!(got, message, "{card}"),
            other => panic!("{card}: {other:?}"),
        }
        // Another card may follow a decline.
        assert_eq!(
            p.confirm(&intent.id, SUCCEEDS).await.unwrap().status,
            IntentStatus::Succeeded
        );
    }
    let intent = p.create_intent(&new_intent(700)).await.unwrap();
    let waiting = p
        .confirm(&intent.id, "pm_card_authenticationRequired")
        .await
        .unwrap();
    assert_eq!(waiting.status, IntentStatus::RequiresAction);
    let message = invalid(p.confirm(&intent.id, "4111111111111111").await);
    assert!(message.contains("unknown test card"), "{message}");
}

#[tokio::test]
async fn dev_intents_survive_a_restart() {
    let before = dev().await;
    let intent = before
        .provider()
        .create_intent(&new_intent(1_234))
        .await
        .unwrap();

    // Another process (or this one restarted) has never seen the intent.
    let after = dev().await;
    let read = after.provider().intent(&intent.id).await.unwrap();
    assert_eq!(read.amount, usd(1_234));
    assert_eq!(read.status, IntentStatus::RequiresPaymentMethod);
    let paid = after
        .provider()
        .confirm(&intent.id, SUCCEEDS)
        .await
        .unwrap();
    assert_eq!(paid.amount, usd(1_234));
    let refund = after
        .provider()
        .refund(&intent.id, usd(234), &key())
        .await
        .unwrap();
    assert_eq!(refund.amount, usd(234));
    assert_eq!(after.events.about(&intent.id).len(), 2);
    assert!(before.events.about(&intent.id).is_empty());
}

#[tokio::test]
async fn dev_needs_its_event_handler() {
    let dev = DevPayments::new();
    let intent = dev.create_intent(&new_intent(800)).await.unwrap();
    for result in [
        dev.confirm(&intent.id, SUCCEEDS).await.map(|_| ()),
        dev.authenticate(&intent.id, true).await.map(|_| ()),
        dev.refund(&intent.id, usd(100), &key()).await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(PaymentError::Unavailable(_))),
            "{result:?}"
        );
    }
    let events = Arc::new(Recorder::default());
    dev.connect(events.clone()).unwrap();
    invalid(dev.connect(Arc::new(Recorder::default())));
    dev.confirm(&intent.id, SUCCEEDS).await.unwrap();
    assert_eq!(events.about(&intent.id).len(), 1);
}

#[tokio::test]
async fn dev_delivers_a_refused_event_again() {
    let s = dev().await;
    let p = s.provider();
    let intent = p.create_intent(&new_intent(2_000)).await.unwrap();
    s.events.refuse.store(1, Ordering::SeqCst);
    let result = p.confirm(&intent.id, SUCCEEDS).await;
    assert!(
        matches!(result, Err(PaymentError::Unavailable(_))),
        "{result:?}"
    );
    assert!(s.events.about(&intent.id).is_empty());
    assert_eq!(
        p.intent(&intent.id).await.unwrap().status,
        IntentStatus::Succeeded
    );

    // The retry delivers the same event; the one after, nothing more.
    p.confirm(&intent.id, SUCCEEDS).await.unwrap();
    p.confirm(&intent.id, SUCCEEDS).await.unwrap();
    let delivered = s.events.delivered.lock().clone();
    assert_eq!(delivered.len(), 1);
    assert!(
        delivered[0].id.starts_with("evt_dev_"),
        "{}",
        delivered[0].id
    );

    // Same for a refund: the retry with its key delivers its event.
    let refund_key = key();
    s.events.refuse.store(1, Ordering::SeqCst);
    let result = p.refund(&intent.id, usd(500), &refund_key).await;
    assert!(
        matches!(result, Err(PaymentError::Unavailable(_))),
        "{result:?}"
    );
    let refund = p.refund(&intent.id, usd(500), &refund_key).await.unwrap();
    let kinds = s.events.about(&intent.id);
    assert_eq!(kinds.len(), 2);
    assert_eq!(
        kinds[1],
        PaymentEventKind::Refunded {
            intent_id: intent.id.clone(),
            refund_id: refund.id,
            amount: usd(500),
        }
    );
}

#[tokio::test]
async fn dev_keys_name_one_request() {
    let s = dev().await;
    let p = s.provider();
    let request = new_intent(1_000);
    p.create_intent(&request).await.unwrap();
    let changed = NewIntent {
        amount: usd(1_001),
        ..request.clone()
    };
    invalid(p.create_intent(&changed).await);
    invalid(p.create_intent(&new_intent(0)).await);
    invalid(
        p.create_intent(&NewIntent {
            idempotency_key: String::new(),
            ..new_intent(100)
        })
        .await,
    );
}

// ---------------------------------------------------------------------------
// Stripe only: failures and webhooks
// ---------------------------------------------------------------------------

#[tokio::test]
async fn stripe_failures_are_unavailable() {
    let s = stripe().await;
    let side = s.stripe.as_ref().unwrap();
    side.proxy.fail.store(1, Ordering::SeqCst);
    let result = s.provider().create_intent(&new_intent(1_000)).await;
    assert!(
        matches!(result, Err(PaymentError::Unavailable(_))),
        "{result:?}"
    );
    // Recovered: the retry goes through.
    s.provider()
        .create_intent(&new_intent(1_000))
        .await
        .unwrap();

    // Nobody listening.
    let port = service::free_port();
    let nowhere = stripe_payments(&format!("http://127.0.0.1:{port}/"), WEBHOOK_SECRET);
    let result = nowhere.intent("pi_3MtwBwLkdIwHu7ix28a3tqPa").await;
    assert!(
        matches!(result, Err(PaymentError::Unavailable(_))),
        "{result:?}"
    );

    // A wrong key is the request's fault.
    let unauthorised = StripePayments::new(StripeConfig {
        secret_key: "not_a_key".to_owned().into(),
        api_base: Some(side.localstripe_url().parse().unwrap()),
        webhook_secret: WEBHOOK_SECRET.to_owned().into(),
    })
    .unwrap();
    invalid(unauthorised.create_intent(&new_intent(1_000)).await);
}

#[tokio::test]
async fn stripe_payment_method_tokens() {
    let s = stripe().await;
    let p = s.provider();
    let intent = p.create_intent(&new_intent(650)).await.unwrap();
    assert_eq!(
        p.confirm(&intent.id, "pm_card_visa").await.unwrap().status,
        IntentStatus::Succeeded
    );
    let intent = p.create_intent(&new_intent(650)).await.unwrap();
    match p.confirm(&intent.id, "pm_card_chargeCustomerFail").await {
        Err(PaymentError::Declined(message)) => assert_eq!(message, DECLINED),
        other => panic!("{other:?}"),
    }
}

/// Checks a delivery the way the gateway does, at `now`.
fn check(
    payments: &StripePayments,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> Result<Option<PaymentEvent>, WebhookError> {
    payments.parse_webhook(&delivery.body, delivery.signature.as_deref(), now)
}

#[tokio::test]
async fn stripe_webhooks_are_verified() {
    let s = stripe().await;
    let side = s.stripe.as_ref().unwrap();
    let paid = s.paid_intent(2_200).await;
    s.events_about(&paid.id, 1).await;
    let genuine = wait_for("a webhook delivery", || {
        side.target.deliveries.lock().first().cloned()
    })
    .await;
    let payments = &side.target.payments;

    // What localstripe signed verifies, and reads as the event.
    let event = check(payments, &genuine, Utc::now()).unwrap().unwrap();
    assert!(event.id.starts_with("evt_"), "{}", event.id);
    assert_eq!(event.provider, "stripe");
    assert_eq!(
        event.kind,
        PaymentEventKind::Succeeded {
            intent_id: paid.id.clone(),
            amount: usd(2_200),
        }
    );

    // Another endpoint's secret.
    let other = stripe_payments(&side.localstripe_url(), "whsec_someone_else");
    assert!(matches!(
        check(&other, &genuine, Utc::now()),
        Err(WebhookError::Signature(_))
    ));

    // A changed body, a changed signature, no signature.
    let mut forged = genuine.clone();
    let at = forged.body.iter().position(|b| *b == b'2').unwrap();
    forged.body[at] = b'9';
    assert!(matches!(
        check(payments, &forged, Utc::now()),
        Err(WebhookError::Signature(_))
    ));
    let mut forged = genuine.clone();
    let signature = forged.signature.take().unwrap();
    let flipped = if signature.ends_with('0') { '1' } else { '0' };
    forged.signature = Some(format!("{}{flipped}", &signature[..signature.len() - 1]));
    assert!(matches!(
        check(payments, &forged, Utc::now()),
        Err(WebhookError::Signature(_))
    ));
    let unsigned = Delivery {
        signature: None,
        ..genuine.clone()
    };
    assert!(matches!(
        check(payments, &unsigned, Utc::now()),
        Err(WebhookError::Signature(_))
    ));
    for header in ["", "t=,v1=", "v1=abc", "nonsense"] {
        let bad = Delivery {
            signature: Some(header.into()),
            ..genuine.clone()
        };
        assert!(
            matches!(
                check(payments, &bad, Utc::now()),
                Err(WebhookError::Signature(_))
            ),
            "{header:?}"
        );
    }

    // Replayed six minutes later, or signed six minutes ago.
    let later = Utc::now() + chrono::Duration::minutes(6);
    assert!(matches!(
        check(payments, &genuine, later),
        Err(WebhookError::Stale { .. })
    ));
    let now = Utc::now();
    let old = now - chrono::Duration::minutes(6);
    let stale = Delivery {
        signature: Some(sign(WEBHOOK_SECRET, old.timestamp(), &genuine.body)),
        ..genuine.clone()
    };
    match check(payments, &stale, now) {
        Err(WebhookError::Stale { skew_seconds }) => assert_eq!(skew_seconds, 360),
        other => panic!("{other:?}"),
    }

    // Correctly signed garbage.
    for body in [&b"not json"[..], br#"{"id":"evt_1"}"#, br#"[1,2]"#] {
        let garbage = Delivery {
            signature: Some(sign(WEBHOOK_SECRET, now.timestamp(), body)),
            body: body.to_vec(),
        };
        assert!(matches!(
            check(payments, &garbage, now),
            Err(WebhookError::Malformed(_))
        ));
    }
}

/// A Stripe event as Stripe sends it (trimmed), signed now.
fn signed_event(
    kind: &str,
    object: serde_json::Value,
    previous: Option<serde_json::Value>,
) -> Delivery {
    let mut data = serde_json::json!({ "object": object });
    if let Some(previous) = previous {
        data["previous_attributes"] = previous;
    }
    let body = serde_json::to_vec(&serde_json::json!({
        "id": "evt_1PXRVgLkdIwHu7ixPzDxtnEe",
        "object": "event",
        "api_version": "2024-06-20",
        "created": Utc::now().timestamp(),
        "livemode": false,
        "pending_webhooks": 1,
        "type": kind,
        "data": data,
    }))
    .unwrap();
    Delivery {
        signature: Some(sign(WEBHOOK_SECRET, Utc::now().timestamp(), &body)),
        body,
    }
}

#[test]
fn stripe_event_types() {
    let payments = stripe_payments("http://127.0.0.1:9/", WEBHOOK_SECRET);
    let read = |delivery: Delivery| {
        check(&payments, &delivery, Utc::now())
            .unwrap()
            .map(|e| e.kind)
    };
    let intent = serde_json::json!({
        "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "object": "payment_intent",
        "amount": 2000,
        "amount_received": 2000,
        "currency": "usd",
        "status": "succeeded",
        "last_payment_error": null,
    });
    assert_eq!(
        read(signed_event(
            "payment_intent.succeeded",
            intent.clone(),
            None
        )),
        Some(PaymentEventKind::Succeeded {
            intent_id: "pi_3MtwBwLkdIwHu7ix28a3tqPa".into(),
            amount: usd(2_000),
        })
    );
    let mut failed = intent.clone();
    failed["status"] = "requires_payment_method".into();
    failed["amount_received"] = 0.into();
    failed["last_payment_error"] = serde_json::json!({
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
        "type": "card_error",
    });
    assert_eq!(
        read(signed_event("payment_intent.payment_failed", failed, None)),
        Some(PaymentEventKind::Failed {
            intent_id: "pi_3MtwBwLkdIwHu7ix28a3tqPa".into(),
            reason: "Your card has insufficient funds.".into(),
        })
    );
    let refund = serde_json::json!({
        "id": "re_3MtwBwLkdIwHu7ix2wKk2Pb0",
        "object": "refund",
        "amount": 500,
        "charge": "ch_3MtwBwLkdIwHu7ix2CHuWlCc",
        "currency": "usd",
        "metadata": { "idempotency_key": "k" },
        "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "status": "succeeded",
    });
    let refunded = Some(PaymentEventKind::Refunded {
        intent_id: "pi_3MtwBwLkdIwHu7ix28a3tqPa".into(),
        refund_id: "re_3MtwBwLkdIwHu7ix2wKk2Pb0".into(),
        amount: usd(500),
    });
    assert_eq!(
        read(signed_event("refund.created", refund.clone(), None)),
        refunded
    );
    assert_eq!(
        read(signed_event(
            "refund.updated",
            refund.clone(),
            Some(serde_json::json!({ "status": "pending" }))
        )),
        refunded
    );
    // Updated without becoming succeeded: nothing to apply.
    assert_eq!(
        read(signed_event(
            "refund.updated",
            refund.clone(),
            Some(serde_json::json!({ "metadata": {} }))
        )),
        None
    );
    let mut pending = refund.clone();
    pending["status"] = "pending".into();
    assert_eq!(read(signed_event("refund.created", pending, None)), None);
    // Not followed.
    for kind in [
        "charge.refunded",
        "charge.refund.updated",
        "customer.created",
    ] {
        assert_eq!(
            read(signed_event(kind, refund.clone(), None)),
            None,
            "{kind}"
        );
    }
    // Followed, but not a payment intent.
    let delivery = signed_event(
        "payment_intent.succeeded",
        serde_json::json!({"id": 1}),
        None,
    );
    assert!(matches!(
        check(&payments, &delivery, Utc::now()),
        Err(WebhookError::Malformed(_))
    ));
    let mut euro = intent;
    euro["currency"] = "eur".into();
    let delivery = signed_event("payment_intent.succeeded", euro, None);
    assert!(matches!(
        check(&payments, &delivery, Utc::now()),
        Err(WebhookError::Malformed(_))
    ));
}

#[test]
fn stripe_settings() {
    let config = |secret_key: &str, api_base: Option<&str>, webhook_secret: &str| StripeConfig {
        secret_key: secret_key.to_owned().into(),
        api_base: api_base.map(|base| base.parse().unwrap()),
        webhook_secret: webhook_secret.to_owned().into(),
    };
    // Stripe itself: the HTTPS client (rustls on ring) builds.
    let stripe = StripePayments::new(config(SECRET_KEY, None, WEBHOOK_SECRET)).unwrap();
    assert_eq!(stripe.name(), "stripe");
    let debug = format!("{stripe:?} {:?}", config(SECRET_KEY, None, WEBHOOK_SECRET));
    assert!(
        !debug.contains(SECRET_KEY) && !debug.contains(WEBHOOK_SECRET),
        "{debug}"
    );
    StripePayments::new(config(
        SECRET_KEY,
        Some("http://127.0.0.1:8420/stripe"),
        WEBHOOK_SECRET,
    ))
    .unwrap();
    for bad in [
        config("", None, WEBHOOK_SECRET),
        config("sk_test_ x", None, WEBHOOK_SECRET),
        config(SECRET_KEY, None, ""),
        config(SECRET_KEY, Some("ftp://127.0.0.1/"), WEBHOOK_SECRET),
        config(SECRET_KEY, Some("http://127.0.0.1/?x=1"), WEBHOOK_SECRET),
    ] {
        invalid(StripePayments::new(bad));
    }
}
