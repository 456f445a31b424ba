//! Orders end to end: custom offers, checkout, the order lifecycle, its
//! money (the ledger, refunds, earnings, withdrawals) and the clock, over
//! REST and over the live socket, with the development payment provider on
//! both stores; and the Stripe provider against a real localstripe whose
//! signed webhooks reach the server through a recording relay.
//!
//! The clock is the harness's manual clock: a test moves it, then wakes the
//! order clock (`OrderService::wake_clock`) and polls (bounded) for what the
//! clock does. Access tokens expire with the moved clock, so the parties
//! sign in again after a move.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, TimeDelta, Utc};
use domain::account::{Email, Password, Role, Username};
use domain::ids::OrderId;
use domain::payment::RefundStatus;
use domain::ports::Clock as _;
use domain::ports::RefundRecord;
use gateway::config::{PaymentProviderKind, Settings};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::helpers::{eventually, gig_body, Backend, Reply, TestApp, TestUser, PASSWORD};
use crate::socket::Socket;

backend_tests!(
    lifecycle_over_rest,
    lifecycle_over_the_socket,
    cancellations_refund_the_buyer,
    a_quiet_delivery_completes_by_itself,
    disputes_are_resolved_by_an_admin,
    outsiders_and_wrong_sides_are_refused,
    checkout_is_idempotent_and_actions_race_safely,
    declined_and_authenticated_cards,
);

/// Test cards of the development provider.
pub(crate) const CARD_OK: &str = "4242424242424242";
pub(crate) const CARD_DECLINED: &str = "4000000000000002";
const CARD_EXTRA_STEP: &str = "4000002500003155";
pub(crate) const DECLINED: &str = "Your card was declined.";

/// The gig every seller here offers: `gig_body`'s basic package, 25.00 in
/// three days with two revisions. The buyer pays 5.5% on top (137.5 cents,
/// rounded half up); the seller keeps 80% of the price.
const GIG_PRICE: i64 = 2_500;
const GIG_FEE: i64 = 138;
pub(crate) const GIG_TOTAL: i64 = 2_638;
pub(crate) const GIG_SELLER_NET: i64 = 2_000;
pub(crate) const GIG_PLATFORM: i64 = 638;

// ------------------------------------------------------------------ parties

/// An account and a current access token.
pub(crate) struct Party {
    user: TestUser,
    pub(crate) token: String,
}

impl Party {
    pub(crate) fn id(&self) -> String {
        self.user.id.to_string()
    }

    /// A new access token (after the clock moved past the old one's expiry).
    pub(crate) async fn sign_in_again(&mut self, app: &TestApp) {
        self.token = app
            .login_ok(&self.user.username, &self.user.password)
            .await
            .access;
    }
}

pub(crate) async fn new_buyer(app: &TestApp, name: &str) -> Party {
    let (user, tokens) = app.signed_up(name).await;
    Party {
        user,
        token: tokens.access,
    }
}

/// A seller with one active gig (see [`GIG_PRICE`]); the gig's id.
pub(crate) async fn seller_with_gig(app: &TestApp, name: &str) -> (Party, String) {
    let (user, tokens) = app.seller(name).await;
    let gig = app
        .create_gig_ok(
            &tokens.access,
            &gig_body(
                "I will design a clean logo for your brand",
                "programming-tech",
                "web-development",
            ),
        )
        .await;
    let party = Party {
        user,
        token: tokens.access,
    };
    (party, id_of(&gig))
}

/// An admin made as the operator makes one (`marketplace create-admin`).
pub(crate) async fn admin(app: &TestApp, name: &str) -> Party {
    let email = format!("{name}@example.com");
    let user = app
        .state
        .create_account(
            Email::parse(&email).unwrap(),
            Username::parse(name).unwrap(),
            &Password::parse("password", PASSWORD).unwrap(),
            Role::Admin,
            true,
        )
        .await
        .unwrap();
    let tokens = app.login_ok(name, PASSWORD).await;
    Party {
        user: TestUser {
            id: user.id.as_uuid(),
            username: name.to_string(),
            email,
            password: PASSWORD.to_string(),
        },
        token: tokens.access,
    }
}

// ------------------------------------------------------------------ calls

pub(crate) fn id_of(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {value}"))
        .to_string()
}

pub(crate) fn new_key() -> String {
    Uuid::new_v4().to_string()
}

pub(crate) fn at(value: &Value) -> DateTime<Utc> {
    let raw = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    DateTime::parse_from_rfc3339(raw)
        .unwrap_or_else(|e| panic!("not a timestamp ({e}): {raw}"))
        .with_timezone(&Utc)
}

/// `POST /checkout` with an `Idempotency-Key` header if `key` is given.
pub(crate) async fn checkout(app: &TestApp, token: &str, key: Option<&str>, body: &Value) -> Reply {
    let mut request = app
        .request(Method::POST, "/api/v1/checkout")
        .bearer_auth(token)
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    app.send(request).await
}

/// Buys the gig's basic package, paying with `payment_method` if given;
/// the checkout view.
pub(crate) async fn buy(
    app: &TestApp,
    buyer: &Party,
    gig_id: &str,
    payment_method: Option<&str>,
) -> Value {
    let mut body = json!({ "gig_id": gig_id, "package": "basic" });
    if let Some(method) = payment_method {
        body["payment_method"] = json!(method);
    }
    checkout(app, &buyer.token, Some(&new_key()), &body)
        .await
        .expect(201)
}

/// A paid order for the gig: its id.
pub(crate) async fn paid_order(app: &TestApp, buyer: &Party, gig_id: &str) -> String {
    let placed = buy(app, buyer, gig_id, Some(CARD_OK)).await;
    assert_eq!(
        placed["order"]["status"], "awaiting_requirements",
        "{placed}"
    );
    id_of(&placed["order"])
}

/// A paid order whose requirements are in: its id.
pub(crate) async fn started_order(app: &TestApp, buyer: &Party, gig_id: &str) -> String {
    let id = paid_order(app, buyer, gig_id).await;
    let order = act(
        app,
        &buyer.token,
        &id,
        "requirements",
        json!({ "text": "A round logo, blue and white." }),
    )
    .await
    .expect(200);
    assert_eq!(order["status"], "in_progress");
    id
}

/// A started order the seller delivered: its id.
pub(crate) async fn delivered_order(
    app: &TestApp,
    buyer: &Party,
    seller: &Party,
    gig_id: &str,
) -> String {
    let id = started_order(app, buyer, gig_id).await;
    let order = act(
        app,
        &seller.token,
        &id,
        "deliveries",
        json!({ "message": "Here is the logo." }),
    )
    .await
    .expect(200);
    assert_eq!(order["status"], "delivered");
    id
}

/// `POST /admin/orders/{id}/resolve` with `body`: how an admin settles a
/// dispute.
pub(crate) async fn resolve(app: &TestApp, token: &str, id: &str, body: Value) -> Reply {
    app.post_json_as(token, &format!("/api/v1/admin/orders/{id}/resolve"), &body)
        .await
}

/// `POST /orders/{id}/{action}` with `body`.
pub(crate) async fn act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Reply {
    app.post_json_as(token, &format!("/api/v1/orders/{id}/{action}"), &body)
        .await
}

pub(crate) async fn order(app: &TestApp, token: &str, id: &str) -> Value {
    app.get_json_as(token, &format!("/api/v1/orders/{id}"))
        .await
        .expect(200)
}

/// Polls the order (bounded) until `done` holds; returns it.
pub(crate) async fn wait_for_order(
    app: &TestApp,
    token: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    eventually(what, || async {
        let order = order(app, token, id).await;
        if done(&order) {
            Ok(order)
        } else {
            Err(order.to_string())
        }
    })
    .await
}

pub(crate) fn postings(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(a, n)| (a.to_string(), *n)).collect()
}

