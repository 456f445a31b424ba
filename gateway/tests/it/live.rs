//! The live socket beyond a plain chat: resuming after a cut without losing
//! or repeating anything, retried sends, a slow reader cut off while others
//! keep going, malformed, oversized and flooding clients, the hello rules,
//! heartbeats, search over the socket, and attachments.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use gateway::config::Settings;
use gateway::ws::SocketStats;
use image::ImageFormat;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{eventually, gig_body, image_bytes, Reply, TestApp, TestUser};
use crate::socket::Socket;

backend_tests!(
    resume_loses_nothing_and_repeats_nothing,
    a_retried_send_is_stored_once,
    a_slow_reader_is_cut_off_while_others_keep_going with slow_reader_limits,
    malformed_oversized_and_flooding_clients with strict_limits,
    hello_rules,
    a_silent_socket_is_closed with quick_hello,
    heartbeats_drop_dead_peers_and_keep_live_ones with quick_heartbeat,
    search_over_the_socket,
    attachments_stay_between_the_participants,
    ended_sessions_close_their_sockets,
);

/// Opens (or finds) the conversation with `other`; its id.
async fn open_with(socket: &mut Socket, other: &TestUser) -> String {
    socket
        .ok("conversation.open", json!({ "user_id": other.id }))
        .await["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn message(id: &str, client_id: &str, body: &str) -> Value {
    json!({ "conversation_id": id, "client_id": client_id, "body": body })
}

/// The `chat.message` events among `events`.
fn chat_messages(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event"] == "chat.message")
        .collect()
}

fn cursors(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| {
            e["cursor"]
                .as_i64()
                .unwrap_or_else(|| panic!("a durable event without a cursor: {e}"))
        })
        .collect()
}

/// Asserts a refused reply: `ok: false`, the error `code`, a message.
#[track_caller]
fn assert_refused(reply: &Value, code: &str) {
    assert_eq!(reply["ok"], false, "{reply}");
    assert_eq!(reply["error"]["code"], code, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "an error has a message: {reply}"
    );
}

