//! The order clock across restarts, and the paths of an order the
//! `orders` scenarios leave out: offers that expire or are answered, an
//! admin's cancellation, extensions and lateness, paying and listing over
//! the socket, and the files a seller delivers.
//!
//! Built on the fixtures of `orders` (parties, checkout, the ledger, both
//! parties' sockets). The clock moves as there: `advance` (which wakes the
//! order clock), then a bounded poll for what the clock did. Deadlines are
//! stored, so a restarted server must apply each exactly once: the ledger
//! and the parties' event streams show how often.

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{eventually, image_bytes, Reply, TestApp};
use crate::orders::{
    account_balances, act, admin, advance, at, buy, checkout, conversation, delivered_order,
    earnings, id_of, kinds, ledger, new_buyer, new_key, offer_body, order, paid_order, payment,
    postings, refund, refunds_succeeded, seller_with_gig, send_offer, settlement, started_order,
    wait_for_order, Live, Party, Side, CARD_DECLINED, CARD_OK, DECLINED, GIG_PLATFORM,
    GIG_SELLER_NET, GIG_TOTAL,
};
use crate::socket::Socket;

backend_tests!(
    deadlines_survive_a_restart,
    deadlines_passed_while_down_apply_once_at_start,
    offers_expire_or_are_answered,
    an_offer_is_checked_out_once,
    admin_cancellation_extensions_and_lateness,
    paying_and_listing_over_the_socket,
    delivery_files_stay_with_their_order,
);

/// `POST /admin/orders/{id}/cancel` as `admin`.
async fn admin_cancel(app: &TestApp, admin: &Party, id: &str, reason: &str) -> Reply {
    app.post_json_as(
        &admin.token,
        &format!("/api/v1/admin/orders/{id}/cancel"),
        &json!({ "reason": reason }),
    )
    .await
}

/// Both parties' sockets, connected now (from the head of their streams).
async fn connect(app: &TestApp, buyer: &Party, seller: &Party) -> Live {
    Live {
        buyer: Socket::connect(app, &buyer.token).await.0,
        seller: Socket::connect(app, &seller.token).await.0,
    }
}

/// New access tokens for both (after the clock moved past their expiry).
async fn sign_in_again(app: &TestApp, parties: [&mut Party; 2]) {
    for party in parties {
        party.sign_in_again(app).await;
    }
}

/// The last thing either party hears of is a new unpaid order: every
/// event before it was already taken, so nothing was said twice.
async fn nothing_more_than_a_new_order(
    app: &TestApp,
    live: &mut Live,
    buyer: &Party,
    gig_id: &str,
) {
    let marker = id_of(&buy(app, buyer, gig_id, None).await["order"]);
    live.changed(&marker, "placed").await;
    for side in [Side::Buyer, Side::Seller] {
        let socket = live.of(side);
        assert_eq!(socket.backlog_events("order.updated"), 0, "{side:?}");
        assert_eq!(socket.backlog_events("notification"), 0, "{side:?}");
        assert_eq!(socket.backlog_events("offer.updated"), 0, "{side:?}");
    }
}

// ------------------------------------------------ 1. deadlines, restarted

