//! Order scenarios of the store suite: orders placed once per checkout key
//! and per offer, versioned saves that store their ledger transactions,
//! refunds, provider events and live events atomically, the account
//! balances, seller withdrawals, the listings, the clock's due work, and
//! custom offers. Orders are driven with the domain's own rules
//! (`order::place`, `order::decide`, `Offer::new`, `offer::decide`).

use std::collections::HashSet;

use adapters::sql::SqlStore;
use anyhow::{ensure, Context};
use chrono::{DateTime, Utc};
use domain::chat::NewConversation;
use domain::gig::PackageTier;
use domain::ids::{ConversationId, GigId, OfferId, OrderId, UserId, WithdrawalId};
use domain::ledger::{Account, Balance, Transaction, TransactionKind, Withdrawal, WithdrawalError};
use domain::live::{LiveEvent, Notification, StoredEvent};
use domain::money::{Currency, Money};
use domain::offer::{self, Offer, OfferCommand, OfferInput, OfferStatus};
use domain::order::{
    self, Actor, Order, OrderChange, OrderCommand, OrderPolicy, OrderStatus, OrderTerms,
    PaymentRef, Side,
};
use domain::payment::{PaymentEvent, PaymentEventKind, RefundStatus};
use domain::ports::{
    ChatStore, CheckoutKey, EventLog, EventsFor, OrderStore, OrderWrite, RefundRecord, StoreError,
};
use uuid::Uuid;

use super::{create, is_conflict, is_not_found, secs, t0, Result};

// ---------------------------------------------------------------- fixtures

fn usd(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: Currency::Usd,
    }
}

fn policy() -> OrderPolicy {
    OrderPolicy::default()
}

fn gig_terms() -> OrderTerms {
    OrderTerms {
        title: "I will build your landing page in Rust".into(),
        description: "Standard plan: \"quoted\", caf\u{e9} \u{1f680}\nsecond line".into(),
        gig_id: Some(GigId::new()),
        package: Some(PackageTier::Standard),
        offer_id: None,
        delivery_days: 5,
        revisions: 2,
    }
}

/// A gig order at `price_minor`, awaiting payment.
pub(super) fn gig_order(
    buyer: UserId,
    seller: UserId,
    price_minor: i64,
    now: DateTime<Utc>,
) -> Order {
    order::place(buyer, seller, None, gig_terms(), usd(price_minor), now)
}

fn checkout_key(buyer: UserId, key: &str) -> CheckoutKey {
    CheckoutKey {
        buyer_id: buyer,
        key: key.into(),
        fingerprint: format!("sha256-of-{key}"),
    }
}

/// The events of an order change: the order to both parties, and a
/// notification to the seller (two batches, so they are appended together).
fn order_events(order: &Order, change: OrderChange) -> Vec<EventsFor> {
    vec![
        EventsFor {
            users: vec![order.buyer_id, order.seller_id],
            event: LiveEvent::OrderUpdated {
                change,
                order: Box::new(order.clone()),
            },
        },
        EventsFor {
            users: vec![order.seller_id],
            event: LiveEvent::Notification(Notification {
                kind: format!("order.{}", change.as_str()),
                title: "Your order changed".into(),
                body: order.terms.title.clone(),
                order_id: Some(order.id),
                offer_id: order.terms.offer_id,
                conversation_id: order.conversation_id,
                gig_id: None,
            }),
        },
    ]
}

fn offer_events(offer: &Offer) -> Vec<EventsFor> {
    vec![EventsFor {
        users: offer.parties().to_vec(),
        event: LiveEvent::OfferUpdated(Box::new(offer.clone())),
    }]
}

/// Places the order under a fresh key; returns its events.
pub(super) async fn place(
    store: &SqlStore,
    order: &Order,
    key: &str,
) -> std::result::Result<Vec<StoredEvent>, StoreError> {
    let events = order_events(order, OrderChange::Placed);
    store
        .place_order(
            order,
            &checkout_key(order.buyer_id, key),
            order.next_deadline(&policy()),
            &events,
        )
        .await
}

async fn fetch_order(store: &SqlStore, id: OrderId) -> anyhow::Result<Order> {
    store.order(id).await?.context("order should exist")
}

async fn fetch_offer(store: &SqlStore, id: OfferId) -> anyhow::Result<Offer> {
    store.offer(id).await?.context("offer should exist")
}

fn refund_for(order: &Order, amount_minor: i64, now: DateTime<Utc>) -> Option<RefundRecord> {
    let payment = order.payment.as_ref()?;
    Some(RefundRecord {
        id: Uuid::now_v7(),
        order_id: order.id,
        provider: payment.provider.clone(),
        intent_id: payment.intent_id.clone(),
        amount: usd(amount_minor),
        status: RefundStatus::Pending,
        provider_refund_id: None,
        created_at: now,
    })
}