async fn resume_loses_nothing_and_repeats_nothing(app: TestApp) {
    const MESSAGES: usize = 30;
    const CUT_AFTER: usize = 10;
    let (_alice, alice_tokens) = app.signed_up("alice").await;
    let (bob, bob_tokens) = app.signed_up("bob").await;
    let (mut a, _) = Socket::connect(&app, &alice_tokens.access).await;
    let id = open_with(&mut a, &bob).await;
    let (mut b, hello) = Socket::connect(&app, &bob_tokens.access).await;
    // Bob's log holds conversation.started; the messages follow it.
    assert_eq!(hello["cursor"], 1);

    // Alice sends one message after another while Bob reads ...
    let sender = tokio::spawn({
        let id = id.clone();
        async move {
            for i in 1..=MESSAGES {
                let sent = a
                    .ok(
                        "chat.send",
                        message(&id, &format!("m-{i}"), &format!("message {i}")),
                    )
                    .await;
                assert_eq!(sent["duplicate"], false, "{sent}");
            }
            a
        }
    });
    let before_cut = b
        .events_until(|events| chat_messages(events).len() >= CUT_AFTER)
        .await;
    assert_eq!(
        cursors(&before_cut),
        (2..2 + CUT_AFTER as i64).collect::<Vec<_>>()
    );
    // ... and his connection is lost in the middle of the stream.
    let cut_at = b.cursor;
    assert_eq!(cut_at, 1 + CUT_AFTER as i64);
    b.cut();

    // He comes back with the last cursor he processed, once Alice is
    // further along: some events are replayed, the rest arrive live.
    let conversation = format!("/api/v1/conversations/{id}");
    eventually("Alice sending on", || async {
        let seen = app
            .get_json_as(&bob_tokens.access, &conversation)
            .await
            .expect(200);
        match seen["last_seq"].as_i64() {
            Some(seq) if seq >= 2 * CUT_AFTER as i64 => Ok(()),
            _ => Err(seen["last_seq"].to_string()),
        }
    })
    .await;
    let (mut b, hello) = Socket::resume(&app, &bob_tokens.access, Some(cut_at)).await;
    assert!(hello["cursor"].as_i64().unwrap() >= cut_at, "{hello}");
    let seqs_in = |events: &[Value]| -> BTreeSet<i64> {
        chat_messages(events)
            .iter()
            .map(|m| m["data"]["seq"].as_i64().unwrap())
            .collect()
    };
    let seen_before = seqs_in(&before_cut);
    let after_resume = b
        .events_until(|events| seen_before.union(&seqs_in(events)).count() >= MESSAGES)
        .await;
    let mut a = sender.await.unwrap();

    // Whatever was still on the way arrives before a later marker.
    a.ok("chat.send", message(&id, "marker", "that was all"))
        .await;
    let trailing = b
        .events_until(|events| events.iter().any(|e| e["data"]["client_id"] == "marker"))
        .await;
    assert_eq!(
        trailing.len(),
        1,
        "events after all {MESSAGES} messages: {trailing:?}"
    );

    // Every message exactly once across the two connections ...
    let mut count: BTreeMap<i64, usize> = BTreeMap::new();
    for event in chat_messages(&before_cut)
        .into_iter()
        .chain(chat_messages(&after_resume))
    {
        *count
            .entry(event["data"]["seq"].as_i64().unwrap())
            .or_default() += 1;
    }
    let expected: BTreeMap<i64, usize> = (1..=MESSAGES as i64).map(|seq| (seq, 1)).collect();
    assert_eq!(count, expected, "how often each seq arrived");
    // ... and on the resumed one, the cursors right after the resume point,
    // without a gap or a repeat.
    let resumed: Vec<Value> = after_resume.iter().chain(&trailing).cloned().collect();
    assert_eq!(
        cursors(&resumed),
        (cut_at + 1..=cut_at + resumed.len() as i64).collect::<Vec<_>>(),
        "cursors after resuming from {cut_at}"
    );
    assert!(resumed.iter().all(|e| e["event"] == "chat.message"));
    let head = b.cursor;
    assert_eq!(head, 1 + MESSAGES as i64 + 1);
    let history = a
        .ok(
            "chat.history",
            json!({ "conversation_id": id, "limit": 100 }),
        )
        .await;
    assert_eq!(history["items"].as_array().unwrap().len(), MESSAGES + 1);
    b.close().await;

    // Resuming from the newest cursor replays nothing: the answer to a
    // ping comes with no event before it.
    let (mut b, hello) = Socket::resume(&app, &bob_tokens.access, Some(head)).await;
    assert_eq!(hello["cursor"], head);
    b.ok("ping", json!({})).await;
    assert_eq!(b.events_until(|_| true).await, Vec::<Value>::new());
    b.close().await;

    // A new device that resumes from 0 gets the whole log, in order.
    let (mut fresh, _) = Socket::resume(&app, &bob_tokens.access, Some(0)).await;
    let all = fresh
        .events_until(|events| events.len() >= head as usize)
        .await;
    assert_eq!(cursors(&all), (1..=head).collect::<Vec<_>>());
    assert_eq!(all[0]["event"], "conversation.started");
    fresh.ok("ping", json!({})).await;
    assert_eq!(fresh.backlog_events("chat.message"), 0);

    // A cursor ahead of the head cannot be resumed from; the same socket
    // can then say hello without one.
    let mut ahead = Socket::open(&app).await;
    let refused = ahead.hello(&bob_tokens.access, Some(head + 1)).await;
    assert_refused(&refused, "cursor_expired");
    assert_eq!(ahead.refused("ping", json!({})).await, "unauthorized");
    let reply = ahead.hello(&bob_tokens.access, None).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["data"]["cursor"], head);
    ahead.ok("ping", json!({})).await;
    assert_eq!(ahead.events_until(|_| true).await, Vec::<Value>::new());
}