async fn deadlines_survive_a_restart(app: TestApp) {
    let (mut seller, gig_id) = seller_with_gig(&app, "ada").await;
    let mut buyer = new_buyer(&app, "bob").await;
    let unpaid = id_of(&buy(&app, &buyer, &gig_id, None).await["order"]);
    let delivered = delivered_order(&app, &buyer, &seller, &gig_id).await;
    let completed = delivered_order(&app, &buyer, &seller, &gig_id).await;
    act(&app, &buyer.token, &completed, "acceptance", json!({}))
        .await
        .expect(200);
    let mut before = Vec::new();
    for id in [&unpaid, &delivered, &completed] {
        before.push(order(&app, &buyer.token, id).await);
    }

    // The server stops and starts again on the same database and clock:
    // every order reads as before.
    let app = app.restart(|_| {}).await;
    for (id, was) in [&unpaid, &delivered, &completed].into_iter().zip(&before) {
        assert_eq!(&order(&app, &buyer.token, id).await, was);
    }
    let mut live = connect(&app, &buyer, &seller).await;

    // A day later the unpaid order expires, once.
    advance(&app, TimeDelta::hours(24) + TimeDelta::minutes(1));
    sign_in_again(&app, [&mut buyer, &mut seller]).await;
    let expired = wait_for_order(
        &app,
        &buyer.token,
        &unpaid,
        "the unpaid order expires",
        |o| o["status"] == "cancelled",
    )
    .await;
    assert_eq!(live.changed(&unpaid, "cancelled").await, expired);
    live.notified(
        &[Side::Buyer, Side::Seller],
        "order.cancelled",
        Some(&unpaid),
    )
    .await;
    assert_eq!(expired["refunded"]["amount_minor"], 0);
    assert!(ledger(&app, &buyer.token, &unpaid).await.is_empty());
    // The delivery is not three days old yet.
    assert_eq!(
        order(&app, &buyer.token, &delivered).await["status"],
        "delivered"
    );

    // Three days after the delivery the order completes by itself: one
    // settlement.
    advance(&app, TimeDelta::days(2) + TimeDelta::minutes(1));
    sign_in_again(&app, [&mut buyer, &mut seller]).await;
    let done = wait_for_order(&app, &seller.token, &delivered, "auto-completion", |o| {
        o["status"] == "completed"
    })
    .await;
    assert_eq!(live.changed(&delivered, "completed").await, done);
    live.notified(
        &[Side::Buyer, Side::Seller],
        "order.completed",
        Some(&delivered),
    )
    .await;
    assert_eq!(
        ledger(&app, &buyer.token, &delivered).await,
        [
            ("payment".to_string(), payment(GIG_TOTAL)),
            (
                "settlement".to_string(),
                settlement(&seller, GIG_SELLER_NET, GIG_PLATFORM)
            ),
        ]
    );

    // Fourteen days after the acceptance its earnings clear: one clearance.
    advance(&app, TimeDelta::days(11));
    sign_in_again(&app, [&mut buyer, &mut seller]).await;
    let cleared = wait_for_order(&app, &seller.token, &completed, "clearance", |o| {
        o["cleared_at"].is_string()
    })
    .await;
    assert_eq!(cleared["status"], "completed");
    assert_eq!(live.changed(&completed, "cleared").await, cleared);
    live.notified(&[Side::Seller], "order.cleared", Some(&completed))
        .await;
    let seller_pending = format!("seller_pending:{}", seller.id());
    let seller_available = format!("seller_available:{}", seller.id());
    let entries = ledger(&app, &seller.token, &completed).await;
    assert_eq!(kinds(&entries), ["payment", "settlement", "clearance"]);
    assert_eq!(
        entries[2].1,
        postings(&[
            (&seller_pending, GIG_SELLER_NET),
            (&seller_available, -GIG_SELLER_NET)
        ])
    );
    // The auto-completed order clears only fourteen days after its own
    // completion.
    assert_eq!(
        kinds(&ledger(&app, &seller.token, &delivered).await),
        ["payment", "settlement"]
    );
    assert_eq!(
        earnings(&app, &seller).await,
        (GIG_SELLER_NET, GIG_SELLER_NET, 0)
    );

    nothing_more_than_a_new_order(&app, &mut live, &buyer, &gig_id).await;
    assert_eq!(
        account_balances(&app).await,
        postings(&[
            ("provider", 2 * GIG_TOTAL),
            ("platform_revenue", -2 * GIG_PLATFORM),
            (&seller_pending, -GIG_SELLER_NET),
            (&seller_available, -GIG_SELLER_NET),
        ])
    );
}

async fn deadlines_passed_while_down_apply_once_at_start(app: TestApp) {
    let (mut seller, gig_id) = seller_with_gig(&app, "ada").await;
    let mut buyer = new_buyer(&app, "bob").await;
    let unpaid = id_of(&buy(&app, &buyer, &gig_id, None).await["order"]);
    let delivered = delivered_order(&app, &buyer, &seller, &gig_id).await;
    // Where each party's event stream stands before the stop.
    let buyer_cursor = Socket::connect(&app, &buyer.token).await.0.cursor;
    let seller_cursor = Socket::connect(&app, &seller.token).await.0.cursor;

    // Three days pass while the server is down.
    let clock = app.clock.clone();
    let app = app
        .restart(move |_| clock.advance(TimeDelta::days(3) + TimeDelta::minutes(1)))
        .await;
    sign_in_again(&app, [&mut buyer, &mut seller]).await;

    // Nobody wakes the clock: its first look after the start applies both.
    let done = wait_for_order(&app, &buyer.token, &delivered, "auto-completion", |o| {
        o["status"] == "completed"
    })
    .await;
    let expired = wait_for_order(&app, &buyer.token, &unpaid, "the unpaid expiry", |o| {
        o["status"] == "cancelled"
    })
    .await;
    assert_eq!(
        kinds(&ledger(&app, &buyer.token, &delivered).await),
        ["payment", "settlement"]
    );
    assert!(ledger(&app, &buyer.token, &unpaid).await.is_empty());

    // Resumed from before the stop, each stream holds each change once
    // (the earlier deadline first), then nothing until a new order.
    let mut live = Live {
        buyer: Socket::resume(&app, &buyer.token, Some(buyer_cursor))
            .await
            .0,
        seller: Socket::resume(&app, &seller.token, Some(seller_cursor))
            .await
            .0,
    };
    assert_eq!(live.changed(&unpaid, "cancelled").await, expired);
    assert_eq!(live.changed(&delivered, "completed").await, done);
    live.notified(
        &[Side::Buyer, Side::Seller],
        "order.cancelled",
        Some(&unpaid),
    )
    .await;
    live.notified(
        &[Side::Buyer, Side::Seller],
        "order.completed",
        Some(&delivered),
    )
    .await;
    nothing_more_than_a_new_order(&app, &mut live, &buyer, &gig_id).await;
    assert_eq!(earnings(&app, &seller).await, (GIG_SELLER_NET, 0, 0));
}

