//! Starting the order shards, and the orders handle the gateway calls for
//! offers, checkout, order actions, payments and earnings, over the socket
//! or REST alike.
//!
//! Three background tasks run beside the shards:
//! - the **clock**: reads the earliest stored deadline (an unpaid order's
//!   expiry, a due date, a quiet delivery, a clearance, an offer's expiry),
//!   sleeps until then (or until a change sets an earlier one) and sends
//!   `Tick` to the orders that are due. Deadlines live in the database, so a
//!   restart loses none; a tick decided twice does nothing the second time,
//!   so none is applied twice.
//! - the **refunder**: sends the refunds that order changes stored to the
//!   payment provider, with the refund's id as idempotency key, until the
//!   provider accepts each.
//! - mail: each notification also goes out by e-mail.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cluster::{LocalPlacement, Placement};
use domain::gig::PackageTier;
use domain::ids::{ConversationId, OfferId, OrderId, UserId, WithdrawalId};
use domain::ledger::{check_withdrawal, Balance, Transaction, Withdrawal};
use domain::live::LiveEvent;
use domain::money::Money;
use domain::offer::{self, Offer, OfferCommand, OfferError, OfferInput};
use domain::order::{place, Order, OrderChange, OrderCommand, OrderPolicy, OrderTerms, Side};
use domain::payment::{
    IntentStatus, NewIntent, PaymentError, PaymentEvent, PaymentEventKind, PaymentIntent,
    RefundStatus,
};
use domain::ports::{
    AccountStore, ChatStore, CheckoutKey, Clock, EventsFor, GigStore, OrderPage, OrderStore,
    PaymentEvents, PaymentProvider, StoreError,
};
use ractor::rpc::CallResult;
use ractor::{Actor, RpcReplyPort};
use tokio::sync::Notify;

use crate::entity::ShardArgs;
use crate::gigs::StartError;
use crate::live::LiveEvents;
use crate::mail::MailQueue;
use crate::moderation::AdminFeed;
use crate::notices::{mail_notice, notices, offer_notices, Notice};
use crate::order::{
    Acted, Caller, CheckoutError, OrderArgs, OrderFailure, OrderMsg, OrderShard, OrderShardMsg,
};

pub struct OrdersConfig {
    pub shards: u32,
    /// An order actor quiet for this long is stopped.
    pub idle: Duration,
    /// How long a caller waits for an order actor to answer.
    pub call_timeout: Duration,
    pub policy: OrderPolicy,
    /// The clock looks at the stored deadlines at least this often.
    pub poll: Duration,
    /// Base address of the marketplace, for links in e-mails.
    pub public_url: String,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            shards: 64,
            idle: Duration::from_secs(300),
            call_timeout: Duration::from_secs(10),
            policy: OrderPolicy::default(),
            poll: Duration::from_secs(30),
            public_url: "http://127.0.0.1:8080".into(),
        }
    }
}

/// What the orders service needs from the outside world.
pub struct OrdersDeps {
    pub store: Arc<dyn OrderStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub gigs: Arc<dyn GigStore>,
    pub chat: Arc<dyn ChatStore>,
    pub payments: Arc<dyn PaymentProvider>,
    pub live: LiveEvents,
    pub clock: Arc<dyn Clock>,
    /// Order and offer notices go out through the mail outbox.
    pub mail: MailQueue,
    /// The admins' queue: disputes, failed payments, refunds.
    pub feed: AdminFeed,
}

/// What a buyer checks out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckoutItem {
    Package {
        gig_id: domain::ids::GigId,
        tier: PackageTier,
    },
    Offer(OfferId),
}

impl CheckoutItem {
    /// The request as a stable string: a retried checkout with the same key
    /// must ask for exactly this again.
    fn fingerprint(&self, payment_method: Option<&str>) -> String {
        let item = match self {
            CheckoutItem::Package { gig_id, tier } => format!("gig:{gig_id}:{}", tier.as_str()),
            CheckoutItem::Offer(id) => format!("offer:{id}"),
        };
        format!("{item};pm:{}", payment_method.unwrap_or(""))
    }
}