/// The order's ledger: each transaction's kind and postings, each checked
/// to balance.
pub(crate) async fn ledger(
    app: &TestApp,
    token: &str,
    id: &str,
) -> Vec<(String, BTreeMap<String, i64>)> {
    let body = app
        .get_json_as(token, &format!("/api/v1/orders/{id}/ledger"))
        .await
        .expect(200);
    body.as_array()
        .unwrap_or_else(|| panic!("a ledger is a list: {body}"))
        .iter()
        .map(|transaction| {
            assert_eq!(transaction["currency"], "USD", "{transaction}");
            let lines = transaction["postings"].as_array().unwrap();
            let postings: BTreeMap<String, i64> = lines
                .iter()
                .map(|p| {
                    (
                        p["account"].as_str().unwrap().to_string(),
                        p["amount_minor"].as_i64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(postings.len(), lines.len(), "one line per account");
            assert_eq!(
                postings.values().sum::<i64>(),
                0,
                "an unbalanced transaction: {transaction}"
            );
            (transaction["kind"].as_str().unwrap().to_string(), postings)
        })
        .collect()
}

pub(crate) fn kinds(ledger: &[(String, BTreeMap<String, i64>)]) -> Vec<&str> {
    ledger.iter().map(|(kind, _)| kind.as_str()).collect()
}

pub(crate) fn payment(total: i64) -> BTreeMap<String, i64> {
    postings(&[("provider", total), ("escrow", -total)])
}

pub(crate) fn refund(amount: i64) -> BTreeMap<String, i64> {
    postings(&[("escrow", amount), ("provider", -amount)])
}

pub(crate) fn settlement(seller: &Party, seller_net: i64, platform: i64) -> BTreeMap<String, i64> {
    postings(&[
        ("escrow", seller_net + platform),
        ("platform_revenue", -platform),
        (&format!("seller_pending:{}", seller.id()), -seller_net),
    ])
}

/// Every account's balance, checked to sum to zero; zero balances left out.
pub(crate) async fn account_balances(app: &TestApp) -> BTreeMap<String, i64> {
    let balances = app.state.orders.store().account_balances().await.unwrap();
    assert_eq!(
        balances.iter().map(|(_, n)| n).sum::<i64>(),
        0,
        "the ledger does not balance: {balances:?}"
    );
    balances
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|(account, n)| (account.to_string(), n))
        .collect()
}

/// Polls the store (bounded) until the order has exactly refunds of
/// `amounts`, each accepted by the provider.
pub(crate) async fn refunds_succeeded(
    app: &TestApp,
    id: &str,
    amounts: &[i64],
) -> Vec<RefundRecord> {
    let order_id: OrderId = id.parse().unwrap();
    eventually(&format!("refunds {amounts:?} of {id} sent"), || async {
        let refunds = app
            .state
            .orders
            .store()
            .refunds_for(order_id)
            .await
            .map_err(|e| e.to_string())?;
        let seen: Vec<(i64, RefundStatus)> = refunds
            .iter()
            .map(|r| (r.amount.amount_minor, r.status))
            .collect();
        let want: Vec<(i64, RefundStatus)> = amounts
            .iter()
            .map(|n| (*n, RefundStatus::Succeeded))
            .collect();
        if seen == want {
            Ok(refunds)
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await
}

/// Moves the manual clock and has the order clock look at once.
pub(crate) fn advance(app: &TestApp, by: TimeDelta) {
    app.clock.advance(by);
    app.state.orders.wake_clock();
}

pub(crate) async fn earnings(app: &TestApp, seller: &Party) -> (i64, i64, i64) {
    let body = app
        .get_json_as(&seller.token, "/api/v1/me/earnings")
        .await
        .expect(200);
    let minor = |field: &str| {
        assert_eq!(body[field]["currency"], "USD", "{body}");
        body[field]["amount_minor"].as_i64().unwrap()
    };
    (minor("pending"), minor("available"), minor("withdrawn"))
}

/// A conversation the buyer opened with the seller: its id.
pub(crate) async fn conversation(app: &TestApp, buyer: &Party, seller: &Party) -> String {
    let opened = app
        .post_json_as(
            &buyer.token,
            "/api/v1/conversations",
            &json!({ "username": seller.user.username }),
        )
        .await
        .expect(201);
    id_of(&opened["conversation"])
}

pub(crate) fn offer_body(price_minor: i64) -> Value {
    json!({
        "title": "A logo with three concepts",
        "description": "Three concepts, then the one you like refined.",
        "price_minor": price_minor,
        "delivery_days": 5,
        "revisions": 2,
    })
}

pub(crate) async fn send_offer(
    app: &TestApp,
    seller: &Party,
    conversation: &str,
    body: &Value,
) -> Reply {
    app.post_json_as(
        &seller.token,
        &format!("/api/v1/conversations/{conversation}/offers"),
        body,
    )
    .await
}

// ------------------------------------------------------- 1. the lifecycle

async fn lifecycle_over_rest(app: TestApp) {
    let (mut seller, gig_id) = seller_with_gig(&app, "ada").await;
    let mut buyer = new_buyer(&app, "bob").await;
    let conversation = conversation(&app, &buyer, &seller).await;

    // The seller sends a custom offer based on the gig; both see it.
    let mut body = offer_body(12_345);
    body["gig_id"] = json!(gig_id);
    let offer = send_offer(&app, &seller, &conversation, &body)
        .await
        .expect(201);
    let offer_id = id_of(&offer);
    assert_eq!(offer["status"], "pending");
    assert_eq!(
        offer["price"],
        json!({ "amount_minor": 12_345, "currency": "USD" })
    );
    assert_eq!(offer["seller_id"], seller.id());
    assert_eq!(offer["buyer_id"], buyer.id());
    assert_eq!(offer["gig_id"], gig_id.as_str());
    assert_eq!(offer["conversation_id"], conversation.as_str());
    assert!(offer["order_id"].is_null());
    assert_eq!(
        at(&offer["expires_at"]) - at(&offer["created_at"]),
        TimeDelta::days(7)
    );
    let listed = app
        .get_json_as(
            &buyer.token,
            &format!("/api/v1/conversations/{conversation}/offers"),
        )
        .await
        .expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], offer_id.as_str());

    // The buyer accepts, then checks the offer out with a card.
    let accepted = app
        .post_as(&buyer.token, &format!("/api/v1/offers/{offer_id}/accept"))
        .await
        .expect(200);
    assert_eq!(accepted["status"], "accepted");
    let placed = checkout(
        &app,
        &buyer.token,
        Some(&new_key()),
        &json!({ "offer_id": offer_id, "payment_method": CARD_OK }),
    )
    .await
    .expect(201);
    let order_view = &placed["order"];
    let id = id_of(order_view);
    assert_eq!(order_view["status"], "awaiting_requirements");
    // 5.5% of 123.45 is 6.78975: 6.79. The server computed every amount.
    assert_eq!(order_view["price"]["amount_minor"], 12_345);
    assert_eq!(order_view["service_fee"]["amount_minor"], 679);
    assert_eq!(order_view["total"]["amount_minor"], 13_024);
    assert_eq!(order_view["refunded"]["amount_minor"], 0);
    assert_eq!(order_view["total"]["currency"], "USD");
    assert_eq!(order_view["buyer_id"], buyer.id());
    assert_eq!(order_view["seller_id"], seller.id());
    assert_eq!(order_view["offer_id"], offer_id.as_str());
    assert_eq!(order_view["conversation_id"], conversation.as_str());
    assert_eq!(order_view["title"], "A logo with three concepts");
    assert_eq!(order_view["delivery_days"], 5);
    assert_eq!(order_view["revisions"], 2);
    assert_eq!(order_view["payment_provider"], "dev");
    assert!(order_view["payment_error"].is_null());
    assert!(order_view["paid_at"].is_string());
    assert!(order_view["due_at"].is_null());
    assert_eq!(placed["payment"]["status"], "succeeded");
    assert_eq!(placed["payment"]["amount"]["amount_minor"], 13_024);
    // The offer now names its order.
    let offer = app
        .get_json_as(&seller.token, &format!("/api/v1/offers/{offer_id}"))
        .await
        .expect(200);
    assert_eq!(offer["order_id"], id.as_str());

    // Each side lists it on its own side only.
    let mine = app
        .get_json_as(&buyer.token, "/api/v1/orders")
        .await
        .expect(200);
    assert_eq!(mine["items"][0]["id"], id.as_str());
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let sold = app
        .get_json_as(
            &seller.token,
            "/api/v1/orders?role=seller&status=awaiting_requirements",
        )
        .await
        .expect(200);
    assert_eq!(sold["items"][0]["id"], id.as_str());
    for (token, query) in [
        (&seller.token, "role=buyer"),
        (&buyer.token, "role=seller"),
        (&seller.token, "role=seller&status=completed"),
    ] {
        let page = app
            .get_json_as(token, &format!("/api/v1/orders?{query}"))
            .await
            .expect(200);
        assert_eq!(page["items"], json!([]), "{query}");
    }

    // Requirements start the delivery clock.
    let started = act(
        &app,
        &buyer.token,
        &id,
        "requirements",
        json!({ "text": "Blue and white, round, with the letter B." }),
    )
    .await
    .expect(200);
    assert_eq!(started["status"], "in_progress");
    assert_eq!(
        started["requirements"],
        "Blue and white, round, with the letter B."
    );
    let due = at(&started["due_at"]);
    assert_eq!(due - at(&started["started_at"]), TimeDelta::days(5));

    // Delivery, a revision, delivery again, the second revision.
    let delivered = act(
        &app,
        &seller.token,
        &id,
        "deliveries",
        json!({ "message": "First concepts.", "files": [] }),
    )
    .await
    .expect(200);
    assert_eq!(delivered["status"], "delivered");
    assert_eq!(delivered["deliveries"][0]["message"], "First concepts.");
    for (round, message) in [(1, "Second round."), (2, "Third round.")] {
        let revision = act(
            &app,
            &buyer.token,
            &id,
            "revisions",
            json!({ "reason": "Make the B bolder." }),
        )
        .await
        .expect(200);
        assert_eq!(revision["status"], "revision_requested");
        assert_eq!(revision["revisions_used"], round);
        if round == 1 {
            let delivered = act(
                &app,
                &seller.token,
                &id,
                "deliveries",
                json!({ "message": message }),
            )
            .await
            .expect(200);
            assert_eq!(delivered["status"], "delivered");
            assert_eq!(delivered["deliveries"].as_array().unwrap().len(), 2);
        }
    }

    // The seller needs two more days; the buyer approves.
    let asked = act(
        &app,
        &seller.token,
        &id,
        "extension",
        json!({ "days": 2, "reason": "The bolder B needs a new layout." }),
    )
    .await
    .expect(200);
    assert_eq!(asked["extension"]["days"], 2);
    assert_eq!(at(&asked["due_at"]), due);
    let approved = act(
        &app,
        &buyer.token,
        &id,
        "extension/answer",
        json!({ "approve": true }),
    )
    .await
    .expect(200);
    assert!(approved["extension"].is_null());
    assert_eq!(at(&approved["due_at"]), due + TimeDelta::days(2));
    assert_eq!(approved["delivery_days"], 7);
    assert_eq!(approved["status"], "revision_requested");

    let delivered = act(
        &app,
        &seller.token,
        &id,
        "deliveries",
        json!({ "message": "Final version." }),
    )
    .await
    .expect(200);
    assert_eq!(delivered["deliveries"].as_array().unwrap().len(), 3);
    assert_eq!(delivered["late"], false);
    // Both revisions are used.
    act(
        &app,
        &buyer.token,
        &id,
        "revisions",
        json!({ "reason": "One more?" }),
    )
    .await
    .expect_error(409, "conflict");

    let completed = act(&app, &buyer.token, &id, "acceptance", json!({}))
        .await
        .expect(200);
    assert_eq!(completed["status"], "completed");
    assert!(completed["completed_at"].is_string());
    assert!(completed["cleared_at"].is_null());

    // 20% of 123.45 is 24.69: 98.76 waits for clearance.
    assert_eq!(earnings(&app, &seller).await, (9_876, 0, 0));
    app.post_json_as(
        &seller.token,
        "/api/v1/me/withdrawals",
        &json!({ "amount_minor": 5_000 }),
    )
    .await
    .expect_error(422, "validation_failed");

    // Fourteen days later the earnings clear.
    advance(&app, TimeDelta::days(14) + TimeDelta::minutes(1));
    seller.sign_in_again(&app).await;
    buyer.sign_in_again(&app).await;
    let cleared = wait_for_order(&app, &seller.token, &id, "earnings cleared", |o| {
        o["cleared_at"].is_string()
    })
    .await;
    assert_eq!(cleared["status"], "completed");
    assert_eq!(earnings(&app, &seller).await, (0, 9_876, 0));

    // The seller withdraws part; not more than is left.
    let withdrawn = app
        .post_json_as(
            &seller.token,
            "/api/v1/me/withdrawals",
            &json!({ "amount_minor": 5_000 }),
        )
        .await
        .expect(201);
    assert_eq!(withdrawn["amount"]["amount_minor"], 5_000);
    app.post_json_as(
        &seller.token,
        "/api/v1/me/withdrawals",
        &json!({ "amount_minor": 4_877 }),
    )
    .await
    .expect_error(422, "validation_failed");
    assert_eq!(earnings(&app, &seller).await, (0, 4_876, 5_000));
    let withdrawals = app
        .get_json_as(&seller.token, "/api/v1/me/withdrawals")
        .await
        .expect(200);
    assert_eq!(withdrawals.as_array().unwrap().len(), 1);
    assert_eq!(withdrawals[0]["id"], withdrawn["id"]);

    // The order's money: paid in, settled, cleared; each balanced.
    let seller_available = format!("seller_available:{}", seller.id());
    let seller_pending = format!("seller_pending:{}", seller.id());
    let entries = ledger(&app, &buyer.token, &id).await;
    assert_eq!(kinds(&entries), ["payment", "settlement", "clearance"]);
    assert_eq!(entries[0].1, payment(13_024));
    assert_eq!(entries[1].1, settlement(&seller, 9_876, 679 + 2_469));
    assert_eq!(
        entries[2].1,
        postings(&[(&seller_pending, 9_876), (&seller_available, -9_876)])
    );
    assert_eq!(ledger(&app, &seller.token, &id).await, entries);

    // And every account: escrow empty, the provider holds the total.
    assert_eq!(
        account_balances(&app).await,
        postings(&[
            ("provider", 13_024),
            ("platform_revenue", -3_148),
            (&seller_available, -4_876),
            (&format!("seller_withdrawn:{}", seller.id()), -5_000),
        ])
    );
}

// --------------------------------------------- 2. the lifecycle, live

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Side {
    Buyer,
    Seller,
}

/// The two parties' sockets.
pub(crate) struct Live {
    pub(crate) buyer: Socket,
    pub(crate) seller: Socket,
}

impl Live {
    pub(crate) fn of(&mut self, side: Side) -> &mut Socket {
        match side {
            Side::Buyer => &mut self.buyer,
            Side::Seller => &mut self.seller,
        }
    }

    /// The next `order.updated` on both sides is `change` of the order;
    /// the order as the buyer's event shows it.
    pub(crate) async fn changed(&mut self, id: &str, change: &str) -> Value {
        let mut seen = Vec::new();
        for side in [Side::Seller, Side::Buyer] {
            let event = self.of(side).event("order.updated").await;
            assert_eq!(event["data"]["change"], change, "{side:?}: {event}");
            assert_eq!(event["data"]["order"]["id"], id, "{side:?}: {event}");
            assert!(event["cursor"].is_i64(), "a durable event: {event}");
            seen.push(event["data"]["order"].clone());
        }
        assert_eq!(seen[0], seen[1], "both sides see the same order");
        seen.pop().unwrap()
    }

    /// The next notification of each side in `to` is `kind` about the order.
    pub(crate) async fn notified(
        &mut self,
        to: &[Side],
        kind: &str,
        order_id: Option<&str>,
    ) -> Vec<Value> {
        let mut notices = Vec::new();
        for side in to {
            let event = self.of(*side).event("notification").await;
            let data = &event["data"];
            assert_eq!(data["kind"], kind, "{side:?}: {event}");
            if let Some(order_id) = order_id {
                assert_eq!(data["order_id"], order_id, "{side:?}: {event}");
            }
            assert!(
                data["title"].as_str().is_some_and(|t| !t.is_empty())
                    && data["body"].as_str().is_some_and(|b| !b.is_empty()),
                "{event}"
            );
            notices.push(data.clone());
        }
        notices
    }

    /// One order action by `by` over the socket: its reply, the same change
    /// on both sides, and the notifications `notices.rs` promises.
    async fn act(
        &mut self,
        by: Side,
        id: &str,
        action: Value,
        change: &str,
        notified: &[Side],
    ) -> Value {
        let mut data = action;
        data["order_id"] = json!(id);
        let reply = self.of(by).ok("order.act", data).await;
        let order = self.changed(id, change).await;
        assert_eq!(reply, order, "the reply is the order as stored");
        self.notified(notified, &format!("order.{change}"), Some(id))
            .await;
        order
    }
}

async fn lifecycle_over_the_socket(app: TestApp) {
    let (seller_user, seller_tokens) = app.seller("ada").await;
    let (_, buyer_tokens) = app.signed_up("bob").await;
    let (seller_socket, _) = Socket::connect(&app, &seller_tokens.access).await;
    let (buyer_socket, _) = Socket::connect(&app, &buyer_tokens.access).await;
    let mut live = Live {
        buyer: buyer_socket,
        seller: seller_socket,
    };
    use Side::{Buyer, Seller};

    let opened = live
        .buyer
        .ok(
            "conversation.open",
            json!({ "user_id": seller_user.id.to_string() }),
        )
        .await;
    let conversation = id_of(&opened["conversation"]);

    // The offer, sent and accepted over the socket.
    let mut send = offer_body(5_000);
    send["conversation_id"] = json!(conversation);
    let offer = live.seller.ok("offer.send", send).await;
    let offer_id = id_of(&offer);
    for side in [Seller, Buyer] {
        let event = live.of(side).event("offer.updated").await;
        assert_eq!(event["data"]["id"], offer_id.as_str(), "{event}");
        assert_eq!(event["data"]["status"], "pending", "{event}");
    }
    let notice = live.notified(&[Buyer], "offer.received", None).await;
    assert_eq!(notice[0]["offer_id"], offer_id.as_str());
    assert_eq!(notice[0]["conversation_id"], conversation.as_str());
    let listed = live
        .buyer
        .ok("offer.list", json!({ "conversation_id": conversation }))
        .await;
    assert_eq!(listed["items"][0]["id"], offer_id.as_str());
    let read = live
        .seller
        .ok("offer.get", json!({ "offer_id": offer_id }))
        .await;
    assert_eq!(read, offer);
    // Only the buyer accepts.
    assert_eq!(
        live.seller
            .refused(
                "offer.answer",
                json!({ "offer_id": offer_id, "answer": "accept" }),
            )
            .await,
        "forbidden"
    );
    let accepted = live
        .buyer
        .ok(
            "offer.answer",
            json!({ "offer_id": offer_id, "answer": "accept" }),
        )
        .await;
    assert_eq!(accepted["status"], "accepted");
    for side in [Seller, Buyer] {
        let event = live.of(side).event("offer.updated").await;
        assert_eq!(event["data"]["status"], "accepted", "{event}");
    }
    let notice = live.notified(&[Seller], "offer.accepted", None).await;
    assert_eq!(notice[0]["offer_id"], offer_id.as_str());

    // Checkout over the socket: placed, then paid.
    let key = new_key();
    let checkout = json!({
        "idempotency_key": key,
        "offer_id": offer_id,
        "payment_method": CARD_OK,
    });
    let placed = live.buyer.ok("checkout", checkout.clone()).await;
    assert_eq!(placed["replayed"], false);
    assert_eq!(placed["order"]["status"], "awaiting_requirements");
    assert_eq!(placed["order"]["total"]["amount_minor"], 5_000 + 275);
    assert_eq!(placed["payment"]["status"], "succeeded");
    let id = id_of(&placed["order"]);
    let at_placing = live.changed(&id, "placed").await;
    assert_eq!(at_placing["status"], "awaiting_payment");
    let paid = live.changed(&id, "paid").await;
    assert_eq!(paid, placed["order"]);
    let notices = live
        .notified(&[Seller, Buyer], "order.paid", Some(&id))
        .await;
    assert_eq!(notices[0]["title"], "New order");
    assert_eq!(notices[1]["offer_id"], offer_id.as_str());
    // A retry is the same order, and nothing new happens.
    let again = live.buyer.ok("checkout", checkout).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["order"], placed["order"]);
    let listed = live.buyer.ok("order.list", json!({})).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Every step, with who hears of it.
    let started = live
        .act(
            Buyer,
            &id,
            json!({ "action": "submit_requirements", "text": "A fox, in orange." }),
            "requirements_submitted",
            &[Seller],
        )
        .await;
    assert_eq!(started["status"], "in_progress");
    // The wrong side is refused over the socket as over REST.
    assert_eq!(
        live.buyer
            .refused(
                "order.act",
                json!({ "order_id": id, "action": "deliver", "message": "mine" }),
            )
            .await,
        "forbidden"
    );
    live.act(
        Seller,
        &id,
        json!({ "action": "deliver", "message": "A first fox." }),
        "delivered",
        &[Buyer],
    )
    .await;
    let revision = live
        .act(
            Buyer,
            &id,
            json!({ "action": "request_revision", "reason": "More orange." }),
            "revision_requested",
            &[Seller],
        )
        .await;
    assert_eq!(revision["revisions_used"], 1);
    live.act(
        Seller,
        &id,
        json!({ "action": "deliver", "message": "An orange fox." }),
        "delivered",
        &[Buyer],
    )
    .await;
    live.act(
        Buyer,
        &id,
        json!({ "action": "request_revision", "reason": "A bushier tail." }),
        "revision_requested",
        &[Seller],
    )
    .await;
    let asked = live
        .act(
            Seller,
            &id,
            json!({ "action": "request_extension", "days": 3, "reason": "Tails take time." }),
            "extension_requested",
            &[Buyer],
        )
        .await;
    assert_eq!(asked["extension"]["days"], 3);
    let approved = live
        .act(
            Buyer,
            &id,
            json!({ "action": "answer_extension", "approve": true }),
            "extension_approved",
            &[Seller],
        )
        .await;
    assert_eq!(
        at(&approved["due_at"]) - at(&started["due_at"]),
        TimeDelta::days(3)
    );
    live.act(
        Seller,
        &id,
        json!({ "action": "deliver", "message": "The final fox." }),
        "delivered",
        &[Buyer],
    )
    .await;
    let completed = live
        .act(
            Buyer,
            &id,
            json!({ "action": "accept" }),
            "completed",
            &[Buyer, Seller],
        )
        .await;
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["deliveries"].as_array().unwrap().len(), 3);

    let read = live.seller.ok("order.get", json!({ "order_id": id })).await;
    assert_eq!(read, completed);
    // Nothing else was said to either side.
    for side in [Buyer, Seller] {
        assert_eq!(live.of(side).backlog_events("order.updated"), 0);
        assert_eq!(live.of(side).backlog_events("notification"), 0);
    }
}

// ------------------------------------------------------ 3. cancellations

async fn cancellations_refund_the_buyer(app: TestApp) {
    let (mut seller, gig_id) = seller_with_gig(&app, "ada").await;
    let mut buyer = new_buyer(&app, "bob").await;

    // Before payment the buyer simply abandons the order.
    let placed = buy(&app, &buyer, &gig_id, None).await;
    let abandoned = id_of(&placed["order"]);
    assert_eq!(placed["order"]["status"], "awaiting_payment");
    assert_eq!(placed["payment"]["status"], "requires_payment_method");
    let cancelled = act(&app, &buyer.token, &abandoned, "cancellation", json!({}))
        .await
        .expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["refunded"]["amount_minor"], 0);
    assert!(cancelled["cancelled_at"].is_string());
    assert!(ledger(&app, &buyer.token, &abandoned).await.is_empty());
    assert!(app
        .state
        .orders
        .store()
        .refunds_for(abandoned.parse().unwrap())
        .await
        .unwrap()
        .is_empty());
    // Too late to pay for it.
    app.post_json_as(
        &buyer.token,
        &format!("/api/v1/orders/{abandoned}/payment"),
        &json!({ "payment_method": CARD_OK }),
    )
    .await
    .expect_error(409, "conflict");

    // After payment, one side asks and the other agrees.
    let mutual = paid_order(&app, &buyer, &gig_id).await;
    // Without a reason, a request is refused.
    act(&app, &seller.token, &mutual, "cancellation", json!({}))
        .await
        .expect_error(422, "validation_failed");
    let asked = act(
        &app,
        &seller.token,
        &mutual,
        "cancellation",
        json!({ "reason": "I am ill this week." }),
    )
    .await
    .expect(200);
    assert_eq!(asked["status"], "awaiting_requirements");
    assert_eq!(asked["cancellation"]["requested_by"], "seller");
    assert_eq!(asked["cancellation"]["reason"], "I am ill this week.");
    // The seller cannot answer their own request.
    act(
        &app,
        &seller.token,
        &mutual,
        "cancellation/answer",
        json!({ "accept": true }),
    )
    .await
    .expect_error(409, "conflict");
    let cancelled = act(
        &app,
        &buyer.token,
        &mutual,
        "cancellation/answer",
        json!({ "accept": true }),
    )
    .await
    .expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["refunded"]["amount_minor"], GIG_TOTAL);
    let refunds = refunds_succeeded(&app, &mutual, &[GIG_TOTAL]).await;
    assert!(refunds[0].provider_refund_id.is_some());
    assert_eq!(refunds[0].provider, "dev");
    let entries = ledger(&app, &buyer.token, &mutual).await;
    assert_eq!(kinds(&entries), ["payment", "refund"]);
    assert_eq!(entries[1].1, refund(GIG_TOTAL));
    assert_eq!(account_balances(&app).await, BTreeMap::new());

    // A declined request leaves the order running.
    let declined = paid_order(&app, &buyer, &gig_id).await;
    act(
        &app,
        &buyer.token,
        &declined,
        "cancellation",
        json!({ "reason": "Changed my mind." }),
    )
    .await
    .expect(200);
    let kept = act(
        &app,
        &seller.token,
        &declined,
        "cancellation/answer",
        json!({ "accept": false }),
    )
    .await
    .expect(200);
    assert_eq!(kept["status"], "awaiting_requirements");
    assert!(kept["cancellation"].is_null());

    // A late order: the buyer cancels at once.
    let late = started_order(&app, &buyer, &gig_id).await;
    let due = at(&order(&app, &buyer.token, &late).await["due_at"]);
    // Not late yet: cancelling needs the seller's agreement.
    let asked = act(
        &app,
        &buyer.token,
        &late,
        "cancellation",
        json!({ "reason": "Taking too long." }),
    )
    .await
    .expect(200);
    assert_eq!(asked["status"], "in_progress");
    advance(&app, TimeDelta::days(3) + TimeDelta::hours(1));
    buyer.sign_in_again(&app).await;
    seller.sign_in_again(&app).await;
    assert!(app.clock.now() > due);
    let flagged = wait_for_order(&app, &buyer.token, &late, "the order turns late", |o| {
        o["late"] == true
    })
    .await;
    assert_eq!(flagged["status"], "in_progress");
    let cancelled = act(
        &app,
        &buyer.token,
        &late,
        "cancellation",
        json!({ "reason": "It is late." }),
    )
    .await
    .expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["refunded"]["amount_minor"], GIG_TOTAL);
    refunds_succeeded(&app, &late, &[GIG_TOTAL]).await;
    let entries = ledger(&app, &seller.token, &late).await;
    assert_eq!(kinds(&entries), ["payment", "refund"]);

    // An order left unpaid for a day is cancelled by the clock.
    let unpaid = id_of(&buy(&app, &buyer, &gig_id, None).await["order"]);
    advance(&app, TimeDelta::hours(24) + TimeDelta::minutes(1));
    buyer.sign_in_again(&app).await;
    let expired = wait_for_order(
        &app,
        &buyer.token,
        &unpaid,
        "the unpaid order expires",
        |o| o["status"] == "cancelled",
    )
    .await;
    assert_eq!(expired["refunded"]["amount_minor"], 0);
    assert!(ledger(&app, &buyer.token, &unpaid).await.is_empty());

    // The only money left in escrow is the declined cancellation's order.
    assert_eq!(
        account_balances(&app).await,
        postings(&[("provider", GIG_TOTAL), ("escrow", -GIG_TOTAL)])
    );
}