/// Decides `command` on the stored order and saves the decision with its
/// deadline, transactions, refund and events; returns the stored order.
pub(super) async fn apply(
    store: &SqlStore,
    current: &Order,
    by: Actor,
    command: OrderCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<Order> {
    let decision = order::decide(current, by, command, now, &policy())?
        .context("the command should change the order")?;
    let refund = decision
        .refund_minor
        .and_then(|amount| refund_for(&decision.order, amount, now));
    let events = order_events(&decision.order, decision.change);
    store
        .save_order(&OrderWrite {
            order: &decision.order,
            expected_version: current.version,
            deadline: decision.order.next_deadline(&policy()),
            transactions: &decision.transactions,
            refund: refund.as_ref(),
            payment_event: None,
            events: &events,
        })
        .await?;
    let stored = fetch_order(store, current.id).await?;
    ensure!(stored.version == current.version + 1, "version moved on");
    Ok(stored)
}

fn intent_of(order: &Order) -> PaymentRef {
    PaymentRef {
        provider: "dev".into(),
        intent_id: format!("pi_{}", order.id.as_uuid().simple()),
    }
}

fn succeeded(order: &Order, event_id: &str) -> PaymentEvent {
    PaymentEvent {
        id: event_id.into(),
        provider: "dev".into(),
        kind: PaymentEventKind::Succeeded {
            intent_id: intent_of(order).intent_id,
            amount: order.amounts.total,
        },
    }
}

/// Stores the order's payment intent, as the checkout does after creating
/// it: a save that changes nothing else.
async fn attach_intent(
    store: &SqlStore,
    order: &Order,
    now: DateTime<Utc>,
) -> anyhow::Result<Order> {
    let with_intent = Order {
        payment: Some(intent_of(order)),
        updated_at: now,
        ..order.clone()
    };
    store
        .save_order(&OrderWrite {
            order: &with_intent,
            expected_version: order.version,
            deadline: with_intent.next_deadline(&policy()),
            transactions: &[],
            refund: None,
            payment_event: None,
            events: &[],
        })
        .await?;
    fetch_order(store, order.id).await
}

/// Applies the provider's report that the order's total was collected.
pub(super) async fn pay(
    store: &SqlStore,
    order: &Order,
    now: DateTime<Utc>,
) -> anyhow::Result<Order> {
    let current = attach_intent(store, order, now).await?;
    let decision = order::decide(
        &current,
        Actor::System,
        OrderCommand::PaymentSucceeded {
            amount: current.amounts.total,
        },
        now,
        &policy(),
    )?
    .context("payment should change the order")?;
    let event = succeeded(&current, &format!("evt_paid_{}", current.id));
    let events = order_events(&decision.order, decision.change);
    store
        .save_order(&OrderWrite {
            order: &decision.order,
            expected_version: current.version,
            deadline: decision.order.next_deadline(&policy()),
            transactions: &decision.transactions,
            refund: None,
            payment_event: Some(&event),
            events: &events,
        })
        .await?;
    fetch_order(store, current.id).await
}

/// Takes a placed order through payment, delivery and acceptance.
async fn complete(store: &SqlStore, placed: &Order, start: DateTime<Utc>) -> anyhow::Result<Order> {
    let paid = pay(store, placed, start + secs(1)).await?;
    let started = apply(
        store,
        &paid,
        Actor::Buyer,
        OrderCommand::SubmitRequirements {
            text: "The brand colours are teal and sand.".into(),
        },
        start + secs(2),
    )
    .await?;
    let delivered = apply(
        store,
        &started,
        Actor::Seller,
        OrderCommand::Deliver {
            message: "Here it is.".into(),
            files: vec!["orders/landing.zip".into()],
        },
        start + secs(3),
    )
    .await?;
    apply(
        store,
        &delivered,
        Actor::Buyer,
        OrderCommand::Accept,
        start + secs(4),
    )
    .await
}

/// Completes the order and lets the clock clear the seller's earnings.
async fn clear(store: &SqlStore, placed: &Order, start: DateTime<Utc>) -> anyhow::Result<Order> {
    let completed = complete(store, placed, start).await?;
    let at = completed
        .next_deadline(&policy())
        .context("a completed order clears later")?;
    apply(store, &completed, Actor::System, OrderCommand::Tick, at).await
}

async fn heads(store: &SqlStore, users: &[UserId]) -> anyhow::Result<Vec<i64>> {
    let mut heads = Vec::new();
    for user in users {
        heads.push(store.head(*user).await?);
    }
    Ok(heads)
}

async fn balances_sum(store: &SqlStore) -> anyhow::Result<i64> {
    Ok(store.account_balances().await?.iter().map(|(_, b)| b).sum())
}

fn is_version_conflict<T>(result: &std::result::Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::VersionConflict))
}

async fn open_conversation(
    store: &SqlStore,
    buyer: UserId,
    seller: UserId,
    now: DateTime<Utc>,
) -> anyhow::Result<ConversationId> {
    let (conversation, _) = store
        .open_conversation(&NewConversation {
            id: ConversationId::new(),
            started_by: buyer,
            with: seller,
            subject: None,
            now,
        })
        .await?;
    Ok(conversation.id)
}

fn new_offer(
    conversation: ConversationId,
    seller: UserId,
    buyer: UserId,
    title: &str,
    now: DateTime<Utc>,
) -> Offer {
    let terms = OfferInput {
        gig_id: None,
        title: title.into(),
        description: "Three concepts, two rounds of changes, \"quoted\" \u{e9}.".into(),
        price_minor: 15_000,
        currency: "USD".into(),
        delivery_days: 5,
        revisions: 2,
        expires_in_days: Some(1),
    }
    .validate()
    .unwrap();
    Offer::new(conversation, seller, buyer, terms, now)
}

/// The order a buyer checks out from an accepted offer.
fn offer_order(offer: &Offer, now: DateTime<Utc>) -> Order {
    let terms = OrderTerms {
        title: offer.title.clone(),
        description: offer.description.clone(),
        gig_id: offer.gig_id,
        package: None,
        offer_id: Some(offer.id),
        delivery_days: offer.delivery_days,
        revisions: offer.revisions,
    };
    order::place(
        offer.buyer_id,
        offer.seller_id,
        Some(offer.conversation_id),
        terms,
        offer.price,
        now,
    )
}

/// Sends an offer and lets the buyer accept it; returns the stored offer.
async fn accepted_offer(
    store: &SqlStore,
    conversation: ConversationId,
    seller: UserId,
    buyer: UserId,
    now: DateTime<Utc>,
) -> anyhow::Result<Offer> {
    let sent = new_offer(conversation, seller, buyer, "A logo, three concepts", now);
    store.create_offer(&sent, &offer_events(&sent)).await?;
    let accepted = offer::decide(&sent, Some(buyer), OfferCommand::Accept, now + secs(1))?
        .context("accepting changes the offer")?;
    store
        .save_offer(&accepted, sent.version, &offer_events(&accepted))
        .await?;
    fetch_offer(store, sent.id).await
}

// ------------------------------------------------------------------ orders