// --------------------------------------------------------------- 2. offers

/// The next `offer.updated` of both sides is the offer `id` in `status`;
/// the offer as they saw it.
async fn offer_seen(live: &mut Live, id: &str, status: &str) -> Value {
    let seller = live.seller.event("offer.updated").await;
    let buyer = live.buyer.event("offer.updated").await;
    assert_eq!(
        seller["data"], buyer["data"],
        "both sides see the same offer"
    );
    let offer = buyer["data"].clone();
    assert_eq!(
        (offer["id"].as_str(), offer["status"].as_str()),
        (Some(id), Some(status)),
        "{offer}"
    );
    offer
}

async fn answer(app: &TestApp, party: &Party, offer_id: &str, answer: &str) -> Reply {
    app.post_as(&party.token, &format!("/api/v1/offers/{offer_id}/{answer}"))
        .await
}

async fn offer_status(app: &TestApp, party: &Party, offer_id: &str) -> Value {
    app.get_json_as(&party.token, &format!("/api/v1/offers/{offer_id}"))
        .await
        .expect(200)["status"]
        .clone()
}

async fn offers_expire_or_are_answered(app: TestApp) {
    let (mut seller, gig_id) = seller_with_gig(&app, "ada").await;
    let mut buyer = new_buyer(&app, "bob").await;
    let conversation = conversation(&app, &buyer, &seller).await;
    let mut live = connect(&app, &buyer, &seller).await;

    // Refused offers name every bad field, and nothing is sent.
    let reply = send_offer(
        &app,
        &seller,
        &conversation,
        &json!({
            "title": " ",
            "description": "",
            "price_minor": 499,
            "currency": "EUR",
            "delivery_days": 0,
            "revisions": 21,
            "expires_in_days": 31,
        }),
    )
    .await;
    reply.expect_error(422, "validation_failed");
    assert_eq!(
        reply.error_fields(),
        [
            "title",
            "description",
            "currency",
            "price_minor",
            "delivery_days",
            "revisions",
            "expires_in_days"
        ]
    );
    let mut too_much = offer_body(5_000_001);
    too_much["title"] = json!("t".repeat(101));
    too_much["delivery_days"] = json!(91);
    too_much["revisions"] = json!(-1);
    too_much["expires_in_days"] = json!(0);
    let reply = send_offer(&app, &seller, &conversation, &too_much).await;
    reply.expect_error(422, "validation_failed");
    assert_eq!(
        reply.error_fields(),
        [
            "title",
            "price_minor",
            "delivery_days",
            "revisions",
            "expires_in_days"
        ]
    );
    let mut not_theirs = offer_body(5_000);
    not_theirs["gig_id"] = json!(Uuid::new_v4());
    let reply = send_offer(&app, &seller, &conversation, &not_theirs).await;
    reply.expect_error(422, "validation_failed");
    assert_eq!(reply.error_fields(), ["gig_id"]);
    let listed = app
        .get_json_as(
            &buyer.token,
            &format!("/api/v1/conversations/{conversation}/offers"),
        )
        .await
        .expect(200);
    assert_eq!(listed, json!([]));

    // One offer open for a day, one for two.
    let mut short = offer_body(5_000);
    short["expires_in_days"] = json!(1);
    let short = send_offer(&app, &seller, &conversation, &short)
        .await
        .expect(201);
    let short_id = id_of(&short);
    assert_eq!(
        at(&short["expires_at"]) - at(&short["created_at"]),
        TimeDelta::days(1)
    );
    let mut longer = offer_body(6_000);
    longer["expires_in_days"] = json!(2);
    let longer_id = id_of(
        &send_offer(&app, &seller, &conversation, &longer)
            .await
            .expect(201),
    );
    for id in [&short_id, &longer_id] {
        offer_seen(&mut live, id, "pending").await;
        let notice = live.notified(&[Side::Buyer], "offer.received", None).await;
        assert_eq!(notice[0]["offer_id"], id.as_str());
    }

    // Past its expiry (before the clock looks, and after) it cannot be
    // accepted any more.
    app.clock
        .advance(TimeDelta::days(1) + TimeDelta::minutes(1));
    sign_in_again(&app, [&mut buyer, &mut seller]).await;
    answer(&app, &buyer, &short_id, "accept")
        .await
        .expect_error(409, "conflict");
    app.state.orders.wake_clock();
    eventually("the offer expires", || async {
        let status = offer_status(&app, &buyer, &short_id).await;
        if status == "expired" {
            Ok(())
        } else {
            Err(status.to_string())
        }
    })
    .await;
    offer_seen(&mut live, &short_id, "expired").await;
    let notice = live.notified(&[Side::Seller], "offer.expired", None).await;
    assert_eq!(notice[0]["offer_id"], short_id.as_str());
    assert_eq!(notice[0]["conversation_id"], conversation.as_str());
    for (party, what) in [
        (&buyer, "accept"),
        (&buyer, "decline"),
        (&seller, "withdraw"),
    ] {
        answer(&app, party, &short_id, what)
            .await
            .expect_error(409, "conflict");
    }
    checkout(
        &app,
        &buyer.token,
        Some(&new_key()),
        &json!({ "offer_id": short_id, "payment_method": CARD_OK }),
    )
    .await
    .expect_error(409, "conflict");
    // The same look left the offer that runs a day longer alone.
    assert_eq!(offer_status(&app, &buyer, &longer_id).await, "pending");

    // The buyer declines it: it cannot be accepted afterwards.
    let declined = answer(&app, &buyer, &longer_id, "decline")
        .await
        .expect(200);
    assert_eq!(declined["status"], "declined");
    assert_eq!(
        offer_seen(&mut live, &longer_id, "declined").await,
        declined
    );
    live.notified(&[Side::Seller], "offer.declined", None).await;
    answer(&app, &buyer, &longer_id, "accept")
        .await
        .expect_error(409, "conflict");

    // Each side answers only its own way; the seller withdraws.
    let withdrawn_id = id_of(
        &send_offer(&app, &seller, &conversation, &offer_body(7_000))
            .await
            .expect(201),
    );
    offer_seen(&mut live, &withdrawn_id, "pending").await;
    live.notified(&[Side::Buyer], "offer.received", None).await;
    answer(&app, &buyer, &withdrawn_id, "withdraw")
        .await
        .expect_error(403, "forbidden");
    answer(&app, &seller, &withdrawn_id, "accept")
        .await
        .expect_error(403, "forbidden");
    assert_eq!(offer_status(&app, &seller, &withdrawn_id).await, "pending");
    let withdrawn = answer(&app, &seller, &withdrawn_id, "withdraw")
        .await
        .expect(200);
    assert_eq!(withdrawn["status"], "withdrawn");
    assert_eq!(
        offer_seen(&mut live, &withdrawn_id, "withdrawn").await,
        withdrawn
    );
    let notice = live.notified(&[Side::Buyer], "offer.withdrawn", None).await;
    assert_eq!(notice[0]["offer_id"], withdrawn_id.as_str());
    answer(&app, &buyer, &withdrawn_id, "accept")
        .await
        .expect_error(409, "conflict");

    let listed = app
        .get_json_as(
            &buyer.token,
            &format!("/api/v1/conversations/{conversation}/offers"),
        )
        .await
        .expect(200);
    let statuses: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["withdrawn", "declined", "expired"]);
    nothing_more_than_a_new_order(&app, &mut live, &buyer, &gig_id).await;
}