// ------------------------------------------------------ 4. auto-complete

async fn a_quiet_delivery_completes_by_itself(app: TestApp) {
    let (mut seller, gig_id) = seller_with_gig(&app, "ada").await;
    let mut buyer = new_buyer(&app, "bob").await;
    let id = delivered_order(&app, &buyer, &seller, &gig_id).await;
    let delivered_at = at(&order(&app, &buyer.token, &id).await["deliveries"][0]["delivered_at"]);

    advance(&app, TimeDelta::days(3) + TimeDelta::minutes(1));
    buyer.sign_in_again(&app).await;
    seller.sign_in_again(&app).await;
    let completed = wait_for_order(&app, &seller.token, &id, "the order completes", |o| {
        o["status"] == "completed"
    })
    .await;
    assert!(at(&completed["completed_at"]) >= delivered_at + TimeDelta::days(3));
    assert_eq!(completed["deliveries"].as_array().unwrap().len(), 1);
    let entries = ledger(&app, &buyer.token, &id).await;
    assert_eq!(kinds(&entries), ["payment", "settlement"]);
    assert_eq!(
        entries[1].1,
        settlement(&seller, GIG_SELLER_NET, GIG_PLATFORM)
    );
    assert_eq!(earnings(&app, &seller).await, (GIG_SELLER_NET, 0, 0));
    // Completed: the buyer has nothing left to accept.
    act(&app, &buyer.token, &id, "acceptance", json!({}))
        .await
        .expect_error(409, "conflict");
}