pub(super) async fn order_round_trip(store: SqlStore) -> Result {
    let buyer = create(&store, "alice").await?;
    let seller = create(&store, "bob").await?;
    let placed = gig_order(buyer.id, seller.id, 12_345, t0());

    let events = place(&store, &placed, "key-1").await?;
    let expected = order_events(&placed, OrderChange::Placed);
    let got: Vec<(UserId, i64, &LiveEvent)> = events
        .iter()
        .map(|e| (e.user_id, e.cursor, &e.event))
        .collect();
    assert_eq!(
        got,
        [
            (buyer.id, 1, &expected[0].event),
            (seller.id, 1, &expected[0].event),
            (seller.id, 2, &expected[1].event),
        ]
    );
    ensure!(events.iter().all(|e| e.created_at == t0()), "stamped now");
    assert_eq!(heads(&store, &[buyer.id, seller.id]).await?, [1, 2]);

    assert_eq!(fetch_order(&store, placed.id).await?, placed);
    assert_eq!(
        store.checkout(buyer.id, "key-1").await?,
        Some(("sha256-of-key-1".to_string(), placed.id))
    );
    assert_eq!(store.checkout(buyer.id, "key-2").await?, None);
    assert_eq!(store.checkout(seller.id, "key-1").await?, None);
    assert_eq!(store.order(OrderId::new()).await?, None);

    // The intent is found once stored with the order.
    let intent = intent_of(&placed);
    assert_eq!(store.order_by_intent("dev", &intent.intent_id).await?, None);
    let with_intent = attach_intent(&store, &placed, t0() + secs(1)).await?;
    assert_eq!(
        with_intent,
        Order {
            payment: Some(intent.clone()),
            updated_at: t0() + secs(1),
            version: 1,
            ..placed.clone()
        }
    );
    assert_eq!(
        store.order_by_intent("dev", &intent.intent_id).await?,
        Some(with_intent.clone())
    );
    assert_eq!(
        store.order_by_intent("stripe", &intent.intent_id).await?,
        None
    );

    // Another order cannot claim the same intent.
    let other = gig_order(buyer.id, seller.id, 5_000, t0() + secs(2));
    place(&store, &other, "key-2").await?;
    let claiming = Order {
        payment: Some(intent.clone()),
        ..other.clone()
    };
    let result = store
        .save_order(&OrderWrite {
            order: &claiming,
            expected_version: 0,
            deadline: None,
            transactions: &[],
            refund: None,
            payment_event: None,
            events: &[],
        })
        .await;
    ensure!(
        is_conflict(&result, "payment_intent"),
        "a second order on one intent: {result:?}"
    );
    assert_eq!(fetch_order(&store, other.id).await?, other);

    // Unknown parties: nothing is stored.
    let stranger = gig_order(UserId::new(), seller.id, 5_000, t0());
    let result = place(&store, &stranger, "key-1").await;
    ensure!(is_not_found(&result), "unknown buyer: {result:?}");
    assert_eq!(store.order(stranger.id).await?, None);
    Ok(())
}

pub(super) async fn checkout_key_reuse_conflicts(store: SqlStore) -> Result {
    let buyer = create(&store, "alice").await?;
    let seller = create(&store, "bob").await?;
    let other_buyer = create(&store, "carol").await?;
    let first = gig_order(buyer.id, seller.id, 10_000, t0());
    place(&store, &first, "retry-me").await?;
    let before = heads(&store, &[buyer.id, seller.id]).await?;

    // A second checkout under the same key: nothing is written.
    let second = gig_order(buyer.id, seller.id, 20_000, t0() + secs(1));
    let events = order_events(&second, OrderChange::Placed);
    let result = store
        .place_order(
            &second,
            &CheckoutKey {
                fingerprint: "another request".into(),
                ..checkout_key(buyer.id, "retry-me")
            },
            second.next_deadline(&policy()),
            &events,
        )
        .await;
    ensure!(is_conflict(&result, "checkout"), "key reused: {result:?}");
    assert_eq!(store.order(second.id).await?, None);
    assert_eq!(heads(&store, &[buyer.id, seller.id]).await?, before);
    assert_eq!(
        store.checkout(buyer.id, "retry-me").await?,
        Some(("sha256-of-retry-me".to_string(), first.id)),
        "the first request keeps the key"
    );
    let page = store
        .orders_for(buyer.id, Side::Buyer, None, None, 10)
        .await?;
    assert_eq!(page.orders, std::slice::from_ref(&first));
    assert_eq!(
        store.due_orders(t0() + secs(1_000_000), 10).await?,
        [first.id]
    );

    // The same order again (a retried call) is a checkout conflict too.
    let result = place(&store, &first, "retry-me").await;
    ensure!(
        is_conflict(&result, "checkout"),
        "the same order again: {result:?}"
    );

    // Keys are per buyer.
    let theirs = gig_order(other_buyer.id, seller.id, 10_000, t0() + secs(2));
    place(&store, &theirs, "retry-me").await?;
    assert_eq!(
        store.checkout(other_buyer.id, "retry-me").await?,
        Some(("sha256-of-retry-me".to_string(), theirs.id))
    );
    Ok(())
}

pub(super) async fn offer_checks_out_once(store: SqlStore) -> Result {
    let buyer = create(&store, "alice").await?;
    let seller = create(&store, "bob").await?;
    let conversation = open_conversation(&store, buyer.id, seller.id, t0()).await?;
    let offer = accepted_offer(&store, conversation, seller.id, buyer.id, t0() + secs(1)).await?;
    assert_eq!((offer.status, offer.version), (OfferStatus::Accepted, 1));

    let placed = offer_order(&offer, t0() + secs(5));
    place(&store, &placed, "offer-1").await?;
    assert_eq!(fetch_order(&store, placed.id).await?, placed);
    assert_eq!(
        fetch_offer(&store, offer.id).await?,
        Offer {
            order_id: Some(placed.id),
            version: 2,
            updated_at: t0() + secs(5),
            ..offer.clone()
        },
        "the offer names its order"
    );
    let checked_out = fetch_offer(&store, offer.id).await?;
    let before = heads(&store, &[buyer.id, seller.id]).await?;

    // A second checkout of the offer, under another key: nothing is written.
    let again = offer_order(&offer, t0() + secs(6));
    let result = place(&store, &again, "offer-2").await;
    ensure!(is_conflict(&result, "offer"), "second checkout: {result:?}");
    assert_eq!(store.order(again.id).await?, None);
    assert_eq!(store.checkout(buyer.id, "offer-2").await?, None);
    assert_eq!(fetch_offer(&store, offer.id).await?, checked_out);
    assert_eq!(heads(&store, &[buyer.id, seller.id]).await?, before);

    // A pending offer cannot be checked out.
    let pending = new_offer(conversation, seller.id, buyer.id, "Not yet", t0() + secs(7));
    store.create_offer(&pending, &[]).await?;
    let early = offer_order(&pending, t0() + secs(8));
    let result = place(&store, &early, "offer-3").await;
    ensure!(is_conflict(&result, "offer"), "pending offer: {result:?}");
    assert_eq!(store.order(early.id).await?, None);
    assert_eq!(fetch_offer(&store, pending.id).await?, pending);

    // Concurrent checkouts of one accepted offer: one order.
    let contested =
        accepted_offer(&store, conversation, seller.id, buyer.id, t0() + secs(9)).await?;
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            let order = offer_order(&contested, t0() + secs(10 + i));
            tokio::spawn(async move {
                let result = store
                    .place_order(
                        &order,
                        &checkout_key(order.buyer_id, &format!("race-{i}")),
                        None,
                        &order_events(&order, OrderChange::Placed),
                    )
                    .await;
                (result, order)
            })
        })
        .collect();
    let (mut winners, mut losers) = (Vec::new(), 0);
    for task in tasks {
        let (result, order) = task.await?;
        match result {
            Ok(_) => winners.push(order),
            Err(StoreError::Conflict("offer")) => losers += 1,
            Err(e) => anyhow::bail!("a racing checkout failed otherwise: {e:?}"),
        }
    }
    assert_eq!((winners.len(), losers), (1, 5));
    assert_eq!(
        fetch_offer(&store, contested.id).await?.order_id,
        Some(winners[0].id)
    );
    let page = store
        .orders_for(buyer.id, Side::Buyer, None, None, 10)
        .await?;
    assert_eq!(page.orders.len(), 2);
    Ok(())
}