/// The result of a checkout: the order, where its payment stands, and
/// whether an earlier request with the same key placed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkout {
    pub order: Order,
    pub payment: Option<PaymentIntent>,
    pub replayed: bool,
}

struct Inner {
    placement: LocalPlacement<OrderShardMsg>,
    deps: OrdersDeps,
    policy: OrderPolicy,
    call_timeout: Duration,
    poll: Duration,
    public_url: String,
    deadlines: Arc<Notify>,
    refunds: Arc<Notify>,
}

/// Offers, checkout, orders, payments and earnings.
#[derive(Clone)]
pub struct OrderService {
    inner: Arc<Inner>,
}

/// The longest idempotency key accepted (Stripe's own limit).
const MAX_KEY_LEN: usize = 255;

impl OrderService {
    /// Starts the shards and the background tasks (the clock, the
    /// refunder).
    pub async fn start(config: OrdersConfig, deps: OrdersDeps) -> Result<Self, StartError> {
        let deadlines = Arc::new(Notify::new());
        let refunds = Arc::new(Notify::new());
        let template = OrderArgs {
            id: OrderId::new(),
            store: deps.store.clone(),
            live: deps.live.clone(),
            policy: config.policy,
            deadlines: deadlines.clone(),
            refunds: refunds.clone(),
            feed: deps.feed.clone(),
        };
        let mut shards = Vec::new();
        for _ in 0..config.shards.max(1) {
            let (shard, _) = Actor::spawn(
                None,
                OrderShard::default(),
                ShardArgs {
                    template: template.clone(),
                    idle: config.idle,
                },
            )
            .await
            .map_err(|e| StartError::Spawn(e.to_string()))?;
            shards.push(shard);
        }
        let service = Self {
            inner: Arc::new(Inner {
                placement: LocalPlacement::new(shards),
                deps,
                policy: config.policy,
                call_timeout: config.call_timeout,
                poll: config.poll,
                public_url: config.public_url.trim_end_matches('/').to_owned(),
                deadlines,
                refunds,
            }),
        };
        tokio::spawn(run_clock(Arc::downgrade(&service.inner)));
        tokio::spawn(run_refunder(Arc::downgrade(&service.inner)));
        Ok(service)
    }

    pub fn policy(&self) -> &OrderPolicy {
        &self.inner.policy
    }

    pub fn store(&self) -> &Arc<dyn OrderStore> {
        &self.inner.deps.store
    }

    pub fn payments(&self) -> &Arc<dyn PaymentProvider> {
        &self.inner.deps.payments
    }

    /// Makes the clock look at the deadlines now (after a test moved time).
    pub fn wake_clock(&self) {
        self.inner.deadlines.notify_one();
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.deps.clock.now()
    }

    // ------------------------------------------------------------ offers

    /// The seller of a conversation sends its other participant an offer.
    pub async fn send_offer(
        &self,
        seller: UserId,
        conversation_id: ConversationId,
        input: OfferInput,
    ) -> Result<Offer, OrderFailure> {
        let deps = &self.inner.deps;
        let conversation = deps
            .chat
            .conversation(conversation_id)
            .await?
            .filter(|c| c.is_participant(seller))
            .ok_or(OfferError::NotFound)?;
        let terms = input.validate()?;
        if deps.accounts.seller_profile(seller).await?.is_none() {
            return Err(OfferError::NotAllowed("seller (with a seller profile)").into());
        }
        if let Some(gig_id) = terms.gig_id {
            let gig = deps.gigs.gig(gig_id).await?;
            if !gig.is_some_and(|g| g.seller_id == seller && g.deleted_at.is_none()) {
                return Err(OrderFailure::Invalid(
                    domain::validation::FieldError::new(
                        "gig_id",
                        "invalid",
                        "must be one of your gigs",
                    )
                    .into(),
                ));
            }
        }
        let buyer = conversation.other(seller);
        let offer = Offer::new(conversation_id, seller, buyer, terms, self.now());
        let stored = deps
            .store
            .create_offer(&offer, &offer_events(&offer))
            .await?;
        deps.live.deliver(&stored);
        self.inner.deadlines.notify_one();
        self.mail(
            offer_notices(&offer),
            format!("offer:{}:{}", offer.id, offer.version),
        )
        .await;
        Ok(offer)
    }