async fn an_offer_is_checked_out_once(app: TestApp) {
    let (seller, _) = seller_with_gig(&app, "ada").await;
    let buyer = new_buyer(&app, "bob").await;
    let conversation = conversation(&app, &buyer, &seller).await;
    let mut live = connect(&app, &buyer, &seller).await;
    let offer_id = id_of(
        &send_offer(&app, &seller, &conversation, &offer_body(5_000))
            .await
            .expect(201),
    );
    offer_seen(&mut live, &offer_id, "pending").await;
    live.notified(&[Side::Buyer], "offer.received", None).await;
    answer(&app, &buyer, &offer_id, "accept").await.expect(200);
    offer_seen(&mut live, &offer_id, "accepted").await;
    live.notified(&[Side::Seller], "offer.accepted", None).await;

    let key = new_key();
    let body = json!({ "offer_id": offer_id, "payment_method": CARD_OK });
    let placed = checkout(&app, &buyer.token, Some(&key), &body)
        .await
        .expect(201);
    let id = id_of(&placed["order"]);
    assert_eq!(placed["order"]["status"], "awaiting_requirements");
    // Both sides see the offer name its order, between placing and paying.
    let at_placing = live.changed(&id, "placed").await;
    assert_eq!(at_placing["offer_id"], offer_id.as_str());
    let taken = offer_seen(&mut live, &offer_id, "accepted").await;
    assert_eq!(taken["order_id"], id.as_str());
    assert_eq!(live.changed(&id, "paid").await, placed["order"]);

    // Once: another key is refused, the same key is the same order.
    checkout(&app, &buyer.token, Some(&new_key()), &body)
        .await
        .expect_error(409, "conflict");
    checkout(
        &app,
        &buyer.token,
        Some(&new_key()),
        &json!({ "offer_id": offer_id }),
    )
    .await
    .expect_error(409, "conflict");
    let again = checkout(&app, &buyer.token, Some(&key), &body)
        .await
        .expect(200);
    assert_eq!(again["order"], placed["order"]);
    let offer = app
        .get_json_as(&seller.token, &format!("/api/v1/offers/{offer_id}"))
        .await
        .expect(200);
    assert_eq!(offer["order_id"], id.as_str());
    assert_eq!(offer["status"], "accepted");
    let mine = app
        .get_json_as(&buyer.token, "/api/v1/orders")
        .await
        .expect(200);
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(kinds(&ledger(&app, &buyer.token, &id).await), ["payment"]);
    live.notified(&[Side::Seller, Side::Buyer], "order.paid", Some(&id))
        .await;
    for side in [Side::Buyer, Side::Seller] {
        assert_eq!(live.of(side).backlog_events("offer.updated"), 0);
        assert_eq!(live.of(side).backlog_events("order.updated"), 0);
    }
}