pub(super) async fn versioned_order_saves(store: SqlStore) -> Result {
    let buyer = create(&store, "alice").await?;
    let seller = create(&store, "bob").await?;
    let placed = gig_order(buyer.id, seller.id, 10_000, t0());
    place(&store, &placed, "k").await?;
    let paid = pay(&store, &placed, t0() + secs(1)).await?;
    assert_eq!(paid.version, 2);
    assert_eq!(paid.status, OrderStatus::AwaitingRequirements);
    let ledger = store.transactions_for(placed.id).await?;
    let balances = store.account_balances().await?;
    let before = heads(&store, &[buyer.id, seller.id]).await?;

    // A write decided from the stale version 1 changes nothing.
    let stale = fetch_order(&store, placed.id)
        .await
        .map(|o| Order { version: 1, ..o })?;
    let decision = order::decide(
        &stale,
        Actor::Admin,
        OrderCommand::Cancel {
            reason: "stale".into(),
        },
        t0() + secs(2),
        &policy(),
    )?
    .context("admin cancels")?;
    ensure!(!decision.transactions.is_empty(), "a refund transaction");
    let refund = refund_for(
        &decision.order,
        decision.order.amounts.total.amount_minor,
        t0(),
    );
    let events = order_events(&decision.order, decision.change);
    let write = OrderWrite {
        order: &decision.order,
        expected_version: 1,
        deadline: None,
        transactions: &decision.transactions,
        refund: refund.as_ref(),
        payment_event: None,
        events: &events,
    };
    let result = store.save_order(&write).await;
    ensure!(is_version_conflict(&result), "stale save: {result:?}");
    assert_eq!(fetch_order(&store, placed.id).await?, paid);
    assert_eq!(store.transactions_for(placed.id).await?, ledger);
    assert_eq!(store.account_balances().await?, balances);
    assert_eq!(store.refunds_for(placed.id).await?, []);
    assert_eq!(store.pending_refunds(10).await?, []);
    assert_eq!(heads(&store, &[buyer.id, seller.id]).await?, before);

    // An unbalanced transaction is refused before anything is written.
    let mut unbalanced = decision.transactions.clone();
    unbalanced[0].postings[0].amount_minor += 1;
    let result = store
        .save_order(&OrderWrite {
            expected_version: 2,
            transactions: &unbalanced,
            ..write.clone()
        })
        .await;
    ensure!(
        matches!(result, Err(StoreError::Backend(_))),
        "unbalanced: {result:?}"
    );
    assert_eq!(fetch_order(&store, placed.id).await?, paid);
    assert_eq!(store.account_balances().await?, balances);

    // An unknown order.
    let unknown = gig_order(buyer.id, seller.id, 10_000, t0());
    let result = store
        .save_order(&OrderWrite {
            order: &unknown,
            expected_version: 0,
            deadline: None,
            transactions: &[],
            refund: None,
            payment_event: None,
            events: &events,
        })
        .await;
    ensure!(is_not_found(&result), "unknown order: {result:?}");
    assert_eq!(heads(&store, &[buyer.id, seller.id]).await?, before);

    // The current version writes, stored as the next one.
    let saved = store
        .save_order(&OrderWrite {
            expected_version: 2,
            ..write.clone()
        })
        .await?;
    assert_eq!(saved.len(), 3);
    let cancelled = fetch_order(&store, placed.id).await?;
    assert_eq!(
        cancelled,
        Order {
            version: 3,
            ..decision.order.clone()
        }
    );
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    Ok(())
}

pub(super) async fn payment_events_apply_once(store: SqlStore) -> Result {
    let buyer = create(&store, "alice").await?;
    let seller = create(&store, "bob").await?;
    let placed = gig_order(buyer.id, seller.id, 10_000, t0());
    place(&store, &placed, "k").await?;
    let paid = pay(&store, &placed, t0() + secs(1)).await?;
    let event = succeeded(&paid, &format!("evt_paid_{}", paid.id));
    let before = heads(&store, &[buyer.id, seller.id]).await?;
    let ledger = store.transactions_for(paid.id).await?;
    assert_eq!(ledger.len(), 1);

    // The same provider event again with another change: nothing is written.
    let decision = order::decide(
        &paid,
        Actor::Buyer,
        OrderCommand::SubmitRequirements {
            text: "Teal and sand.".into(),
        },
        t0() + secs(2),
        &policy(),
    )?
    .context("requirements")?;
    let events = order_events(&decision.order, decision.change);
    let write = OrderWrite {
        order: &decision.order,
        expected_version: paid.version,
        deadline: decision.order.next_deadline(&policy()),
        transactions: &decision.transactions,
        refund: None,
        payment_event: Some(&event),
        events: &events,
    };
    let result = store.save_order(&write).await;
    ensure!(
        is_conflict(&result, "payment_event"),
        "second delivery: {result:?}"
    );
    assert_eq!(fetch_order(&store, paid.id).await?, paid);
    assert_eq!(store.transactions_for(paid.id).await?, ledger);
    assert_eq!(heads(&store, &[buyer.id, seller.id]).await?, before);

    // Events that change no order are recorded once as well.
    assert!(!store.record_payment_event(&event, t0() + secs(3)).await?);
    let refunded = PaymentEvent {
        id: "evt_refunded_1".into(),
        provider: "dev".into(),
        kind: PaymentEventKind::Refunded {
            intent_id: intent_of(&paid).intent_id,
            refund_id: "re_1".into(),
            amount: usd(100),
        },
    };
    assert!(
        store
            .record_payment_event(&refunded, t0() + secs(3))
            .await?
    );
    assert!(
        !store
            .record_payment_event(&refunded, t0() + secs(4))
            .await?
    );
    // Event ids are per provider.
    let elsewhere = PaymentEvent {
        provider: "stripe".into(),
        ..refunded.clone()
    };
    assert!(
        store
            .record_payment_event(&elsewhere, t0() + secs(4))
            .await?
    );

    // A change with an event recorded before fails; with a new one it writes.
    let result = store
        .save_order(&OrderWrite {
            payment_event: Some(&refunded),
            ..write.clone()
        })
        .await;
    ensure!(is_conflict(&result, "payment_event"), "{result:?}");
    let fresh = PaymentEvent {
        id: "evt_fresh".into(),
        ..event.clone()
    };
    store
        .save_order(&OrderWrite {
            payment_event: Some(&fresh),
            ..write.clone()
        })
        .await?;
    assert_eq!(
        fetch_order(&store, paid.id).await?.status,
        OrderStatus::InProgress
    );
    assert!(!store.record_payment_event(&fresh, t0() + secs(5)).await?);
    Ok(())
}