async fn a_retried_send_is_stored_once(app: TestApp) {
    let (_alice, alice_tokens) = app.signed_up("alice").await;
    let (bob, bob_tokens) = app.signed_up("bob").await;
    let (mut a, _) = Socket::connect(&app, &alice_tokens.access).await;
    let id = open_with(&mut a, &bob).await;
    let (mut b, _) = Socket::connect(&app, &bob_tokens.access).await;

    // A retry after the reply was lost.
    let first = message(&id, "retry-1", "Are you free on Monday?");
    let sent = a.ok("chat.send", first.clone()).await;
    assert_eq!(sent["duplicate"], false);
    assert_eq!(sent["message"]["seq"], 1);
    let again = a.ok("chat.send", first.clone()).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message"], sent["message"]);

    // Two tries in flight at once: one stores, the other finds it.
    let second = message(&id, "retry-2", "Or Tuesday?");
    let r1 = a.start("chat.send", second.clone()).await;
    let r2 = a.start("chat.send", second).await;
    let (x, y) = (a.reply(&r1).await, a.reply(&r2).await);
    assert_eq!(
        (&x["ok"], &y["ok"]),
        (&json!(true), &json!(true)),
        "{x} {y}"
    );
    let mut duplicates = [&x, &y].map(|r| r["data"]["duplicate"].as_bool().unwrap());
    duplicates.sort_unstable();
    assert_eq!(duplicates, [false, true]);
    assert_eq!(x["data"]["message"], y["data"]["message"]);
    assert_eq!(x["data"]["message"]["seq"], 2);

    // Over REST the same client_id is a retry too.
    let rest = app
        .post_json_as(
            &alice_tokens.access,
            &format!("/api/v1/conversations/{id}/messages"),
            &json!({ "client_id": "retry-1", "body": "Are you free on Monday?" }),
        )
        .await
        .expect(200);
    assert_eq!(rest["duplicate"], true);
    assert_eq!(rest["message"]["id"], sent["message"]["id"]);

    let history = a.ok("chat.history", json!({ "conversation_id": id })).await;
    let stored: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(stored, ["retry-2", "retry-1"]);

    // Each side receives each stored message once: a later marker arrives
    // right after them. (Alice also heard that Bob came online.)
    a.ok("chat.send", message(&id, "marker", "see you")).await;
    for (who, socket) in [("bob", &mut b), ("alice", &mut a)] {
        let events = socket
            .events_until(|events| events.iter().any(|e| e["data"]["client_id"] == "marker"))
            .await;
        let received: Vec<&str> = chat_messages(&events)
            .iter()
            .map(|e| e["data"]["client_id"].as_str().unwrap())
            .collect();
        assert_eq!(received, ["retry-1", "retry-2", "marker"], "{who}");
        if who == "bob" {
            assert_eq!(events.len(), 3, "Bob heard only the messages: {events:?}");
        }
    }
}

fn slow_reader_limits(settings: &mut Settings) {
    let realtime = &mut settings.realtime;
    realtime.outbound_queue = 8;
    realtime.requests_per_sec = 1_000_000;
    realtime.burst = 1_000_000;
    realtime.write_timeout_secs = 10;
}

/// Carol sends Dave a message; he must have it promptly.
async fn carol_tells_dave(carol: &mut Socket, dave: &mut Socket, id: &str, n: usize) {
    let client_id = format!("cd-{n}");
    let started = Instant::now();
    carol
        .ok("chat.send", message(id, &client_id, "still here?"))
        .await;
    let received = dave.event("chat.message").await;
    let took = started.elapsed();
    assert_eq!(received["data"]["client_id"], client_id.as_str());
    assert!(
        took < Duration::from_secs(3),
        "Dave waited {took:?} for Carol's message {n}"
    );
    carol.drop_events();
}