// ------------------------------------------------- 3. more of the lifecycle

async fn admin_cancellation_extensions_and_lateness(app: TestApp) {
    let (mut seller, gig_id) = seller_with_gig(&app, "ada").await;
    let mut buyer = new_buyer(&app, "bob").await;
    let admin = admin(&app, "root").await;

    // An admin cancels a paid order outright, through the admin route
    // (to the order's own routes an admin is no party): the buyer gets
    // everything back.
    let id = paid_order(&app, &buyer, &gig_id).await;
    act(
        &app,
        &admin.token,
        &id,
        "cancellation",
        json!({ "reason": "The seller's account is under review." }),
    )
    .await
    .expect_error(404, "not_found");
    let cancelled = admin_cancel(&app, &admin, &id, "The seller's account is under review.")
        .await
        .expect(200);
    assert_eq!(cancelled["audit"]["action"], "cancel_order");
    let cancelled = &cancelled["order"];
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["refunded"]["amount_minor"], GIG_TOTAL);
    assert!(cancelled["cancelled_at"].is_string());
    refunds_succeeded(&app, &id, &[GIG_TOTAL]).await;
    assert_eq!(
        ledger(&app, &buyer.token, &id).await,
        [
            ("payment".to_string(), payment(GIG_TOTAL)),
            ("refund".to_string(), refund(GIG_TOTAL)),
        ]
    );
    // Over: nobody changes it any more.
    admin_cancel(&app, &admin, &id, "Again.")
        .await
        .expect_error(409, "conflict");
    act(
        &app,
        &buyer.token,
        &id,
        "requirements",
        json!({ "text": "Too late." }),
    )
    .await
    .expect_error(409, "conflict");

    // A rejected extension keeps the due date.
    let id = started_order(&app, &buyer, &gig_id).await;
    let started = order(&app, &buyer.token, &id).await;
    let due = at(&started["due_at"]);
    for days in [0, 31] {
        let reply = act(
            &app,
            &seller.token,
            &id,
            "extension",
            json!({ "days": days, "reason": "More time." }),
        )
        .await;
        reply.expect_error(422, "validation_failed");
        assert_eq!(reply.error_fields(), ["days"], "{days} days");
    }
    act(
        &app,
        &seller.token,
        &id,
        "extension",
        json!({ "days": 2, "reason": "The brief grew." }),
    )
    .await
    .expect(200);
    let rejected = act(
        &app,
        &buyer.token,
        &id,
        "extension/answer",
        json!({ "approve": false }),
    )
    .await
    .expect(200);
    assert!(rejected["extension"].is_null());
    assert_eq!(at(&rejected["due_at"]), due);
    assert_eq!(rejected["delivery_days"], 3);
    assert_eq!(rejected["late"], false);
    // Nothing is waiting for an answer now.
    act(
        &app,
        &buyer.token,
        &id,
        "extension/answer",
        json!({ "approve": true }),
    )
    .await
    .expect_error(409, "conflict");

    // Past the due date the order turns late.
    advance(&app, TimeDelta::days(3) + TimeDelta::hours(1));
    sign_in_again(&app, [&mut buyer, &mut seller]).await;
    let late = wait_for_order(&app, &buyer.token, &id, "the order turns late", |o| {
        o["late"] == true
    })
    .await;
    assert_eq!(late["status"], "in_progress");
    assert_eq!(at(&late["due_at"]), due);

    // An approved extension moves the due date past now: no longer late,
    // so the buyer's cancellation is only a request again.
    act(
        &app,
        &seller.token,
        &id,
        "extension",
        json!({ "days": 2, "reason": "Almost there." }),
    )
    .await
    .expect(200);
    let approved = act(
        &app,
        &buyer.token,
        &id,
        "extension/answer",
        json!({ "approve": true }),
    )
    .await
    .expect(200);
    assert_eq!(approved["late"], false);
    assert_eq!(at(&approved["due_at"]), due + TimeDelta::days(2));
    assert_eq!(approved["delivery_days"], 5);
    let asked = act(
        &app,
        &buyer.token,
        &id,
        "cancellation",
        json!({ "reason": "Still nothing." }),
    )
    .await
    .expect(200);
    assert_eq!(asked["status"], "in_progress");
    assert_eq!(asked["cancellation"]["requested_by"], "buyer");

    // The clock watches the new date: past it, late again, and the buyer
    // cancels at once.
    advance(&app, TimeDelta::days(2));
    sign_in_again(&app, [&mut buyer, &mut seller]).await;
    wait_for_order(&app, &buyer.token, &id, "late again", |o| o["late"] == true).await;
    let cancelled = act(
        &app,
        &buyer.token,
        &id,
        "cancellation",
        json!({ "reason": "Late twice." }),
    )
    .await
    .expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["refunded"]["amount_minor"], GIG_TOTAL);
    refunds_succeeded(&app, &id, &[GIG_TOTAL]).await;
    assert_eq!(
        kinds(&ledger(&app, &seller.token, &id).await),
        ["payment", "refund"]
    );
    assert_eq!(account_balances(&app).await, postings(&[]));
}