pub(super) async fn ledger_balances_through_clearance(store: SqlStore) -> Result {
    let buyer = create(&store, "alice").await?;
    let seller = create(&store, "bob").await?;
    assert_eq!(store.balance(seller.id).await?, Balance::default());
    assert_eq!(store.account_balances().await?, []);

    let placed = gig_order(buyer.id, seller.id, 10_000, t0());
    place(&store, &placed, "k").await?;
    let total = placed.amounts.total.amount_minor;
    let split = placed.amounts.split(0);
    assert_eq!(
        (total, split.seller_net, split.platform),
        (10_550, 8_000, 2_550)
    );

    let paid = pay(&store, &placed, t0() + secs(1)).await?;
    assert_eq!(
        store.account_balances().await?,
        [(Account::Escrow, -total), (Account::Provider, total)]
    );
    assert_eq!(store.balance(seller.id).await?, Balance::default());

    let completed = {
        let started = apply(
            &store,
            &paid,
            Actor::Buyer,
            OrderCommand::SubmitRequirements {
                text: "Teal.".into(),
            },
            t0() + secs(2),
        )
        .await?;
        let delivered = apply(
            &store,
            &started,
            Actor::Seller,
            OrderCommand::Deliver {
                message: "Done.".into(),
                files: vec![],
            },
            t0() + secs(3),
        )
        .await?;
        apply(
            &store,
            &delivered,
            Actor::Buyer,
            OrderCommand::Accept,
            t0() + secs(4),
        )
        .await?
    };
    assert_eq!(completed.status, OrderStatus::Completed);
    assert_eq!(
        store.balance(seller.id).await?,
        Balance {
            pending_minor: 8_000,
            ..Balance::default()
        }
    );
    assert_eq!(balances_sum(&store).await?, 0);

    let cleared_at = completed
        .next_deadline(&policy())
        .context("clearance is due later")?;
    let cleared = apply(
        &store,
        &completed,
        Actor::System,
        OrderCommand::Tick,
        cleared_at,
    )
    .await?;
    assert_eq!(cleared.cleared_at, Some(cleared_at));
    assert_eq!(
        store.balance(seller.id).await?,
        Balance {
            available_minor: 8_000,
            ..Balance::default()
        }
    );
    assert_eq!(
        store.account_balances().await?,
        [
            (Account::Escrow, 0),
            (Account::PlatformRevenue, -2_550),
            (Account::Provider, total),
            (Account::SellerAvailable(seller.id), -8_000),
            (Account::SellerPending(seller.id), 0),
        ]
    );
    assert_eq!(balances_sum(&store).await?, 0);

    // The order's ledger, in order, exactly as decided.
    let ledger = store.transactions_for(placed.id).await?;
    assert_eq!(
        ledger,
        [
            Transaction::payment(placed.id, total, t0() + secs(1)),
            Transaction::settlement(placed.id, seller.id, split, t0() + secs(4)),
            Transaction::clearance(placed.id, seller.id, 8_000, cleared_at),
        ]
    );
    let kinds: Vec<TransactionKind> = ledger.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds,
        [
            TransactionKind::Payment,
            TransactionKind::Settlement,
            TransactionKind::Clearance
        ]
    );
    assert_eq!(store.transactions_for(OrderId::new()).await?, []);
    Ok(())
}

pub(super) async fn concurrent_order_saves_have_one_winner(store: SqlStore) -> Result {
    let buyer = create(&store, "alice").await?;
    let seller = create(&store, "bob").await?;
    let placed = gig_order(buyer.id, seller.id, 10_000, t0());
    place(&store, &placed, "k").await?;
    let current = attach_intent(&store, &placed, t0() + secs(1)).await?;
    let before = heads(&store, &[buyer.id, seller.id]).await?;

    // Eight deliveries of the payment, each under its own event id, all
    // decided from the same version.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let current = current.clone();
            tokio::spawn(async move {
                let now = t0() + secs(2 + i);
                let decision = order::decide(
                    &current,
                    Actor::System,
                    OrderCommand::PaymentSucceeded {
                        amount: current.amounts.total,
                    },
                    now,
                    &policy(),
                )?
                .context("payment")?;
                let event = succeeded(&current, &format!("evt_{i}"));
                let events = order_events(&decision.order, decision.change);
                let result = store
                    .save_order(&OrderWrite {
                        order: &decision.order,
                        expected_version: current.version,
                        deadline: decision.order.next_deadline(&policy()),
                        transactions: &decision.transactions,
                        refund: None,
                        payment_event: Some(&event),
                        events: &events,
                    })
                    .await;
                anyhow::Ok((result, decision.order, event))
            })
        })
        .collect();
    let (mut winners, mut losers) = (Vec::new(), Vec::new());
    for task in tasks {
        let (result, order, event) = task.await??;
        match result {
            Ok(events) => {
                ensure!(events.len() == 3, "the winner's events: {events:?}");
                winners.push((order, event));
            }
            Err(StoreError::VersionConflict) => losers.push(event),
            Err(e) => anyhow::bail!("a racing save failed otherwise: {e:?}"),
        }
    }
    assert_eq!((winners.len(), losers.len()), (1, 7));
    let (won, won_event) = &winners[0];
    assert_eq!(
        fetch_order(&store, placed.id).await?,
        Order {
            version: current.version + 1,
            ..won.clone()
        }
    );
    // One payment, one set of events; only the winner's event is recorded.
    assert_eq!(store.transactions_for(placed.id).await?.len(), 1);
    assert_eq!(
        heads(&store, &[buyer.id, seller.id]).await?,
        [before[0] + 1, before[1] + 2]
    );
    assert_eq!(balances_sum(&store).await?, 0);
    assert!(!store.record_payment_event(won_event, t0()).await?);
    for event in &losers {
        assert!(store.record_payment_event(event, t0()).await?);
    }
    Ok(())
}

