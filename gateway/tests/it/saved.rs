//! Favourites and saved searches end to end: favourites round trip and who
//! may touch them, saved search CRUD with refused input that changes
//! nothing, the live alert a buyer's socket receives when a matching gig is
//! published (once, for gigs published after the search was saved), and the
//! daily digest mailed once. `saved_search_alert_latency` (ignored) measures
//! publish→alert latency over 20 gigs.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use gateway::config::Settings;
use serde_json::{json, Value};

use crate::helpers::{gig_body, Backend, Media, TestApp};
use crate::socket::Socket;

backend_tests!(
    favourites_round_trip_and_belong_to_their_owner with small_limits,
    saved_searches_are_managed_by_their_owner with small_limits,
    a_matching_gig_alerts_the_buyer_live_once,
    the_digest_mails_new_matches_once,
);

/// Measures publish→alert latency (p50, p99) over 20 matching gigs on
/// SQLite: `cargo test -p gateway --test it saved::saved_search_alert_latency
/// -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn saved_search_alert_latency() {
    crate::helpers::run_scenario(Backend::Sqlite, Media::Local, &[], measure_latency).await;
}

/// [`saved_search_alert_latency`] on PostgreSQL.
#[tokio::test]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn saved_search_alert_latency_on_postgres() {
    crate::helpers::run_scenario(Backend::Postgres, Media::Local, &[], measure_latency).await;
}

/// How long a test waits for one alert.
const ALERT_TIMEOUT: Duration = Duration::from_secs(5);

fn small_limits(settings: &mut Settings) {
    settings.saved_searches.max_per_user = 2;
    settings.saved_searches.max_favourites = 2;
}

/// A logo gig body (graphics-design/logo-design, from 25.00).
fn logo_gig(title: &str) -> Value {
    gig_body(title, "graphics-design", "logo-design")
}

async fn publish(app: &TestApp, token: &str, body: &Value) -> String {
    let gig = app.create_gig_ok(token, body).await;
    gig["id"].as_str().unwrap().to_string()
}

/// Waits until the index and the alert actor have handled every write
/// made so far.
async fn settle(app: &TestApp) {
    app.state.gig_actors.flush_index().await.unwrap();
    app.state.saved.snapshot().await.unwrap();
}

/// The next `notification` event on the socket, within [`ALERT_TIMEOUT`].
async fn next_alert(socket: &mut Socket) -> Value {
    tokio::time::timeout(ALERT_TIMEOUT, socket.event("notification"))
        .await
        .unwrap_or_else(|_| panic!("no notification within {ALERT_TIMEOUT:?}"))
}