async fn paying_and_listing_over_the_socket(app: TestApp) {
    let (seller, gig_id) = seller_with_gig(&app, "ada").await;
    let buyer = new_buyer(&app, "bob").await;
    let mut live = connect(&app, &buyer, &seller).await;

    // A declined card at checkout: the order waits, saying why.
    let placed = buy(&app, &buyer, &gig_id, Some(CARD_DECLINED)).await;
    let paid_id = id_of(&placed["order"]);
    assert_eq!(placed["order"]["payment_error"], DECLINED);
    live.changed(&paid_id, "placed").await;
    live.changed(&paid_id, "payment_failed").await;
    live.notified(&[Side::Buyer], "order.payment_failed", Some(&paid_id))
        .await;

    // Over the socket: declined again, then paid with another card.
    let pay = |method: &str| json!({ "order_id": paid_id, "payment_method": method });
    let declined = live.buyer.ok("order.pay", pay(CARD_DECLINED)).await;
    assert_eq!(declined["order"]["status"], "awaiting_payment");
    assert_eq!(declined["order"]["payment_error"], DECLINED);
    assert_eq!(declined["payment"]["status"], "requires_payment_method");
    assert_eq!(declined["payment"]["error"], DECLINED);
    assert_eq!(
        live.changed(&paid_id, "payment_failed").await,
        declined["order"]
    );
    live.notified(&[Side::Buyer], "order.payment_failed", Some(&paid_id))
        .await;
    // Not the seller's to pay; not a card the provider knows.
    assert_eq!(
        live.seller.refused("order.pay", pay(CARD_OK)).await,
        "not_found"
    );
    assert_eq!(
        live.buyer.refused("order.pay", pay(" ")).await,
        "validation_failed"
    );
    let paid = live.buyer.ok("order.pay", pay(CARD_OK)).await;
    assert_eq!(paid["order"]["status"], "awaiting_requirements");
    assert!(paid["order"]["payment_error"].is_null());
    assert_eq!(paid["payment"]["status"], "succeeded");
    assert_eq!(live.changed(&paid_id, "paid").await, paid["order"]);
    live.notified(&[Side::Seller, Side::Buyer], "order.paid", Some(&paid_id))
        .await;
    assert_eq!(
        live.buyer.refused("order.pay", pay(CARD_OK)).await,
        "conflict"
    );
    assert_eq!(
        ledger(&app, &buyer.token, &paid_id).await,
        [("payment".to_string(), payment(GIG_TOTAL))]
    );

    // Two more orders, both completed: newest first, a page at a time.
    let mut completed = Vec::new();
    for _ in 0..2 {
        let id = delivered_order(&app, &buyer, &seller, &gig_id).await;
        act(&app, &buyer.token, &id, "acceptance", json!({}))
            .await
            .expect(200);
        completed.push(id);
    }
    let (first, second) = (completed[0].as_str(), completed[1].as_str());
    let all = orders_page(&app, &seller.token, "role=seller").await;
    assert_eq!(ids(&all), [second, first, paid_id.as_str()]);
    assert!(all["next"].is_null());
    assert_eq!(ids(&orders_page(&app, &buyer.token, "").await), ids(&all));
    let done = orders_page(&app, &seller.token, "role=seller&status=completed").await;
    assert_eq!(ids(&done), [second, first]);
    let one = orders_page(&app, &seller.token, "role=seller&status=completed&limit=1").await;
    assert_eq!(ids(&one), [second]);
    assert_eq!(one["next"], second);
    let next = orders_page(
        &app,
        &seller.token,
        &format!("role=seller&status=completed&limit=1&before={second}"),
    )
    .await;
    assert_eq!(ids(&next), [first]);
    assert!(next["next"].is_null());
    let waiting = orders_page(&app, &buyer.token, "status=awaiting_requirements").await;
    assert_eq!(ids(&waiting), [paid_id.as_str()]);
    for (token, query) in [
        (&buyer.token, "role=seller"),
        (&seller.token, "role=buyer"),
        (&seller.token, "role=seller&status=cancelled"),
    ] {
        assert_eq!(
            orders_page(&app, token, query).await["items"],
            json!([]),
            "{query}"
        );
    }
    for (query, field) in [
        ("role=admin", "role"),
        ("status=finished", "status"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
    ] {
        let reply = app
            .get_json_as(&seller.token, &format!("/api/v1/orders?{query}"))
            .await;
        reply.expect_error(422, "validation_failed");
        assert_eq!(reply.error_fields(), [field], "{query}");
    }

    // The same pages over the socket.
    let one = live
        .seller
        .ok(
            "order.list",
            json!({ "role": "seller", "status": "completed", "limit": 1 }),
        )
        .await;
    assert_eq!(ids(&one), [second]);
    assert_eq!(one["next"], second);
    let next = live
        .seller
        .ok(
            "order.list",
            json!({ "role": "seller", "status": "completed", "limit": 1, "before": second }),
        )
        .await;
    assert_eq!(ids(&next), [first]);
    assert!(next["next"].is_null());
    let mine = live.buyer.ok("order.list", json!({})).await;
    assert_eq!(ids(&mine), ids(&all));
    assert_eq!(mine["items"], all["items"]);
    assert_eq!(
        live.seller
            .refused("order.list", json!({ "status": "finished" }))
            .await,
        "validation_failed"
    );
}

/// `GET /orders?{query}`.
async fn orders_page(app: &TestApp, token: &str, query: &str) -> Value {
    app.get_json_as(token, &format!("/api/v1/orders?{query}"))
        .await
        .expect(200)
}

/// The ids of a page's orders, in order.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
        .iter()
        .map(id_of)
        .collect()
}

