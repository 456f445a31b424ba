//! The account itself: suspension, editing the profile, deleting the
//! account, exporting its data.

use domain::ports::{EmailPreferences as _, SavedStore as _};
use serde_json::{json, Value};

use crate::helpers::{TestApp, PASSWORD};

backend_tests! {
    a_suspended_account_cannot_sign_in_or_act,
    patch_me_sets_clears_and_leaves_fields,
    delete_me_needs_the_password_and_erases_the_account,
    export_lists_account_seller_profile_and_sessions,
}

async fn a_suspended_account_cannot_sign_in_or_act(app: TestApp) {
    let (user, tokens) = app.verified_user("mallory").await;
    app.become_seller(&tokens.access).await.expect(201);

    let now = app.state.clock.now();
    app.state
        .accounts
        .set_suspended(user.user_id(), true, now)
        .await
        .unwrap();

    let reply = app.login("mallory", PASSWORD).await;
    reply.expect_error(403, "forbidden");
    app.me(&tokens.access)
        .await
        .expect_error(401, "unauthorized");
    app.refresh(&tokens.refresh)
        .await
        .expect_error(401, "unauthorized");
    app.get_json("/api/v1/users/mallory")
        .await
        .expect_error(404, "not_found");
    // A wrong password still gets the ordinary answer: the status reveals
    // nothing to someone who does not know the password.
    app.login("mallory", "not the password")
        .await
        .expect_error(401, "unauthorized");

    // Lifting the suspension lets the owner back in.
    app.state
        .accounts
        .set_suspended(user.user_id(), false, now)
        .await
        .unwrap();
    let tokens = app.login_ok("mallory", PASSWORD).await;
    app.me(&tokens.access).await.expect(200);
    app.get_json("/api/v1/users/mallory").await.expect(200);
}

async fn patch_me_sets_clears_and_leaves_fields(app: TestApp) {
    let (_, tokens) = app.signed_up("alan").await;
    let patch = |body: Value| {
        let app = &app;
        let token = tokens.access.clone();
        async move { app.patch_json_as(&token, "/api/v1/me", &body).await }
    };

    let me = patch(json!({
        "display_name": "  Alan Turing ",
        "country": "gb",
        "bio": "Computable numbers.",
    }))
    .await
    .expect(200);
    assert_eq!(me["display_name"], "Alan Turing");
    assert_eq!(me["country"], "GB");
    assert_eq!(me["bio"], "Computable numbers.");

    // `null` clears, an absent field stays.
    let me = patch(json!({ "bio": null })).await.expect(200);
    assert_eq!(me["bio"], Value::Null);
    assert_eq!(me["display_name"], "Alan Turing");
    assert_eq!(me["country"], "GB");

    // An empty object changes nothing.
    let before = app.me(&tokens.access).await.expect(200);
    assert_eq!(patch(json!({})).await.expect(200), before);

    // One invalid field refuses the whole change.
    let reply = patch(json!({ "display_name": "Someone Else", "country": "Great Britain" })).await;
    reply.expect_error(422, "validation_failed");
    assert_eq!(reply.error_fields(), ["country"], "{}", reply.body);
    let reply = patch(json!({ "display_name": "x".repeat(51), "country": "1A" })).await;
    reply.expect_error(422, "validation_failed");
    let mut fields = reply.error_fields();
    fields.sort();
    assert_eq!(fields, ["country", "display_name"], "{}", reply.body);
    patch(json!({ "email": "new@example.com" }))
        .await
        .expect_error(422, "validation_failed");
    assert_eq!(app.me(&tokens.access).await.expect(200), before);

    // The public profile shows the same.
    let public = app.get_json("/api/v1/users/alan").await.expect(200);
    assert_eq!(public["display_name"], "Alan Turing");
    assert_eq!(public["country"], "GB");
    assert_eq!(public["bio"], Value::Null);
    assert_eq!(public["is_seller"], false);
    assert_eq!(public["seller"], Value::Null);

    // Needs a signed-in user.
    app.send(
        app.request(reqwest::Method::PATCH, "/api/v1/me")
            .json(&json!({ "bio": "x" })),
    )
    .await
    .expect_error(401, "unauthorized");
}