pub(super) async fn concurrent_withdrawals_never_overspend(store: SqlStore) -> Result {
    let buyer = create(&store, "alice").await?;
    let seller = create(&store, "bob").await?;

    // Nothing earned yet.
    let early = Withdrawal {
        id: WithdrawalId::new(),
        seller_id: seller.id,
        amount: usd(600),
        requested_at: t0(),
    };
    assert_eq!(
        store.withdraw(&early).await?,
        Err(WithdrawalError::MoreThanAvailable { available: 0 })
    );

    // $37.50 less the 20% commission: $30.00 cleared.
    let placed = gig_order(buyer.id, seller.id, 3_750, t0());
    place(&store, &placed, "k").await?;
    clear(&store, &placed, t0()).await?;
    assert_eq!(
        store.balance(seller.id).await?,
        Balance {
            available_minor: 3_000,
            ..Balance::default()
        }
    );
    let later = t0() + chrono::TimeDelta::days(30);

    let small = Withdrawal {
        id: WithdrawalId::new(),
        seller_id: seller.id,
        amount: usd(499),
        requested_at: later,
    };
    assert_eq!(
        store.withdraw(&small).await?,
        Err(WithdrawalError::TooSmall)
    );

    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            let withdrawal = Withdrawal {
                id: WithdrawalId::new(),
                seller_id: seller.id,
                amount: usd(600),
                requested_at: later + secs(i),
            };
            tokio::spawn(async move { (store.withdraw(&withdrawal).await, withdrawal) })
        })
        .collect();
    let (mut made, mut refused) = (Vec::new(), 0);
    for task in tasks {
        let (result, withdrawal) = task.await?;
        match result? {
            Ok(()) => made.push(withdrawal),
            Err(WithdrawalError::MoreThanAvailable { available }) => {
                ensure!(
                    (0..3_000).contains(&available) && available % 600 == 0,
                    "refused with {available} available"
                );
                refused += 1;
            }
            Err(e) => anyhow::bail!("a racing withdrawal failed otherwise: {e:?}"),
        }
    }
    assert_eq!((made.len(), refused), (5, 5));
    assert_eq!(
        store.balance(seller.id).await?,
        Balance {
            pending_minor: 0,
            available_minor: 0,
            withdrawn_minor: 3_000,
        }
    );
    assert_eq!(balances_sum(&store).await?, 0);
    made.sort_by_key(|w| std::cmp::Reverse((w.requested_at, w.id)));
    assert_eq!(store.withdrawals(seller.id).await?, made, "newest first");
    assert_eq!(store.withdrawals(buyer.id).await?, []);
    Ok(())
}

// ---------------------------------------------------------------- listings

pub(super) async fn orders_for_filters_and_pages(store: SqlStore) -> Result {
    let buyer = create(&store, "alice").await?;
    let seller = create(&store, "bob").await?;
    let other_seller = create(&store, "carol").await?;

    let mut from_bob = Vec::new();
    for i in 0..5 {
        let placed = gig_order(buyer.id, seller.id, 5_000 + i, t0() + secs(i));
        place(&store, &placed, &format!("bob-{i}")).await?;
        from_bob.push(placed);
    }
    let mut from_carol = Vec::new();
    for i in 0..2 {
        let placed = gig_order(buyer.id, other_seller.id, 7_000, t0() + secs(10 + i));
        place(&store, &placed, &format!("carol-{i}")).await?;
        from_carol.push(placed);
    }
    // Two of Bob's orders are paid.
    from_bob[1] = pay(&store, &from_bob[1], t0() + secs(20)).await?;
    from_bob[3] = pay(&store, &from_bob[3], t0() + secs(21)).await?;

    let newest_first = |orders: &[Order]| {
        let mut orders = orders.to_vec();
        orders.sort_by_key(|o| std::cmp::Reverse(o.id));
        orders
    };
    let everything = newest_first(&[from_bob.clone(), from_carol.clone()].concat());

    // The buyer's orders in pages of three.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .orders_for(buyer.id, Side::Buyer, None, before, 3)
            .await?;
        ensure!(page.orders.len() <= 3, "a page holds at most the limit");
        pages.push(page.orders.len());
        let next = page.next;
        ensure!(
            next == page.orders.last().map(|o| o.id).filter(|_| next.is_some()),
            "next is the last id of a page"
        );
        before = next;
        if before.is_none() {
            break;
        }
    }
    assert_eq!(pages, [3, 3, 1]);
    let all = store
        .orders_for(buyer.id, Side::Buyer, None, None, 100)
        .await?;
    assert_eq!(all.orders, everything);
    assert_eq!(all.next, None);
    let exact = store
        .orders_for(buyer.id, Side::Buyer, None, None, 7)
        .await?;
    assert_eq!(
        (exact.orders.len(), exact.next),
        (7, None),
        "a full last page"
    );
    let first_two = store
        .orders_for(buyer.id, Side::Buyer, None, None, 2)
        .await?;
    assert_eq!(first_two.orders, everything[..2]);
    assert_eq!(first_two.next, Some(everything[1].id));
    let rest = store
        .orders_for(buyer.id, Side::Buyer, None, first_two.next, 10)
        .await?;
    assert_eq!(rest.orders, everything[2..]);

    // By status.
    let paid = store
        .orders_for(
            buyer.id,
            Side::Buyer,
            Some(OrderStatus::AwaitingRequirements),
            None,
            1,
        )
        .await?;
    let paid_ids = newest_first(&[from_bob[1].clone(), from_bob[3].clone()]);
    assert_eq!(paid.orders, paid_ids[..1]);
    assert_eq!(paid.next, Some(paid_ids[0].id));
    let paid_rest = store
        .orders_for(
            buyer.id,
            Side::Buyer,
            Some(OrderStatus::AwaitingRequirements),
            paid.next,
            1,
        )
        .await?;
    assert_eq!(paid_rest.orders, paid_ids[1..]);
    assert_eq!(paid_rest.next, None);
    let waiting = store
        .orders_for(
            buyer.id,
            Side::Buyer,
            Some(OrderStatus::AwaitingPayment),
            None,
            10,
        )
        .await?;
    assert_eq!(waiting.orders.len(), 5);
    ensure!(
        waiting
            .orders
            .iter()
            .all(|o| o.status == OrderStatus::AwaitingPayment),
        "only that status"
    );

    // By side.
    let bobs = store
        .orders_for(seller.id, Side::Seller, None, None, 10)
        .await?;
    assert_eq!(bobs.orders, newest_first(&from_bob));
    let carols = store
        .orders_for(other_seller.id, Side::Seller, None, None, 10)
        .await?;
    assert_eq!(carols.orders, newest_first(&from_carol));
    assert_eq!(
        store
            .orders_for(seller.id, Side::Buyer, None, None, 10)
            .await?
            .orders,
        []
    );
    assert_eq!(
        store
            .orders_for(buyer.id, Side::Seller, None, None, 10)
            .await?
            .orders,
        []
    );
    assert_eq!(
        store
            .orders_for(
                seller.id,
                Side::Seller,
                Some(OrderStatus::Completed),
                None,
                10
            )
            .await?
            .orders,
        []
    );
    Ok(())
}