// ------------------------------------------------------------ 5. disputes

async fn disputes_are_resolved_by_an_admin(app: TestApp) {
    let (seller, gig_id) = seller_with_gig(&app, "ada").await;
    let buyer = new_buyer(&app, "bob").await;
    let admin = admin(&app, "root").await;

    let id = delivered_order(&app, &buyer, &seller, &gig_id).await;
    // An admin resolves only disputed orders.
    resolve(
        &app,
        &admin.token,
        &id,
        json!({ "outcome": "complete", "reason": "Too early." }),
    )
    .await
    .expect_error(409, "conflict");
    let disputed = act(
        &app,
        &buyer.token,
        &id,
        "dispute",
        json!({ "reason": "This is not what we agreed." }),
    )
    .await
    .expect(200);
    assert_eq!(disputed["status"], "disputed");
    assert_eq!(disputed["dispute"]["opened_by"], "buyer");
    assert_eq!(disputed["dispute"]["reason"], "This is not what we agreed.");

    // Frozen: the parties can do nothing more.
    for (token, action, body, status) in [
        (&buyer.token, "acceptance", json!({}), 409),
        (&buyer.token, "revisions", json!({ "reason": "x" }), 409),
        (&buyer.token, "cancellation", json!({ "reason": "x" }), 409),
        (&buyer.token, "dispute", json!({ "reason": "again" }), 409),
        (&seller.token, "deliveries", json!({ "message": "x" }), 409),
        (&seller.token, "dispute", json!({ "reason": "me too" }), 409),
        (&seller.token, "acceptance", json!({}), 403),
        (&buyer.token, "deliveries", json!({ "message": "x" }), 403),
    ] {
        let reply = act(&app, token, &id, action, body).await;
        assert_eq!(reply.status, status, "{action}: {}", reply.body);
    }
    // Nor can they resolve it: the admin route is for admins, and the
    // order has no resolution route of its own.
    for token in [&buyer.token, &seller.token] {
        resolve(
            &app,
            token,
            &id,
            json!({ "outcome": "complete", "reason": "Mine." }),
        )
        .await
        .expect_error(403, "forbidden");
        let gone = act(
            &app,
            token,
            &id,
            "resolution",
            json!({ "outcome": "complete" }),
        )
        .await;
        assert!([404, 405].contains(&gone.status), "{gone:?}");
    }
    assert_eq!(order(&app, &buyer.token, &id).await["status"], "disputed");

    // The admin sees the order, acts on it only through the admin routes
    // (to the order's own routes an admin is no party), and refunds part
    // of it.
    assert_eq!(order(&app, &admin.token, &id).await["status"], "disputed");
    for (action, body) in every_action() {
        act(&app, &admin.token, &id, action, body)
            .await
            .expect_error(404, "not_found");
    }
    for bad in [
        json!({ "outcome": "refund", "reason": "Part." }),
        json!({ "outcome": "refund", "amount_minor": GIG_TOTAL + 1, "reason": "Part." }),
        json!({ "outcome": "refund", "amount_minor": 0, "reason": "Part." }),
        json!({ "outcome": "split", "reason": "Part." }),
        json!({ "outcome": "refund", "amount_minor": 1_000 }),
    ] {
        resolve(&app, &admin.token, &id, bad.clone())
            .await
            .expect_error(422, "validation_failed");
    }
    let resolved = resolve(
        &app,
        &admin.token,
        &id,
        json!({ "outcome": "refund", "amount_minor": 1_000, "reason": "Half the logo was usable." }),
    )
    .await
    .expect(200);
    assert_eq!(resolved["audit"]["action"], "resolve_dispute");
    let resolved = &resolved["order"];
    assert_eq!(resolved["status"], "completed");
    assert_eq!(resolved["refunded"]["amount_minor"], 1_000);
    refunds_succeeded(&app, &id, &[1_000]).await;
    // The rest settles: 15.00 of the price is left, 20% of it to the
    // platform with the whole service fee.
    let entries = ledger(&app, &admin.token, &id).await;
    assert_eq!(kinds(&entries), ["payment", "refund", "settlement"]);
    assert_eq!(entries[0].1, payment(GIG_TOTAL));
    assert_eq!(entries[1].1, refund(1_000));
    assert_eq!(entries[2].1, settlement(&seller, 1_200, GIG_FEE + 300));
    assert_eq!(earnings(&app, &seller).await, (1_200, 0, 0));

    // Another dispute, opened by the seller, resolved for the seller.
    let other = started_order(&app, &buyer, &gig_id).await;
    let disputed = act(
        &app,
        &seller.token,
        &other,
        "dispute",
        json!({ "reason": "The buyer stopped answering." }),
    )
    .await
    .expect(200);
    assert_eq!(disputed["dispute"]["opened_by"], "seller");
    let resolved = resolve(
        &app,
        &admin.token,
        &other,
        json!({ "outcome": "complete", "reason": "The work was delivered." }),
    )
    .await
    .expect(200);
    let resolved = &resolved["order"];
    assert_eq!(resolved["status"], "completed");
    assert_eq!(resolved["refunded"]["amount_minor"], 0);
    let entries = ledger(&app, &seller.token, &other).await;
    assert_eq!(kinds(&entries), ["payment", "settlement"]);
    assert_eq!(
        entries[1].1,
        settlement(&seller, GIG_SELLER_NET, GIG_PLATFORM)
    );
    assert_eq!(
        earnings(&app, &seller).await,
        (1_200 + GIG_SELLER_NET, 0, 0)
    );
    assert!(app
        .state
        .orders
        .store()
        .refunds_for(other.parse().unwrap())
        .await
        .unwrap()
        .is_empty());

    let seller_pending = format!("seller_pending:{}", seller.id());
    assert_eq!(
        account_balances(&app).await,
        postings(&[
            ("provider", 2 * GIG_TOTAL - 1_000),
            ("platform_revenue", -(GIG_FEE + 300 + GIG_PLATFORM)),
            (&seller_pending, -(1_200 + GIG_SELLER_NET)),
        ])
    );
}

