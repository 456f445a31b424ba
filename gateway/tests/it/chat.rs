//! Chat between two users over the live socket and over REST: messages,
//! typing, read receipts, unread counts, presence, and the wall around a
//! conversation that keeps everyone else out.

use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::socket::Socket;

backend_tests!(
    two_users_chat_over_the_socket,
    socket_and_rest_users_see_each_other,
    outsiders_can_neither_read_nor_write,
);

async fn open(socket: &mut Socket, with: &str) -> Value {
    socket
        .ok("conversation.open", json!({ "user_id": with }))
        .await["conversation"]
        .clone()
}

async fn two_users_chat_over_the_socket(app: TestApp) {
    let (alice, alice_tokens) = app.signed_up("alice").await;
    let (bob, bob_tokens) = app.signed_up("bob").await;
    let (mut a, hello) = Socket::connect(&app, &alice_tokens.access).await;
    assert_eq!(hello["cursor"], 0);
    assert_eq!(hello["unread"], 0);
    let (mut b, _) = Socket::connect(&app, &bob_tokens.access).await;

    let conversation = open(&mut a, &bob.id.to_string()).await;
    let id = conversation["id"].as_str().unwrap().to_string();
    assert_eq!(conversation["other"]["username"], "bob");
    assert_eq!(conversation["other"]["online"], true);
    assert_eq!(conversation["unread"], 0);
    let started = b.event("conversation.started").await;
    assert_eq!(started["cursor"], 1);
    assert_eq!(started["data"]["id"], id.as_str());
    a.event("conversation.started").await;

    // Opening again finds the same conversation, from either side.
    let again = open(&mut b, &alice.id.to_string()).await;
    assert_eq!(again["id"], id.as_str());

    // Typing reaches the other side, without a cursor.
    a.ok("chat.typing", json!({ "conversation_id": id })).await;
    let typing = b.event("chat.typing").await;
    assert_eq!(typing["data"]["user_id"], alice.id.to_string());
    assert!(typing.get("cursor").is_none(), "{typing}");

    // A message is acknowledged once stored and reaches both sides.
    let sent = a
        .ok(
            "chat.send",
            json!({ "conversation_id": id, "client_id": "m-1", "body": "  Hello Bob  " }),
        )
        .await;
    assert_eq!(sent["duplicate"], false);
    assert_eq!(sent["message"]["seq"], 1);
    assert_eq!(sent["message"]["body"], "Hello Bob");
    let received = b.event("chat.message").await;
    assert_eq!(received["cursor"], 2);
    assert_eq!(received["data"]["body"], "Hello Bob");
    assert_eq!(received["data"]["sender_id"], alice.id.to_string());
    let own = a.event("chat.message").await;
    assert_eq!(own["data"]["seq"], 1);

    // Bob has one unread message until he reads it; Alice sees the receipt.
    let listed = b.ok("conversation.list", json!({})).await;
    assert_eq!(listed["items"][0]["unread"], 1);
    assert_eq!(listed["items"][0]["last_message"]["body"], "Hello Bob");
    let read = b
        .ok("chat.read", json!({ "conversation_id": id, "seq": 1 }))
        .await;
    assert_eq!(read["last_read_seq"], 1);
    let receipt = a.event("chat.read").await;
    assert_eq!(receipt["data"]["user_id"], bob.id.to_string());
    assert_eq!(receipt["data"]["last_read_seq"], 1);
    let listed = a.ok("conversation.list", json!({})).await;
    assert_eq!(listed["items"][0]["other_read_seq"], 1);
    let listed = b.ok("conversation.list", json!({})).await;
    assert_eq!(listed["items"][0]["unread"], 0);
    // Reading backwards changes nothing.
    let read = b
        .ok("chat.read", json!({ "conversation_id": id, "seq": 0 }))
        .await;
    assert_eq!(read["last_read_seq"], 1);

    // History, newest first, with both read pointers.
    b.ok(
        "chat.send",
        json!({ "conversation_id": id, "client_id": "b-1", "body": "Hi Alice" }),
    )
    .await;
    let history = a
        .ok("chat.history", json!({ "conversation_id": id, "limit": 1 }))
        .await;
    assert_eq!(history["items"][0]["body"], "Hi Alice");
    assert_eq!(history["next_before_seq"], 2);
    let older = a
        .ok(
            "chat.history",
            json!({ "conversation_id": id, "before_seq": 2 }),
        )
        .await;
    assert_eq!(older["items"][0]["body"], "Hello Bob");
    assert!(older["next_before_seq"].is_null());

    // Presence: Bob leaving and coming back is seen by Alice.
    b.close().await;
    let gone = a.event("presence").await;
    assert_eq!(gone["data"]["user_id"], bob.id.to_string());
    assert_eq!(gone["data"]["online"], false);
    assert!(gone["data"]["last_seen_at"].is_string());
    let listed = a.ok("conversation.list", json!({})).await;
    assert_eq!(listed["items"][0]["other"]["online"], false);
    let (_b, hello) = Socket::connect(&app, &bob_tokens.access).await;
    assert_eq!(hello["unread"], 0);
    let back = a.event("presence").await;
    assert_eq!(back["data"]["online"], true);
}