async fn a_slow_reader_is_cut_off_while_others_keep_going(app: TestApp) {
    const MAX_MESSAGES: usize = 5000;
    let slow_consumers = || SocketStats::get(&app.state.sockets.slow_consumers);
    let (_alice, alice_tokens) = app.signed_up("alice").await;
    let (bob, bob_tokens) = app.signed_up("bob").await;
    let (_carol, carol_tokens) = app.signed_up("carol").await;
    let (dave, dave_tokens) = app.signed_up("dave").await;
    let (mut a, _) = Socket::connect(&app, &alice_tokens.access).await;
    let ab = open_with(&mut a, &bob).await;
    let (mut c, _) = Socket::connect(&app, &carol_tokens.access).await;
    let cd = open_with(&mut c, &dave).await;
    let (mut d, _) = Socket::connect(&app, &dave_tokens.access).await;

    // Bob says hello with a small receive buffer, then stops reading.
    let mut b = Socket::open_with(&app, Some(4096)).await;
    let hello = b.hello(&bob_tokens.access, None).await;
    assert_eq!(hello["ok"], true, "{hello}");

    let body: String = "0123456789".repeat(400);
    let mut sent = 0;
    let mut slowest_ack = Duration::ZERO;
    while slow_consumers() == 0 {
        assert!(
            sent < MAX_MESSAGES,
            "Bob was not cut off after {sent} messages"
        );
        sent += 1;
        let started = Instant::now();
        let reply = a
            .ok("chat.send", message(&ab, &format!("big-{sent}"), &body))
            .await;
        slowest_ack = slowest_ack.max(started.elapsed());
        assert_eq!(reply["message"]["seq"], sent);
        a.drop_events();
        if sent % 100 == 0 {
            carol_tells_dave(&mut c, &mut d, &cd, sent).await;
        }
    }
    eprintln!(
        "Bob was cut off after {sent} messages of {} bytes; the slowest acknowledgement took {slowest_ack:?}",
        body.len()
    );
    // Nobody waited for Bob's writes (the write timeout is 10 seconds).
    assert!(
        slowest_ack < Duration::from_secs(3),
        "an acknowledgement took {slowest_ack:?}"
    );
    // Everyone else goes on as before.
    carol_tells_dave(&mut c, &mut d, &cd, sent + 1).await;
    let after = a
        .ok("chat.send", message(&ab, "after", "are you there, Bob?"))
        .await;
    assert_eq!(after["message"]["seq"], sent + 1);

    // When Bob reads at last, he gets what was queued, then the close.
    assert_eq!(b.close_code().await, Some(4008));
    assert_eq!(slow_consumers(), 1);
    assert_eq!(SocketStats::get(&app.state.sockets.abusive), 0);

    // He reconnects with the cursor he had and catches up on everything.
    let (mut b, _) = Socket::resume(&app, &bob_tokens.access, Some(1)).await;
    let caught_up = b
        .events_until(|events| events.iter().any(|e| e["data"]["client_id"] == "after"))
        .await;
    assert_eq!(
        cursors(&caught_up),
        (2..=sent as i64 + 2).collect::<Vec<_>>()
    );
}

fn strict_limits(settings: &mut Settings) {
    let realtime = &mut settings.realtime;
    realtime.max_frame_bytes = 2048;
    realtime.requests_per_sec = 2;
    realtime.burst = 5;
}