// ------------------------------------------------------- 6. authorization

async fn outsiders_and_wrong_sides_are_refused(app: TestApp) {
    let (seller, gig_id) = seller_with_gig(&app, "ada").await;
    let buyer = new_buyer(&app, "bob").await;
    let outsider = new_buyer(&app, "eve").await;

    let id = started_order(&app, &buyer, &gig_id).await;
    let before = order(&app, &buyer.token, &id).await;

    // To an outsider the order does not exist, whatever they try.
    app.get_json_as(&outsider.token, &format!("/api/v1/orders/{id}"))
        .await
        .expect_error(404, "not_found");
    app.get_json_as(&outsider.token, &format!("/api/v1/orders/{id}/ledger"))
        .await
        .expect_error(404, "not_found");
    app.post_json_as(
        &outsider.token,
        &format!("/api/v1/orders/{id}/payment"),
        &json!({ "payment_method": CARD_OK }),
    )
    .await
    .expect_error(404, "not_found");
    for (action, body) in every_action() {
        act(&app, &outsider.token, &id, action, body)
            .await
            .expect_error(404, "not_found");
    }
    // Disputes are resolved under `/admin`: the order's own resolution
    // route is gone, for its parties too.
    let gone = act(
        &app,
        &buyer.token,
        &id,
        "resolution",
        json!({ "outcome": "complete" }),
    )
    .await;
    assert!([404, 405].contains(&gone.status), "{gone:?}");
    let listed = app
        .get_json_as(&outsider.token, "/api/v1/orders")
        .await
        .expect(200);
    assert_eq!(listed["items"], json!([]));
    // A made-up order is as absent.
    let made_up = Uuid::new_v4();
    app.get_json_as(&buyer.token, &format!("/api/v1/orders/{made_up}"))
        .await
        .expect_error(404, "not_found");
    act(
        &app,
        &buyer.token,
        &made_up.to_string(),
        "acceptance",
        json!({}),
    )
    .await
    .expect_error(404, "not_found");

    // Each side may do only its own part.
    act(
        &app,
        &buyer.token,
        &id,
        "deliveries",
        json!({ "message": "I did it myself." }),
    )
    .await
    .expect_error(403, "forbidden");
    act(
        &app,
        &buyer.token,
        &id,
        "extension",
        json!({ "days": 1, "reason": "x" }),
    )
    .await
    .expect_error(403, "forbidden");
    act(&app, &seller.token, &id, "acceptance", json!({}))
        .await
        .expect_error(403, "forbidden");
    act(
        &app,
        &seller.token,
        &id,
        "requirements",
        json!({ "text": "my own" }),
    )
    .await
    .expect_error(403, "forbidden");
    act(
        &app,
        &seller.token,
        &id,
        "revisions",
        json!({ "reason": "x" }),
    )
    .await
    .expect_error(403, "forbidden");
    // The seller does not pay the buyer's order (it is not theirs to pay).
    app.post_json_as(
        &seller.token,
        &format!("/api/v1/orders/{id}/payment"),
        &json!({ "payment_method": CARD_OK }),
    )
    .await
    .expect_error(404, "not_found");
    assert_eq!(order(&app, &seller.token, &id).await, before);

    // Offers: the wrong side is refused, outsiders see nothing.
    let conversation = conversation(&app, &buyer, &seller).await;
    let offer = send_offer(&app, &seller, &conversation, &offer_body(8_000))
        .await
        .expect(201);
    let offer_id = id_of(&offer);
    // Only a seller in the conversation sends offers.
    send_offer(&app, &buyer, &conversation, &offer_body(8_000))
        .await
        .expect_error(403, "forbidden");
    send_offer(&app, &outsider, &conversation, &offer_body(8_000))
        .await
        .expect_error(404, "not_found");
    for (token, answer, status) in [
        (&seller.token, "accept", 403),
        (&seller.token, "decline", 403),
        (&buyer.token, "withdraw", 403),
        (&outsider.token, "accept", 404),
        (&outsider.token, "decline", 404),
        (&outsider.token, "withdraw", 404),
    ] {
        let reply = app
            .post_as(token, &format!("/api/v1/offers/{offer_id}/{answer}"))
            .await;
        assert_eq!(reply.status, status, "{answer}: {}", reply.body);
    }
    app.get_json_as(&outsider.token, &format!("/api/v1/offers/{offer_id}"))
        .await
        .expect_error(404, "not_found");
    app.get_json_as(
        &outsider.token,
        &format!("/api/v1/conversations/{conversation}/offers"),
    )
    .await
    .expect_error(404, "not_found");
    // A pending offer is not for sale yet.
    checkout(
        &app,
        &buyer.token,
        Some(&new_key()),
        &json!({ "offer_id": offer_id }),
    )
    .await
    .expect_error(409, "conflict");
    let accepted = app
        .post_as(&buyer.token, &format!("/api/v1/offers/{offer_id}/accept"))
        .await
        .expect(200);
    assert_eq!(accepted["status"], "accepted");
    // Answered: it cannot be answered again.
    app.post_as(
        &seller.token,
        &format!("/api/v1/offers/{offer_id}/withdraw"),
    )
    .await
    .expect_error(409, "conflict");

    // Nobody checks out someone else's offer, nor buys from themselves.
    checkout(
        &app,
        &outsider.token,
        Some(&new_key()),
        &json!({ "offer_id": offer_id, "payment_method": CARD_OK }),
    )
    .await
    .expect_error(404, "not_found");
    checkout(
        &app,
        &seller.token,
        Some(&new_key()),
        &json!({ "offer_id": offer_id, "payment_method": CARD_OK }),
    )
    .await
    .expect_error(409, "conflict");
    checkout(
        &app,
        &seller.token,
        Some(&new_key()),
        &json!({ "gig_id": gig_id, "package": "basic", "payment_method": CARD_OK }),
    )
    .await
    .expect_error(403, "forbidden");
    let offer = app
        .get_json_as(&buyer.token, &format!("/api/v1/offers/{offer_id}"))
        .await
        .expect(200);
    assert!(offer["order_id"].is_null(), "{offer}");
    // The buyer can; only once.
    let placed = checkout(
        &app,
        &buyer.token,
        Some(&new_key()),
        &json!({ "offer_id": offer_id }),
    )
    .await
    .expect(201);
    assert_eq!(placed["order"]["status"], "awaiting_payment");
    checkout(
        &app,
        &buyer.token,
        Some(&new_key()),
        &json!({ "offer_id": offer_id }),
    )
    .await
    .expect_error(409, "conflict");
    // And the outsider's ledger view of it is as empty as ever.
    let placed_id = id_of(&placed["order"]);
    app.get_json_as(
        &outsider.token,
        &format!("/api/v1/orders/{placed_id}/ledger"),
    )
    .await
    .expect_error(404, "not_found");
    // Without a token, nothing.
    app.get_json(&format!("/api/v1/orders/{id}"))
        .await
        .expect_error(401, "unauthorized");
}

