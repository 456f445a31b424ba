//! Reviews through the API, on SQLite and PostgreSQL and with
//! `[reviews] backend = "dynamodb"` on a real `moto_server`: the
//! double-blind rule, one review per side (also when submissions race),
//! the review window and its reminders, the seller's one reply, the lists
//! and ratings, and ratings and seller levels changing search results.

use chrono::TimeDelta;
use gateway::config::SessionBackend;
use secrecy::SecretString;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{eventually, Backend, MotoServer, Reply, TestApp};
use crate::orders::{act, advance, delivered_order, new_buyer, seller_with_gig, Party};
use crate::socket::Socket;

backend_tests!(
    reviews_are_double_blind_and_once_per_side,
    racing_submissions_keep_one_review_per_side,
    the_window_closes_with_reminders_first,
    ratings_and_levels_change_search_results,
    bad_input_changes_nothing,
    reviews_over_the_socket,
);

// ---------------------------------------------------------------- DynamoDB

/// A scenario with reviews in a DynamoDB table of its own, on a
/// `moto_server` of its own serving one request at a time (reviews race
/// in transactions); everything else in SQLite.
async fn on_dynamodb<F, Fut>(scenario: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let moto = MotoServer::start_serial();
    let endpoint = moto.endpoint();
    crate::helpers::run_scenario_changed(
        Backend::Sqlite,
        move |settings| {
            settings.reviews.backend = SessionBackend::DynamoDb;
            settings.reviews.dynamodb_table = format!("reviews-{}", Uuid::new_v4().simple());
            let sessions = &mut settings.sessions;
            sessions.dynamodb_endpoint = endpoint;
            sessions.dynamodb_region = "us-east-1".into();
            sessions.dynamodb_access_key_id = "testing".into();
            sessions.dynamodb_secret_access_key =
                Some(SecretString::from("testing-secret".to_string()));
        },
        scenario,
    )
    .await;
    drop(moto);
}

mod dynamodb {
    #[tokio::test]
    async fn reviews_are_double_blind_and_once_per_side() {
        super::on_dynamodb(super::reviews_are_double_blind_and_once_per_side).await;
    }

    #[tokio::test]
    async fn racing_submissions_keep_one_review_per_side() {
        super::on_dynamodb(super::racing_submissions_keep_one_review_per_side).await;
    }

    #[tokio::test]
    async fn the_window_closes_with_reminders_first() {
        super::on_dynamodb(super::the_window_closes_with_reminders_first).await;
    }

    #[tokio::test]
    async fn ratings_and_levels_change_search_results() {
        super::on_dynamodb(super::ratings_and_levels_change_search_results).await;
    }
}

// ---------------------------------------------------------------- helpers

/// A delivered order the buyer accepted: its id.
async fn completed_order(app: &TestApp, buyer: &Party, seller: &Party, gig: &str) -> String {
    let id = delivered_order(app, buyer, seller, gig).await;
    let order = act(app, &buyer.token, &id, "acceptance", json!({}))
        .await
        .expect(200);
    assert_eq!(order["status"], "completed", "{order}");
    id
}

async fn review(app: &TestApp, party: &Party, order: &str, rating: i64, text: &str) -> Reply {
    app.post_json_as(
        &party.token,
        &format!("/api/v1/orders/{order}/reviews"),
        &json!({ "rating": rating, "text": text }),
    )
    .await
}

async fn order_reviews(app: &TestApp, party: &Party, order: &str) -> Value {
    app.get_json_as(&party.token, &format!("/api/v1/orders/{order}/reviews"))
        .await
        .expect(200)
}

async fn gig_reviews(app: &TestApp, gig: &str) -> Value {
    app.get_json(&format!("/api/v1/gigs/{gig}/reviews"))
        .await
        .expect(200)
}

/// The kinds of the party's notifications, oldest first.
async fn notification_kinds(app: &TestApp, party: &Party) -> Vec<String> {
    let page = app
        .get_json_as(&party.token, "/api/v1/notifications?limit=100")
        .await
        .expect(200);
    let mut kinds: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_string())
        .collect();
    kinds.reverse();
    kinds
}

async fn count_kind(app: &TestApp, party: &Party, kind: &str) -> usize {
    notification_kinds(app, party)
        .await
        .iter()
        .filter(|k| *k == kind)
        .count()
}