async fn malformed_oversized_and_flooding_clients(app: TestApp) {
    let abusive = || SocketStats::get(&app.state.sockets.abusive);
    let (_mallory, tokens) = app.signed_up("mallory").await;
    let (mut s, hello) = Socket::connect(&app, &tokens.access).await;
    assert_eq!(
        hello["limits"],
        json!({ "max_frame_bytes": 2048, "requests_per_sec": 2, "burst": 5 })
    );

    // Five requests in all below: the whole burst, none over it.
    s.send_text("this is not JSON").await;
    assert_refused(&s.anonymous_reply().await, "bad_request");
    s.ok("ping", json!({})).await;

    s.send_frame(Message::Binary(vec![0x7b, 0x7d].into())).await;
    assert_refused(&s.anonymous_reply().await, "bad_request");

    let oversized = json!({ "id": "big", "type": "ping", "data": { "pad": "x".repeat(2048) } });
    s.send_text(&oversized.to_string()).await;
    assert_refused(&s.anonymous_reply().await, "payload_too_large");
    s.ok("ping", json!({})).await;

    let unknown = s.request("gig.teleport", json!({})).await;
    assert_refused(&unknown, "bad_request");
    assert!(unknown["id"].is_string(), "{unknown}");
    s.send_text(r#"{"id": "no-type", "data": {}}"#).await;
    assert_refused(&s.reply("no-type").await, "bad_request");
    s.send_text(r#"{"id": 42, "type": "ping", "data": [1]}"#)
        .await;
    let reply = s.read().await;
    assert_eq!(reply["id"], 42);
    assert_refused(&reply, "bad_request");

    let without_client_id = json!({ "conversation_id": uuid::Uuid::new_v4(), "body": "hi" });
    assert_eq!(
        s.refused("chat.send", without_client_id).await,
        "validation_failed"
    );
    s.ok("ping", json!({})).await;
    assert!(s.backlog().is_empty(), "{:?}", s.backlog());

    // A burst over the limit: some requests are refused, each gets exactly
    // one reply.
    let (mut flood, _) = Socket::connect(&app, &tokens.access).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(flood.start("ping", json!({})).await);
    }
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        let reply = flood.reply(id).await;
        let outcome = if reply["ok"] == true {
            "ok".to_string()
        } else {
            reply["error"]["code"].as_str().unwrap().to_string()
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    let answered = outcomes.get("ok").copied().unwrap_or(0);
    let limited = outcomes.get("rate_limited").copied().unwrap_or(0);
    assert!(
        (5..=6).contains(&answered) && answered + limited == ids.len(),
        "{outcomes:?}"
    );
    // Once the bucket refills (two a second) the session answers again,
    // and no second reply to any of the ten came before that.
    let mut tries = 0;
    loop {
        tries += 1;
        let reply = flood.request("ping", json!({})).await;
        if reply["ok"] == true {
            break;
        }
        assert_refused(&reply, "rate_limited");
        assert!(tries < 30, "the bucket did not refill");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(flood.backlog().is_empty(), "{:?}", flood.backlog());
    assert_eq!(abusive(), 0);

    // Bad frames again and again: twenty are answered, then the session
    // is closed.
    let (mut garbage, _) = Socket::connect(&app, &tokens.access).await;
    let mut answered = 0;
    let code = loop {
        garbage.send_text("{ definitely not json").await;
        match garbage.next_or_close().await {
            Ok(reply) => {
                assert!(reply["id"].is_null(), "{reply}");
                assert_refused(&reply, "bad_request");
                answered += 1;
                assert!(
                    answered <= 20,
                    "still answering after {answered} bad frames"
                );
            }
            Err(code) => break code,
        }
    };
    assert_eq!((answered, code), (20, Some(4400)));
    assert_eq!(abusive(), 1);

    // Requests over the limit again and again: a hundred are refused,
    // then the session is closed.
    let (mut flooder, _) = Socket::connect(&app, &tokens.access).await;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let code = loop {
        flooder.start("ping", json!({})).await;
        match flooder.next_or_close().await {
            Ok(reply) => {
                let outcome = if reply["ok"] == true {
                    "ok".to_string()
                } else {
                    assert_refused(&reply, "rate_limited");
                    "rate_limited".to_string()
                };
                *outcomes.entry(outcome).or_default() += 1;
                assert!(
                    outcomes.get("rate_limited").copied().unwrap_or(0) <= 100,
                    "still answering: {outcomes:?}"
                );
            }
            Err(code) => break code,
        }
    };
    assert_eq!(outcomes.get("rate_limited"), Some(&100), "{outcomes:?}");
    assert_eq!(code, Some(4429));
    assert_eq!(abusive(), 2);

    // The first socket was never in trouble.
    s.ok("ping", json!({})).await;
}

async fn hello_rules(app: TestApp) {
    let (alice, alice_tokens) = app.signed_up("alice").await;
    let (bob, bob_tokens) = app.signed_up("bob").await;

    // A request before hello is refused, and the socket stays.
    let mut s = Socket::open(&app).await;
    assert_eq!(s.refused("ping", json!({})).await, "unauthorized");
    assert_eq!(
        s.refused("conversation.list", json!({})).await,
        "unauthorized"
    );
    // A hello that does not fit the shape is refused too, and the socket
    // stays.
    assert_eq!(
        s.refused("hello", json!({ "protocol": 1 })).await,
        "validation_failed"
    );
    let reply = s.hello(&alice_tokens.access, None).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["data"]["user_id"], alice.id.to_string());
    s.ok("ping", json!({})).await;
    // Once is enough.
    assert_eq!(
        s.refused(
            "hello",
            json!({ "protocol": 1, "token": alice_tokens.access })
        )
        .await,
        "bad_request"
    );
    s.ok("ping", json!({})).await;

    // A bad token: an error reply, then 4401.
    let mut bad = Socket::open(&app).await;
    let reply = bad.hello("not-a-token", None).await;
    assert_refused(&reply, "unauthorized");
    assert_eq!(bad.close_code().await, Some(4401));

    // Another protocol version: an error reply, then 4426.
    let mut future = Socket::open(&app).await;
    let reply = future
        .request(
            "hello",
            json!({ "protocol": 2, "token": alice_tokens.access }),
        )
        .await;
    assert_refused(&reply, "bad_request");
    assert_eq!(future.close_code().await, Some(4426));

    // One user on two devices: both receive everything.
    let (mut phone, _) = Socket::connect(&app, &alice_tokens.access).await;
    let (mut laptop, _) = Socket::connect(&app, &alice_tokens.access).await;
    let (mut b, _) = Socket::connect(&app, &bob_tokens.access).await;
    let id = open_with(&mut b, &alice).await;
    let on_phone = phone.event("conversation.started").await;
    let on_laptop = laptop.event("conversation.started").await;
    assert_eq!(on_phone, on_laptop);
    b.ok("chat.send", message(&id, "b-1", "Hi Alice")).await;
    let on_phone = phone.event("chat.message").await;
    let on_laptop = laptop.event("chat.message").await;
    assert_eq!(on_phone["data"]["body"], "Hi Alice");
    assert_eq!(on_phone["data"]["sender_id"], bob.id.to_string());
    assert_eq!(on_phone, on_laptop, "the same event, the same cursor");
    // What one device sends, the other sees.
    phone.ok("chat.send", message(&id, "a-1", "Hi Bob")).await;
    let echoed = laptop.event("chat.message").await;
    assert_eq!(echoed["data"]["body"], "Hi Bob");
    assert_eq!(echoed["cursor"], on_laptop["cursor"].as_i64().unwrap() + 1);
    assert_eq!(b.event("chat.message").await["data"]["client_id"], "b-1");
    assert_eq!(b.event("chat.message").await["data"]["client_id"], "a-1");
}

fn quick_hello(settings: &mut Settings) {
    settings.realtime.hello_timeout_secs = 1;
}

async fn a_silent_socket_is_closed(app: TestApp) {
    let (_alice, tokens) = app.signed_up("alice").await;
    let started = Instant::now();
    let mut silent = Socket::open(&app).await;
    // Requests other than hello do not count.
    let mut chatty = Socket::open(&app).await;
    assert_eq!(chatty.refused("ping", json!({})).await, "unauthorized");
    // A hello in time keeps the socket.
    let (mut prompt, _) = Socket::connect(&app, &tokens.access).await;

    assert_eq!(silent.close_code().await, Some(4408));
    assert_eq!(chatty.close_code().await, Some(4408));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    prompt.ok("ping", json!({})).await;
    eventually("only the socket that said hello stays open", || async {
        match SocketStats::get(&app.state.sockets.open) {
            1 => Ok(()),
            open => Err(format!("{open} open")),
        }
    })
    .await;
}

fn quick_heartbeat(settings: &mut Settings) {
    settings.realtime.heartbeat_secs = 1;
}

async fn heartbeats_drop_dead_peers_and_keep_live_ones(app: TestApp) {
    let open = || SocketStats::get(&app.state.sockets.open);
    let (_alice, tokens) = app.signed_up("alice").await;

    // A client that does not read never answers the server's ping.
    let (mut deaf, hello) = Socket::connect(&app, &tokens.access).await;
    assert_eq!(hello["heartbeat_secs"], 1);
    assert_eq!(open(), 1);
    let started = Instant::now();
    eventually("the deaf client is dropped", || async {
        match open() {
            0 => Ok(()),
            n => Err(format!("{n} open")),
        }
    })
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "dropped after {took:?}");
    assert_eq!(deaf.close_code().await, Some(4408));

    // A client that reads answers every ping and stays, though it sends
    // nothing itself.
    let (mut listening, _) = Socket::connect(&app, &tokens.access).await;
    let pings = listening.listen(Duration::from_millis(3500)).await;
    assert!(pings >= 2, "{pings} heartbeats in 3.5 s");
    assert_eq!(open(), 1);
    listening.ok("ping", json!({})).await;
    // Requests keep a session alive too.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        listening.ok("ping", json!({})).await;
    }
    assert_eq!(open(), 1);
}

