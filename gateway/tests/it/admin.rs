//! Admin and moderation end to end: who may use the admin routes and the
//! admin socket at all, the live feed two admins share (claims, conflicts,
//! resuming after a cut), what puts items in the queue (published gigs,
//! flagged chat messages, reports, disputes, failed payments, refunds), the
//! actions and what they do everywhere else (suspension closes sockets and
//! empties search, removal hides a gig, resolutions and cancellations move
//! money), the append-only audit log, the lists and the live statistics,
//! and refused input that changes nothing.
//!
//! Built on the fixtures of `orders` (parties, an admin made as the
//! operator makes one, checkout, the ledger). Items are raised after the
//! change that causes them, in the background: a test waits for them on an
//! admin socket ([`AdminSocket`]) or polls the queue ([`queued`]), both
//! bounded.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use chrono::TimeDelta;
use domain::ids::UserId;
use futures_util::{SinkExt as _, StreamExt as _};
use gateway::config::Settings;
use reqwest::header::AUTHORIZATION;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::{Connection as _, Executor as _, PgConnection, SqliteConnection};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

use crate::helpers::{eventually, gig_body, hit_ids, Backend, Reply, TestApp, PASSWORD};
use crate::orders::{
    act, admin, buy, checkout, conversation, id_of, kinds, ledger, new_buyer, new_key, order,
    paid_order, payment, refund, refunds_succeeded, seller_with_gig, started_order, Party,
    CARD_DECLINED, DECLINED, GIG_TOTAL,
};
use crate::socket::Socket;

backend_tests!(
    every_admin_route_refuses_others,
    two_admins_share_the_live_feed,
    flagged_messages_and_reports_reach_the_queue with flag_venmo,
    gigs_reach_the_queue_when_published_or_edited,
    reconnecting_admin_gets_what_it_missed,
    suspension_takes_effect_everywhere,
    gig_removal_and_restore,
    dispute_resolution_and_cancellation_follow_the_money,
    audit_log_is_append_only_and_searchable,
    lists_and_stats with fast_stats,
    bad_input_changes_nothing,
);

/// Chat messages with this word are flagged.
fn flag_venmo(settings: &mut Settings) {
    settings.moderation.flag_words = vec!["venmo".into()];
}

/// Statistics reach the admin sockets within a tenth of a second.
fn fast_stats(settings: &mut Settings) {
    settings.moderation.stats_interval_ms = 100;
}

/// How long a test waits for one frame on an admin socket.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// The title of the gig `seller_with_gig` creates contains this word.
const GIG_WORD: &str = "logo";

// ------------------------------------------------------------ the client

/// A client of the admin socket: requests and their replies, feed events
/// and statistics. Frames read while waiting for something else wait in a
/// backlog; every wait is bounded.
struct AdminSocket {
    stream: WebSocketStream<TcpStream>,
    next_id: u64,
    backlog: VecDeque<Value>,
    /// The data of the `admin.ready` frame.
    ready: Value,
    /// The newest statistics the server wrote (`admin.ready`'s, then each
    /// `admin.stats`).
    stats: Value,
}

impl AdminSocket {
    /// Opens `/admin/ws<query>`, with `token` in an `Authorization` header
    /// if given, and reads `admin.ready`; or the status and error body of
    /// the HTTP answer that refused the upgrade.
    async fn try_open(app: &TestApp, token: Option<&str>, query: &str) -> Result<Self, Reply> {
        let addr = app.address.trim_start_matches("http://").to_string();
        let mut request = format!("ws://{addr}/admin/ws{query}")
            .into_client_request()
            .unwrap();
        if let Some(token) = token {
            request
                .headers_mut()
                .insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        }
        let tcp = TcpStream::connect(&addr).await.unwrap();
        match tokio_tungstenite::client_async(request, tcp).await {
            Ok((stream, _)) => {
                let mut socket = Self {
                    stream,
                    next_id: 0,
                    backlog: VecDeque::new(),
                    ready: Value::Null,
                    stats: Value::Null,
                };
                let first = socket.read().await;
                assert_eq!(first["type"], "event", "{first}");
                assert_eq!(first["event"], "admin.ready", "the first frame: {first}");
                assert!(first.get("cursor").is_none(), "{first}");
                socket.ready = first["data"].clone();
                socket.stats = first["data"]["stats"].clone();
                Ok(socket)
            }
            Err(tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_deref()
                    .and_then(|bytes| serde_json::from_slice(bytes).ok())
                    .unwrap_or(Value::Null);
                Err(Reply {
                    status: response.status().as_u16(),
                    headers: reqwest::header::HeaderMap::new(),
                    body,
                })
            }
            Err(e) => panic!("connecting to /admin/ws failed: {e}"),
        }
    }

    /// Opens the socket as `token`'s admin, from the head of the feed.
    async fn open(app: &TestApp, token: &str) -> Self {
        Self::try_open(app, Some(token), "")
            .await
            .unwrap_or_else(|refused| panic!("/admin/ws refused: {refused:?}"))
    }

    /// Opens the socket resuming after feed event `cursor`.
    async fn resume(app: &TestApp, token: &str, cursor: i64) -> Self {
        Self::try_open(app, Some(token), &format!("?cursor={cursor}"))
            .await
            .unwrap_or_else(|refused| panic!("/admin/ws?cursor={cursor} refused: {refused:?}"))
    }

    /// The feed head when the socket opened.
    fn head(&self) -> i64 {
        self.ready["cursor"].as_i64().unwrap()
    }

    /// Sends a request and returns its reply frame.
    async fn request(&mut self, kind: &str, data: Value) -> Value {
        self.next_id += 1;
        let id = format!("a{}", self.next_id);
        let frame = json!({ "id": id, "type": kind, "data": data });
        self.stream
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
        self.first(|f| f["type"] == "reply" && f["id"] == id.as_str())
            .await
    }

    /// A request that must succeed: its reply's data.
    async fn ok(&mut self, kind: &str, data: Value) -> Value {
        let reply = self.request(kind, data).await;
        assert_eq!(reply["ok"], true, "{kind} failed: {reply}");
        reply["data"].clone()
    }

    /// A request that must fail: its error code.
    async fn refused(&mut self, kind: &str, data: Value) -> String {
        let reply = self.request(kind, data).await;
        assert_eq!(reply["ok"], false, "{kind} should fail: {reply}");
        reply["error"]["code"].as_str().unwrap().to_string()
    }

    /// The oldest feed event named `event` whose item (or audit entry)
    /// `wanted` accepts: the whole frame.
    async fn feed(&mut self, event: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let frame = self
            .first(|f| f["type"] == "event" && f["event"] == event && wanted(&f["data"]["item"]))
            .await;
        assert!(
            frame["cursor"].is_i64(),
            "a feed event has a cursor: {frame}"
        );
        assert!(frame["data"]["at"].is_string(), "{frame}");
        frame
    }

    /// The oldest `item.raised` of `kind`: the item.
    async fn raised(&mut self, kind: &str) -> Value {
        self.feed("item.raised", |item| item["kind"] == kind).await["data"]["item"].clone()
    }

    /// The oldest `item.<change>` of the item `id`: the item.
    async fn item_event(&mut self, change: &str, id: &str) -> Value {
        self.feed(&format!("item.{change}"), |item| item["id"] == id)
            .await["data"]["item"]
            .clone()
    }

    /// The oldest `audit.recorded` of `action`: the entry.
    async fn audited(&mut self, action: &str) -> Value {
        self.feed("audit.recorded", |entry| entry["action"] == action)
            .await["data"]["item"]
            .clone()
    }