async fn notifications(app: &TestApp, token: &str) -> Vec<Value> {
    app.get_json_as(token, "/api/v1/notifications?limit=100")
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn favourites_round_trip_and_belong_to_their_owner(app: TestApp) {
    let (_, sam) = app.seller("sam").await;
    let (_, ada) = app.signed_up("ada").await;
    let (_, bob) = app.signed_up("bob").await;
    let logo = publish(
        &app,
        &sam.access,
        &logo_gig("I will design a minimalist logo"),
    )
    .await;
    let mut draft_body = logo_gig("I will sketch three logo concepts");
    draft_body["publish"] = json!(false);
    let draft = publish(&app, &sam.access, &draft_body).await;
    let path = |id: &str| format!("/api/v1/me/favourites/{id}");

    // Signed in only.
    app.send(app.request(reqwest::Method::PUT, &path(&logo)))
        .await
        .expect_error(401, "unauthorized");
    app.get_json("/api/v1/me/favourites")
        .await
        .expect_error(401, "unauthorized");

    let put = |id: String, token: String| {
        let app = &app;
        async move {
            app.send(
                app.request(reqwest::Method::PUT, &format!("/api/v1/me/favourites/{id}"))
                    .bearer_auth(token),
            )
            .await
        }
    };
    let added = put(logo.clone(), ada.access.clone()).await.expect(201);
    assert_eq!(added["gig_id"], logo.as_str());
    let again = put(logo.clone(), ada.access.clone()).await.expect(200);
    assert_eq!(again, added, "a second add keeps the first");
    // Only gigs the caller can see.
    put(draft.clone(), ada.access.clone())
        .await
        .expect_error(404, "not_found");
    put("not-a-uuid".into(), ada.access.clone())
        .await
        .expect_error(404, "not_found");
    put(uuid::Uuid::new_v4().to_string(), ada.access.clone())
        .await
        .expect_error(404, "not_found");

    let list = app
        .get_json_as(&ada.access, "/api/v1/me/favourites")
        .await
        .expect(200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["available"], true);
    assert_eq!(items[0]["gig"]["title"], "I will design a minimalist logo");
    assert_eq!(items[0]["gig"]["price_from"], 2500);
    assert_eq!(items[0]["gig"]["seller_username"], "sam");
    assert!(list["next"].is_null());

    // Bob sees and removes only his own.
    let bobs = app
        .get_json_as(&bob.access, "/api/v1/me/favourites")
        .await
        .expect(200);
    assert_eq!(bobs["items"], json!([]));
    app.delete_as(&bob.access, &path(&logo))
        .await
        .expect_error(404, "not_found");

    // A gig that goes out of view stays listed, unavailable.
    app.post_as(&sam.access, &format!("/api/v1/gigs/{logo}/pause"))
        .await
        .expect(200);
    let list = app
        .get_json_as(&ada.access, "/api/v1/me/favourites")
        .await
        .expect(200);
    assert_eq!(list["items"][0]["available"], false, "{list}");
    assert!(list["items"][0]["gig"].is_null());
    app.post_as(&sam.access, &format!("/api/v1/gigs/{logo}/resume"))
        .await
        .expect(200);

    // Pages, and the limit (2 here).
    let second = publish(&app, &sam.access, &logo_gig("I will vectorise your logo")).await;
    app.clock.advance(TimeDelta::seconds(1));
    put(second.clone(), ada.access.clone()).await.expect(201);
    let third = publish(
        &app,
        &sam.access,
        &logo_gig("I will animate your logo intro"),
    )
    .await;
    let refused = put(third.clone(), ada.access.clone()).await;
    refused.expect_error(422, "validation_failed");
    assert_eq!(refused.error_fields(), ["favourites"]);
    let first_page = app
        .get_json_as(&ada.access, "/api/v1/me/favourites?limit=1")
        .await
        .expect(200);
    assert_eq!(
        first_page["items"][0]["gig_id"],
        second.as_str(),
        "newest first"
    );
    let next = first_page["next"].as_str().unwrap();
    let second_page = app
        .get_json_as(
            &ada.access,
            &format!("/api/v1/me/favourites?limit=1&before={next}"),
        )
        .await
        .expect(200);
    assert_eq!(second_page["items"][0]["gig_id"], logo.as_str());
    app.get_json_as(&ada.access, "/api/v1/me/favourites?before=nonsense")
        .await
        .expect_error(422, "validation_failed");
    app.get_json_as(&ada.access, "/api/v1/me/favourites?limit=0")
        .await
        .expect_error(422, "validation_failed");

    app.delete_as(&ada.access, &path(&logo)).await.expect(204);
    app.delete_as(&ada.access, &path(&logo))
        .await
        .expect_error(404, "not_found");

    // The same over the socket.
    let (mut socket, _) = Socket::connect(&app, &ada.access).await;
    let added = socket.ok("favourite.add", json!({ "gig_id": logo })).await;
    assert_eq!(added["added"], true, "{added}");
    assert_eq!(added["favourite"]["gig_id"], logo.as_str());
    let listed = socket.ok("favourite.list", json!({ "limit": 10 })).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(
        socket
            .refused("favourite.add", json!({ "gig_id": third }))
            .await,
        "validation_failed"
    );
    assert_eq!(
        socket
            .refused("favourite.add", json!({ "gig_id": draft }))
            .await,
        "not_found"
    );
    socket
        .ok("favourite.remove", json!({ "gig_id": logo }))
        .await;
    assert_eq!(
        socket
            .refused("favourite.remove", json!({ "gig_id": logo }))
            .await,
        "not_found"
    );
    assert_eq!(
        socket
            .refused("favourite.add", json!({ "gig": logo }))
            .await,
        "validation_failed"
    );
}

async fn saved_searches_are_managed_by_their_owner(app: TestApp) {
    let (_, ada) = app.signed_up("ada").await;
    let (_, bob) = app.signed_up("bob").await;
    let base = "/api/v1/me/saved-searches";
    let list = |token: String| {
        let app = &app;
        async move { app.get_json_as(&token, base).await.expect(200) }
    };

    app.post_json(base, &json!({ "name": "Logos", "query": {} }))
        .await
        .expect_error(401, "unauthorized");

    // Refused input is reported field by field and stores nothing.
    for (body, fields) in [
        (
            json!({ "name": " ", "query": { "q": "logo", "sort": "cheapest" } }),
            vec!["name", "query.sort"],
        ),
        (
            json!({ "name": "Logos", "query": { "category": "knitting" } }),
            vec!["query.category"],
        ),
        (
            json!({ "name": "Logos", "query": { "category": "graphics-design", "subcategory": "web-development" } }),
            vec!["query.subcategory"],
        ),
        (
            json!({ "name": "Logos", "query": { "price_min": 5000, "price_max": 100 } }),
            vec!["query"],
        ),
        (
            json!({ "name": "x".repeat(81), "query": { "min_rating": 7 } }),
            vec!["name", "query.min_rating"],
        ),
        (
            json!({ "name": "Logos", "query": { "seller_level": "gold" } }),
            vec!["query.seller_level"],
        ),
    ] {
        let reply = app.post_json_as(&ada.access, base, &body).await;
        reply.expect_error(422, "validation_failed");
        assert_eq!(reply.error_fields(), fields, "{body}");
    }
    // A page of a search is not part of it; unknown fields are refused.
    for body in [
        json!({ "name": "Logos", "query": { "cursor": "abc" } }),
        json!({ "name": "Logos", "query": { "limit": 5 } }),
        json!({ "name": "Logos", "query": {}, "owner": "bob" }),
    ] {
        app.post_json_as(&ada.access, base, &body)
            .await
            .expect_error(422, "validation_failed");
    }
    assert_eq!(list(ada.access.clone()).await["items"], json!([]));

    let created = app
        .post_json_as(
            &ada.access,
            base,
            &json!({
                "name": "  Cheap logos ",
                "query": { "q": " minimalist logo ", "category": "graphics-design",
                           "price_max": 5000, "seller_level": "level_2, top_rated" },
            }),
        )
        .await
        .expect(201);
    assert_eq!(created["name"], "Cheap logos");
    assert_eq!(
        created["query"],
        json!({ "q": "minimalist logo", "category": "graphics-design", "price_max": 5000,
                "seller_level": "level_2,top_rated", "sort": "relevance" })
    );
    assert_eq!(
        (created["alerts"].clone(), created["email_digest"].clone()),
        (json!(true), json!(false))
    );
    let id = created["id"].as_str().unwrap().to_string();
    let listed = list(ada.access.clone()).await;
    assert_eq!(listed["items"], json!([created]));
    assert_eq!(listed["limit"], 2);
    // The stored query runs as a search.
    let mut params: Vec<(String, String)> = Vec::new();
    for (key, value) in created["query"].as_object().unwrap() {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        params.push((key.clone(), value));
    }
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    app.search_ok(&params).await;

    // Changes: name and flags, by the owner only.
    let path = format!("{base}/{id}");
    app.clock.advance(TimeDelta::seconds(1));
    let patched = app
        .patch_json_as(
            &ada.access,
            &path,
            &json!({ "name": "Logos", "alerts": false, "email_digest": true }),
        )
        .await
        .expect(200);
    assert_eq!(patched["name"], "Logos");
    assert_eq!(
        (patched["alerts"].clone(), patched["email_digest"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(patched["query"], created["query"]);
    assert!(patched["last_digest_at"].is_string(), "{patched}");
    let refused = app
        .patch_json_as(&ada.access, &path, &json!({ "name": "" }))
        .await;
    refused.expect_error(422, "validation_failed");
    assert_eq!(refused.error_fields(), ["name"]);
    app.patch_json_as(&ada.access, &path, &json!({ "query": { "q": "x" } }))
        .await
        .expect_error(422, "validation_failed");
    assert_eq!(list(ada.access.clone()).await["items"], json!([patched]));
    app.patch_json_as(&bob.access, &path, &json!({ "name": "Mine now" }))
        .await
        .expect_error(404, "not_found");
    app.delete_as(&bob.access, &path)
        .await
        .expect_error(404, "not_found");
    app.patch_json_as(&ada.access, &format!("{base}/nope"), &json!({}))
        .await
        .expect_error(404, "not_found");
    assert_eq!(list(bob.access.clone()).await["items"], json!([]));

    // The limit (2 here).
    app.post_json_as(&ada.access, base, &json!({ "name": "Everything" }))
        .await
        .expect(201);
    let refused = app
        .post_json_as(
            &ada.access,
            base,
            &json!({ "name": "One too many", "query": {} }),
        )
        .await;
    refused.expect_error(422, "validation_failed");
    assert_eq!(refused.error_fields(), ["saved_searches"]);

    app.delete_as(&ada.access, &path).await.expect(204);
    app.delete_as(&ada.access, &path)
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        list(ada.access.clone()).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Every route is in the OpenAPI document.
    let spec = app.get_json("/api/openapi.json").await.expect(200);
    for (path, method) in [
        ("/api/v1/me/favourites", "get"),
        ("/api/v1/me/favourites/{gig_id}", "put"),
        ("/api/v1/me/favourites/{gig_id}", "delete"),
        ("/api/v1/me/saved-searches", "get"),
        ("/api/v1/me/saved-searches", "post"),
        ("/api/v1/me/saved-searches/{id}", "patch"),
        ("/api/v1/me/saved-searches/{id}", "delete"),
    ] {
        assert!(
            spec["paths"][path][method].is_object(),
            "{method} {path} is documented"
        );
    }

    // The same over the socket.
    let (mut socket, _) = Socket::connect(&app, &ada.access).await;
    let made = socket
        .ok(
            "saved_search.create",
            json!({ "name": "Mixing", "query": { "q": "mixing", "category": "music-audio" }, "email_digest": true }),
        )
        .await;
    let made_id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["email_digest"], true);
    let all = socket.ok("saved_search.list", json!({})).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all}");
    assert_eq!(
        socket
            .refused(
                "saved_search.create",
                json!({ "name": "Third", "query": {} })
            )
            .await,
        "validation_failed"
    );
    let renamed = socket
        .ok(
            "saved_search.update",
            json!({ "id": made_id, "name": "Mixing & mastering" }),
        )
        .await;
    assert_eq!(renamed["name"], "Mixing & mastering");
    let (mut bobs_socket, _) = Socket::connect(&app, &bob.access).await;
    assert_eq!(
        bobs_socket
            .refused("saved_search.delete", json!({ "id": made_id }))
            .await,
        "not_found"
    );
    socket
        .ok("saved_search.delete", json!({ "id": made_id }))
        .await;
    assert_eq!(
        socket
            .refused("saved_search.delete", json!({ "id": made_id }))
            .await,
        "not_found"
    );
}

async fn a_matching_gig_alerts_the_buyer_live_once(app: TestApp) {
    let (_, sam) = app.seller("sam").await;
    let (_, ada) = app.signed_up("ada").await;
    // Published before the search is saved: never news to it.
    let before = publish(
        &app,
        &sam.access,
        &logo_gig("I will design a minimalist logo"),
    )
    .await;
    // A draft now, published after the search is saved: news then.
    let mut draft_body = logo_gig("I will design a logo mascot for your team");
    draft_body["publish"] = json!(false);
    let draft = publish(&app, &sam.access, &draft_body).await;
    settle(&app).await;
    app.clock.advance(TimeDelta::seconds(1));

    let (mut socket, _) = Socket::connect(&app, &ada.access).await;
    let search = socket
        .ok(
            "saved_search.create",
            json!({ "name": "Logos", "query": { "q": "logo", "category": "graphics-design" } }),
        )
        .await;
    assert_eq!(search["alerts"], true);
    app.clock.advance(TimeDelta::seconds(1));

    // A matching gig and one that is not.
    let started = Instant::now();
    let matching = publish(
        &app,
        &sam.access,
        &logo_gig("I will design a vintage logo badge"),
    )
    .await;
    let alert = next_alert(&mut socket).await;
    let latency = started.elapsed();
    eprintln!("publish→alert latency: {latency:?}");
    let mut react = gig_body(
        "I will build your React web application",
        "programming-tech",
        "web-development",
    );
    react["tags"] = json!(["react"]);
    let other = publish(&app, &sam.access, &react).await;
    assert_eq!(alert["data"]["kind"], "saved_search.match", "{alert}");
    assert_eq!(alert["data"]["gig_id"], matching.as_str());
    assert_eq!(alert["data"]["title"], "New gig for \"Logos\"");
    assert!(
        alert["data"]["body"]
            .as_str()
            .unwrap()
            .starts_with("I will design a vintage logo badge, from 25.00 USD"),
        "{alert}"
    );
    let cursor = alert["cursor"].as_i64().unwrap();

    // In the notification center, alone.
    settle(&app).await;
    let listed = notifications(&app, &ada.access).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["cursor"], cursor);
    assert_eq!(listed[0]["kind"], "saved_search.match");
    assert_eq!(listed[0]["gig_id"], matching.as_str());
    assert_eq!(listed[0]["read"], false);

    // Editing or re-indexing the gig, or the old one, alerts nobody again.
    app.clock.advance(TimeDelta::seconds(1));
    for id in [&matching, &before, &other] {
        app.patch_json_as(
            &sam.access,
            &format!("/api/v1/gigs/{id}"),
            &json!({ "title": "I will design a vintage logo, badge or emblem" }),
        )
        .await
        .expect(200);
    }
    settle(&app).await;
    app.state.gig_actors.rebuild_index().await.unwrap().unwrap();
    settle(&app).await;
    assert_eq!(notifications(&app, &ada.access).await.len(), 1);
    socket.ok("ping", json!({})).await;
    assert_eq!(socket.backlog_events("notification"), 0);

    // The draft published now is news: one more alert.
    app.post_as(&sam.access, &format!("/api/v1/gigs/{draft}/resume"))
        .await
        .expect(200);
    let alert = next_alert(&mut socket).await;
    assert_eq!(alert["data"]["gig_id"], draft.as_str(), "{alert}");
    settle(&app).await;
    let listed = notifications(&app, &ada.access).await;
    let gigs: Vec<&str> = listed
        .iter()
        .map(|n| n["gig_id"].as_str().unwrap())
        .collect();
    assert_eq!(gigs, [draft.as_str(), matching.as_str()]);

    // A deleted search alerts no more.
    app.delete_as(
        &ada.access,
        &format!(
            "/api/v1/me/saved-searches/{}",
            search["id"].as_str().unwrap()
        ),
    )
    .await
    .expect(204);
    publish(&app, &sam.access, &logo_gig("I will design a playful logo")).await;
    settle(&app).await;
    assert_eq!(notifications(&app, &ada.access).await.len(), 2);
}

async fn the_digest_mails_new_matches_once(app: TestApp) {
    let (seller, sam) = app.seller("sam").await;
    let (ada, tokens) = app.verified_user("ada").await;
    app.post_json_as(
        &tokens.access,
        "/api/v1/me/saved-searches",
        &json!({ "name": "Logos", "query": { "q": "logo" }, "alerts": false, "email_digest": true }),
    )
    .await
    .expect(201);
    app.clock.advance(TimeDelta::seconds(1));
    let gig = publish(
        &app,
        &sam.access,
        &logo_gig("I will design a vintage logo badge"),
    )
    .await;
    let mut other = gig_body(
        "I will mix and master your song",
        "music-audio",
        "mixing-mastering",
    );
    other["tags"] = json!(["mixing"]);
    publish(&app, &sam.access, &other).await;
    settle(&app).await;
    // Alerts are off: nothing live.
    assert!(notifications(&app, &tokens.access).await.is_empty());

    // A day later the scheduled digest goes out.
    app.clock.advance(TimeDelta::days(1));
    app.state.saved.tick();
    let mail = app.wait_for_mail("saved_search_digest", &ada.email).await;
    assert_eq!(mail.subject, "1 new gig for your saved searches");
    assert!(mail.text.contains("Logos:"), "{}", mail.text);
    assert!(
        mail.text
            .contains("I will design a vintage logo badge, from 25.00 USD"),
        "{}",
        mail.text
    );
    assert!(
        mail.text.contains(&format!("{}/gigs/{gig}", app.address)),
        "{}",
        mail.text
    );
    assert!(!mail.text.contains("mix and master"), "{}", mail.text);

    // Again: nothing new, nothing sent.
    assert_eq!(app.state.saved.run_digest().await.unwrap().unwrap(), 0);
    app.state.saved.tick();
    app.state.saved.snapshot().await.unwrap();
    assert_eq!(app.mails("saved_search_digest", &ada.email).len(), 1);

    // A later match comes in the next digest, alone (a day on, the seller
    // signs in again).
    app.clock.advance(TimeDelta::seconds(1));
    let sam = app.login_ok(&seller.username, &seller.password).await;
    let later = publish(
        &app,
        &sam.access,
        &logo_gig("I will redraw your logo as vector art"),
    )
    .await;
    settle(&app).await;
    assert_eq!(app.state.saved.run_digest().await.unwrap().unwrap(), 1);
    let mail = app.wait_for_mail("saved_search_digest", &ada.email).await;
    assert!(
        mail.text.contains(&format!("/gigs/{later}")),
        "{}",
        mail.text
    );
    assert!(
        !mail.text.contains(&format!("/gigs/{gig}")),
        "{}",
        mail.text
    );
}

async fn measure_latency(app: TestApp) {
    const GIGS: usize = 20;
    let (_, sam) = app.seller("sam").await;
    let (_, ada) = app.signed_up("ada").await;
    let (mut socket, _) = Socket::connect(&app, &ada.access).await;
    socket
        .ok(
            "saved_search.create",
            json!({ "name": "Logos", "query": { "q": "logo" } }),
        )
        .await;
    app.clock.advance(TimeDelta::seconds(1));
    let mut latencies = Vec::with_capacity(GIGS);
    for n in 0..GIGS {
        let started = Instant::now();
        let id = publish(
            &app,
            &sam.access,
            &logo_gig(&format!("I will design logo number {n}")),
        )
        .await;
        let alert = next_alert(&mut socket).await;
        latencies.push(started.elapsed());
        assert_eq!(alert["data"]["gig_id"], id.as_str(), "{alert}");
    }
    latencies.sort();
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    eprintln!(
        "saved-search alerts on {:?}, {GIGS} gigs, publish→alert: p50 {:?}, p99 {:?}, max {:?}",
        app.backend,
        at(50),
        at(99),
        latencies[latencies.len() - 1]
    );
}