// ------------------------------------------------------------- the clock

pub(super) async fn deadlines_and_due_work(store: SqlStore) -> Result {
    let buyer = create(&store, "alice").await?;
    let seller = create(&store, "bob").await?;
    assert_eq!(store.next_deadline().await?, None);
    assert_eq!(store.due_orders(t0(), 10).await?, []);
    assert_eq!(store.due_offers(t0(), 10).await?, []);

    let key = |name: &str| checkout_key(buyer.id, name);
    let a = gig_order(buyer.id, seller.id, 5_000, t0());
    let b = gig_order(buyer.id, seller.id, 5_000, t0());
    let c = gig_order(buyer.id, seller.id, 5_000, t0());
    let (at_a, at_b) = (t0() + secs(100), t0() + secs(50));
    store.place_order(&a, &key("a"), Some(at_a), &[]).await?;
    store.place_order(&b, &key("b"), Some(at_b), &[]).await?;
    store.place_order(&c, &key("c"), None, &[]).await?;
    assert_eq!(store.next_deadline().await?, Some(at_b));
    assert_eq!(store.due_orders(at_b - secs(1), 10).await?, []);
    assert_eq!(store.due_orders(at_b, 10).await?, [b.id]);
    assert_eq!(
        store.due_orders(at_a, 10).await?,
        [b.id, a.id],
        "earliest first"
    );
    assert_eq!(store.due_orders(at_a, 1).await?, [b.id]);

    // A pending offer's expiry is a deadline too.
    let conversation = open_conversation(&store, buyer.id, seller.id, t0()).await?;
    let mut offer = new_offer(conversation, seller.id, buyer.id, "Soon", t0());
    offer.expires_at = t0() + secs(20);
    store.create_offer(&offer, &[]).await?;
    assert_eq!(store.next_deadline().await?, Some(t0() + secs(20)));
    assert_eq!(store.due_offers(t0() + secs(19), 10).await?, []);
    assert_eq!(store.due_offers(t0() + secs(20), 10).await?, [offer.id]);

    // Once answered, it is not.
    let expired = offer::decide(&offer, None, OfferCommand::Expire, t0() + secs(20))?
        .context("the offer expires")?;
    store
        .save_offer(&expired, 0, &offer_events(&expired))
        .await?;
    assert_eq!(store.due_offers(t0() + secs(1_000), 10).await?, []);
    assert_eq!(store.next_deadline().await?, Some(at_b));

    // A save moves the order's deadline, or clears it.
    store
        .save_order(&OrderWrite {
            order: &Order {
                updated_at: t0() + secs(60),
                ..b.clone()
            },
            expected_version: 0,
            deadline: None,
            transactions: &[],
            refund: None,
            payment_event: None,
            events: &[],
        })
        .await?;
    assert_eq!(store.next_deadline().await?, Some(at_a));
    assert_eq!(store.due_orders(at_a, 10).await?, [a.id]);
    let moved = t0() + secs(10);
    store
        .save_order(&OrderWrite {
            order: &a,
            expected_version: 0,
            deadline: Some(moved),
            transactions: &[],
            refund: None,
            payment_event: None,
            events: &[],
        })
        .await?;
    assert_eq!(store.next_deadline().await?, Some(moved));
    assert_eq!(store.due_orders(moved, 10).await?, [a.id]);
    assert_eq!(store.due_orders(moved - secs(1), 10).await?, []);
    Ok(())
}

// ----------------------------------------------------------------- refunds