/// Every order action, each with a valid body.
fn every_action() -> Vec<(&'static str, Value)> {
    vec![
        ("requirements", json!({ "text": "x" })),
        ("deliveries", json!({ "message": "x" })),
        ("acceptance", json!({})),
        ("revisions", json!({ "reason": "x" })),
        ("extension", json!({ "days": 1, "reason": "x" })),
        ("extension/answer", json!({ "approve": true })),
        ("cancellation", json!({ "reason": "x" })),
        ("cancellation/answer", json!({ "accept": true })),
        ("dispute", json!({ "reason": "x" })),
    ]
}

// ---------------------------------------- 7. idempotency and concurrency

async fn checkout_is_idempotent_and_actions_race_safely(app: TestApp) {
    let (seller, gig_id) = seller_with_gig(&app, "ada").await;
    let buyer = new_buyer(&app, "bob").await;
    let body = json!({ "gig_id": gig_id, "package": "basic", "payment_method": CARD_OK });

    // A retry with the same key and body is the same order, paid once.
    let key = new_key();
    let first = checkout(&app, &buyer.token, Some(&key), &body)
        .await
        .expect(201);
    let id = id_of(&first["order"]);
    let again = checkout(&app, &buyer.token, Some(&key), &body)
        .await
        .expect(200);
    assert_eq!(again["order"], first["order"]);
    assert_eq!(again["payment"]["intent_id"], first["payment"]["intent_id"]);
    assert_eq!(again["payment"]["status"], "succeeded");
    assert_eq!(kinds(&ledger(&app, &buyer.token, &id).await), ["payment"]);

    // The same key with something else is refused, and changes nothing.
    for other in [
        json!({ "gig_id": gig_id, "package": "basic" }),
        json!({ "gig_id": gig_id, "package": "basic", "payment_method": "pm_card_visa" }),
        json!({ "gig_id": Uuid::new_v4(), "package": "basic", "payment_method": CARD_OK }),
    ] {
        checkout(&app, &buyer.token, Some(&key), &other)
            .await
            .expect_error(409, "conflict");
    }
    // Keys are per buyer: another buyer's same key is their own order.
    let other_buyer = new_buyer(&app, "carol").await;
    let theirs = checkout(&app, &other_buyer.token, Some(&key), &body)
        .await
        .expect(201);
    assert_ne!(id_of(&theirs["order"]), id);

    // No key, or a bad one: refused before anything happens.
    checkout(&app, &buyer.token, None, &body)
        .await
        .expect_error(400, "bad_request");
    for bad in ["", "two words", &"k".repeat(256)] {
        checkout(&app, &buyer.token, Some(bad), &body)
            .await
            .expect_error(400, "bad_request");
    }

    // Two identical requests at once: one order, one payment.
    let key = new_key();
    let (a, b) = tokio::join!(
        checkout(&app, &buyer.token, Some(&key), &body),
        checkout(&app, &buyer.token, Some(&key), &body),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 201], "{} / {}", a.body, b.body);
    let raced = id_of(&a.body["order"]);
    assert_eq!(id_of(&b.body["order"]), raced);
    let raced_order = order(&app, &buyer.token, &raced).await;
    assert_eq!(raced_order["status"], "awaiting_requirements");
    assert_eq!(
        kinds(&ledger(&app, &buyer.token, &raced).await),
        ["payment"]
    );
    let mine = app
        .get_json_as(&buyer.token, "/api/v1/orders")
        .await
        .expect(200);
    let mut ids: Vec<String> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    ids.sort();
    let mut want = vec![id.clone(), raced.clone()];
    want.sort();
    assert_eq!(ids, want);

    // Two conflicting answers to one delivery at once: exactly one wins.
    for (path, body, wins_as) in [
        (
            "revisions",
            json!({ "reason": "Again." }),
            "revision_requested",
        ),
        ("dispute", json!({ "reason": "Wrong." }), "disputed"),
    ] {
        let id = delivered_order(&app, &buyer, &seller, &gig_id).await;
        let (accepted, other) = tokio::join!(
            act(&app, &buyer.token, &id, "acceptance", json!({})),
            act(&app, &buyer.token, &id, path, body),
        );
        let mut statuses = [accepted.status, other.status];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 409],
            "{path}: {} / {}",
            accepted.body,
            other.body
        );
        let (winner, loser) = if accepted.status == 200 {
            (&accepted, &other)
        } else {
            (&other, &accepted)
        };
        assert_eq!(loser.body["code"], "conflict");
        let stored = order(&app, &buyer.token, &id).await;
        assert_eq!(stored, winner.body, "the winner's change is what is stored");
        let entries = ledger(&app, &buyer.token, &id).await;
        if accepted.status == 200 {
            assert_eq!(stored["status"], "completed");
            assert_eq!(kinds(&entries), ["payment", "settlement"]);
        } else {
            assert_eq!(stored["status"], wins_as);
            assert_eq!(kinds(&entries), ["payment"]);
        }
    }
    account_balances(&app).await;
}

