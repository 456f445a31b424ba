//! Registration: every bad field reported at once; usernames and addresses
//! unique regardless of case; a refused registration changes nothing.

use serde_json::json;

use crate::helpers::{TestApp, PASSWORD};

backend_tests! {
    every_invalid_field_is_reported_at_once,
    duplicates_differing_in_case_are_refused,
}

async fn every_invalid_field_is_reported_at_once(app: TestApp) {
    let reply = app.register("a b", "not-an-email", "short").await;
    reply.expect_error(422, "validation_failed");
    let mut fields = reply.error_fields();
    fields.sort();
    assert_eq!(fields, ["email", "password", "username"], "{}", reply.body);
    for field in reply.body["fields"].as_array().unwrap() {
        assert!(field["code"].as_str().is_some_and(|c| !c.is_empty()));
        assert!(field["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    // Each rule on its own.
    for (username, email, password, field) in [
        ("ab", "ok@example.com", PASSWORD, "username"),
        (&*"x".repeat(31), "ok@example.com", PASSWORD, "username"),
        ("bob@home", "ok@example.com", PASSWORD, "username"),
        ("bob", "bob@localhost", PASSWORD, "email"),
        ("bob", "", PASSWORD, "email"),
        ("bob", "ok@example.com", "1234567", "password"),
        ("bob", "ok@example.com", &*"p".repeat(129), "password"),
    ] {
        let reply = app.register(username, email, password).await;
        reply.expect_error(422, "validation_failed");
        assert_eq!(reply.error_fields(), [field], "{}", reply.body);
    }

    // Nothing was created: the one valid-looking name is still free.
    app.get_json("/api/v1/users/bob")
        .await
        .expect_error(404, "not_found");
    app.register("bob", "bob@example.com", PASSWORD)
        .await
        .expect(201);
}

async fn duplicates_differing_in_case_are_refused(app: TestApp) {
    let grace = app.register_user("grace").await;

    let reply = app
        .register("GRACE", "someone.else@example.com", PASSWORD)
        .await;
    reply.expect_error(409, "conflict");
    assert_eq!(reply.error_fields(), ["username"], "{}", reply.body);

    let reply = app.register("grace2", "Grace@EXAMPLE.com", PASSWORD).await;
    reply.expect_error(409, "conflict");
    assert_eq!(reply.error_fields(), ["email"], "{}", reply.body);

    // The original account is intact and signs in with its own password.
    let tokens = app.login_ok("grace", PASSWORD).await;
    let me = app.me(&tokens.access).await.expect(200);
    assert_eq!(me["id"], json!(grace.id.to_string()));
    assert_eq!(me["email"], "grace@example.com");
    app.login_ok("grace@example.com", PASSWORD).await;

    // No second account exists under either refused name.
    app.get_json("/api/v1/users/grace2")
        .await
        .expect_error(404, "not_found");
    app.login("grace2", PASSWORD)
        .await
        .expect_error(401, "unauthorized");
    app.login("someone.else@example.com", PASSWORD)
        .await
        .expect_error(401, "unauthorized");
}