    /// An offer `user` takes part in.
    pub async fn offer(&self, user: UserId, id: OfferId) -> Result<Offer, OrderFailure> {
        self.inner
            .deps
            .store
            .offer(id)
            .await?
            .filter(|offer| offer.is_party(user))
            .ok_or_else(|| OfferError::NotFound.into())
    }

    /// The offers of a conversation `user` takes part in, newest first.
    pub async fn offers_in(
        &self,
        user: UserId,
        conversation_id: ConversationId,
    ) -> Result<Vec<Offer>, OrderFailure> {
        let deps = &self.inner.deps;
        deps.chat
            .conversation(conversation_id)
            .await?
            .filter(|c| c.is_participant(user))
            .ok_or(OfferError::NotFound)?;
        Ok(deps.store.offers_in(conversation_id).await?)
    }

    /// Accepts, declines or withdraws an offer (`by: None` is the clock).
    pub async fn answer_offer(
        &self,
        by: Option<UserId>,
        id: OfferId,
        command: OfferCommand,
    ) -> Result<Offer, OrderFailure> {
        let store = &self.inner.deps.store;
        let mut retried = false;
        loop {
            let current = store.offer(id).await?.ok_or(OfferError::NotFound)?;
            let Some(next) = offer::decide(&current, by, command, self.now())? else {
                return Ok(current);
            };
            let next = Offer {
                version: current.version + 1,
                ..next
            };
            match store
                .save_offer(&next, current.version, &offer_events(&next))
                .await
            {
                Ok(stored) => {
                    self.inner.deps.live.deliver(&stored);
                    self.mail(
                        offer_notices(&next),
                        format!("offer:{}:{}", next.id, next.version),
                    )
                    .await;
                    return Ok(next);
                }
                Err(StoreError::VersionConflict) if !retried => retried = true,
                Err(error) => return Err(error.into()),
            }
        }
    }

    // ---------------------------------------------------------- checkout