pub(super) async fn refunds_are_pending_until_answered(store: SqlStore) -> Result {
    let buyer = create(&store, "alice").await?;
    let seller = create(&store, "bob").await?;
    let placed = gig_order(buyer.id, seller.id, 10_000, t0());
    place(&store, &placed, "k").await?;
    let paid = pay(&store, &placed, t0() + secs(1)).await?;
    assert_eq!(store.pending_refunds(10).await?, []);

    let cancelled = apply(
        &store,
        &paid,
        Actor::Admin,
        OrderCommand::Cancel {
            reason: "duplicate order".into(),
        },
        t0() + secs(2),
    )
    .await?;
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(cancelled.refunded_minor, paid.amounts.total.amount_minor);
    let refunds = store.refunds_for(placed.id).await?;
    ensure!(refunds.len() == 1, "one refund: {refunds:?}");
    let refund = refunds[0].clone();
    assert_eq!(
        (refund.order_id, refund.amount, refund.status),
        (placed.id, paid.amounts.total, RefundStatus::Pending)
    );
    assert_eq!(refund.intent_id, intent_of(&placed).intent_id);
    assert_eq!(refund.created_at, t0() + secs(2));
    assert_eq!(
        store.pending_refunds(10).await?,
        std::slice::from_ref(&refund)
    );
    // The money is back at the provider's side: escrow and provider are 0.
    assert_eq!(
        store.account_balances().await?,
        [(Account::Escrow, 0), (Account::Provider, 0)]
    );

    // A provider answer without an id yet keeps it pending.
    store
        .update_refund(refund.id, RefundStatus::Pending, None)
        .await?;
    assert_eq!(
        store.pending_refunds(10).await?,
        std::slice::from_ref(&refund)
    );
    store
        .update_refund(refund.id, RefundStatus::Succeeded, Some("re_123"))
        .await?;
    assert_eq!(store.pending_refunds(10).await?, []);
    let answered = RefundRecord {
        status: RefundStatus::Succeeded,
        provider_refund_id: Some("re_123".into()),
        ..refund.clone()
    };
    assert_eq!(
        store.refunds_for(placed.id).await?,
        std::slice::from_ref(&answered)
    );
    // A later answer without the id keeps the one known.
    store
        .update_refund(refund.id, RefundStatus::Succeeded, None)
        .await?;
    assert_eq!(store.refunds_for(placed.id).await?, [answered]);

    let result = store
        .update_refund(Uuid::now_v7(), RefundStatus::Failed, None)
        .await;
    ensure!(is_not_found(&result), "unknown refund: {result:?}");
    assert_eq!(store.refunds_for(OrderId::new()).await?, []);

    // Oldest first, and limited.
    let mut pending_ids = HashSet::new();
    for i in 0..3 {
        let other = gig_order(buyer.id, seller.id, 10_000, t0() + secs(10 + i));
        place(&store, &other, &format!("k{i}")).await?;
        let paid = pay(&store, &other, t0() + secs(20 + i)).await?;
        apply(
            &store,
            &paid,
            Actor::Admin,
            OrderCommand::Cancel {
                reason: "test".into(),
            },
            t0() + secs(40 - i),
        )
        .await?;
        pending_ids.insert(other.id);
    }
    let pending = store.pending_refunds(10).await?;
    ensure!(
        pending
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at),
        "oldest first: {pending:?}"
    );
    assert_eq!(
        pending.iter().map(|r| r.order_id).collect::<HashSet<_>>(),
        pending_ids
    );
    assert_eq!(store.pending_refunds(2).await?, pending[..2]);
    Ok(())
}

// ------------------------------------------------------------------ offers

pub(super) async fn offers_are_versioned(store: SqlStore) -> Result {
    let buyer = create(&store, "alice").await?;
    let seller = create(&store, "bob").await?;
    let conversation = open_conversation(&store, buyer.id, seller.id, t0()).await?;
    let before = heads(&store, &[buyer.id, seller.id]).await?;

    let first = new_offer(conversation, seller.id, buyer.id, "First", t0() + secs(1));
    let second = new_offer(conversation, seller.id, buyer.id, "Second", t0() + secs(2));
    let events = store.create_offer(&first, &offer_events(&first)).await?;
    assert_eq!(
        events
            .iter()
            .map(|e| (e.user_id, e.cursor))
            .collect::<Vec<_>>(),
        [
            (first.buyer_id, before[0] + 1),
            (first.seller_id, before[1] + 1)
        ]
    );
    ensure!(
        events
            .iter()
            .all(|e| e.event == LiveEvent::OfferUpdated(Box::new(first.clone()))),
        "the offer's events: {events:?}"
    );
    store.create_offer(&second, &offer_events(&second)).await?;
    assert_eq!(fetch_offer(&store, first.id).await?, first);
    assert_eq!(
        store.offers_in(conversation).await?,
        [second.clone(), first.clone()],
        "newest first"
    );
    assert_eq!(store.offers_in(ConversationId::new()).await?, []);
    assert_eq!(store.offer(OfferId::new()).await?, None);

    let result = store.create_offer(&first, &[]).await;
    ensure!(is_conflict(&result, "offer"), "duplicate offer: {result:?}");
    let nowhere = new_offer(ConversationId::new(), seller.id, buyer.id, "Lost", t0());
    let result = store.create_offer(&nowhere, &offer_events(&nowhere)).await;
    ensure!(is_not_found(&result), "unknown conversation: {result:?}");
    assert_eq!(store.offer(nowhere.id).await?, None);

    // Versioned answers.
    let accepted = offer::decide(&first, Some(buyer.id), OfferCommand::Accept, t0() + secs(3))?
        .context("accept")?;
    let events = store
        .save_offer(&accepted, 0, &offer_events(&accepted))
        .await?;
    assert_eq!(events.len(), 2);
    assert_eq!(
        fetch_offer(&store, first.id).await?,
        Offer {
            version: 1,
            ..accepted.clone()
        }
    );
    let heads_now = heads(&store, &[buyer.id, seller.id]).await?;
    let withdrawn = offer::decide(
        &first,
        Some(seller.id),
        OfferCommand::Withdraw,
        t0() + secs(4),
    )?
    .context("withdraw")?;
    let result = store
        .save_offer(&withdrawn, 0, &offer_events(&withdrawn))
        .await;
    ensure!(is_version_conflict(&result), "stale answer: {result:?}");
    assert_eq!(
        fetch_offer(&store, first.id).await?.status,
        OfferStatus::Accepted
    );
    assert_eq!(heads(&store, &[buyer.id, seller.id]).await?, heads_now);
    let result = store.save_offer(&nowhere, 0, &[]).await;
    ensure!(is_not_found(&result), "unknown offer: {result:?}");

    // Concurrent answers from one version: one wins.
    let tasks: Vec<_> = [
        OfferCommand::Accept,
        OfferCommand::Decline,
        OfferCommand::Withdraw,
    ]
    .into_iter()
    .cycle()
    .take(6)
    .enumerate()
    .map(|(i, command)| {
        let store = store.clone();
        let by = if command == OfferCommand::Withdraw {
            seller.id
        } else {
            buyer.id
        };
        let answered = offer::decide(&second, Some(by), command, t0() + secs(10 + i as i64));
        tokio::spawn(async move {
            let answered = answered?.context("an answer")?;
            let result = store
                .save_offer(&answered, 0, &offer_events(&answered))
                .await;
            anyhow::Ok((result, answered))
        })
    })
    .collect();
    let (mut winners, mut losers) = (Vec::new(), 0);
    for task in tasks {
        let (result, answered) = task.await??;
        match result {
            Ok(_) => winners.push(answered),
            Err(StoreError::VersionConflict) => losers += 1,
            Err(e) => anyhow::bail!("a racing answer failed otherwise: {e:?}"),
        }
    }
    assert_eq!((winners.len(), losers), (1, 5));
    assert_eq!(
        fetch_offer(&store, second.id).await?,
        Offer {
            version: 1,
            ..winners[0].clone()
        }
    );
    Ok(())
}