fn authors(reviews: &Value) -> Vec<String> {
    reviews["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["side"].as_str().unwrap().to_string())
        .collect()
}

/// Search hits' gig ids for `query` (a query string after `?`).
async fn search_ids(app: &TestApp, query: &str) -> Vec<String> {
    let page = app
        .get_json(&format!("/api/v1/search/gigs?{query}"))
        .await
        .expect(200);
    page["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("no hits in {page}"))
        .iter()
        .map(|hit| hit["id"].as_str().unwrap().to_string())
        .collect()
}

// --------------------------------------------------------------- scenarios

async fn reviews_are_double_blind_and_once_per_side(app: TestApp) {
    let (seller, gig) = seller_with_gig(&app, "sam").await;
    let buyer = new_buyer(&app, "bea").await;
    let stranger = new_buyer(&app, "sid").await;

    // Not before the order completes.
    let open = delivered_order(&app, &buyer, &seller, &gig).await;
    review(&app, &buyer, &open, 5, "Early")
        .await
        .expect_error(409, "conflict");

    let order = completed_order(&app, &buyer, &seller, &gig).await;
    // Someone else's order does not exist for them.
    review(&app, &stranger, &order, 1, "Bad")
        .await
        .expect_error(404, "not_found");
    app.get_json_as(&stranger.token, &format!("/api/v1/orders/{order}/reviews"))
        .await
        .expect_error(404, "not_found");

    // The buyer writes first: only they see it.
    let written = review(&app, &buyer, &order, 5, "Clean work, fast.")
        .await
        .expect(201);
    assert_eq!(written["published"], false, "{written}");
    assert_eq!(written["side"], "buyer");
    assert_eq!(written["author_username"], "bea");
    let mine = order_reviews(&app, &buyer, &order).await;
    assert_eq!(authors(&mine), ["buyer"], "{mine}");
    assert_eq!(mine["can_review"], false);
    let theirs = order_reviews(&app, &seller, &order).await;
    assert_eq!(authors(&theirs), Vec::<String>::new(), "{theirs}");
    assert_eq!(theirs["other_side_reviewed"], true);
    assert_eq!(theirs["can_review"], true);
    let listed = gig_reviews(&app, &gig).await;
    assert_eq!(listed["rating"]["count"], 0, "{listed}");
    assert_eq!(listed["items"], json!([]));
    assert_eq!(count_kind(&app, &seller, "review.waiting").await, 1);

    // One per side.
    review(&app, &buyer, &order, 1, "Changed my mind")
        .await
        .expect_error(409, "conflict");

    // The seller's review publishes both.
    let second = review(&app, &seller, &order, 4, "Clear requirements.")
        .await
        .expect(201);
    assert_eq!(second["published"], true, "{second}");
    for party in [&buyer, &seller] {
        let both = order_reviews(&app, party, &order).await;
        let mut sides = authors(&both);
        sides.sort();
        assert_eq!(sides, ["buyer", "seller"], "{both}");
        assert_eq!(both["can_review"], false);
    }
    let listed = gig_reviews(&app, &gig).await;
    assert_eq!(listed["rating"]["count"], 1, "{listed}");
    assert_eq!(listed["rating"]["average"], 5.0);
    assert_eq!(listed["rating"]["histogram"], json!([0, 0, 0, 0, 1]));
    assert_eq!(listed["items"][0]["text"], "Clean work, fast.");
    assert_eq!(listed["items"][0]["rating"], 5);
    let unchanged = listed["items"][0]["text"].clone();
    assert_eq!(unchanged, "Clean work, fast.");

    let seller_page = app.get_json("/api/v1/users/sam/reviews").await.expect(200);
    assert_eq!(seller_page["rating"]["count"], 1, "{seller_page}");
    let buyer_page = app
        .get_json("/api/v1/users/bea/reviews?as=buyer")
        .await
        .expect(200);
    assert_eq!(buyer_page["rating"]["average"], 4.0, "{buyer_page}");
    assert_eq!(buyer_page["items"][0]["text"], "Clear requirements.");
    let profile = app.get_json("/api/v1/users/sam").await.expect(200);
    assert_eq!(
        profile["seller_standing"]["rating"]["count"], 1,
        "{profile}"
    );
    assert_eq!(profile["seller_standing"]["level"], "new");
    let profile = app.get_json("/api/v1/users/bea").await.expect(200);
    assert_eq!(profile["buyer_rating"]["count"], 1, "{profile}");

    // Both were told.
    assert_eq!(count_kind(&app, &seller, "review.received").await, 1);
    assert_eq!(count_kind(&app, &buyer, "review.received").await, 1);

    // The seller replies once; the buyer cannot.
    let path = format!("/api/v1/orders/{order}/reviews/reply");
    app.post_json_as(&buyer.token, &path, &json!({ "text": "Me too" }))
        .await
        .expect_error(403, "forbidden");
    let replied = app
        .post_json_as(&seller.token, &path, &json!({ "text": "Thank you!" }))
        .await
        .expect(200);
    assert_eq!(replied["reply"]["text"], "Thank you!", "{replied}");
    app.post_json_as(&seller.token, &path, &json!({ "text": "Again" }))
        .await
        .expect_error(409, "conflict");
    let listed = gig_reviews(&app, &gig).await;
    assert_eq!(listed["items"][0]["reply"]["text"], "Thank you!");
    assert_eq!(count_kind(&app, &buyer, "review.reply").await, 1);
}

async fn racing_submissions_keep_one_review_per_side(app: TestApp) {
    let (seller, gig) = seller_with_gig(&app, "sam").await;
    let buyer = new_buyer(&app, "bea").await;
    let order = completed_order(&app, &buyer, &seller, &gig).await;

    // Six submissions by the buyer at once: one is stored.
    let attempts = (1..=6).map(|n| review(&app, &buyer, &order, (n % 5) + 1, "Race"));
    let replies = futures_util::future::join_all(attempts).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        5,
        "{statuses:?}"
    );

    // Both sides at once on other orders: both are published, every time.
    for _ in 0..3 {
        let order = completed_order(&app, &buyer, &seller, &gig).await;
        let (a, b) = tokio::join!(
            review(&app, &buyer, &order, 5, "Both"),
            review(&app, &seller, &order, 5, "Both"),
        );
        a.expect(201);
        b.expect(201);
        let seen = order_reviews(&app, &buyer, &order).await;
        assert_eq!(authors(&seen).len(), 2, "{seen}");
        assert!(seen["reviews"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["published"] == true));
    }
    let listed = gig_reviews(&app, &gig).await;
    assert_eq!(listed["rating"]["count"], 3, "{listed}");
    // Each published pair told each side once.
    assert_eq!(count_kind(&app, &seller, "review.received").await, 3);
}

async fn the_window_closes_with_reminders_first(app: TestApp) {
    let (mut seller, gig) = seller_with_gig(&app, "sam").await;
    let mut buyer = new_buyer(&app, "bea").await;
    let order = completed_order(&app, &buyer, &seller, &gig).await;
    review(&app, &buyer, &order, 3, "Fine.").await.expect(201);
    let closes = order_reviews(&app, &seller, &order).await["window_closes_at"].clone();
    assert!(closes.is_string(), "{closes}");

    // Two days before the window closes, the side that has not reviewed
    // is reminded, once.
    advance(&app, TimeDelta::days(12) + TimeDelta::minutes(1));
    seller.sign_in_again(&app).await;
    buyer.sign_in_again(&app).await;
    app.state.reviews.wake();
    eventually("the seller's reminder", || async {
        let n = count_kind(&app, &seller, "review.reminder").await;
        if n == 1 {
            Ok(())
        } else {
            Err(format!("{n} reminders"))
        }
    })
    .await;
    app.state.reviews.wake();
    app.state.reviews.tick().await.unwrap();
    assert_eq!(count_kind(&app, &seller, "review.reminder").await, 1);
    assert_eq!(count_kind(&app, &buyer, "review.reminder").await, 0);

    // The window closes: the buyer's review is published on its own, and
    // the seller may no longer write one.
    advance(&app, TimeDelta::days(2));
    seller.sign_in_again(&app).await;
    app.state.reviews.wake();
    eventually("the buyer's review published", || async {
        let listed = gig_reviews(&app, &gig).await;
        if listed["rating"]["count"] == 1 {
            Ok(())
        } else {
            Err(listed.to_string())
        }
    })
    .await;
    let seen = order_reviews(&app, &seller, &order).await;
    assert_eq!(authors(&seen), ["buyer"], "{seen}");
    assert_eq!(seen["can_review"], false);
    review(&app, &seller, &order, 5, "Late")
        .await
        .expect_error(409, "conflict");
    // The seller is told after the review is stored.
    eventually("the seller told of the published review", || async {
        match count_kind(&app, &seller, "review.received").await {
            1 => Ok(()),
            n => Err(format!("{n} notifications")),
        }
    })
    .await;
}

async fn ratings_and_levels_change_search_results(app: TestApp) {
    let (mut good, good_gig) = seller_with_gig(&app, "goodseller").await;
    let (poor, poor_gig) = seller_with_gig(&app, "poorseller").await;
    let buyer = new_buyer(&app, "bea").await;
    app.state.gig_actors.flush_index().await.unwrap();
    let mut both = search_ids(&app, "q=logo").await;
    both.sort();
    let mut expected = vec![good_gig.clone(), poor_gig.clone()];
    expected.sort();
    assert_eq!(both, expected);
    assert_eq!(
        search_ids(&app, "q=logo&min_rating=4").await,
        Vec::<String>::new()
    );

    // Reviews become visible: the rating filter and sort follow at once.
    let poor_order = completed_order(&app, &buyer, &poor, &poor_gig).await;
    review(&app, &buyer, &poor_order, 2, "Late and sloppy")
        .await
        .expect(201);
    review(&app, &poor, &poor_order, 5, "Fine buyer")
        .await
        .expect(201);
    for _ in 0..5 {
        let order = completed_order(&app, &buyer, &good, &good_gig).await;
        review(&app, &buyer, &order, 5, "Excellent")
            .await
            .expect(201);
        review(&app, &good, &order, 5, "Great buyer")
            .await
            .expect(201);
    }
    assert_eq!(
        search_ids(&app, "q=logo&min_rating=4").await,
        [good_gig.as_str()]
    );
    assert_eq!(
        search_ids(&app, "q=logo&sort=rating").await,
        [good_gig.clone(), poor_gig.clone()]
    );
    assert_eq!(search_ids(&app, "q=logo&min_rating=1.5").await.len(), 2);

    // Levels: five completed, on-time, five-star orders and a month of
    // selling make level 1 at the next recompute.
    assert_eq!(
        search_ids(&app, "q=logo&seller_level=level_1").await,
        Vec::<String>::new()
    );
    advance(&app, TimeDelta::days(31));
    good.sign_in_again(&app).await;
    let run = app.state.reviews.recompute_levels().await.unwrap();
    assert_eq!(run.changed, 1, "{run:?}");
    assert_eq!(
        search_ids(&app, "q=logo&seller_level=level_1").await,
        [good_gig.as_str()]
    );
    assert_eq!(
        search_ids(&app, "q=logo&seller_level=new").await,
        [poor_gig.as_str()]
    );
    let profile = app.get_json("/api/v1/users/goodseller").await.expect(200);
    assert_eq!(profile["seller_standing"]["level"], "level_1", "{profile}");
    assert_eq!(profile["seller_standing"]["level_name"], "Level 1");
    let hits = app
        .get_json("/api/v1/search/gigs?q=logo&seller_level=level_1")
        .await
        .expect(200);
    assert_eq!(hits["hits"][0]["seller_level"], "level_1", "{hits}");
    assert_eq!(count_kind(&app, &good, "level.changed").await, 1);

    // Recomputing again changes nothing.
    let again = app.state.reviews.recompute_levels().await.unwrap();
    assert_eq!(again.changed, 0, "{again:?}");
}

async fn bad_input_changes_nothing(app: TestApp) {
    let (seller, gig) = seller_with_gig(&app, "sam").await;
    let buyer = new_buyer(&app, "bea").await;
    let order = completed_order(&app, &buyer, &seller, &gig).await;
    for body in [
        json!({ "rating": 0 }),
        json!({ "rating": 6, "text": "x" }),
        json!({ "rating": 3.5 }),
        json!({ "rating": 3, "text": "x".repeat(2001) }),
        json!({ "rating": 3, "extra": true }),
        json!({}),
    ] {
        let reply = app
            .post_json_as(
                &buyer.token,
                &format!("/api/v1/orders/{order}/reviews"),
                &body,
            )
            .await;
        assert!(
            reply.status == 422 || reply.status == 400,
            "{body}: {}",
            reply.status
        );
    }
    app.post_json_as(
        &buyer.token,
        "/api/v1/orders/not-an-order/reviews",
        &json!({ "rating": 3 }),
    )
    .await
    .expect_error(404, "not_found");
    // Nothing was stored: the buyer may still review, once.
    assert_eq!(authors(&order_reviews(&app, &buyer, &order).await).len(), 0);
    review(&app, &buyer, &order, 3, "ok").await.expect(201);

    let reply = format!("/api/v1/orders/{order}/reviews/reply");
    app.post_json_as(&seller.token, &reply, &json!({ "text": " " }))
        .await
        .expect_error(422, "validation_failed");
    // Not published yet: nothing to reply to.
    app.post_json_as(&seller.token, &reply, &json!({ "text": "Thanks" }))
        .await
        .expect_error(409, "conflict");
    for path in [
        format!("/api/v1/gigs/{gig}/reviews?before=garbage"),
        format!("/api/v1/gigs/{gig}/reviews?limit=0"),
        format!("/api/v1/gigs/{gig}/reviews?as=buyer"),
        "/api/v1/users/sam/reviews?as=admin".to_string(),
    ] {
        app.get_json(&path)
            .await
            .expect_error(422, "validation_failed");
    }
    app.get_json(&format!("/api/v1/gigs/{}/reviews", Uuid::new_v4()))
        .await
        .expect_error(404, "not_found");
    app.get_json("/api/v1/users/nobody-here/reviews")
        .await
        .expect_error(404, "not_found");
}

/// The same operations as socket requests; the notifications arrive live
/// on both parties' sockets and agree with the notification center.
async fn reviews_over_the_socket(app: TestApp) {
    let (seller, gig) = seller_with_gig(&app, "sam").await;
    let buyer = new_buyer(&app, "bea").await;
    let order = completed_order(&app, &buyer, &seller, &gig).await;
    let (mut buyer_live, _) = Socket::connect(&app, &buyer.token).await;
    let (mut seller_live, _) = Socket::connect(&app, &seller.token).await;

    let written = buyer_live
        .ok(
            "review.write",
            json!({ "order_id": order, "rating": 5, "text": "Spot on." }),
        )
        .await;
    assert_eq!(written["published"], false, "{written}");
    let waiting = seller_live.event("notification").await;
    assert_eq!(waiting["data"]["kind"], "review.waiting", "{waiting}");
    assert_eq!(waiting["data"]["order_id"], order.as_str());
    let seen = seller_live
        .ok("review.order", json!({ "order_id": order }))
        .await;
    assert_eq!(seen["reviews"], json!([]), "{seen}");
    assert_eq!(seen["other_side_reviewed"], true);
    assert_eq!(
        buyer_live
            .refused(
                "review.write",
                json!({ "order_id": order, "rating": 4, "text": "Again" }),
            )
            .await,
        "conflict"
    );

    seller_live
        .ok(
            "review.write",
            json!({ "order_id": order, "rating": 4, "text": "Clear brief." }),
        )
        .await;
    for live in [&mut buyer_live, &mut seller_live] {
        let received = live.event("notification").await;
        assert_eq!(received["data"]["kind"], "review.received", "{received}");
    }
    let both = buyer_live
        .ok("review.order", json!({ "order_id": order }))
        .await;
    assert_eq!(authors(&both).len(), 2, "{both}");

    let replied = seller_live
        .ok(
            "review.reply",
            json!({ "order_id": order, "text": "Thanks!" }),
        )
        .await;
    assert_eq!(replied["reply"]["text"], "Thanks!", "{replied}");
    let told = buyer_live.event("notification").await;
    assert_eq!(told["data"]["kind"], "review.reply", "{told}");
    assert_eq!(
        buyer_live
            .refused("review.reply", json!({ "order_id": order, "text": "Me" }))
            .await,
        "forbidden"
    );
    assert_eq!(
        buyer_live
            .refused("review.write", json!({ "rating": 5 }))
            .await,
        "validation_failed"
    );
    // The notification center holds what the sockets were told.
    assert_eq!(
        notification_kinds(&app, &seller)
            .await
            .last()
            .map(String::as_str),
        Some("review.received")
    );
    assert_eq!(
        notification_kinds(&app, &buyer)
            .await
            .last()
            .map(String::as_str),
        Some("review.reply")
    );
}

/// How long the second review of an order takes to answer: it publishes
/// both, tells both sides, reindexes the seller's gigs and waits for the
/// index. `cargo test -p gateway --test it reviews::publish_latency --
/// --ignored --nocapture` prints the figures.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn publish_latency() {
    crate::helpers::run_scenario(
        Backend::Sqlite,
        crate::helpers::media_of(&[]),
        &[],
        |app: TestApp| async move {
            let (seller, gig) = seller_with_gig(&app, "sam").await;
            let buyer = new_buyer(&app, "bea").await;
            let mut first = Vec::new();
            let mut second = Vec::new();
            for _ in 0..30 {
                let order = completed_order(&app, &buyer, &seller, &gig).await;
                let started = std::time::Instant::now();
                review(&app, &buyer, &order, 5, "Great").await.expect(201);
                first.push(started.elapsed());
                let started = std::time::Instant::now();
                review(&app, &seller, &order, 5, "Great").await.expect(201);
                second.push(started.elapsed());
            }
            for (what, mut samples) in [
                ("hidden (first side)", first),
                ("publishing (second side)", second),
            ] {
                samples.sort();
                let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
                eprintln!(
                    "review POST, {what}: n={} p50={:?} p90={:?} max={:?}",
                    samples.len(),
                    at(0.5),
                    at(0.9),
                    at(1.0)
                );
            }
        },
    )
    .await;
}