    /// Places an order for a gig package or an accepted offer, with amounts
    /// computed here, and creates its payment; with a payment method, also
    /// pays. The same key with the same request finds the same order (and
    /// the same payment); with a different request, `KeyReused`.
    pub async fn checkout(
        &self,
        buyer: UserId,
        item: CheckoutItem,
        key: &str,
        payment_method: Option<&str>,
    ) -> Result<Checkout, OrderFailure> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CheckoutError::BadKey.into());
        }
        let fingerprint = item.fingerprint(payment_method);
        let store = &self.inner.deps.store;
        if let Some(found) = self.replay(buyer, key, &fingerprint).await? {
            return self.finish_checkout(found, payment_method, true).await;
        }
        let now = self.now();
        let (seller, conversation, terms, price) = self.terms(buyer, item).await?;
        let mut order = place(buyer, seller, conversation, terms, price, now);
        // The provider's idempotency key is the new order's: the request
        // (and so the intent's metadata) differs for each attempt, and a
        // provider refuses a key reused with other parameters. A request
        // racing this one with the same buyer's key creates an intent of its
        // own but loses `place_order` below and pays this order's intent
        // instead, so its intent is never confirmed: never a second charge.
        // (The key is also short: Stripe's limit is 255 characters, the
        // buyer's key alone may have that many.)
        let intent = self
            .inner
            .deps
            .payments
            .create_intent(&NewIntent {
                order_id: order.id,
                amount: order.amounts.total,
                idempotency_key: format!("order:{}", order.id),
                description: order.terms.title.clone(),
            })
            .await?;
        order.payment = Some(domain::order::PaymentRef {
            provider: self.inner.deps.payments.name().to_owned(),
            intent_id: intent.id.clone(),
        });
        let key = CheckoutKey {
            buyer_id: buyer,
            key: key.to_owned(),
            fingerprint: fingerprint.clone(),
        };
        let mut events = crate::order::order_events(&order, OrderChange::Placed);
        if let CheckoutItem::Offer(offer_id) = item {
            // Both sides see the offer taken up in the conversation.
            if let Some(offer) = store.offer(offer_id).await? {
                events.push(EventsFor {
                    users: offer.parties().to_vec(),
                    event: LiveEvent::OfferUpdated(Box::new(Offer {
                        order_id: Some(order.id),
                        version: offer.version + 1,
                        updated_at: now,
                        ..offer
                    })),
                });
            }
        }
        let deadline = order.next_deadline(&self.inner.policy);
        match store.place_order(&order, &key, deadline, &events).await {
            Ok(stored) => {
                self.inner.deps.live.deliver(&stored);
                self.inner.deadlines.notify_one();
                self.finish_checkout(order, payment_method, false).await
            }
            Err(StoreError::Conflict("checkout")) => {
                // A request with the same key won the race.
                let found = self
                    .replay(buyer, &key.key, &fingerprint)
                    .await?
                    .ok_or(OrderFailure::Unavailable)?;
                self.finish_checkout(found, payment_method, true).await
            }
            Err(StoreError::Conflict("offer")) => Err(CheckoutError::OfferAlreadyOrdered.into()),
            Err(error) => Err(error.into()),
        }
    }

    /// The order an earlier checkout with this key placed.
    async fn replay(
        &self,
        buyer: UserId,
        key: &str,
        fingerprint: &str,
    ) -> Result<Option<Order>, OrderFailure> {
        let store = &self.inner.deps.store;
        let Some((stored, order_id)) = store.checkout(buyer, key).await? else {
            return Ok(None);
        };
        if stored != fingerprint {
            return Err(CheckoutError::KeyReused.into());
        }
        Ok(Some(
            store.order(order_id).await?.ok_or(OrderFailure::NotFound)?,
        ))
    }

    /// What is bought, from whom, at what price.
    async fn terms(
        &self,
        buyer: UserId,
        item: CheckoutItem,
    ) -> Result<(UserId, Option<ConversationId>, OrderTerms, Money), OrderFailure> {
        let deps = &self.inner.deps;
        match item {
            CheckoutItem::Package { gig_id, tier } => {
                let gig = deps
                    .gigs
                    .gig(gig_id)
                    .await?
                    .filter(|gig| gig.is_public())
                    .ok_or(CheckoutError::GigUnavailable)?;
                if gig.seller_id == buyer {
                    return Err(CheckoutError::OwnGig.into());
                }
                // A suspended (or deleted) seller's gigs are not for sale.
                let seller = deps.accounts.user_by_id(gig.seller_id).await?;
                if !seller.is_some_and(|s| s.can_sign_in()) {
                    return Err(CheckoutError::GigUnavailable.into());
                }
                let package = gig
                    .content
                    .packages
                    .iter()
                    .find(|p| p.tier == tier)
                    .ok_or(CheckoutError::NoSuchPackage(tier.as_str()))?;
                Ok((
                    gig.seller_id,
                    None,
                    OrderTerms {
                        title: gig.content.title.clone(),
                        description: format!("{}: {}", package.name, package.description),
                        gig_id: Some(gig.id),
                        package: Some(tier),
                        offer_id: None,
                        delivery_days: package.delivery_days,
                        revisions: package.revisions,
                    },
                    package.price,
                ))
            }
            CheckoutItem::Offer(id) => {
                let offer = deps
                    .store
                    .offer(id)
                    .await?
                    .filter(|offer| offer.is_party(buyer))
                    .ok_or(OfferError::NotFound)?;
                if offer.buyer_id != buyer || offer.status != domain::offer::OfferStatus::Accepted {
                    return Err(CheckoutError::OfferNotAccepted.into());
                }
                if offer.order_id.is_some() {
                    return Err(CheckoutError::OfferAlreadyOrdered.into());
                }
                Ok((
                    offer.seller_id,
                    Some(offer.conversation_id),
                    OrderTerms {
                        title: offer.title.clone(),
                        description: offer.description.clone(),
                        gig_id: offer.gig_id,
                        package: None,
                        offer_id: Some(offer.id),
                        delivery_days: offer.delivery_days,
                        revisions: offer.revisions,
                    },
                    offer.price,
                ))
            }
        }
    }

    /// Pays a placed order if asked to, and reports where its payment
    /// stands.
    async fn finish_checkout(
        &self,
        order: Order,
        payment_method: Option<&str>,
        replayed: bool,
    ) -> Result<Checkout, OrderFailure> {
        let awaiting = order.status == domain::order::OrderStatus::AwaitingPayment;
        let (order, payment) = match payment_method {
            Some(method) if awaiting && !replayed => self.pay_order(order, method).await?,
            Some(method) if awaiting => {
                // A retry: pay only if the first attempt did not get as far
                // as the provider taking the money (its event may still be
                // on its way).
                let intent = self.intent_of(&order).await;
                let taken = intent.as_ref().is_some_and(|intent| {
                    matches!(
                        intent.status,
                        IntentStatus::Succeeded | IntentStatus::Processing
                    )
                });
                if taken {
                    (order, intent)
                } else {
                    self.pay_order(order, method).await?
                }
            }
            _ => {
                let payment = self.intent_of(&order).await;
                (order, payment)
            }
        };
        Ok(Checkout {
            order,
            payment,
            replayed,
        })
    }

    /// Where the order's payment stands at the provider; `None` when it
    /// cannot be told now.
    async fn intent_of(&self, order: &Order) -> Option<PaymentIntent> {
        let payment = order.payment.as_ref()?;
        match self.inner.deps.payments.intent(&payment.intent_id).await {
            Ok(intent) => Some(intent),
            Err(error) => {
                tracing::warn!(%error, order_id = %order.id, "reading a payment intent failed");
                None
            }
        }
    }

    /// The buyer pays an order waiting for payment.
    pub async fn pay(
        &self,
        buyer: UserId,
        id: OrderId,
        payment_method: &str,
    ) -> Result<(Order, Option<PaymentIntent>), OrderFailure> {
        let order = self
            .inner
            .deps
            .store
            .order(id)
            .await?
            .filter(|order| order.buyer_id == buyer)
            .ok_or(OrderFailure::NotFound)?;
        if order.status != domain::order::OrderStatus::AwaitingPayment {
            return Err(CheckoutError::NotAwaitingPayment.into());
        }
        self.pay_order(order, payment_method).await
    }

    /// Confirms the order's intent with a payment method. A decline is not
    /// an error here: the order waits for another card, and says why.
    async fn pay_order(
        &self,
        order: Order,
        payment_method: &str,
    ) -> Result<(Order, Option<PaymentIntent>), OrderFailure> {
        let payment = order.payment.clone().ok_or(OrderFailure::Unavailable)?;
        let provider = &self.inner.deps.payments;
        let intent = match provider.confirm(&payment.intent_id, payment_method).await {
            Ok(intent) => Some(intent),
            Err(PaymentError::Declined(_)) => provider.intent(&payment.intent_id).await.ok(),
            Err(error) => return Err(error.into()),
        };
        // A provider that reports at once (the development one) has applied
        // its event by now: read what it did.
        let order = self
            .inner
            .deps
            .store
            .order(order.id)
            .await?
            .ok_or(OrderFailure::NotFound)?;
        Ok((order, intent))
    }

    // ------------------------------------------------------------ orders

    /// An order `user` is a party to (admins see every order).
    pub async fn order(
        &self,
        user: UserId,
        admin: bool,
        id: OrderId,
    ) -> Result<Order, OrderFailure> {
        self.inner
            .deps
            .store
            .order(id)
            .await?
            .filter(|order| order.actor(user, admin).is_some())
            .ok_or(OrderFailure::NotFound)
    }

    pub async fn list(
        &self,
        user: UserId,
        side: Side,
        status: Option<domain::order::OrderStatus>,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<OrderPage, OrderFailure> {
        Ok(self
            .inner
            .deps
            .store
            .orders_for(user, side, status, before, limit)
            .await?)
    }

    /// Applies a change through the order's actor; answers once it is
    /// stored.
    pub async fn act(
        &self,
        caller: Caller,
        id: OrderId,
        command: OrderCommand,
    ) -> Result<Order, OrderFailure> {
        Ok(self.act_with(caller, id, command, None).await?.order)
    }

    async fn act_with(
        &self,
        caller: Caller,
        id: OrderId,
        command: OrderCommand,
        payment_event: Option<PaymentEvent>,
    ) -> Result<Acted, OrderFailure> {
        let now = self.now();
        let shard = self
            .inner
            .placement
            .locate(id.as_uuid())
            .map_err(|_| OrderFailure::Unavailable)?;
        let result = shard
            .call(
                |reply: RpcReplyPort<Result<Acted, OrderFailure>>| {
                    OrderShardMsg::Route(
                        id,
                        OrderMsg::Act {
                            caller,
                            command,
                            payment_event,
                            now,
                            reply,
                        },
                    )
                },
                Some(self.inner.call_timeout),
            )
            .await;
        let acted = match result {
            Ok(CallResult::Success(result)) => result?,
            _ => return Err(OrderFailure::Unavailable),
        };
        if let Some(change) = acted.change {
            let source = format!("order:{}:{}", acted.order.id, acted.order.version);
            self.mail(notices(&acted.order, change), source).await;
        }
        Ok(acted)
    }

    /// The ledger transactions of an order its parties (or an admin) see.
    pub async fn transactions(
        &self,
        user: UserId,
        admin: bool,
        id: OrderId,
    ) -> Result<Vec<Transaction>, OrderFailure> {
        self.order(user, admin, id).await?;
        Ok(self.inner.deps.store.transactions_for(id).await?)
    }

    // ---------------------------------------------------------- earnings

    pub async fn balance(&self, seller: UserId) -> Result<Balance, OrderFailure> {
        Ok(self.inner.deps.store.balance(seller).await?)
    }

    /// Records a seller's request to withdraw available earnings.
    pub async fn withdraw(
        &self,
        seller: UserId,
        amount_minor: i64,
    ) -> Result<Withdrawal, OrderFailure> {
        let store = &self.inner.deps.store;
        check_withdrawal(&store.balance(seller).await?, amount_minor)?;
        let withdrawal = Withdrawal {
            id: WithdrawalId::new(),
            seller_id: seller,
            amount: Money {
                amount_minor,
                currency: domain::money::Currency::MARKETPLACE,
            },
            requested_at: self.now(),
        };
        store.withdraw(&withdrawal).await??;
        Ok(withdrawal)
    }

    pub async fn withdrawals(&self, seller: UserId) -> Result<Vec<Withdrawal>, OrderFailure> {
        Ok(self.inner.deps.store.withdrawals(seller).await?)
    }

    /// Order actors running, over all shards.
    pub async fn active_orders(&self) -> usize {
        let mut total = 0;
        for shard in self.inner.placement.actors() {
            if let Ok(CallResult::Success(n)) = shard
                .call(OrderShardMsg::Active, Some(self.inner.call_timeout))
                .await
            {
                total += n;
            }
        }
        total
    }

    pub fn stop(&self) {
        for shard in self.inner.placement.actors() {
            shard.stop(None);
        }
    }

    // -------------------------------------------------------------- mail

    /// Puts an e-mail for each notice in the mail outbox, keyed by the
    /// change (`source`: `order:<id>:<version>`), the notice and the user,
    /// so a change processed twice queues each mail once. The change is
    /// stored already: a failure here is logged, not returned.
    async fn mail(&self, notices: Vec<Notice>, source: String) {
        let deps = &self.inner.deps;
        for notice in &notices {
            mail_notice(
                &*deps.accounts,
                &deps.mail,
                &self.inner.public_url,
                notice,
                &source,
            )
            .await;
        }
    }
}