// ------------------------------------------------- 8. declines, extra step

async fn declined_and_authenticated_cards(app: TestApp) {
    let (_seller, gig_id) = seller_with_gig(&app, "ada").await;
    let buyer = new_buyer(&app, "bob").await;
    let outsider = new_buyer(&app, "eve").await;

    // A declined card: the order waits for another, saying why.
    let placed = buy(&app, &buyer, &gig_id, Some(CARD_DECLINED)).await;
    let id = id_of(&placed["order"]);
    assert_eq!(placed["order"]["status"], "awaiting_payment");
    assert_eq!(placed["order"]["price"]["amount_minor"], GIG_PRICE);
    assert_eq!(placed["order"]["service_fee"]["amount_minor"], GIG_FEE);
    assert_eq!(placed["order"]["total"]["amount_minor"], GIG_TOTAL);
    assert_eq!(placed["order"]["payment_error"], DECLINED);
    assert!(placed["order"]["paid_at"].is_null());
    assert_eq!(placed["payment"]["status"], "requires_payment_method");
    assert_eq!(placed["payment"]["error"], DECLINED);
    assert!(ledger(&app, &buyer.token, &id).await.is_empty());
    // Another card goes through.
    let paid = app
        .post_json_as(
            &buyer.token,
            &format!("/api/v1/orders/{id}/payment"),
            &json!({ "payment_method": CARD_OK }),
        )
        .await
        .expect(200);
    assert_eq!(paid["order"]["status"], "awaiting_requirements");
    assert!(paid["order"]["payment_error"].is_null());
    assert!(paid["order"]["paid_at"].is_string());
    assert_eq!(paid["payment"]["status"], "succeeded");
    assert_eq!(paid["payment"]["amount"]["amount_minor"], GIG_TOTAL);
    assert_eq!(
        ledger(&app, &buyer.token, &id).await,
        [("payment".to_string(), payment(GIG_TOTAL))]
    );
    // Paid: there is nothing more to pay.
    app.post_json_as(
        &buyer.token,
        &format!("/api/v1/orders/{id}/payment"),
        &json!({ "payment_method": CARD_OK }),
    )
    .await
    .expect_error(409, "conflict");
    // Not a card the provider knows.
    let unpaid = id_of(&buy(&app, &buyer, &gig_id, None).await["order"]);
    app.post_json_as(
        &buyer.token,
        &format!("/api/v1/orders/{unpaid}/payment"),
        &json!({ "payment_method": "4111111111111111" }),
    )
    .await
    .expect_error(422, "validation_failed");
    assert_eq!(
        order(&app, &buyer.token, &unpaid).await["status"],
        "awaiting_payment"
    );

    // A card that needs the bank's extra step.
    let placed = buy(&app, &buyer, &gig_id, Some(CARD_EXTRA_STEP)).await;
    let id = id_of(&placed["order"]);
    assert_eq!(placed["order"]["status"], "awaiting_payment");
    assert_eq!(placed["payment"]["status"], "requires_action");
    let intent = placed["payment"]["intent_id"].as_str().unwrap().to_string();
    let authenticate = format!("/api/v1/payments/dev/{intent}/authenticate");
    // Only the buyer completes it.
    app.post_json_as(&outsider.token, &authenticate, &json!({ "approve": true }))
        .await
        .expect_error(404, "not_found");
    assert!(ledger(&app, &buyer.token, &id).await.is_empty());
    let done = app
        .post_json_as(&buyer.token, &authenticate, &json!({ "approve": true }))
        .await
        .expect(200);
    assert_eq!(done["order"]["status"], "awaiting_requirements");
    assert_eq!(done["payment"]["status"], "succeeded");
    assert_eq!(kinds(&ledger(&app, &buyer.token, &id).await), ["payment"]);

    // Refused at the bank: the order waits for another card.
    let placed = buy(
        &app,
        &buyer,
        &gig_id,
        Some("pm_card_authenticationRequired"),
    )
    .await;
    let id = id_of(&placed["order"]);
    let intent = placed["payment"]["intent_id"].as_str().unwrap().to_string();
    let refused = app
        .post_json_as(
            &buyer.token,
            &format!("/api/v1/payments/dev/{intent}/authenticate"),
            &json!({ "approve": false }),
        )
        .await
        .expect(200);
    assert_eq!(refused["order"]["status"], "awaiting_payment");
    assert!(
        refused["order"]["payment_error"]
            .as_str()
            .is_some_and(|e| e.contains("authentication")),
        "{refused}"
    );
    let paid = app
        .post_json_as(
            &buyer.token,
            &format!("/api/v1/orders/{id}/payment"),
            &json!({ "payment_method": "pm_card_visa" }),
        )
        .await
        .expect(200);
    assert_eq!(paid["order"]["status"], "awaiting_requirements");
    assert_eq!(kinds(&ledger(&app, &buyer.token, &id).await), ["payment"]);
    assert_eq!(
        account_balances(&app).await,
        postings(&[("provider", 3 * GIG_TOTAL), ("escrow", -3 * GIG_TOTAL)])
    );
}

// --------------------------------------------------- 9. Stripe (localstripe)

const STRIPE_SECRET_KEY: &str = "sk_test_marketplace";
const STRIPE_WEBHOOK_SECRET: &str = "whsec_marketplace_test";

/// One webhook delivery from localstripe as the relay passed it on.
#[derive(Clone, Debug)]
struct Delivery {
    body: Vec<u8>,
    signature: Option<String>,
    /// What the server answered.
    status: u16,
}