    /// Reads (other frames go to the backlog) until the newest
    /// statistics the server pushed are ones `wanted` accepts: those.
    async fn stats_until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        while !wanted(&self.stats) {
            let frame = self.read().await;
            if frame["event"] != "admin.stats" {
                self.backlog.push_back(frame);
            }
        }
        self.stats.clone()
    }

    /// The next `n` feed events (frames with a cursor) in arrival order;
    /// other frames stay in the backlog.
    async fn feed_frames(&mut self, n: usize) -> Vec<Value> {
        let mut taken = Vec::new();
        let mut rest = VecDeque::new();
        for frame in std::mem::take(&mut self.backlog) {
            if taken.len() < n && frame["cursor"].is_i64() {
                taken.push(frame);
            } else {
                rest.push_back(frame);
            }
        }
        self.backlog = rest;
        while taken.len() < n {
            let frame = self.read().await;
            if frame["cursor"].is_i64() {
                taken.push(frame);
            } else {
                self.backlog.push_back(frame);
            }
        }
        taken
    }

    /// The oldest frame, from the backlog or then the socket, that `wanted`
    /// accepts; frames read on the way wait in the backlog.
    async fn first(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&wanted) {
            return self.backlog.remove(i).unwrap();
        }
        loop {
            let frame = self.read().await;
            if wanted(&frame) {
                return frame;
            }
            self.backlog.push_back(frame);
        }
    }

    /// Reads one JSON text frame (pings are answered while reading).
    async fn read(&mut self) -> Value {
        loop {
            let next = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no frame on the admin socket within {FRAME_TIMEOUT:?}; backlog: {:?}",
                        self.backlog
                    )
                });
            match next {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("a frame that is not JSON ({e}): {text}"));
                    if frame["event"] == "admin.stats" {
                        assert!(frame.get("cursor").is_none(), "not in the feed: {frame}");
                        self.stats = frame["data"].clone();
                    }
                    return frame;
                }
                Some(Ok(Message::Close(frame))) => panic!("the admin socket closed: {frame:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("reading the admin socket failed: {e}"),
                None => panic!("the admin socket ended"),
            }
        }
    }

    /// Reads until the server closes; the close code (frames before it
    /// are dropped). `None` when the connection ended without one.
    async fn close_code(&mut self) -> Option<u16> {
        loop {
            let next = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .expect("the server did not close the admin socket");
            match next {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Closes from the client side.
    async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

// -------------------------------------------------------------- helpers

fn admin_path(rest: &str) -> String {
    format!("/api/v1/admin{rest}")
}

/// `GET /admin<rest>` with `query` (encoded here).
async fn admin_get(app: &TestApp, token: &str, rest: &str, query: &[(&str, &str)]) -> Reply {
    app.send(
        app.request(Method::GET, &admin_path(rest))
            .bearer_auth(token)
            .query(query),
    )
    .await
}

/// `POST /admin<rest>` with `body`.
async fn admin_post(app: &TestApp, token: &str, rest: &str, body: Value) -> Reply {
    app.post_json_as(token, &admin_path(rest), &body).await
}

/// The `items` of a list page.
fn items_of(page: &Value) -> Vec<Value> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
        .clone()
}

/// The `id` of each entry of a list (as strings, or numbers as strings).
fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|v| match &v["id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// A JSON array of the list (for a `Value` argument).
fn as_list(value: &Value) -> Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .clone()
}

/// The whole queue, newest first (one page of up to 200).
async fn queue(app: &TestApp, token: &str, query: &[(&str, &str)]) -> Vec<Value> {
    let mut query = query.to_vec();
    query.push(("limit", "200"));
    items_of(&admin_get(app, token, "/items", &query).await.expect(200))
}

/// Polls the queue (bounded) until an item `wanted` accepts is in it.
async fn queued(app: &TestApp, token: &str, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    eventually(what, || async {
        let items = queue(app, token, &[]).await;
        items
            .iter()
            .find(|item| wanted(item))
            .cloned()
            .ok_or_else(|| format!("{items:?}"))
    })
    .await
}

/// Whether an item or entry is about the target `id`.
fn about(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |value| value["target"]["id"] == id
}

/// The audit log with `query`, newest first.
async fn audit(app: &TestApp, token: &str, query: &[(&str, &str)]) -> Vec<Value> {
    items_of(&admin_get(app, token, "/audit", query).await.expect(200))
}

fn user_id(party: &Party) -> UserId {
    UserId::from_uuid(party.id().parse().unwrap())
}

/// Sends a chat message over REST: the stored message's id.
async fn send_message(app: &TestApp, from: &Party, conversation: &str, body: &str) -> String {
    let sent = app
        .post_json_as(
            &from.token,
            &format!("/api/v1/conversations/{conversation}/messages"),
            &json!({ "client_id": Uuid::new_v4().to_string(), "body": body }),
        )
        .await
        .expect(201);
    id_of(&sent["message"])
}

async fn file_report(
    app: &TestApp,
    token: &str,
    target: Value,
    reason: &str,
    details: &str,
) -> Reply {
    app.post_json_as(
        token,
        "/api/v1/reports",
        &json!({ "target": target, "reason": reason, "details": details }),
    )
    .await
}

/// The next `order.updated` of the order with `change` on a party's
/// socket (earlier changes of it are passed over): the order.
async fn order_change(socket: &mut Socket, id: &str, change: &str) -> Value {
    loop {
        let event = socket.event("order.updated").await;
        if event["data"]["order"]["id"] == id && event["data"]["change"] == change {
            return event["data"]["order"].clone();
        }
    }
}

/// Search hits for the word of the fixtures' gig, right now.
async fn search_now(app: &TestApp) -> Vec<String> {
    hit_ids(&app.search_ok(&[("q", GIG_WORD)]).await)
}

/// Runs one SQL statement on the test database directly, as someone with
/// access to the database would: rows changed, or the error.
async fn run_sql(app: &TestApp, statement: &str) -> Result<u64, String> {
    let url = app.state.settings.database_url();
    match app.backend {
        Backend::Sqlite => {
            let mut conn = SqliteConnection::connect(&url).await.unwrap();
            let result = conn
                .execute(statement)
                .await
                .map(|done| done.rows_affected())
                .map_err(|e| e.to_string());
            conn.close().await.ok();
            result
        }
        Backend::Postgres => {
            let mut conn = PgConnection::connect(&url).await.unwrap();
            let result = conn
                .execute(statement)
                .await
                .map(|done| done.rows_affected())
                .map_err(|e| e.to_string());
            conn.close().await.ok();
            result
        }
    }
}

// ------------------------------------------------------ 1. who may enter

/// One admin REST route: its method, its path as documented, and a valid
/// body for it.
struct Route {
    method: Method,
    path: &'static str,
    body: Option<Value>,
}

impl Route {
    async fn call(&self, app: &TestApp, id: &str, authorization: Option<&str>) -> Reply {
        let mut request = app.request(self.method.clone(), &self.path.replace("{id}", id));
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        if let Some(body) = &self.body {
            request = request.json(body);
        }
        app.send(request).await
    }
}

fn admin_routes() -> Vec<Route> {
    let get = |path| Route {
        method: Method::GET,
        path,
        body: None,
    };
    let post = |path, body: Option<Value>| Route {
        method: Method::POST,
        path,
        body,
    };
    let reason = || Some(json!({ "reason": "Looked at by the team." }));
    vec![
        get("/api/v1/admin/items"),
        get("/api/v1/admin/reports"),
        get("/api/v1/admin/disputes"),
        get("/api/v1/admin/users"),
        get("/api/v1/admin/gigs"),
        get("/api/v1/admin/orders"),
        get("/api/v1/admin/audit"),
        get("/api/v1/admin/feed"),
        get("/api/v1/admin/stats"),
        post("/api/v1/admin/items/{id}/claim", None),
        post("/api/v1/admin/items/{id}/release", None),
        post("/api/v1/admin/reports/{id}/dismiss", reason()),
        post("/api/v1/admin/items/{id}/dismiss", reason()),
        post("/api/v1/admin/users/{id}/suspend", reason()),
        post("/api/v1/admin/users/{id}/reinstate", reason()),
        post("/api/v1/admin/users/{id}/warn", reason()),
        post("/api/v1/admin/gigs/{id}/remove", reason()),
        post("/api/v1/admin/gigs/{id}/restore", reason()),
        post(
            "/api/v1/admin/orders/{id}/resolve",
            Some(json!({ "outcome": "complete", "reason": "Delivered as agreed." })),
        ),
        post("/api/v1/admin/orders/{id}/cancel", reason()),
    ]
}

async fn every_admin_route_refuses_others(app: TestApp) {
    let root = admin(&app, "root").await;
    let user = new_buyer(&app, "mallory").await;
    let routes = admin_routes();

    // The table is every admin route the API documents.
    let spec = app.get_json("/api/openapi.json").await.expect(200);
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.starts_with("/api/v1/admin"))
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .map(|m| (m.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let listed: BTreeSet<(String, String)> = routes
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(listed, documented);

    let id = Uuid::new_v4().to_string();
    let user_bearer = format!("Bearer {}", user.token);
    let admin_bearer = format!("Bearer {}", root.token);
    for route in &routes {
        let name = format!("{} {}", route.method, route.path);
        for (authorization, status, code) in [
            (None, 401, "unauthorized"),
            (Some("Bearer not-a-token"), 401, "unauthorized"),
            (Some("Basic cm9vdDpyb290"), 401, "unauthorized"),
            (Some(user_bearer.as_str()), 403, "forbidden"),
        ] {
            let reply = route.call(&app, &id, authorization).await;
            assert_eq!(
                (reply.status, reply.body["code"].as_str()),
                (status, Some(code)),
                "{name} with {authorization:?}: {}",
                reply.body
            );
        }
        // An admin gets in: lists answer, actions on nothing find nothing.
        let reply = route.call(&app, &id, Some(admin_bearer.as_str())).await;
        let expected = if route.method == Method::GET {
            200
        } else {
            404
        };
        assert_eq!(reply.status, expected, "{name} as an admin: {}", reply.body);
    }

    // The socket checks before the upgrade, as plain HTTP answers.
    app.get_json("/admin/ws")
        .await
        .expect_error(401, "unauthorized");
    app.get_json("/admin/ws?token=not-a-token")
        .await
        .expect_error(401, "unauthorized");
    app.get_json_as(&user.token, "/admin/ws")
        .await
        .expect_error(403, "forbidden");
    app.get_json(&format!("/admin/ws?token={}", user.token))
        .await
        .expect_error(403, "forbidden");
    // An admin passes them (and then needs an upgrade request).
    app.get_json_as(&root.token, "/admin/ws")
        .await
        .expect_error(400, "bad_request");
    // And so does a real WebSocket client.
    let refused = AdminSocket::try_open(&app, None, "").await.err().unwrap();
    refused.expect_error(401, "unauthorized");
    let refused = AdminSocket::try_open(&app, Some("not-a-token"), "")
        .await
        .err()
        .unwrap();
    refused.expect_error(401, "unauthorized");
    let refused = AdminSocket::try_open(&app, Some(&user.token), "")
        .await
        .err()
        .unwrap();
    refused.expect_error(403, "forbidden");
    let socket = AdminSocket::open(&app, &root.token).await;
    assert_eq!(socket.ready["admin_id"], root.id());
    assert_eq!(socket.head(), 0);
    assert!(socket.ready["heartbeat_secs"]
        .as_u64()
        .is_some_and(|s| s > 0));
    assert!(socket.ready["stats"].is_object(), "{}", socket.ready);
    socket.close().await;
    // The token may come in the query, where a browser cannot set headers.
    let socket = AdminSocket::try_open(&app, None, &format!("?token={}", root.token))
        .await
        .unwrap_or_else(|refused| panic!("{refused:?}"));
    assert_eq!(socket.ready["admin_id"], root.id());
    socket.close().await;

    // The query is read only after the token: whoever is not an admin
    // hears about nothing else; an admin hears about a bad query.
    app.get_json("/admin/ws?cursor=abc")
        .await
        .expect_error(401, "unauthorized");
    app.get_json(&format!("/admin/ws?cursor=abc&token={}", user.token))
        .await
        .expect_error(403, "forbidden");
    for query in ["?cursor=abc", "?protocol=1"] {
        AdminSocket::try_open(&app, Some(&root.token), query)
            .await
            .err()
            .unwrap()
            .expect_error(422, "validation_failed");
    }

    // A suspended admin's token opens nothing, and a socket opened before
    // the suspension answers no more requests.
    let judy = admin(&app, "judy").await;
    admin_get(&app, &judy.token, "/stats", &[])
        .await
        .expect(200);
    let mut judys = AdminSocket::open(&app, &judy.token).await;
    judys.ok("stats.get", json!({})).await;
    app.state
        .accounts
        .set_suspended(user_id(&judy), true, app.state.clock.now())
        .await
        .unwrap();
    assert_eq!(judys.refused("users.list", json!({})).await, "unauthorized");
    let judy_bearer = format!("Bearer {}", judy.token);
    for route in &routes {
        route
            .call(&app, &id, Some(judy_bearer.as_str()))
            .await
            .expect_error(401, "unauthorized");
    }
    AdminSocket::try_open(&app, Some(&judy.token), "")
        .await
        .err()
        .unwrap()
        .expect_error(401, "unauthorized");
    app.login("judy", PASSWORD)
        .await
        .expect_error(403, "forbidden");
}

// ------------------------------------------------- 2. the shared live feed

async fn two_admins_share_the_live_feed(app: TestApp) {
    let alice = admin(&app, "alice").await;
    let bob = admin(&app, "bob").await;
    let mut a = AdminSocket::open(&app, &alice.token).await;
    let mut b = AdminSocket::open(&app, &bob.token).await;
    assert_eq!(a.head(), b.head());

    // A seller publishes a gig: both admins see the same event.
    let (seller, gig_id) = seller_with_gig(&app, "ada").await;
    let seen_a = a.feed("item.raised", about(&gig_id)).await;
    let seen_b = b.feed("item.raised", about(&gig_id)).await;
    assert_eq!(seen_a, seen_b);
    assert_eq!(seen_a["cursor"], a.head() + 1);
    let item = seen_a["data"]["item"].clone();
    assert_eq!(item["kind"], "gig_published");
    assert_eq!(item["target"], json!({ "type": "gig", "id": gig_id }));
    assert_eq!(item["subject_user"], seller.id());
    assert_eq!(item["status"], "open");
    assert_eq!(item["version"], 1);
    assert!(
        item["summary"].as_str().unwrap().contains(GIG_WORD),
        "{item}"
    );
    let item_id = id_of(&item);

    // Alice claims it over the socket: both see the claim, and its entry.
    let claimed = a.ok("item.claim", json!({ "item_id": item_id })).await;
    assert_eq!(claimed["status"], "claimed");
    assert_eq!(claimed["claimed_by"], alice.id());
    assert_eq!(claimed["version"], 2);
    for socket in [&mut a, &mut b] {
        let event = socket.item_event("claimed", &item_id).await;
        assert_eq!(event, claimed);
        let entry = socket.audited("claim_item").await;
        assert_eq!(entry["admin_id"], alice.id());
        assert_eq!(entry["item_id"], item_id.as_str());
    }
    // Claiming one's own claim again changes nothing.
    let again = a.ok("item.claim", json!({ "item_id": item_id })).await;
    assert_eq!(again, claimed);
    let mine = queue(&app, &bob.token, &[("claimed_by", &alice.id())]).await;
    assert_eq!(ids(&mine), std::slice::from_ref(&item_id));

    // Bob cannot take it, over the socket or REST, nor release it.
    assert_eq!(
        b.refused("item.claim", json!({ "item_id": item_id })).await,
        "conflict"
    );
    admin_post(
        &app,
        &bob.token,
        &format!("/items/{item_id}/claim"),
        json!({}),
    )
    .await
    .expect_error(409, "conflict");
    assert_eq!(
        b.refused("item.release", json!({ "item_id": item_id }))
            .await,
        "conflict"
    );
    // Nor act on it: the gig stays as it is and nothing is recorded.
    admin_post(
        &app,
        &bob.token,
        &format!("/gigs/{gig_id}/remove"),
        json!({ "reason": "Looks like spam.", "item_id": item_id }),
    )
    .await
    .expect_error(409, "conflict");
    assert_eq!(
        b.refused(
            "gig.remove",
            json!({ "gig_id": gig_id, "reason": "Looks like spam.", "item_id": item_id }),
        )
        .await,
        "conflict"
    );
    assert_eq!(app.gig(None, &gig_id).await.expect(200)["status"], "active");
    assert!(audit(&app, &bob.token, &[("admin_id", &bob.id())])
        .await
        .is_empty());
    let stored = queue(&app, &bob.token, &[("target_id", &gig_id)]).await;
    assert_eq!(stored, std::slice::from_ref(&claimed));

    // Alice lets go: both see it open again, and Bob may take it.
    let released = a.ok("item.release", json!({ "item_id": item_id })).await;
    assert_eq!(released["status"], "open");
    assert!(released["claimed_by"].is_null());
    for socket in [&mut a, &mut b] {
        assert_eq!(socket.item_event("released", &item_id).await, released);
        assert_eq!(socket.audited("release_item").await["admin_id"], alice.id());
    }
    let taken = b.ok("item.claim", json!({ "item_id": item_id })).await;
    assert_eq!(taken["claimed_by"], bob.id());
    assert_eq!(a.item_event("claimed", &item_id).await, taken);

    // Bob acts on it: the item is resolved with the action, for both.
    let removed = admin_post(
        &app,
        &bob.token,
        &format!("/gigs/{gig_id}/remove"),
        json!({ "reason": "Looks like spam.", "item_id": item_id }),
    )
    .await
    .expect(200);
    assert_eq!(removed["item"]["status"], "resolved");
    assert_eq!(removed["item"]["outcome"], "remove_gig");
    assert_eq!(removed["item"]["resolved_by"], bob.id());
    for socket in [&mut a, &mut b] {
        assert_eq!(
            socket.item_event("resolved", &item_id).await,
            removed["item"]
        );
        assert_eq!(socket.audited("remove_gig").await, removed["audit"]);
    }
    // Settled: nobody claims it any more.
    assert_eq!(
        a.refused("item.claim", json!({ "item_id": item_id })).await,
        "conflict"
    );

    // Two admins claiming at the same moment: one gets it.
    let other = app
        .create_gig_ok(
            &seller.token,
            &gig_body(
                "I will build a landing page for your product",
                "programming-tech",
                "web-development",
            ),
        )
        .await;
    let other_id = id_of(&a.feed("item.raised", about(&id_of(&other))).await["data"]["item"]);
    let path = format!("/items/{other_id}/claim");
    let (first, second) = tokio::join!(
        admin_post(&app, &alice.token, &path, json!({})),
        admin_post(&app, &bob.token, &path, json!({})),
    );
    let mut statuses = [first.status, second.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{first:?} {second:?}");
    let winner = if first.status == 200 { &first } else { &second }.body["claimed_by"].clone();
    let claimed = b.item_event("claimed", &other_id).await;
    assert_eq!(claimed["claimed_by"], winner);
    assert_eq!(claimed["version"], 2);

    // An admin whose login ends loses the socket at once; others keep it.
    let reply = app
        .send(
            app.request(Method::POST, "/api/v1/auth/logout")
                .bearer_auth(&alice.token),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(a.close_code().await, Some(4401));
    b.ok("ping", json!({})).await;
    admin_get(&app, &alice.token, "/items", &[])
        .await
        .expect_error(401, "unauthorized");
}

// ------------------------------------------- 3. flagged messages, reports

async fn flagged_messages_and_reports_reach_the_queue(app: TestApp) {
    let root = admin(&app, "root").await;
    let mut feed = AdminSocket::open(&app, &root.token).await;
    let (seller, gig_id) = seller_with_gig(&app, "ada").await;
    let buyer = new_buyer(&app, "bob").await;
    let outsider = new_buyer(&app, "eve").await;
    let chat = conversation(&app, &buyer, &seller).await;

    // Contact details: flagged, with what was found and the text.
    let body = "Write to me at bob.smith@example.org instead";
    let leaked = send_message(&app, &buyer, &chat, body).await;
    let item = feed.raised("message_flagged").await;
    assert_eq!(
        item["target"],
        json!({ "type": "message", "id": leaked, "conversation_id": chat })
    );
    assert!(as_list(&item["flags"]).contains(&json!("email")), "{item}");
    assert_eq!(item["subject_user"], buyer.id());
    assert_eq!(item["excerpt"], body);
    assert!(item["reporter"].is_null());

    // A retry (the same client id) and a clean message raise nothing: the
    // next flagged item is the one sent after them, with a listed word.
    let retried = app
        .post_json_as(
            &buyer.token,
            &format!("/api/v1/conversations/{chat}/messages"),
            &json!({ "client_id": "retried", "body": "Call me on +1 (555) 123-4567" }),
        )
        .await
        .expect(201);
    let phoned = feed.raised("message_flagged").await;
    assert_eq!(phoned["target"]["id"], retried["message"]["id"]);
    assert!(
        as_list(&phoned["flags"]).contains(&json!("phone")),
        "{phoned}"
    );
    let again = app
        .post_json_as(
            &buyer.token,
            &format!("/api/v1/conversations/{chat}/messages"),
            &json!({ "client_id": "retried", "body": "Call me on +1 (555) 123-4567" }),
        )
        .await
        .expect(200);
    assert_eq!(again["duplicate"], true);
    let clean = send_message(
        &app,
        &buyer,
        &chat,
        "Thanks, a round logo in blue sounds right.",
    )
    .await;
    let venmo = send_message(&app, &buyer, &chat, "Or pay me by venmo, it is quicker").await;
    let item = feed.raised("message_flagged").await;
    assert_eq!(item["target"]["id"], venmo.as_str());
    // Venmo is also a payment service the checks know.
    assert_eq!(item["flags"], json!(["handle", "word:venmo"]));
    // Over the socket too.
    let (mut seller_socket, _) = Socket::connect(&app, &seller.token).await;
    let sent = seller_socket
        .ok(
            "chat.send",
            json!({ "conversation_id": chat, "client_id": "s-1", "body": "Mail me: ada@example.com" }),
        )
        .await;
    let item = feed.raised("message_flagged").await;
    assert_eq!(item["target"]["id"], sent["message"]["id"]);
    assert_eq!(item["subject_user"], seller.id());
    assert!(as_list(&item["flags"]).contains(&json!("email")), "{item}");
    let flagged = queue(&app, &root.token, &[("kind", "message_flagged")]).await;
    assert_eq!(flagged.len(), 4, "{flagged:?}");
    assert!(flagged.iter().all(|i| i["target"]["id"] != clean.as_str()));

    // A report goes to the queue at once, with its reporter and reason.
    let gig = json!({ "type": "gig", "id": gig_id });
    let filed = file_report(
        &app,
        &buyer.token,
        gig.clone(),
        "spam",
        "Posted five times.",
    )
    .await
    .expect(201);
    assert_eq!(filed["reason"], "spam");
    assert_eq!(filed["status"], "open");
    let report_id = id_of(&filed);
    let item = feed.raised("report").await;
    assert_eq!(item["id"], report_id.as_str());
    assert_eq!(item["target"], gig);
    assert_eq!(item["reporter"], buyer.id());
    assert_eq!(item["reason"], "spam");
    assert_eq!(item["subject_user"], seller.id());
    assert_eq!(item["excerpt"], "Posted five times.");
    // Once per reporter and target while it is open.
    file_report(&app, &buyer.token, gig.clone(), "fraud", "")
        .await
        .expect_error(409, "conflict");

    // A user, and a message over the socket.
    let user = json!({ "type": "user", "id": seller.id() });
    file_report(&app, &buyer.token, user.clone(), "fraud", "")
        .await
        .expect(201);
    let item = feed.raised("report").await;
    assert_eq!(item["target"], user);
    assert_eq!(item["reason"], "fraud");
    assert!(item["excerpt"].is_null(), "{item}");
    let message = json!({ "type": "message", "id": leaked, "conversation_id": chat });
    let by_socket = seller_socket
        .ok(
            "report.file",
            json!({ "target": message, "reason": "off_platform", "details": "Asks to talk by e-mail." }),
        )
        .await;
    assert_eq!(by_socket["reason"], "off_platform");
    let item = feed.raised("report").await;
    assert_eq!(item["id"], by_socket["id"]);
    assert_eq!(item["target"], message);
    assert_eq!(item["reporter"], seller.id());
    assert_eq!(item["subject_user"], buyer.id());
    assert_eq!(
        seller_socket
            .refused(
                "report.file",
                json!({ "target": message, "reason": "spam" })
            )
            .await,
        "conflict"
    );

    // What the reporter cannot see is not there; nobody reports themselves.
    let elsewhere = json!({ "type": "message", "id": leaked, "conversation_id": Uuid::new_v4() });
    for (token, target) in [(&outsider.token, &message), (&seller.token, &elsewhere)] {
        file_report(&app, token, target.clone(), "spam", "")
            .await
            .expect_error(404, "not_found");
    }
    file_report(
        &app,
        &buyer.token,
        json!({ "type": "gig", "id": Uuid::new_v4() }),
        "spam",
        "",
    )
    .await
    .expect_error(404, "not_found");
    for (token, target) in [
        (&buyer.token, json!({ "type": "user", "id": buyer.id() })),
        (&buyer.token, message.clone()),
        (&seller.token, gig.clone()),
    ] {
        let reply = file_report(&app, token, target, "spam", "").await;
        reply.expect_error(422, "validation_failed");
        assert_eq!(reply.error_fields(), ["target"]);
    }
    for (target, reason, details) in [
        (gig.clone(), "bogus", ""),
        (gig.clone(), "other", ""),
        (json!({ "type": "order", "id": Uuid::new_v4() }), "spam", ""),
    ] {
        file_report(&app, &outsider.token, target, reason, details)
            .await
            .expect_error(422, "validation_failed");
    }
    app.post_json(
        "/api/v1/reports",
        &json!({ "target": gig, "reason": "spam" }),
    )
    .await
    .expect_error(401, "unauthorized");
    let reports = items_of(
        &admin_get(&app, &root.token, "/reports", &[])
            .await
            .expect(200),
    );
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert!(reports.iter().all(|r| r["kind"] == "report"));

    // Dismissed: resolved and recorded, and it may be reported again.
    let dismissed = admin_post(
        &app,
        &root.token,
        &format!("/reports/{report_id}/dismiss"),
        json!({ "reason": "The copies were drafts." }),
    )
    .await
    .expect(200);
    assert_eq!(dismissed["item"]["id"], report_id.as_str());
    assert_eq!(dismissed["item"]["status"], "resolved");
    assert_eq!(dismissed["item"]["outcome"], "dismiss_report");
    assert_eq!(dismissed["item"]["resolved_by"], root.id());
    let entry = &dismissed["audit"];
    assert_eq!(entry["action"], "dismiss_report");
    assert_eq!(entry["admin_id"], root.id());
    assert_eq!(entry["target"], gig);
    assert_eq!(entry["reason"], "The copies were drafts.");
    assert_eq!(entry["item_id"], report_id.as_str());
    assert_eq!(
        feed.item_event("resolved", &report_id).await,
        dismissed["item"]
    );
    assert_eq!(feed.audited("dismiss_report").await, *entry);
    let logged = audit(&app, &root.token, &[("target_id", &gig_id)]).await;
    assert_eq!(logged, std::slice::from_ref(entry));
    admin_post(
        &app,
        &root.token,
        &format!("/reports/{report_id}/dismiss"),
        json!({ "reason": "Again." }),
    )
    .await
    .expect_error(409, "conflict");
    // Only reports are dismissed as reports; any item is dismissed as
    // needing nothing done.
    let flagged_id = id_of(&flagged[0]);
    admin_post(
        &app,
        &root.token,
        &format!("/reports/{flagged_id}/dismiss"),
        json!({ "reason": "Not a report." }),
    )
    .await
    .expect_error(404, "not_found");
    let dismissed = admin_post(
        &app,
        &root.token,
        &format!("/items/{flagged_id}/dismiss"),
        json!({ "reason": "The address is the seller's business one." }),
    )
    .await
    .expect(200);
    assert_eq!(dismissed["item"]["status"], "resolved");
    assert_eq!(dismissed["item"]["outcome"], "dismiss_item");
    assert_eq!(dismissed["audit"]["action"], "dismiss_item");
    assert_eq!(dismissed["audit"]["target"], flagged[0]["target"]);
    assert_eq!(feed.audited("dismiss_item").await, dismissed["audit"]);
    admin_post(
        &app,
        &root.token,
        &format!("/items/{flagged_id}/dismiss"),
        json!({ "reason": "Again." }),
    )
    .await
    .expect_error(409, "conflict");
    let again = file_report(&app, &buyer.token, gig, "spam", "Still five copies.")
        .await
        .expect(201);
    assert_ne!(id_of(&again), report_id);
}

// --------------------------------------------- 3b. published and edited

async fn gigs_reach_the_queue_when_published_or_edited(app: TestApp) {
    let root = admin(&app, "root").await;
    let mut feed = AdminSocket::open(&app, &root.token).await;
    let (_, tokens) = app.seller("ada").await;
    let token = tokens.access.as_str();

    // A draft is no news; a gig created active is.
    let mut body = gig_body(
        "I will write a technical blog post about Rust",
        "programming-tech",
        "web-development",
    );
    body["publish"] = json!(false);
    let draft_id = id_of(&app.create_gig_ok(token, &body).await);
    let active = app
        .create_gig_ok(
            token,
            &gig_body(
                "I will build a landing page for your product",
                "programming-tech",
                "web-development",
            ),
        )
        .await;
    let active_id = id_of(&active);
    let item = feed.raised("gig_published").await;
    assert_eq!(item["target"], json!({ "type": "gig", "id": active_id }));
    assert_eq!(item["source_key"], format!("gig:{active_id}:1"));
    assert_eq!(item["excerpt"], active["description"]);
    assert_eq!(item["flags"], json!([]));

    // Publishing the draft is.
    let published = app
        .post_as(token, &format!("/api/v1/gigs/{draft_id}/resume"))
        .await
        .expect(200);
    let item = feed.raised("gig_published").await;
    assert_eq!(item["target"]["id"], draft_id.as_str());
    assert_eq!(
        item["source_key"],
        format!("gig:{draft_id}:{}", published["version"])
    );

    // Editing what a published gig says is, with what the checks find.
    let edited = app
        .patch_json_as(
            token,
            &format!("/api/v1/gigs/{active_id}"),
            &json!({ "description": "Fast, careful work on your landing page. Questions first? Write to ada@example.com." }),
        )
        .await
        .expect(200);
    let item = feed.raised("gig_edited").await;
    assert_eq!(item["target"]["id"], active_id.as_str());
    assert_eq!(item["flags"], json!(["email"]));
    assert_eq!(
        item["source_key"],
        format!("gig:{active_id}:{}", edited["version"])
    );

    // Pausing and resuming are not; editing a paused gig is.
    for action in ["pause", "resume", "pause"] {
        app.post_as(token, &format!("/api/v1/gigs/{active_id}/{action}"))
            .await
            .expect(200);
    }
    app.patch_json_as(
        token,
        &format!("/api/v1/gigs/{active_id}"),
        &json!({ "title": "I will build a fast landing page for your product" }),
    )
    .await
    .expect(200);
    let item = feed.raised("gig_edited").await;
    assert_eq!(item["target"]["id"], active_id.as_str());
    assert!(item["summary"]
        .as_str()
        .unwrap()
        .contains("fast landing page"));
    let mut raised: Vec<(String, String)> = queue(&app, &root.token, &[])
        .await
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().into(),
                i["target"]["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    raised.sort();
    let mut expected = vec![
        ("gig_edited".to_string(), active_id.clone()),
        ("gig_edited".to_string(), active_id.clone()),
        ("gig_published".to_string(), active_id.clone()),
        ("gig_published".to_string(), draft_id.clone()),
    ];
    expected.sort();
    assert_eq!(raised, expected, "nothing else was raised");
}

// ------------------------------------------------------ 4. resuming a feed

async fn reconnecting_admin_gets_what_it_missed(app: TestApp) {
    let root = admin(&app, "root").await;
    let judy = admin(&app, "judy").await;
    let (seller, token) = app.seller("ada").await;
    let buyer = new_buyer(&app, "bob").await;

    let mut feed = AdminSocket::open(&app, &root.token).await;
    let first = app
        .create_gig_ok(
            &token.access,
            &gig_body(
                "I will draw a logo for your small business",
                "programming-tech",
                "web-development",
            ),
        )
        .await;
    let seen = feed.feed("item.raised", about(&id_of(&first))).await;
    let last = seen["cursor"].as_i64().unwrap();
    let first_item = id_of(&seen["data"]["item"]);
    feed.close().await;

    // Meanwhile: two more gigs, a report, a claim (and its entry).
    for title in [
        "I will paint a logo for your shop",
        "I will animate a logo for your channel",
    ] {
        app.create_gig_ok(
            &token.access,
            &gig_body(title, "programming-tech", "web-development"),
        )
        .await;
    }
    file_report(
        &app,
        &buyer.token,
        json!({ "type": "user", "id": seller.id }),
        "spam",
        "",
    )
    .await
    .expect(201);
    admin_post(
        &app,
        &judy.token,
        &format!("/items/{first_item}/claim"),
        json!({}),
    )
    .await
    .expect(200);
    let missed = eventually("five events after the cut", || async {
        let page = admin_get(&app, &root.token, "/feed", &[("after", &last.to_string())])
            .await
            .expect(200);
        let items = items_of(&page);
        if items.len() >= 5 {
            Ok(page)
        } else {
            Err(page.to_string())
        }
    })
    .await;
    let head = missed["head"].as_i64().unwrap();
    let missed = items_of(&missed);
    assert_eq!(head, last + 5);
    assert_eq!(missed.len(), 5, "{missed:?}");
    let mut names: Vec<&str> = missed
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "audit.recorded",
            "item.claimed",
            "item.raised",
            "item.raised",
            "item.raised"
        ]
    );

    // Reconnecting after the last event seen: exactly what was missed, in
    // order, then what is new.
    let mut again = AdminSocket::resume(&app, &root.token, last).await;
    assert_eq!(again.head(), head);
    let replayed = again.feed_frames(5).await;
    for (frame, event) in replayed.iter().zip(&missed) {
        assert_eq!(frame["cursor"], event["seq"], "{frame}");
        assert_eq!(frame["event"], event["event"], "{frame}");
        assert_eq!(frame["data"]["item"], event["data"], "{frame}");
    }
    let cursors: Vec<i64> = replayed
        .iter()
        .map(|f| f["cursor"].as_i64().unwrap())
        .collect();
    assert_eq!(cursors, (last + 1..=head).collect::<Vec<_>>());
    file_report(
        &app,
        &buyer.token,
        json!({ "type": "gig", "id": id_of(&first) }),
        "spam",
        "",
    )
    .await
    .expect(201);
    let next = again.feed_frames(1).await.remove(0);
    assert_eq!(next["cursor"], head + 1, "nothing repeated: {next}");
    assert_eq!(next["event"], "item.raised");
    again.close().await;

    // From the start: everything, in order.
    let mut all = AdminSocket::resume(&app, &root.token, 0).await;
    let everything = all.feed_frames(usize::try_from(head + 1).unwrap()).await;
    let cursors: Vec<i64> = everything
        .iter()
        .map(|f| f["cursor"].as_i64().unwrap())
        .collect();
    assert_eq!(cursors, (1..=head + 1).collect::<Vec<_>>());
    all.close().await;

    // A cursor the feed never reached is refused before the upgrade.
    for cursor in [head + 2, head + 100, -1] {
        AdminSocket::try_open(&app, Some(&root.token), &format!("?cursor={cursor}"))
            .await
            .err()
            .unwrap_or_else(|| panic!("cursor {cursor} accepted"))
            .expect_error(410, "cursor_expired");
        admin_get(
            &app,
            &root.token,
            "/feed",
            &[("after", &cursor.to_string())],
        )
        .await
        .expect_error(410, "cursor_expired");
    }
}

// --------------------------------------------------------- 5. suspension

async fn suspension_takes_effect_everywhere(app: TestApp) {
    let root = admin(&app, "root").await;
    let judy = admin(&app, "judy").await;
    let (seller, tokens) = app.seller("ada").await;
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
    let gig_id = id_of(&gig);
    app.wait_for_hits(&[("q", GIG_WORD)], &[&gig_id]).await;
    let (mut live, _) = Socket::connect(&app, &tokens.access).await;
    let mut feed = AdminSocket::open(&app, &root.token).await;

    // A warning first (over the admin socket): told on every device and
    // by e-mail, nothing else changes.
    let warned = feed
        .ok(
            "user.warn",
            json!({ "user_id": seller.id, "reason": "Please stop copying other sellers' photos." }),
        )
        .await;
    assert_eq!(warned["audit"]["action"], "warn_user");
    assert_eq!(warned["user"]["state"], "active");
    let notice = live.event("notification").await;
    assert_eq!(notice["data"]["kind"], "account.warning", "{notice}");
    assert_eq!(
        notice["data"]["body"],
        "Please stop copying other sellers' photos."
    );
    let mail = app.wait_for_mail("notice", &seller.email).await;
    assert!(mail.text.contains("copying other sellers"), "{}", mail.text);
    app.me(&tokens.access).await.expect(200);

    let reason = "Sold counterfeit goods.";
    let seller_id = seller.id.to_string();
    let suspended = admin_post(
        &app,
        &root.token,
        &format!("/users/{seller_id}/suspend"),
        json!({ "reason": reason }),
    )
    .await
    .expect(200);
    assert_eq!(suspended["user"]["id"], seller_id.as_str());
    assert_eq!(suspended["user"]["state"], "suspended");
    assert!(suspended["user"]["suspended_at"].is_string());
    let entry = suspended["audit"].clone();
    assert_eq!(entry["action"], "suspend_user");
    assert_eq!(entry["admin_id"], root.id());
    assert_eq!(entry["target"], json!({ "type": "user", "id": seller_id }));
    assert_eq!(entry["reason"], reason);
    assert!(entry["item_id"].is_null());

    // Gone from search as the answer arrives, and not for sale; signed
    // out everywhere.
    assert_eq!(search_now(&app).await, Vec::<String>::new());
    let buyer = new_buyer(&app, "bob").await;
    checkout(
        &app,
        &buyer.token,
        Some(&new_key()),
        &json!({ "gig_id": gig_id, "package": "basic" }),
    )
    .await
    .expect_error(404, "not_found");
    assert_eq!(live.close_code().await, Some(4401));
    app.me(&tokens.access)
        .await
        .expect_error(401, "unauthorized");
    app.refresh(&tokens.refresh)
        .await
        .expect_error(401, "unauthorized");
    app.login(&seller.username, &seller.password)
        .await
        .expect_error(403, "forbidden");
    let notice = app.wait_for_mail("notice", &seller.email).await;
    assert!(notice.subject.contains("suspended"), "{}", notice.subject);
    assert!(notice.text.contains(reason), "{}", notice.text);
    // Recorded, found by target and by admin, and pushed to admins.
    let both = [entry.clone(), warned["audit"].clone()];
    assert_eq!(
        audit(&app, &judy.token, &[("target_id", &seller_id)]).await,
        both
    );
    assert_eq!(
        audit(&app, &judy.token, &[("admin_id", &root.id())]).await,
        both
    );
    assert_eq!(
        audit(
            &app,
            &judy.token,
            &[("admin_id", &root.id()), ("action", "suspend_user")]
        )
        .await,
        std::slice::from_ref(&entry)
    );
    assert_eq!(feed.audited("suspend_user").await, entry);
    let listed = as_list(
        &admin_get(&app, &judy.token, "/users", &[("state", "suspended")])
            .await
            .expect(200),
    );
    assert_eq!(ids(&listed), std::slice::from_ref(&seller_id));

    // Refused: twice, an admin, oneself, nobody.
    admin_post(
        &app,
        &judy.token,
        &format!("/users/{seller_id}/suspend"),
        json!({ "reason": "Again." }),
    )
    .await
    .expect_error(409, "conflict");
    admin_post(
        &app,
        &root.token,
        &format!("/users/{}/suspend", judy.id()),
        json!({ "reason": "A rival." }),
    )
    .await
    .expect_error(403, "forbidden");
    admin_post(
        &app,
        &root.token,
        &format!("/users/{}/suspend", root.id()),
        json!({ "reason": "Me." }),
    )
    .await
    .expect_error(403, "forbidden");
    admin_post(
        &app,
        &root.token,
        &format!("/users/{}/suspend", Uuid::new_v4()),
        json!({ "reason": "Nobody." }),
    )
    .await
    .expect_error(404, "not_found");
    assert_eq!(audit(&app, &root.token, &[]).await.len(), 2);

    // Reinstated: back in search as the answer arrives, and signing in works.
    let reinstated = admin_post(
        &app,
        &judy.token,
        &format!("/users/{seller_id}/reinstate"),
        json!({ "reason": "The goods were genuine." }),
    )
    .await
    .expect(200);
    assert_eq!(reinstated["user"]["state"], "active");
    assert!(reinstated["user"]["suspended_at"].is_null());
    assert_eq!(reinstated["audit"]["action"], "reinstate_user");
    assert_eq!(search_now(&app).await, std::slice::from_ref(&gig_id));
    let notice = app.wait_for_mail("notice", &seller.email).await;
    assert!(notice.text.contains("lifted"), "{}", notice.text);
    // The old sessions stay ended.
    app.refresh(&tokens.refresh)
        .await
        .expect_error(401, "unauthorized");
    let tokens = app.login_ok(&seller.username, &seller.password).await;
    app.me(&tokens.access).await.expect(200);
    admin_post(
        &app,
        &judy.token,
        &format!("/users/{seller_id}/reinstate"),
        json!({ "reason": "Again." }),
    )
    .await
    .expect_error(409, "conflict");
    let actions: Vec<Value> = audit(&app, &root.token, &[("target_id", &seller_id)])
        .await
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(
        actions,
        [
            json!("reinstate_user"),
            json!("suspend_user"),
            json!("warn_user")
        ]
    );
}

// ----------------------------------------------------- 6. removing a gig

async fn gig_removal_and_restore(app: TestApp) {
    let root = admin(&app, "root").await;
    let (seller, gig_id) = seller_with_gig(&app, "ada").await;
    app.wait_for_hits(&[("q", GIG_WORD)], &[&gig_id]).await;
    let (mut live, _) = Socket::connect(&app, &seller.token).await;

    let reason = "Copies another seller's portfolio.";
    let removed = admin_post(
        &app,
        &root.token,
        &format!("/gigs/{gig_id}/remove"),
        json!({ "reason": reason }),
    )
    .await
    .expect(200);
    assert_eq!(removed["gig"]["id"], gig_id.as_str());
    assert_eq!(removed["gig"]["status"], "removed");
    assert_eq!(removed["audit"]["action"], "remove_gig");
    assert_eq!(
        removed["audit"]["target"],
        json!({ "type": "gig", "id": gig_id })
    );
    assert_eq!(removed["audit"]["details"], "the gig is now removed");

    // Gone from search at once, from the public and from sale; the
    // seller is told.
    assert_eq!(search_now(&app).await, Vec::<String>::new());
    app.gig(None, &gig_id).await.expect_error(404, "not_found");
    let buyer = new_buyer(&app, "bob").await;
    checkout(
        &app,
        &buyer.token,
        Some(&new_key()),
        &json!({ "gig_id": gig_id, "package": "basic" }),
    )
    .await
    .expect_error(404, "not_found");
    let notice = live.event("notification").await;
    assert_eq!(notice["data"]["kind"], "gig.removed", "{notice}");
    assert!(
        notice["data"]["body"].as_str().unwrap().contains(reason),
        "{notice}"
    );
    let mail = app.wait_for_mail("notice", "ada@example.com").await;
    assert!(mail.text.contains(reason), "{}", mail.text);
    let listed = as_list(
        &admin_get(&app, &root.token, "/gigs", &[("status", "removed")])
            .await
            .expect(200),
    );
    assert_eq!(ids(&listed), std::slice::from_ref(&gig_id));

    // The seller sees it removed and can neither bring it back nor edit it.
    assert_eq!(
        app.gig(Some(&seller.token), &gig_id).await.expect(200)["status"],
        "removed"
    );
    for (method, path, body) in [
        (Method::POST, format!("/api/v1/gigs/{gig_id}/resume"), None),
        (Method::POST, format!("/api/v1/gigs/{gig_id}/pause"), None),
        (
            Method::PATCH,
            format!("/api/v1/gigs/{gig_id}"),
            Some(json!({ "title": "I will design an original logo" })),
        ),
    ] {
        let mut request = app
            .request(method.clone(), &path)
            .bearer_auth(&seller.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = app.send(request).await;
        assert!(
            [403, 409].contains(&reply.status),
            "{method} {path}: {} {}",
            reply.status,
            reply.body
        );
    }
    assert_eq!(
        app.gig(Some(&seller.token), &gig_id).await.expect(200)["status"],
        "removed"
    );
    admin_post(
        &app,
        &root.token,
        &format!("/gigs/{gig_id}/remove"),
        json!({ "reason": "Again." }),
    )
    .await
    .expect_error(409, "conflict");

    // Restored: active and found again, at once.
    let restored = admin_post(
        &app,
        &root.token,
        &format!("/gigs/{gig_id}/restore"),
        json!({ "reason": "The seller showed the originals." }),
    )
    .await
    .expect(200);
    assert_eq!(restored["gig"]["status"], "active");
    assert_eq!(restored["audit"]["action"], "restore_gig");
    assert_eq!(search_now(&app).await, std::slice::from_ref(&gig_id));
    assert_eq!(app.gig(None, &gig_id).await.expect(200)["status"], "active");
    assert_eq!(
        live.event("notification").await["data"]["kind"],
        "gig.restored"
    );
    assert!(as_list(
        &admin_get(&app, &root.token, "/gigs", &[("status", "removed")])
            .await
            .expect(200)
    )
    .is_empty());
    admin_post(
        &app,
        &root.token,
        &format!("/gigs/{gig_id}/restore"),
        json!({ "reason": "Again." }),
    )
    .await
    .expect_error(409, "conflict");

    // A paused gig comes back paused.
    app.post_as(&seller.token, &format!("/api/v1/gigs/{gig_id}/pause"))
        .await
        .expect(200);
    admin_post(
        &app,
        &root.token,
        &format!("/gigs/{gig_id}/remove"),
        json!({ "reason": "Checking." }),
    )
    .await
    .expect(200);
    let restored = admin_post(
        &app,
        &root.token,
        &format!("/gigs/{gig_id}/restore"),
        json!({ "reason": "Checked." }),
    )
    .await
    .expect(200);
    assert_eq!(restored["gig"]["status"], "paused");
    assert_eq!(search_now(&app).await, Vec::<String>::new());
    let actions: Vec<Value> = audit(&app, &root.token, &[("target_id", &gig_id)])
        .await
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(
        actions,
        [
            json!("restore_gig"),
            json!("remove_gig"),
            json!("restore_gig"),
            json!("remove_gig")
        ]
    );
}

// ------------------------------------------------- 7. disputes and money

async fn dispute_resolution_and_cancellation_follow_the_money(app: TestApp) {
    let root = admin(&app, "root").await;
    let (seller, gig_id) = seller_with_gig(&app, "ada").await;
    let buyer = new_buyer(&app, "bob").await;
    let mut feed = AdminSocket::open(&app, &root.token).await;
    let (mut buyer_live, _) = Socket::connect(&app, &buyer.token).await;
    let (mut seller_live, _) = Socket::connect(&app, &seller.token).await;

    // A dispute reaches the admins live.
    let id = started_order(&app, &buyer, &gig_id).await;
    let reason = "Nothing was delivered and the seller stopped answering.";
    act(
        &app,
        &buyer.token,
        &id,
        "dispute",
        json!({ "reason": reason }),
    )
    .await
    .expect(200);
    let dispute = feed.raised("dispute_opened").await;
    assert_eq!(dispute["target"], json!({ "type": "order", "id": id }));
    assert_eq!(dispute["subject_user"], buyer.id());
    assert_eq!(dispute["excerpt"], reason);
    assert_eq!(dispute["amount"]["amount_minor"], GIG_TOTAL);
    let dispute_id = id_of(&dispute);
    let open = as_list(
        &admin_get(&app, &root.token, "/disputes", &[])
            .await
            .expect(200),
    );
    assert_eq!(ids(&open), std::slice::from_ref(&id));
    // An admin who is not a party acts only through the admin routes.
    assert_eq!(order(&app, &root.token, &id).await["status"], "disputed");
    act(
        &app,
        &root.token,
        &id,
        "cancellation",
        json!({ "reason": "x" }),
    )
    .await
    .expect_error(404, "not_found");
    let gone = act(
        &app,
        &root.token,
        &id,
        "resolution",
        json!({ "outcome": "complete" }),
    )
    .await;
    assert!([404, 405].contains(&gone.status), "{gone:?}");

    // A partial refund: the rest completes the order for the seller.
    let resolved = admin_post(
        &app,
        &root.token,
        &format!("/orders/{id}/resolve"),
        json!({
            "outcome": "refund",
            "amount_minor": 1_000,
            "reason": "Half the work was done.",
            "item_id": dispute_id,
        }),
    )
    .await
    .expect(200);
    assert_eq!(resolved["order"]["status"], "completed");
    assert_eq!(resolved["order"]["refunded"]["amount_minor"], 1_000);
    assert_eq!(resolved["item"]["id"], dispute_id.as_str());
    assert_eq!(resolved["item"]["status"], "resolved");
    assert_eq!(resolved["item"]["outcome"], "resolve_dispute");
    let entry = &resolved["audit"];
    assert_eq!(entry["action"], "resolve_dispute");
    assert_eq!(entry["target"], json!({ "type": "order", "id": id }));
    assert_eq!(entry["reason"], "Half the work was done.");
    assert_eq!(entry["item_id"], dispute_id.as_str());
    assert!(
        entry["details"].as_str().unwrap().contains("10.00 USD"),
        "{entry}"
    );
    refunds_succeeded(&app, &id, &[1_000]).await;
    let entries = ledger(&app, &root.token, &id).await;
    assert_eq!(kinds(&entries), ["payment", "refund", "settlement"]);
    assert_eq!(entries[0].1, payment(GIG_TOTAL));
    assert_eq!(entries[1].1, refund(1_000));
    // The queue: the dispute settled, the refund raised, both live.
    assert_eq!(
        feed.item_event("resolved", &dispute_id).await,
        resolved["item"]
    );
    assert_eq!(feed.audited("resolve_dispute").await, *entry);
    let refunded = feed.raised("refund").await;
    assert_eq!(refunded["target"], json!({ "type": "order", "id": id }));
    assert_eq!(refunded["amount"]["amount_minor"], 1_000);
    assert_eq!(refunded["subject_user"], buyer.id());
    // Both parties see the order change.
    for socket in [&mut buyer_live, &mut seller_live] {
        let seen = order_change(socket, &id, "dispute_resolved").await;
        assert_eq!(seen["status"], "completed");
    }
    assert!(as_list(
        &admin_get(&app, &root.token, "/disputes", &[])
            .await
            .expect(200)
    )
    .is_empty());
    let all = as_list(
        &admin_get(&app, &root.token, "/disputes", &[("status", "all")])
            .await
            .expect(200),
    );
    assert_eq!(ids(&all), std::slice::from_ref(&id));
    // Settled: nothing more to resolve.
    admin_post(
        &app,
        &root.token,
        &format!("/orders/{id}/resolve"),
        json!({ "outcome": "complete", "reason": "Again." }),
    )
    .await
    .expect_error(409, "conflict");

    // A full refund cancels the order.
    let other = started_order(&app, &buyer, &gig_id).await;
    act(
        &app,
        &seller.token,
        &other,
        "dispute",
        json!({ "reason": "The buyer vanished." }),
    )
    .await
    .expect(200);
    let opened = feed.raised("dispute_opened").await;
    assert_eq!(opened["subject_user"], seller.id());
    let resolved = admin_post(
        &app,
        &root.token,
        &format!("/orders/{other}/resolve"),
        json!({ "outcome": "refund", "amount_minor": GIG_TOTAL, "reason": "Never started." }),
    )
    .await
    .expect(200);
    assert_eq!(resolved["order"]["status"], "cancelled");
    assert!(resolved["item"].is_null());
    refunds_succeeded(&app, &other, &[GIG_TOTAL]).await;
    assert_eq!(
        ledger(&app, &buyer.token, &other).await,
        [
            ("payment".to_string(), payment(GIG_TOTAL)),
            ("refund".to_string(), refund(GIG_TOTAL)),
        ]
    );
    // The dispute item was not named: it stays open for someone to close.
    let still = queue(
        &app,
        &root.token,
        &[("target_id", &other), ("kind", "dispute_opened")],
    )
    .await;
    assert_eq!(still.len(), 1);
    assert_eq!(still[0]["status"], "open");

    // An admin cancels a paid order outright: everything goes back.
    let paid = paid_order(&app, &buyer, &gig_id).await;
    let cancelled = admin_post(
        &app,
        &root.token,
        &format!("/orders/{paid}/cancel"),
        json!({ "reason": "The seller's account is under review." }),
    )
    .await
    .expect(200);
    assert_eq!(cancelled["order"]["status"], "cancelled");
    assert_eq!(cancelled["order"]["refunded"]["amount_minor"], GIG_TOTAL);
    assert_eq!(cancelled["audit"]["action"], "cancel_order");
    refunds_succeeded(&app, &paid, &[GIG_TOTAL]).await;
    assert_eq!(
        ledger(&app, &seller.token, &paid).await,
        [
            ("payment".to_string(), payment(GIG_TOTAL)),
            ("refund".to_string(), refund(GIG_TOTAL)),
        ]
    );
    let refunded = queued(&app, &root.token, "the cancellation's refund", |i| {
        i["kind"] == "refund" && i["target"]["id"] == paid.as_str()
    })
    .await;
    assert_eq!(refunded["amount"]["amount_minor"], GIG_TOTAL);
    for socket in [&mut buyer_live, &mut seller_live] {
        let seen = order_change(socket, &paid, "cancelled").await;
        assert_eq!(seen["status"], "cancelled");
    }
    admin_post(
        &app,
        &root.token,
        &format!("/orders/{paid}/cancel"),
        json!({ "reason": "Again." }),
    )
    .await
    .expect_error(409, "conflict");

    // An admin who takes part in an order is that party to it, not an
    // admin: another admin acts on it.
    let judy = admin(&app, "judy").await;
    let own = paid_order(&app, &root, &gig_id).await;
    admin_post(
        &app,
        &root.token,
        &format!("/orders/{own}/cancel"),
        json!({ "reason": "My own order." }),
    )
    .await
    .expect_error(403, "forbidden");
    assert_eq!(
        order(&app, &root.token, &own).await["status"],
        "awaiting_requirements"
    );
    assert!(audit(&app, &root.token, &[("target_id", &own)])
        .await
        .is_empty());
    let cancelled = admin_post(
        &app,
        &judy.token,
        &format!("/orders/{own}/cancel"),
        json!({ "reason": "The buyer is staff." }),
    )
    .await
    .expect(200);
    assert_eq!(cancelled["order"]["status"], "cancelled");

    // A declined card is raised too.
    let declined = id_of(&buy(&app, &buyer, &gig_id, Some(CARD_DECLINED)).await["order"]);
    let failed = feed.raised("payment_failed").await;
    assert_eq!(failed["target"], json!({ "type": "order", "id": declined }));
    assert_eq!(failed["subject_user"], buyer.id());
    assert_eq!(failed["excerpt"], DECLINED);
    assert_eq!(failed["amount"]["amount_minor"], GIG_TOTAL);
}

// ------------------------------------------------------ 8. the audit log

async fn audit_log_is_append_only_and_searchable(app: TestApp) {
    let root = admin(&app, "root").await;
    let judy = admin(&app, "judy").await;
    let (seller, gig_id) = seller_with_gig(&app, "ada").await;
    let mut buyer = new_buyer(&app, "bob").await;
    let published = queued(&app, &root.token, "the gig's item", about(&gig_id)).await;
    let item_id = id_of(&published);

    // Root acts first ...
    admin_post(
        &app,
        &root.token,
        &format!("/items/{item_id}/claim"),
        json!({}),
    )
    .await
    .expect(200);
    admin_post(
        &app,
        &root.token,
        &format!("/items/{item_id}/release"),
        json!({}),
    )
    .await
    .expect(200);
    let buyer_id = buyer.id();
    for action in ["suspend", "reinstate", "warn"] {
        admin_post(
            &app,
            &root.token,
            &format!("/users/{buyer_id}/{action}"),
            json!({ "reason": format!("{action} for the log") }),
        )
        .await
        .expect(200);
    }
    let first_half = audit(&app, &root.token, &[]).await;
    assert_eq!(first_half.len(), 5);

    // ... then, a minute later, Judy.
    app.clock.advance(TimeDelta::minutes(1));
    admin_post(
        &app,
        &judy.token,
        &format!("/gigs/{gig_id}/remove"),
        json!({ "reason": "remove for the log", "item_id": item_id }),
    )
    .await
    .expect(200);
    admin_post(
        &app,
        &judy.token,
        &format!("/gigs/{gig_id}/restore"),
        json!({ "reason": "restore for the log" }),
    )
    .await
    .expect(200);
    // The suspension ended the buyer's sessions.
    buyer.sign_in_again(&app).await;
    let disputed = started_order(&app, &buyer, &gig_id).await;
    act(
        &app,
        &buyer.token,
        &disputed,
        "dispute",
        json!({ "reason": "Late." }),
    )
    .await
    .expect(200);
    admin_post(
        &app,
        &judy.token,
        &format!("/orders/{disputed}/resolve"),
        json!({ "outcome": "complete", "reason": "resolve for the log" }),
    )
    .await
    .expect(200);
    let paid = paid_order(&app, &buyer, &gig_id).await;
    admin_post(
        &app,
        &judy.token,
        &format!("/orders/{paid}/cancel"),
        json!({ "reason": "cancel for the log" }),
    )
    .await
    .expect(200);
    let report = file_report(
        &app,
        &buyer.token,
        json!({ "type": "user", "id": seller.id() }),
        "spam",
        "",
    )
    .await
    .expect(201);
    admin_post(
        &app,
        &judy.token,
        &format!("/reports/{}/dismiss", id_of(&report)),
        json!({ "reason": "dismiss for the log" }),
    )
    .await
    .expect(200);
    // The dispute was resolved without naming its item: dismissed apart.
    let dispute = queued(&app, &judy.token, "the dispute's item", |i| {
        i["kind"] == "dispute_opened" && i["target"]["id"] == disputed.as_str()
    })
    .await;
    admin_post(
        &app,
        &judy.token,
        &format!("/items/{}/dismiss", id_of(&dispute)),
        json!({ "reason": "settled with the order" }),
    )
    .await
    .expect(200);

    // Every action is there, newest first, numbered in order.
    let all = audit(&app, &root.token, &[]).await;
    assert_eq!(all.len(), 11, "{all:?}");
    let numbers: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(numbers, (1..=11).rev().collect::<Vec<_>>());
    let actions: BTreeSet<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        BTreeSet::from([
            "claim_item",
            "release_item",
            "suspend_user",
            "reinstate_user",
            "warn_user",
            "remove_gig",
            "restore_gig",
            "resolve_dispute",
            "cancel_order",
            "dismiss_report",
            "dismiss_item",
        ])
    );
    assert_eq!(all[6..], first_half[..]);
    // Each one is also in the feed.
    let feed = items_of(
        &admin_get(&app, &root.token, "/feed", &[("limit", "200")])
            .await
            .expect(200),
    );
    let recorded: Vec<Value> = feed
        .iter()
        .filter(|e| e["event"] == "audit.recorded")
        .map(|e| e["data"].clone())
        .rev()
        .collect();
    assert_eq!(recorded, all);

    // Filters: by admin, action, target and time.
    let by_judy = audit(&app, &root.token, &[("admin_id", &judy.id())]).await;
    assert_eq!(by_judy, all[..6]);
    let warned = audit(&app, &root.token, &[("action", "warn_user")]).await;
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0]["reason"], "warn for the log");
    assert_eq!(
        warned[0]["target"],
        json!({ "type": "user", "id": buyer_id })
    );
    let on_buyer = audit(
        &app,
        &root.token,
        &[("target_type", "user"), ("target_id", &buyer_id)],
    )
    .await;
    assert_eq!(on_buyer, all[6..9]);
    let on_order = audit(&app, &root.token, &[("target_id", &disputed)]).await;
    let on_order: Vec<&Value> = on_order.iter().map(|e| &e["action"]).collect();
    assert_eq!(
        on_order,
        [&json!("dismiss_item"), &json!("resolve_dispute")]
    );
    assert!(audit(&app, &root.token, &[("target_type", "message")])
        .await
        .is_empty());
    let later = all[0]["at"].as_str().unwrap();
    let earlier = all[10]["at"].as_str().unwrap();
    assert_ne!(later, earlier);
    assert_eq!(audit(&app, &root.token, &[("from", later)]).await, all[..6]);
    assert_eq!(audit(&app, &root.token, &[("to", later)]).await, all[6..]);
    assert_eq!(
        audit(&app, &root.token, &[("from", earlier), ("to", later)]).await,
        all[6..]
    );

    // Pages of three, following `next`.
    let mut paged = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut query = vec![("limit", "3".to_string())];
        if let Some(before) = &before {
            query.push(("before", before.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = admin_get(&app, &root.token, "/audit", &query)
            .await
            .expect(200);
        let items = items_of(&page);
        assert!(items.len() <= 3);
        paged.extend(items);
        match page["next"].as_i64() {
            Some(next) => before = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, all);

    // No route changes or removes an entry.
    for (method, path) in [
        (Method::PUT, "/api/v1/admin/audit".to_string()),
        (Method::PATCH, "/api/v1/admin/audit".to_string()),
        (Method::DELETE, "/api/v1/admin/audit".to_string()),
        (Method::POST, "/api/v1/admin/audit".to_string()),
        (Method::GET, "/api/v1/admin/audit/1".to_string()),
        (Method::PUT, "/api/v1/admin/audit/1".to_string()),
        (Method::PATCH, "/api/v1/admin/audit/1".to_string()),
        (Method::DELETE, "/api/v1/admin/audit/1".to_string()),
    ] {
        let reply = app
            .send(
                app.request(method.clone(), &path)
                    .bearer_auth(&root.token)
                    .json(&json!({ "reason": "rewritten" })),
            )
            .await;
        assert!(
            [404, 405].contains(&reply.status),
            "{method} {path}: {} {}",
            reply.status,
            reply.body
        );
    }
    // Nor does the database let anyone.
    for statement in [
        "UPDATE audit_log SET reason = 'rewritten' WHERE id = 1",
        "DELETE FROM audit_log WHERE id = 1",
        "DELETE FROM audit_log",
    ] {
        let refused = run_sql(&app, statement)
            .await
            .err()
            .unwrap_or_else(|| panic!("{statement} went through"));
        assert!(refused.contains("append-only"), "{statement}: {refused}");
    }
    if app.backend == Backend::Postgres {
        let refused = run_sql(&app, "TRUNCATE audit_log CASCADE").await.err();
        assert!(refused.is_some_and(|e| e.contains("append-only")));
    }
    assert_eq!(audit(&app, &root.token, &[]).await, all);
}

// -------------------------------------------------- 9. lists and stats

async fn lists_and_stats(app: TestApp) {
    let root = admin(&app, "root").await;
    let mut feed = AdminSocket::open(&app, &root.token).await;
    let stats = feed.ready["stats"].clone();
    assert_eq!(
        stats,
        json!({
            "users_online": 0,
            "orders_today": 0,
            "gmv_today_minor": 0,
            "currency": "USD",
            "open_disputes": 0,
            "open_reports": 0,
            "open_items": 0,
        })
    );
    let (seller, gig_id) = seller_with_gig(&app, "ada").await;
    let buyer = new_buyer(&app, "bob").await;
    let carol = new_buyer(&app, "carol").await;

    // Users: by role, state and part of the name or address.
    let users = |query: &'static [(&'static str, &'static str)]| {
        let app = &app;
        let token = root.token.clone();
        async move {
            let mut listed = ids(&as_list(
                &admin_get(app, &token, "/users", query).await.expect(200),
            ));
            listed.sort();
            listed
        }
    };
    let sorted = |mut list: Vec<String>| {
        list.sort();
        list
    };
    assert_eq!(users(&[("role", "admin")]).await, [root.id()]);
    assert_eq!(
        users(&[("role", "user")]).await,
        sorted(vec![seller.id(), buyer.id(), carol.id()])
    );
    assert_eq!(users(&[("q", "CAR")]).await, [carol.id()]);
    assert_eq!(users(&[("q", "example.com")]).await.len(), 4);
    assert_eq!(users(&[("q", "%")]).await, Vec::<String>::new());
    assert_eq!(users(&[("state", "suspended")]).await, Vec::<String>::new());
    admin_post(
        &app,
        &root.token,
        &format!("/users/{}/suspend", carol.id()),
        json!({ "reason": "Spam." }),
    )
    .await
    .expect(200);
    assert_eq!(users(&[("state", "suspended")]).await, [carol.id()]);
    assert_eq!(users(&[("state", "active")]).await.len(), 3);
    let one = as_list(
        &admin_get(&app, &root.token, "/users", &[("q", "bob")])
            .await
            .expect(200),
    );
    assert_eq!(one[0]["username"], "bob");
    assert_eq!(one[0]["role"], "user");
    assert_eq!(one[0]["state"], "active");

    // A user online shows.
    let (_online, _) = Socket::connect(&app, &buyer.token).await;
    feed.stats_until(|s| s["users_online"] == 1).await;
    assert_eq!(
        admin_get(&app, &root.token, "/stats", &[])
            .await
            .expect(200)["users_online"],
        1
    );

    // A paid order: counted today, listed by status and party.
    let paid = paid_order(&app, &buyer, &gig_id).await;
    let pushed = feed.stats_until(|s| s["orders_today"] == 1).await;
    assert_eq!(pushed["gmv_today_minor"], GIG_TOTAL);
    let orders = |query: Vec<(&'static str, String)>| {
        let app = &app;
        let token = root.token.clone();
        async move {
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ids(&as_list(
                &admin_get(app, &token, "/orders", &query).await.expect(200),
            ))
        }
    };
    assert_eq!(orders(vec![]).await, std::slice::from_ref(&paid));
    assert_eq!(
        orders(vec![("status", "awaiting_requirements".into())]).await,
        std::slice::from_ref(&paid)
    );
    assert!(orders(vec![("status", "completed".into())])
        .await
        .is_empty());
    assert_eq!(
        orders(vec![("buyer_id", buyer.id())]).await,
        std::slice::from_ref(&paid)
    );
    assert_eq!(
        orders(vec![("seller_id", seller.id())]).await,
        std::slice::from_ref(&paid)
    );
    assert_eq!(
        orders(vec![("user_id", seller.id())]).await,
        std::slice::from_ref(&paid)
    );
    assert!(orders(vec![("buyer_id", seller.id())]).await.is_empty());
    assert!(orders(vec![("user_id", carol.id())]).await.is_empty());

    // A dispute and a report.
    let disputed = started_order(&app, &buyer, &gig_id).await;
    act(
        &app,
        &buyer.token,
        &disputed,
        "dispute",
        json!({ "reason": "Late." }),
    )
    .await
    .expect(200);
    let pushed = feed
        .stats_until(|s| s["open_disputes"] == 1 && s["orders_today"] == 2)
        .await;
    assert_eq!(pushed["gmv_today_minor"], 2 * GIG_TOTAL);
    assert_eq!(
        ids(&as_list(
            &admin_get(&app, &root.token, "/disputes", &[])
                .await
                .expect(200)
        )),
        std::slice::from_ref(&disputed)
    );
    file_report(
        &app,
        &buyer.token,
        json!({ "type": "gig", "id": gig_id }),
        "spam",
        "",
    )
    .await
    .expect(201);
    feed.stats_until(|s| s["open_reports"] == 1).await;
    let now = admin_get(&app, &root.token, "/stats", &[])
        .await
        .expect(200);
    assert_eq!(now["orders_today"], 2);
    assert_eq!(now["open_disputes"], 1);
    assert_eq!(now["open_reports"], 1);
    // The gig, the dispute and the report are open in the queue.
    let open = eventually("three open items", || async {
        let open = queue(&app, &root.token, &[("status", "open")]).await;
        if open.len() == 3 {
            Ok(open)
        } else {
            Err(format!("{open:?}"))
        }
    })
    .await;
    let mut kinds: Vec<&str> = open.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["dispute_opened", "gig_published", "report"]);
    feed.stats_until(|s| s["open_items"] == 3).await;
    assert_eq!(
        queue(&app, &root.token, &[("status", "unresolved")]).await,
        open
    );
    assert!(queue(&app, &root.token, &[("status", "resolved")])
        .await
        .is_empty());
    let dispute = open.iter().find(|i| i["kind"] == "dispute_opened").unwrap();
    assert_eq!(
        ids(&queue(&app, &root.token, &[("target_type", "order")]).await),
        [id_of(dispute)]
    );

    // Resolving the dispute is seen in the stats.
    admin_post(
        &app,
        &root.token,
        &format!("/orders/{disputed}/resolve"),
        json!({ "outcome": "complete", "reason": "Delivered late but delivered." }),
    )
    .await
    .expect(200);
    feed.stats_until(|s| s["open_disputes"] == 0).await;
    let listed = as_list(
        &admin_get(&app, &root.token, "/gigs", &[("seller_id", &seller.id())])
            .await
            .expect(200),
    );
    assert_eq!(ids(&listed), std::slice::from_ref(&gig_id));
    let listed = as_list(
        &admin_get(
            &app,
            &root.token,
            "/gigs",
            &[("q", "CLEAN LOGO"), ("status", "active")],
        )
        .await
        .expect(200),
    );
    assert_eq!(ids(&listed), [gig_id]);
}

// ------------------------------------------------------- 10. bad input

async fn bad_input_changes_nothing(app: TestApp) {
    let root = admin(&app, "root").await;
    let (seller, gig_id) = seller_with_gig(&app, "ada").await;
    let buyer = new_buyer(&app, "bob").await;
    let mut feed = AdminSocket::open(&app, &root.token).await;
    let seller_id = seller.id();

    // An admin does not warn themselves.
    admin_post(
        &app,
        &root.token,
        &format!("/users/{}/warn", root.id()),
        json!({ "reason": "note to self" }),
    )
    .await
    .expect_error(403, "forbidden");
    // Ids: unknown, or not ids at all.
    let made_up = Uuid::new_v4();
    for path in [
        format!("/items/{made_up}/claim"),
        format!("/items/{made_up}/release"),
        "/items/not-an-id/claim".to_string(),
    ] {
        admin_post(&app, &root.token, &path, json!({}))
            .await
            .expect_error(404, "not_found");
    }
    for path in [
        "/reports/not-an-id/dismiss",
        "/users/not-an-id/warn",
        "/gigs/not-an-id/remove",
        "/orders/not-an-id/cancel",
    ] {
        admin_post(&app, &root.token, path, json!({ "reason": "x" }))
            .await
            .expect_error(404, "not_found");
    }
    admin_post(
        &app,
        &root.token,
        &format!("/reports/{made_up}/dismiss"),
        json!({ "reason": "x" }),
    )
    .await
    .expect_error(404, "not_found");
    admin_post(
        &app,
        &root.token,
        &format!("/users/{seller_id}/warn"),
        json!({ "reason": "x", "item_id": made_up }),
    )
    .await
    .expect_error(404, "not_found");

    // Reasons: required, not blank, not too long; nothing unknown.
    for body in [
        json!({}),
        json!({ "reason": "" }),
        json!({ "reason": "   " }),
        json!({ "reason": "x".repeat(1001) }),
        json!({ "reason": 7 }),
        json!({ "reason": "x", "item_id": "not-an-id" }),
        json!({ "reason": "x", "extra": true }),
    ] {
        for path in [
            format!("/users/{seller_id}/warn"),
            format!("/users/{seller_id}/suspend"),
            format!("/gigs/{gig_id}/remove"),
        ] {
            admin_post(&app, &root.token, &path, body.clone())
                .await
                .expect_error(422, "validation_failed");
        }
    }
    let no_body = app
        .post_as(
            &root.token,
            &admin_path(&format!("/users/{seller_id}/warn")),
        )
        .await;
    assert!([415, 422].contains(&no_body.status), "{no_body:?}");

    // Orders: a refund the order cannot cover, a bad outcome, an order
    // that is not disputed.
    let id = started_order(&app, &buyer, &gig_id).await;
    admin_post(
        &app,
        &root.token,
        &format!("/orders/{id}/resolve"),
        json!({ "outcome": "complete", "reason": "Not disputed." }),
    )
    .await
    .expect_error(409, "conflict");
    act(
        &app,
        &buyer.token,
        &id,
        "dispute",
        json!({ "reason": "Late." }),
    )
    .await
    .expect(200);
    let dispute = feed.raised("dispute_opened").await;
    for body in [
        json!({ "outcome": "refund", "amount_minor": GIG_TOTAL + 1, "reason": "Too much." }),
        json!({ "outcome": "refund", "amount_minor": 0, "reason": "Nothing." }),
        json!({ "outcome": "refund", "amount_minor": -5, "reason": "Less." }),
        json!({ "outcome": "refund", "reason": "How much?" }),
        json!({ "outcome": "complete", "amount_minor": 100, "reason": "Both." }),
        json!({ "outcome": "split", "reason": "Half." }),
        json!({ "outcome": "complete" }),
        json!({ "outcome": "complete", "reason": "" }),
        json!({ "outcome": "refund", "amount_minor": GIG_TOTAL + 1, "reason": "Too much.", "item_id": id_of(&dispute) }),
    ] {
        let reply = admin_post(
            &app,
            &root.token,
            &format!("/orders/{id}/resolve"),
            body.clone(),
        )
        .await;
        assert!(
            [409, 422].contains(&reply.status),
            "{body}: {} {}",
            reply.status,
            reply.body
        );
    }
    assert_eq!(order(&app, &buyer.token, &id).await["status"], "disputed");
    assert_eq!(
        ledger(&app, &buyer.token, &id).await,
        [("payment".to_string(), payment(GIG_TOTAL))]
    );
    assert!(app
        .state
        .orders
        .store()
        .refunds_for(id.parse().unwrap())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        queue(&app, &root.token, &[("target_id", &id)]).await,
        std::slice::from_ref(&dispute)
    );
    // An item settles an action on what it is about (or on its user).
    let reply = admin_post(
        &app,
        &root.token,
        &format!("/gigs/{gig_id}/remove"),
        json!({ "reason": "Wrong item.", "item_id": id_of(&dispute) }),
    )
    .await;
    reply.expect_error(422, "validation_failed");
    assert_eq!(reply.error_fields(), ["item_id"]);
    assert_eq!(app.gig(None, &gig_id).await.expect(200)["status"], "active");
    assert_eq!(
        queue(&app, &root.token, &[("target_id", &id)]).await,
        std::slice::from_ref(&dispute)
    );
    admin_post(
        &app,
        &root.token,
        &format!("/orders/{made_up}/resolve"),
        json!({ "outcome": "complete", "reason": "Nobody's." }),
    )
    .await
    .expect_error(404, "not_found");

    // Queries: values a list does not know.
    for (rest, query) in [
        ("/items", ("status", "bogus")),
        ("/items", ("kind", "bogus")),
        ("/items", ("target_type", "bogus")),
        ("/items", ("target_id", "not-an-id")),
        ("/items", ("limit", "-1")),
        ("/items", ("unknown", "1")),
        ("/reports", ("status", "bogus")),
        ("/disputes", ("status", "bogus")),
        ("/users", ("role", "bogus")),
        ("/users", ("state", "bogus")),
        ("/gigs", ("status", "bogus")),
        ("/gigs", ("include_deleted", "maybe")),
        ("/orders", ("status", "bogus")),
        ("/orders", ("buyer_id", "not-an-id")),
        ("/audit", ("action", "bogus")),
        ("/audit", ("from", "yesterday")),
        ("/audit", ("before", "first")),
        ("/feed", ("after", "start")),
    ] {
        let reply = admin_get(&app, &root.token, rest, &[query]).await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (422, Some("validation_failed")),
            "{rest}?{}={}: {}",
            query.0,
            query.1,
            reply.body
        );
    }

    // The socket: unknown requests, missing and bad ids.
    assert_eq!(feed.refused("items.delete", json!({})).await, "bad_request");
    assert_eq!(
        feed.refused("item.claim", json!({})).await,
        "validation_failed"
    );
    assert_eq!(
        feed.refused("item.claim", json!({ "item_id": "not-an-id" }))
            .await,
        "not_found"
    );
    assert_eq!(
        feed.refused("item.claim", json!({ "item_id": made_up }))
            .await,
        "not_found"
    );
    assert_eq!(
        feed.refused("user.warn", json!({ "user_id": seller_id }))
            .await,
        "validation_failed"
    );
    assert_eq!(
        feed.refused("items.list", json!({ "status": "bogus" }))
            .await,
        "validation_failed"
    );
    let listed = feed
        .ok("items.list", json!({ "kind": "dispute_opened" }))
        .await;
    assert_eq!(listed["items"], json!([dispute]));

    // None of it was recorded.
    assert!(audit(&app, &root.token, &[]).await.is_empty()); // `limit=0` means the default page, not one row.
    for action in ["suspend", "reinstate"] {
        admin_post(
            &app,
            &root.token,
            &format!("/users/{seller_id}/{action}"),
            json!({ "reason": "paging" }),
        )
        .await
        .expect(200);
    }
    let page = admin_get(&app, &root.token, "/audit", &[("limit", "0")])
        .await
        .expect(200);
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
}