async fn delete_me_needs_the_password_and_erases_the_account(app: TestApp) {
    let (user, tokens) = app.verified_user("alan").await;
    let other = app.login_ok("alan", PASSWORD).await;
    app.become_seller(&tokens.access).await.expect(201);
    let (_, seller) = app.seller("sally").await;
    let gig = app
        .create_gig_ok(
            &seller.access,
            &crate::helpers::gig_body(
                "I will design a clean logo for your brand",
                "graphics-design",
                "logo-design",
            ),
        )
        .await;
    let gig = gig["id"].as_str().unwrap().to_string();
    app.send(
        app.request(
            reqwest::Method::PUT,
            &format!("/api/v1/me/favourites/{gig}"),
        )
        .bearer_auth(&tokens.access),
    )
    .await
    .expect(201);
    app.post_json_as(
        &tokens.access,
        "/api/v1/me/saved-searches",
        &json!({ "name": "Logos", "query": { "q": "logo" } }),
    )
    .await
    .expect(201);
    app.send(
        app.request(reqwest::Method::PUT, "/api/v1/me/email-preferences")
            .bearer_auth(&tokens.access)
            .json(&json!({ "categories": [{ "category": "orders", "enabled": false }] })),
    )
    .await
    .expect(200);
    app.patch_json_as(&tokens.access, "/api/v1/me", &json!({ "bio": "hello" }))
        .await
        .expect(200);

    let reply = app
        .delete_json_as(
            &tokens.access,
            "/api/v1/me",
            &json!({ "password": "not the password" }),
        )
        .await;
    reply.expect_error(422, "validation_failed");
    assert_eq!(reply.error_fields(), ["password"], "{}", reply.body);
    let me = app.me(&tokens.access).await.expect(200);
    assert_eq!(me["roles"], json!(["buyer", "seller"]));
    assert_eq!(me["bio"], "hello");
    app.get_json("/api/v1/users/alan").await.expect(200);

    let reply = app
        .delete_json_as(
            &tokens.access,
            "/api/v1/me",
            &json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);

    for login in ["alan", user.email.as_str()] {
        app.login(login, PASSWORD)
            .await
            .expect_error(401, "unauthorized");
    }
    app.get_json("/api/v1/users/alan")
        .await
        .expect_error(404, "not_found");
    for tokens in [&tokens, &other] {
        app.me(&tokens.access)
            .await
            .expect_error(401, "unauthorized");
        app.refresh(&tokens.refresh)
            .await
            .expect_error(401, "unauthorized");
    }
    // The personal data is gone from the store, the row stays.
    let stored = app
        .state
        .accounts
        .user_by_id(user.user_id())
        .await
        .unwrap()
        .expect("the row stays for others' records");
    assert!(stored.deleted_at.is_some());
    assert_ne!(stored.email.as_str(), user.email);
    assert_ne!(stored.username.as_str(), user.username);
    assert_eq!(stored.bio, None);
    assert!(app
        .state
        .accounts
        .seller_profile(user.user_id())
        .await
        .unwrap()
        .is_none());
    let id = user.user_id();
    assert!(app
        .state
        .store
        .saved_searches_of(id)
        .await
        .unwrap()
        .is_empty());
    assert!(app
        .state
        .store
        .favourites(id, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(app.state.store.disabled_mail(id).await.unwrap().is_empty());
}

async fn export_lists_account_seller_profile_and_sessions(app: TestApp) {
    let (user, tokens) = app.verified_user("alan").await;
    let other = app.login_ok("alan", PASSWORD).await;
    let ended = app.login_ok("alan", PASSWORD).await;
    app.post_json_as(&ended.access, "/api/v1/auth/logout", &json!({}))
        .await
        .expect(204);

    // Before selling there is no seller profile.
    let export = app
        .get_json_as(&tokens.access, "/api/v1/me/export")
        .await
        .expect(200);
    assert_eq!(export["seller_profile"], Value::Null);

    app.become_seller(&tokens.access).await.expect(201);
    let export = app
        .get_json_as(&tokens.access, "/api/v1/me/export")
        .await
        .expect(200);
    assert_eq!(export["account"]["id"], json!(user.id.to_string()));
    assert_eq!(export["account"]["email"], json!(user.email));
    assert_eq!(export["account"]["roles"], json!(["buyer", "seller"]));
    assert_eq!(export["seller_profile"]["full_name"], "Ada Lovelace");
    assert!(export["exported_at"].is_string());
    assert_eq!(export["favourites"], json!([]));
    assert_eq!(export["saved_searches"], json!([]));
    let categories = export["email_preferences"].as_array().expect("a list");
    assert_eq!(categories.len(), 6, "{categories:?}");

    let sessions = export["sessions"].as_array().expect("a list of sessions");
    assert_eq!(sessions.len(), 3, "{}", export["sessions"]);
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(
        current.len(),
        1,
        "exactly one is the caller's: {sessions:?}"
    );
    assert_eq!(current[0]["revoked_at"], Value::Null);
    let revoked = sessions
        .iter()
        .filter(|s| !s["revoked_at"].is_null())
        .count();
    assert_eq!(revoked, 1, "the logged-out session is listed as ended");
    for session in sessions {
        assert!(session["id"].is_string() && session["expires_at"].is_string());
        assert_eq!(session["ip"], "127.0.0.1");
    }

    // From the other session, another one is current.
    let from_other = app
        .get_json_as(&other.access, "/api/v1/me/export")
        .await
        .expect(200);
    let other_current: Vec<&Value> = from_other["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(other_current.len(), 1);
    assert_ne!(other_current[0]["id"], current[0]["id"]);
    assert!(
        !from_other.to_string().contains("password"),
        "no secrets in the export"
    );

    app.get_json("/api/v1/me/export")
        .await
        .expect_error(401, "unauthorized");
}