/// An offer's live events: both parties see it, one is notified.
fn offer_events(offer: &Offer) -> Vec<EventsFor> {
    let mut events = vec![EventsFor {
        users: offer.parties().to_vec(),
        event: LiveEvent::OfferUpdated(Box::new(offer.clone())),
    }];
    events.extend(offer_notices(offer).into_iter().map(|notice| EventsFor {
        users: vec![notice.user],
        event: LiveEvent::Notification(notice.notification),
    }));
    events
}

// ---------------------------------------------------------- payment events

#[async_trait::async_trait]
impl PaymentEvents for OrderService {
    async fn received(&self, event: PaymentEvent) -> Result<(), PaymentError> {
        let store = &self.inner.deps.store;
        let unavailable = |e: &dyn std::fmt::Display| PaymentError::Unavailable(e.to_string());
        let intent_id = match &event.kind {
            PaymentEventKind::Succeeded { intent_id, .. }
            | PaymentEventKind::Failed { intent_id, .. }
            | PaymentEventKind::Refunded { intent_id, .. } => intent_id.clone(),
        };
        let Some(order) = store
            .order_by_intent(&event.provider, &intent_id)
            .await
            .map_err(|e| unavailable(&e))?
        else {
            // Not one of ours (another integration on the same account).
            tracing::info!(event_id = %event.id, %intent_id, "payment event for no known order");
            return Ok(());
        };
        let command = match &event.kind {
            PaymentEventKind::Succeeded { amount, .. } => {
                OrderCommand::PaymentSucceeded { amount: *amount }
            }
            PaymentEventKind::Failed { reason, .. } => OrderCommand::PaymentFailed {
                reason: reason.clone(),
            },
            PaymentEventKind::Refunded {
                refund_id, amount, ..
            } => {
                return self
                    .refund_confirmed(&order, &event, refund_id, *amount)
                    .await
                    .map_err(|e| unavailable(&e));
            }
        };
        let succeeded = matches!(command, OrderCommand::PaymentSucceeded { .. });
        let acted = match self
            .act_with(Caller::System, order.id, command, Some(event.clone()))
            .await
        {
            Ok(acted) => acted,
            Err(OrderFailure::Rule(rule)) => {
                // A payment that does not match the order: never apply it,
                // and do not ask for it again.
                tracing::error!(%rule, event_id = %event.id, order_id = %order.id, "payment event refused");
                return Ok(());
            }
            Err(error) => return Err(unavailable(&error)),
        };
        if succeeded
            && acted.change.is_none()
            && acted.order.status == domain::order::OrderStatus::Cancelled
            && acted.order.paid_at.is_none()
        {
            // Paid after the order expired or was abandoned: give it back.
            if let PaymentEventKind::Succeeded { amount, .. } = &event.kind {
                tracing::warn!(order_id = %order.id, "payment for a cancelled order, refunding it");
                self.inner
                    .deps
                    .payments
                    .refund(&intent_id, *amount, &format!("late-payment:{}", event.id))
                    .await?;
            }
        }
        Ok(())
    }
}