impl Delivery {
    fn event(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Passes localstripe's webhooks on to the server, recording each.
struct Relay {
    target: OnceLock<String>,
    client: reqwest::Client,
    deliveries: Mutex<Vec<Delivery>>,
}

async fn relay_webhook(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(target) = relay.target.get() else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut request = relay
        .client
        .post(target)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = &signature {
        request = request.header("stripe-signature", signature);
    }
    let status = match request.send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 502,
    };
    relay.deliveries.lock().unwrap().push(Delivery {
        body: body.to_vec(),
        signature,
        status,
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY)
}

/// localstripe and the relay in front of the server's webhook; both stop
/// on drop.
struct StripeDouble {
    localstripe: testkit::Service,
    relay: Arc<Relay>,
    relay_url: String,
    task: JoinHandle<()>,
}

impl Drop for StripeDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StripeDouble {
    async fn start() -> Self {
        let localstripe = testkit::localstripe();
        let relay = Arc::new(Relay {
            target: OnceLock::new(),
            client: reqwest::Client::new(),
            deliveries: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_url = format!("http://{}/webhook", listener.local_addr().unwrap());
        let router = axum::Router::new()
            .route("/webhook", axum::routing::post(relay_webhook))
            .with_state(relay.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            localstripe,
            relay,
            relay_url,
            task,
        }
    }

    fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}/", self.localstripe.port())
    }

    /// Has localstripe sign its events for the server's webhook and send
    /// them through the relay.
    fn connect(&self, app: &TestApp) {
        self.relay
            .target
            .set(app.url("/api/v1/webhooks/stripe"))
            .unwrap();
        testkit::localstripe_webhook(
            &self.localstripe,
            "marketplace",
            &self.relay_url,
            STRIPE_WEBHOOK_SECRET,
        );
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.relay.deliveries.lock().unwrap().clone()
    }

    /// Waits (bounded) for the delivery of the event `kind` about `object`.
    async fn delivery_of(&self, kind: &str, object: &str) -> Delivery {
        eventually(&format!("a {kind} webhook about {object}"), || async {
            let deliveries = self.deliveries();
            deliveries
                .iter()
                .find(|d| {
                    let event = d.event();
                    event["type"] == kind && event["data"]["object"]["id"] == object
                })
                .cloned()
                .ok_or_else(|| {
                    let seen: Vec<Value> = deliveries
                        .iter()
                        .map(|d| d.event()["type"].clone())
                        .collect();
                    format!("{seen:?}")
                })
        })
        .await
    }

    /// The refunds localstripe holds for the intent: their amounts.
    async fn refunded(&self, intent: &str) -> Vec<i64> {
        let url = format!("{}v1/refunds?payment_intent={intent}", self.api_base());
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(STRIPE_SECRET_KEY)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(response.status(), 200, "GET {url}");
        let list: Value = response.json().await.unwrap();
        list["data"]
            .as_array()
            .unwrap_or_else(|| panic!("a list: {list}"))
            .iter()
            .map(|refund| refund["amount"].as_i64().unwrap())
            .collect()
    }
}

/// Points the settings at the Stripe API at `api_base` (localstripe).
fn configure_stripe(settings: &mut Settings, api_base: String) {
    let payments = &mut settings.payments;
    payments.provider = PaymentProviderKind::Stripe;
    payments.stripe_secret_key = SecretString::from(STRIPE_SECRET_KEY.to_string());
    payments.stripe_api_base = api_base;
    payments.stripe_webhook_secret = SecretString::from(STRIPE_WEBHOOK_SECRET.to_string());
}

/// Posts a webhook body to the server as Stripe would.
async fn post_webhook(app: &TestApp, body: &[u8], signature: Option<&str>) -> Reply {
    let mut request = app
        .request(Method::POST, "/api/v1/webhooks/stripe")
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    app.send(request).await
}

#[tokio::test]
async fn stripe_on_sqlite() {
    stripe_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn stripe_on_postgres() {
    stripe_on(Backend::Postgres).await;
}

async fn stripe_on(backend: Backend) {
    let double = StripeDouble::start().await;
    let api_base = double.api_base();
    crate::helpers::run_scenario_changed(
        backend,
        |settings| configure_stripe(settings, api_base),
        |app| paid_and_refunded_through_localstripe(app, double),
    )
    .await;
}

async fn paid_and_refunded_through_localstripe(app: TestApp, double: StripeDouble) {
    double.connect(&app);
    let (seller, gig_id) = seller_with_gig(&app, "ada").await;
    let buyer = new_buyer(&app, "bob").await;

    // Paid with a card; the signed webhook tells the server.
    let placed = buy(&app, &buyer, &gig_id, Some(CARD_OK)).await;
    let id = id_of(&placed["order"]);
    assert_eq!(placed["order"]["payment_provider"], "stripe");
    assert_eq!(placed["order"]["total"]["amount_minor"], GIG_TOTAL);
    let intent = placed["payment"]["intent_id"].as_str().unwrap().to_string();
    assert!(intent.starts_with("pi_"), "{intent}");
    let paid = wait_for_order(&app, &buyer.token, &id, "paid by the webhook", |o| {
        o["status"] == "awaiting_requirements"
    })
    .await;
    assert!(paid["paid_at"].is_string());
    let genuine = double
        .delivery_of("payment_intent.succeeded", &intent)
        .await;
    assert_eq!(genuine.status, 204, "the genuine event was applied");
    assert_eq!(
        ledger(&app, &buyer.token, &id).await,
        [("payment".to_string(), payment(GIG_TOTAL))]
    );

    // The same event delivered again, twice: applied once.
    let signature = genuine.signature.clone().expect("localstripe signs");
    for _ in 0..2 {
        post_webhook(&app, &genuine.body, Some(&signature))
            .await
            .expect(204);
    }
    assert_eq!(order(&app, &buyer.token, &id).await, paid);
    assert_eq!(kinds(&ledger(&app, &buyer.token, &id).await), ["payment"]);

    // A forged event: an unpaid order's intent in a genuine body, under
    // the genuine signature (of another body), or under none.
    // (Placed with the longest key a buyer may send.)
    let unpaid = checkout(
        &app,
        &buyer.token,
        Some(&"k".repeat(255)),
        &json!({ "gig_id": gig_id, "package": "basic" }),
    )
    .await
    .expect(201);
    let unpaid_id = id_of(&unpaid["order"]);
    let unpaid_intent = unpaid["payment"]["intent_id"].as_str().unwrap();
    let forged = String::from_utf8(genuine.body.clone())
        .unwrap()
        .replace(&intent, unpaid_intent);
    assert_ne!(forged.as_bytes(), genuine.body.as_slice());
    post_webhook(&app, forged.as_bytes(), Some(&signature))
        .await
        .expect_error(400, "bad_request");
    post_webhook(&app, forged.as_bytes(), None)
        .await
        .expect_error(400, "bad_request");
    let flipped = if signature.ends_with('0') { '1' } else { '0' };
    let bad_signature = format!("{}{flipped}", &signature[..signature.len() - 1]);
    post_webhook(&app, &genuine.body, Some(&bad_signature))
        .await
        .expect_error(400, "bad_request");
    let still = order(&app, &buyer.token, &unpaid_id).await;
    assert_eq!(still["status"], "awaiting_payment");
    assert_eq!(still["version"], unpaid["order"]["version"]);
    assert!(ledger(&app, &buyer.token, &unpaid_id).await.is_empty());

    // A correctly signed delivery whose timestamp is six minutes old by
    // the server's clock is stale.
    let signed_at = signature
        .split(',')
        .find_map(|part| part.strip_prefix("t="))
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .unwrap_or_else(|| panic!("no timestamp in {signature}"));
    let six_minutes_on = signed_at + TimeDelta::minutes(6) - app.clock.now();
    app.clock.advance(six_minutes_on);
    post_webhook(&app, &genuine.body, Some(&signature))
        .await
        .expect_error(400, "bad_request");
    app.clock.advance(-six_minutes_on);

    // Cancelled by agreement: the refund goes to localstripe.
    act(
        &app,
        &seller.token,
        &id,
        "cancellation",
        json!({ "reason": "I cannot do it after all." }),
    )
    .await
    .expect(200);
    let cancelled = act(
        &app,
        &buyer.token,
        &id,
        "cancellation/answer",
        json!({ "accept": true }),
    )
    .await
    .expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["refunded"]["amount_minor"], GIG_TOTAL);
    let refunds = refunds_succeeded(&app, &id, &[GIG_TOTAL]).await;
    assert_eq!(refunds[0].provider, "stripe");
    assert!(
        refunds[0]
            .provider_refund_id
            .as_deref()
            .is_some_and(|r| r.starts_with("re_")),
        "{refunds:?}"
    );
    assert_eq!(double.refunded(&intent).await, [GIG_TOTAL]);
    let entries = ledger(&app, &buyer.token, &id).await;
    assert_eq!(kinds(&entries), ["payment", "refund"]);
    // The payment event once more, after the cancellation: still nothing.
    post_webhook(&app, &genuine.body, Some(&signature))
        .await
        .expect(204);
    assert_eq!(ledger(&app, &buyer.token, &id).await, entries);
    assert_eq!(double.refunded(&intent).await, [GIG_TOTAL]);
    assert_eq!(account_balances(&app).await, BTreeMap::new());

    // Every genuine delivery was accepted.
    for delivery in double.deliveries() {
        assert_eq!(
            delivery.status,
            204,
            "{}",
            String::from_utf8_lossy(&delivery.body)
        );
    }
}