async fn search_over_the_socket(app: TestApp) {
    let (_ada, ada_tokens) = app.seller("ada").await;
    let mut body = gig_body(
        "I will paint a watercolor portrait of your pet",
        "graphics-design",
        "illustration",
    );
    body["tags"] = json!(["watercolor", "pet portrait"]);
    let gig = app.create_gig_ok(&ada_tokens.access, &body).await;
    let gig_id = gig["id"].as_str().unwrap().to_string();
    app.state.gig_actors.flush_index().await.unwrap();

    let (_bea, bea_tokens) = app.signed_up("bea").await;
    let (mut s, _) = Socket::connect(&app, &bea_tokens.access).await;
    // The index is searchable shortly after the flush.
    let deadline = Instant::now() + crate::helpers::POLL_TIMEOUT;
    let page = loop {
        let page = s
            .ok("search.query", json!({ "q": "watercolour portrait" }))
            .await;
        if page["hits"].as_array().is_some_and(|hits| !hits.is_empty()) {
            break page;
        }
        assert!(Instant::now() < deadline, "not found: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(crate::helpers::hit_ids(&page), [gig_id.as_str()]);
    assert_eq!(page["total"], 1);
    assert_eq!(page["hits"][0]["seller_username"], "ada");
    // Filters are JSON values here, not query strings.
    let cheap = s
        .ok(
            "search.query",
            json!({ "category": "graphics-design", "price_max": 3000, "limit": 5 }),
        )
        .await;
    assert_eq!(crate::helpers::hit_ids(&cheap), [gig_id.as_str()]);
    let dear = s.ok("search.query", json!({ "price_min": 3000 })).await;
    assert_eq!(dear["hits"], json!([]));
    // The same body as REST.
    let rest = app.search_ok(&[("q", "watercolour portrait")]).await;
    assert_eq!(page, rest);

    let typed = s.ok("search.autocomplete", json!({ "q": "waterc" })).await;
    assert!(
        typed["items"]
            .as_array()
            .unwrap()
            .contains(&json!({ "text": "watercolor", "kind": "tag" })),
        "{typed}"
    );
    let typed = s
        .ok("search.autocomplete", json!({ "q": "paint a", "limit": 3 }))
        .await;
    assert!(
        typed["items"].as_array().unwrap().contains(&json!({
            "text": "paint a watercolor portrait of your pet",
            "kind": "title"
        })),
        "{typed}"
    );

    for (kind, data) in [
        ("search.autocomplete", json!({ "q": "wa", "limit": 0 })),
        ("search.autocomplete", json!({ "limit": 3 })),
        ("search.query", json!({ "q": "pet", "limit": 0 })),
        ("search.query", json!({ "price_min": -1 })),
        ("search.query", json!({ "q": "pet", "colour": "blue" })),
    ] {
        assert_eq!(
            s.refused(kind, data.clone()).await,
            "validation_failed",
            "{kind} {data}"
        );
    }
}

/// Posts `bytes` as a new attachment of conversation `id`.
async fn upload(
    app: &TestApp,
    token: &str,
    id: &str,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Reply {
    app.send(
        app.request(
            Method::POST,
            &format!("/api/v1/conversations/{id}/attachments"),
        )
        .query(&[("name", name)])
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(bytes),
    )
    .await
}

async fn attachments_stay_between_the_participants(app: TestApp) {
    let (_alice, alice_tokens) = app.signed_up("alice").await;
    let (bob, bob_tokens) = app.signed_up("bob").await;
    let (carol, carol_tokens) = app.signed_up("carol").await;
    let (mut a, _) = Socket::connect(&app, &alice_tokens.access).await;
    let id = open_with(&mut a, &bob).await;
    let (mut b, _) = Socket::connect(&app, &bob_tokens.access).await;

    let png = image_bytes(120, 120, ImageFormat::Png);
    let uploaded = upload(
        &app,
        &alice_tokens.access,
        &id,
        "plan.png",
        "image/png",
        png.clone(),
    )
    .await
    .expect(201);
    let key = uploaded["key"].as_str().unwrap().to_string();
    assert!(key.starts_with(&format!("chat/{id}/")), "{key}");
    assert_eq!(uploaded["name"], "plan.png");
    assert_eq!(uploaded["content_type"], "image/png");
    assert_eq!(uploaded["bytes"], png.len());
    let url = uploaded["url"].as_str().unwrap().to_string();

    let sent = a
        .ok(
            "chat.send",
            json!({ "conversation_id": id, "client_id": "plan", "body": "The plan", "attachments": [key] }),
        )
        .await;
    assert_eq!(sent["message"]["attachments"], json!([uploaded]));
    let received = b.event("chat.message").await;
    assert_eq!(received["data"]["attachments"], json!([uploaded]));
    assert_eq!(received["data"]["attachments"][0]["url"], url.as_str());

    // Bob downloads it; nobody else can.
    let download = |token: &str| {
        app.send_raw(
            app.request(Method::GET, &url)
                .bearer_auth(token.to_string()),
        )
    };
    let got = download(&bob_tokens.access).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("image/png"));
    assert_eq!(got.bytes, png);
    assert_eq!(download(&alice_tokens.access).await.bytes, png);
    app.get_json_as(&carol_tokens.access, &url)
        .await
        .expect_error(404, "not_found");
    app.get_json(&url).await.expect_error(401, "unauthorized");
    // The public media route does not serve it, however it is spelled.
    for path in [
        format!("/media/{key}"),
        format!("/media//{key}"),
        format!("/media/%63hat/{}", &key["chat/".len()..]),
        format!("/media/gigs/../{key}"),
    ] {
        let reply = app.send_raw(app.request(Method::GET, &path)).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_ne!(reply.bytes, png, "{path}");
    }

    // Only images and PDF files.
    let refused = upload(
        &app,
        &alice_tokens.access,
        &id,
        "notes.txt",
        "text/plain",
        b"just some notes".to_vec(),
    )
    .await;
    refused.expect_error(422, "validation_failed");
    let pdf = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".to_vec();
    let contract = upload(
        &app,
        &alice_tokens.access,
        &id,
        "contract.pdf",
        "application/pdf",
        pdf,
    )
    .await
    .expect(201);
    assert_eq!(contract["content_type"], "application/pdf");
    // Only participants upload.
    upload(
        &app,
        &carol_tokens.access,
        &id,
        "x.png",
        "image/png",
        png.clone(),
    )
    .await
    .expect_error(404, "not_found");

    // Bob's upload is his to send: Alice cannot attach it, over the socket
    // or REST.
    let bobs = upload(
        &app,
        &bob_tokens.access,
        &id,
        "bob.png",
        "image/png",
        png.clone(),
    )
    .await
    .expect(201);
    let bobs_key = bobs["key"].as_str().unwrap();
    let reply = a
        .request(
            "chat.send",
            json!({ "conversation_id": id, "client_id": "steal", "body": "mine now", "attachments": [bobs_key] }),
        )
        .await;
    assert_refused(&reply, "validation_failed");
    assert_eq!(
        reply["error"]["fields"][0]["field"], "attachments[0]",
        "{reply}"
    );
    let rest = app
        .post_json_as(
            &alice_tokens.access,
            &format!("/api/v1/conversations/{id}/messages"),
            &json!({ "client_id": "steal", "body": "mine now", "attachments": [bobs_key] }),
        )
        .await;
    rest.expect_error(422, "validation_failed");
    assert_eq!(rest.error_fields(), ["attachments[0]"]);
    // Nor can an upload to another conversation be attached here.
    let (mut c, _) = Socket::connect(&app, &carol_tokens.access).await;
    let elsewhere = open_with(&mut a, &carol).await;
    let other = upload(
        &app,
        &alice_tokens.access,
        &elsewhere,
        "other.png",
        "image/png",
        png,
    )
    .await
    .expect(201);
    assert_eq!(
        a.refused(
            "chat.send",
            json!({ "conversation_id": id, "client_id": "moved", "body": "x", "attachments": [other["key"]] }),
        )
        .await,
        "validation_failed"
    );
    c.event("conversation.started").await;

    // Only the one message was stored.
    let history = b.ok("chat.history", json!({ "conversation_id": id })).await;
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{history}");
    assert_eq!(items[0]["attachments"][0]["key"], key.as_str());
}

/// Logging out closes the sockets opened with that login at once; a
/// password change closes every other device's socket and keeps its own.
async fn ended_sessions_close_their_sockets(app: TestApp) {
    let (user, phone) = app.signed_up("alan").await;
    let laptop = app.login_ok("alan", &user.password).await;
    let tablet = app.login_ok("alan", &user.password).await;
    let (mut on_phone, _) = Socket::connect(&app, &phone.access).await;
    let (mut on_laptop, _) = Socket::connect(&app, &laptop.access).await;
    let (mut on_tablet, _) = Socket::connect(&app, &tablet.access).await;

    let reply = app
        .send(
            app.request(Method::POST, "/api/v1/auth/logout")
                .bearer_auth(&phone.access),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(on_phone.close_code().await, Some(4401));
    // The other devices' sockets are untouched.
    on_laptop.ok("ping", json!({})).await;

    app.post_json_as(
        &laptop.access,
        "/api/v1/auth/change-password",
        &json!({ "current_password": user.password, "new_password": "a brand new passphrase" }),
    )
    .await
    .expect(204);
    assert_eq!(on_tablet.close_code().await, Some(4401));
    on_laptop.ok("ping", json!({})).await;
}
