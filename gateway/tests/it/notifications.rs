//! The notification center: a notification arrives live on every socket of
//! the user, the list shows it unread, marking it read (one, then all) tells
//! every socket with the new unread count, and a fresh hello carries the
//! count.

use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::orders::admin;
use crate::socket::Socket;

backend_tests!(read_state_is_shared_by_every_session);

async fn warn(app: &TestApp, token: &str, user: impl std::fmt::Display, reason: &str) {
    app.post_json_as(
        token,
        &format!("/api/v1/admin/users/{user}/warn"),
        &json!({ "reason": reason }),
    )
    .await
    .expect(200);
}

async fn read_state_is_shared_by_every_session(app: TestApp) {
    let root = admin(&app, "root").await;
    let (ada, tokens) = app.verified_user("ada").await;
    let (bob, bob_tokens) = app.verified_user("bob").await;
    let (mut phone, hello) = Socket::connect(&app, &tokens.access).await;
    assert_eq!(hello["notifications_unread"], 0, "{hello}");
    let (mut laptop, _) = Socket::connect(&app, &tokens.access).await;

    warn(&app, &root.token, ada.id, "Please keep it civil.").await;
    let on_phone = phone.event("notification").await;
    let on_laptop = laptop.event("notification").await;
    assert_eq!(on_phone, on_laptop);
    assert_eq!(on_phone["data"]["kind"], "account.warning", "{on_phone}");
    let first = on_phone["cursor"].as_i64().unwrap();

    let list = app
        .get_json_as(&tokens.access, "/api/v1/notifications")
        .await
        .expect(200);
    assert_eq!(list["unread"], 1, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["cursor"], first);
    assert_eq!(items[0]["kind"], "account.warning");
    assert_eq!(items[0]["body"], "Please keep it civil.");
    assert_eq!(items[0]["read"], false);
    assert!(list["next"].is_null());
    let unread = phone.ok("notification.unread", json!({})).await;
    assert_eq!(unread["unread"], 1);

    // Someone else's notifications are not Ada's to mark.
    warn(&app, &root.token, bob.id, "Bob too.").await;
    let bob_list = app
        .get_json_as(&bob_tokens.access, "/api/v1/notifications")
        .await
        .expect(200);
    let bobs = bob_list["items"][0]["cursor"].as_i64().unwrap();
    let foreign = app
        .post_as(
            &tokens.access,
            &format!("/api/v1/notifications/{}/read", bobs + 100),
        )
        .await;
    foreign.expect_error(404, "not_found");

    let marked = app
        .post_as(
            &tokens.access,
            &format!("/api/v1/notifications/{first}/read"),
        )
        .await
        .expect(200);
    assert_eq!(marked, json!({ "read": true, "unread": 0 }));
    for socket in [&mut phone, &mut laptop] {
        let read = socket.event("notification.read").await;
        assert_eq!(read["data"]["cursors"], json!([first]), "{read}");
        assert_eq!(read["data"]["unread"], 0);
    }
    let again = app
        .post_as(
            &tokens.access,
            &format!("/api/v1/notifications/{first}/read"),
        )
        .await
        .expect(200);
    assert_eq!(again, json!({ "read": false, "unread": 0 }));

    // Two more, then all read over the socket.
    warn(&app, &root.token, ada.id, "Second.").await;
    warn(&app, &root.token, ada.id, "Third.").await;
    for _ in 0..2 {
        phone.event("notification").await;
        laptop.event("notification").await;
    }
    let page = phone.ok("notification.list", json!({ "limit": 2 })).await;
    assert_eq!(page["unread"], 2, "{page}");
    let titles: Vec<&Value> = page["items"].as_array().unwrap().iter().collect();
    assert_eq!(titles.len(), 2);
    assert_eq!(titles[0]["body"], "Third.");
    let next = page["next"].as_i64().unwrap();
    let older = phone
        .ok("notification.list", json!({ "before": next, "limit": 2 }))
        .await;
    assert_eq!(older["items"].as_array().unwrap().len(), 1);
    assert_eq!(older["items"][0]["read"], true);

    let all = phone.ok("notification.read_all", json!({})).await;
    assert_eq!(all, json!({ "marked": 2, "unread": 0 }));
    for socket in [&mut phone, &mut laptop] {
        let read = socket.event("notification.read").await;
        assert!(read["data"]["through"].is_i64(), "{read}");
        assert_eq!(read["data"]["unread"], 0);
    }
    let rest = app
        .post_json_as(&tokens.access, "/api/v1/notifications/read-all", &json!({}))
        .await
        .expect(200);
    assert_eq!(rest, json!({ "marked": 0, "unread": 0 }));

    warn(&app, &root.token, ada.id, "Fourth.").await;
    laptop.event("notification").await;
    let unread = app
        .get_json_as(&tokens.access, "/api/v1/notifications/unread")
        .await
        .expect(200);
    assert_eq!(unread, json!({ "unread": 1 }));
    let (_fresh, hello) = Socket::connect(&app, &tokens.access).await;
    assert_eq!(hello["notifications_unread"], 1, "{hello}");
}