async fn socket_and_rest_users_see_each_other(app: TestApp) {
    let (alice, alice_tokens) = app.signed_up("alice").await;
    let (_bob, bob_tokens) = app.signed_up("bob").await;
    let (mut a, _) = Socket::connect(&app, &alice_tokens.access).await;

    let opened = app
        .post_json_as(
            &bob_tokens.access,
            "/api/v1/conversations",
            &json!({ "username": "alice" }),
        )
        .await
        .expect(201);
    let id = opened["conversation"]["id"].as_str().unwrap().to_string();
    assert_eq!(opened["conversation"]["other"]["id"], alice.id.to_string());
    // Opening again is not a second conversation.
    app.post_json_as(
        &bob_tokens.access,
        "/api/v1/conversations",
        &json!({ "user_id": alice.id }),
    )
    .await
    .expect(200);
    a.event("conversation.started").await;

    let messages = format!("/api/v1/conversations/{id}/messages");
    let sent = app
        .post_json_as(
            &bob_tokens.access,
            &messages,
            &json!({ "client_id": "rest-1", "body": "over REST" }),
        )
        .await
        .expect(201);
    assert_eq!(sent["message"]["seq"], 1);
    let live = a.event("chat.message").await;
    assert_eq!(live["data"]["body"], "over REST");

    // A retried REST send is stored once.
    let again = app
        .post_json_as(
            &bob_tokens.access,
            &messages,
            &json!({ "client_id": "rest-1", "body": "over REST" }),
        )
        .await
        .expect(200);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message"]["id"], sent["message"]["id"]);

    a.ok(
        "chat.send",
        json!({ "conversation_id": id, "client_id": "ws-1", "body": "over the socket" }),
    )
    .await;
    let history = app
        .get_json_as(&bob_tokens.access, &messages)
        .await
        .expect(200);
    let bodies: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["over the socket", "over REST"]);

    let list = app
        .get_json_as(&bob_tokens.access, "/api/v1/conversations")
        .await
        .expect(200);
    assert_eq!(list["items"][0]["unread"], 1);
    assert_eq!(list["items"][0]["other"]["online"], true);
    app.post_json_as(
        &bob_tokens.access,
        &format!("/api/v1/conversations/{id}/read"),
        &json!({ "seq": 2 }),
    )
    .await
    .expect(200);
    let receipt = a.event("chat.read").await;
    assert_eq!(receipt["data"]["last_read_seq"], 2);

    // The REST event log holds what the socket pushed, by cursor.
    let events = app
        .get_json_as(&alice_tokens.access, "/api/v1/me/events?after=0")
        .await
        .expect(200);
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "conversation.started",
            "chat.message",
            "chat.message",
            "chat.read"
        ]
    );
    assert_eq!(events["head"], 4);
}

async fn outsiders_can_neither_read_nor_write(app: TestApp) {
    let (_alice, alice_tokens) = app.signed_up("alice").await;
    let (bob, _) = app.signed_up("bob").await;
    let (_carol, carol_tokens) = app.signed_up("carol").await;
    let (mut a, _) = Socket::connect(&app, &alice_tokens.access).await;
    let id = open(&mut a, &bob.id.to_string()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    a.ok(
        "chat.send",
        json!({ "conversation_id": id, "client_id": "m", "body": "private" }),
    )
    .await;

    let (mut c, _) = Socket::connect(&app, &carol_tokens.access).await;
    for (kind, data) in [
        ("conversation.get", json!({ "conversation_id": id })),
        ("chat.history", json!({ "conversation_id": id })),
        (
            "chat.send",
            json!({ "conversation_id": id, "client_id": "x", "body": "let me in" }),
        ),
        ("chat.read", json!({ "conversation_id": id, "seq": 1 })),
        ("chat.typing", json!({ "conversation_id": id })),
    ] {
        assert_eq!(c.refused(kind, data).await, "not_found", "{kind}");
    }
    let token = &carol_tokens.access;
    let base = format!("/api/v1/conversations/{id}");
    app.get_json_as(token, &base)
        .await
        .expect_error(404, "not_found");
    app.get_json_as(token, &format!("{base}/messages"))
        .await
        .expect_error(404, "not_found");
    app.post_json_as(
        token,
        &format!("{base}/messages"),
        &json!({ "client_id": "x", "body": "let me in" }),
    )
    .await
    .expect_error(404, "not_found");
    app.post_json_as(token, &format!("{base}/read"), &json!({ "seq": 1 }))
        .await
        .expect_error(404, "not_found");
    app.post_as(token, &format!("{base}/typing"))
        .await
        .expect_error(404, "not_found");
    let list = app
        .get_json_as(token, "/api/v1/conversations")
        .await
        .expect(200);
    assert_eq!(list["items"], json!([]));
    // Without a token, nothing at all.
    app.get_json(&base).await.expect_error(401, "unauthorized");

    // Nothing changed.
    let history = a.ok("chat.history", json!({ "conversation_id": id })).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
    assert!(
        history["read"][0]["last_read_seq"].as_i64().unwrap() <= 1,
        "{history}"
    );
}