// -------------------------------------------------------- 4. delivery files

/// `POST /orders/{id}/files` with `bytes` as the body.
async fn upload(app: &TestApp, party: &Party, id: &str, bytes: &[u8]) -> Reply {
    app.send(
        app.request(Method::POST, &format!("/api/v1/orders/{id}/files"))
            .bearer_auth(&party.token)
            .body(bytes.to_vec()),
    )
    .await
}

async fn delivery_files_stay_with_their_order(app: TestApp) {
    let (seller, gig_id) = seller_with_gig(&app, "ada").await;
    let buyer = new_buyer(&app, "bob").await;
    let outsider = new_buyer(&app, "eve").await;
    let id = started_order(&app, &buyer, &gig_id).await;
    let other = started_order(&app, &buyer, &gig_id).await;
    let png = image_bytes(8, 8, image::ImageFormat::Png);
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

    // Only the seller uploads; to an outsider the order is not there; only
    // images and PDFs.
    upload(&app, &buyer, &id, &png)
        .await
        .expect_error(403, "forbidden");
    upload(&app, &outsider, &id, &png)
        .await
        .expect_error(404, "not_found");
    let refused = upload(&app, &seller, &id, b"just some words, not a file").await;
    refused.expect_error(422, "validation_failed");
    assert_eq!(refused.error_fields(), ["file"]);
    assert!(
        app.stored_media()
            .await
            .iter()
            .all(|key| !key.starts_with("orders/")),
        "nothing refused was stored"
    );

    let image = upload(&app, &seller, &id, &png).await.expect(201);
    let document = upload(&app, &seller, &id, pdf).await.expect(201);
    let elsewhere = upload(&app, &seller, &other, pdf).await.expect(201);
    let key = |file: &Value| file["key"].as_str().unwrap().to_string();
    let prefix = format!("orders/{id}/");
    let image_name = key(&image).trim_start_matches(&prefix).to_string();
    for (file, bytes, content_type) in [
        (&image, png.as_slice(), "image/png"),
        (&document, pdf.as_slice(), "application/pdf"),
    ] {
        let name = key(file)
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{file} is not under {prefix}"))
            .to_string();
        assert_eq!(file["content_type"], content_type);
        assert_eq!(file["bytes"], bytes.len());
        assert_eq!(file["url"], format!("/api/v1/orders/{id}/files/{name}"));
    }
    assert!(key(&elsewhere).starts_with(&format!("orders/{other}/")));

    // A delivery names only files uploaded to its own order.
    for bad in [
        key(&elsewhere),
        format!("{prefix}{}", Uuid::new_v4().simple()),
        format!("{prefix}{}", image_name.to_uppercase()),
        format!("{prefix}../{}", key(&elsewhere)),
        "gigs/logo.png".to_string(),
        String::new(),
    ] {
        let reply = act(
            &app,
            &seller.token,
            &id,
            "deliveries",
            json!({ "message": "The files.", "files": [key(&image), bad] }),
        )
        .await;
        reply.expect_error(422, "validation_failed");
        assert_eq!(reply.error_fields(), ["files[1]"], "{bad}");
    }
    assert_eq!(
        order(&app, &buyer.token, &id).await["status"],
        "in_progress"
    );

    let delivered = act(
        &app,
        &seller.token,
        &id,
        "deliveries",
        json!({ "message": "The logo and its guide.", "files": [key(&image), key(&document)] }),
    )
    .await
    .expect(200);
    assert_eq!(
        delivered["deliveries"][0]["files"],
        json!([key(&image), key(&document)])
    );

    // The parties download them; nobody else, and not as public media.
    for (file, bytes, content_type) in [
        (&image, png.as_slice(), "image/png"),
        (&document, pdf.as_slice(), "application/pdf"),
    ] {
        let url = file["url"].as_str().unwrap();
        for party in [&buyer, &seller] {
            let got = app
                .send_raw(app.request(Method::GET, url).bearer_auth(&party.token))
                .await;
            assert_eq!(got.status, 200, "{url}");
            assert_eq!(got.bytes, bytes, "{url}");
            assert_eq!(got.header("content-type"), Some(content_type));
            assert_eq!(got.header("cache-control"), Some("private, max-age=3600"));
        }
        app.get_json_as(&outsider.token, url)
            .await
            .expect_error(404, "not_found");
        app.get_json(url).await.expect_error(401, "unauthorized");
        let name = url.rsplit('/').next().unwrap();
        app.get_json_as(
            &buyer.token,
            &format!("/api/v1/orders/{other}/files/{name}"),
        )
        .await
        .expect_error(404, "not_found");
        assert!(
            app.fetch_media(&format!("/media/{}", key(file)))
                .await
                .is_none(),
            "{} is not public",
            key(file)
        );
    }

    // Once the order is over, nothing more is uploaded to it; what was
    // delivered stays.
    act(&app, &buyer.token, &id, "acceptance", json!({}))
        .await
        .expect(200);
    upload(&app, &seller, &id, &png)
        .await
        .expect_error(409, "conflict");
    let url = image["url"].as_str().unwrap();
    let got = app
        .send_raw(app.request(Method::GET, url).bearer_auth(&buyer.token))
        .await;
    assert_eq!((got.status, got.bytes), (200, png));
}