impl OrderService {
    /// The provider confirmed a refund: record it on the matching refund.
    async fn refund_confirmed(
        &self,
        order: &Order,
        event: &PaymentEvent,
        refund_id: &str,
        amount: Money,
    ) -> Result<(), StoreError> {
        let store = &self.inner.deps.store;
        if !store.record_payment_event(event, self.now()).await? {
            return Ok(());
        }
        let refunds = store.refunds_for(order.id).await?;
        let matching = refunds
            .iter()
            .find(|r| r.provider_refund_id.as_deref() == Some(refund_id))
            .or_else(|| {
                refunds.iter().find(|r| {
                    r.provider_refund_id.is_none()
                        && r.status == RefundStatus::Pending
                        && r.amount == amount
                })
            });
        match matching {
            Some(refund) => {
                store
                    .update_refund(refund.id, RefundStatus::Succeeded, Some(refund_id))
                    .await
            }
            None => {
                tracing::info!(order_id = %order.id, %refund_id, "refund event for no stored refund");
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------- background

/// Ticks the orders and expires the offers whose stored deadline passed.
async fn run_clock(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let service = OrderService { inner: strong };
        let wait = match service.tick_due().await {
            Ok(wait) => wait,
            Err(error) => {
                tracing::warn!(%error, "the order clock failed, trying again");
                Duration::from_secs(1)
            }
        };
        let wake = service.inner.deadlines.clone();
        drop(service);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {}
        }
    }
}

impl OrderService {
    /// One pass of the clock; how long to sleep before the next.
    async fn tick_due(&self) -> Result<Duration, StoreError> {
        const BATCH: u32 = 100;
        let store = &self.inner.deps.store;
        let now = self.now();
        let due = store.due_orders(now, BATCH).await?;
        let mut stuck = false;
        for id in &due {
            match self.act(Caller::System, *id, OrderCommand::Tick).await {
                Ok(order)
                    if order
                        .next_deadline(&self.inner.policy)
                        .is_some_and(|at| at <= now) =>
                {
                    stuck = true;
                }
                Ok(_) => {}
                Err(error) => {
                    stuck = true;
                    tracing::warn!(%error, order_id = %id, "ticking an order failed");
                }
            }
        }
        for id in store.due_offers(now, BATCH).await? {
            if let Err(error) = self.answer_offer(None, id, OfferCommand::Expire).await {
                stuck = true;
                tracing::warn!(%error, offer_id = %id, "expiring an offer failed");
            }
        }
        if stuck {
            return Ok(Duration::from_secs(1));
        }
        if due.len() == BATCH as usize {
            return Ok(Duration::ZERO);
        }
        let next = store.next_deadline().await?;
        let wait = next.map_or(self.inner.poll, |at| {
            (at - self.now()).to_std().unwrap_or(Duration::ZERO)
        });
        Ok(wait.min(self.inner.poll))
    }
}

/// Sends stored refunds to the provider until it accepts each.
async fn run_refunder(inner: std::sync::Weak<Inner>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let service = OrderService { inner: strong };
        let wait = match service.send_refunds().await {
            Ok(true) => {
                backoff = Duration::from_secs(1);
                service.inner.poll
            }
            Ok(false) | Err(_) => {
                let wait = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(300));
                wait
            }
        };
        let wake = service.inner.refunds.clone();
        drop(service);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {}
        }
    }
}

impl OrderService {
    /// Sends every pending refund; `Ok(false)` if the provider failed some
    /// (they are tried again later).
    async fn send_refunds(&self) -> Result<bool, StoreError> {
        let store = &self.inner.deps.store;
        let provider = &self.inner.deps.payments;
        let mut all_sent = true;
        for refund in store.pending_refunds(50).await? {
            if refund.provider != provider.name() {
                tracing::error!(refund_id = %refund.id, provider = %refund.provider, "refund for another payment provider");
                all_sent = false;
                continue;
            }
            match provider
                .refund(
                    &refund.intent_id,
                    refund.amount,
                    &format!("refund:{}", refund.id),
                )
                .await
            {
                Ok(sent) => {
                    store
                        .update_refund(refund.id, sent.status, Some(&sent.id))
                        .await?;
                }
                Err(PaymentError::Unavailable(why)) => {
                    tracing::warn!(refund_id = %refund.id, %why, "payment provider unavailable, refund retried later");
                    all_sent = false;
                }
                Err(error) => {
                    tracing::error!(%error, refund_id = %refund.id, "the payment provider refused a refund");
                    store
                        .update_refund(refund.id, RefundStatus::Failed, None)
                        .await?;
                }
            }
        }
        Ok(all_sent)
    }
}
