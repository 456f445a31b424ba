//! Requests the API cannot read get the error shape too, with the right
//! status, and change nothing.

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, PASSWORD};

backend_tests! {
    unreadable_bodies_are_refused,
    unknown_routes_and_methods_answer_in_json,
}

const REGISTER: &str = "/api/v1/auth/register";

async fn unreadable_bodies_are_refused(app: TestApp) {
    // Malformed JSON.
    app.send(
        app.request(Method::POST, REGISTER)
            .header(CONTENT_TYPE, "application/json")
            .body(r#"{"username": "bob", "#),
    )
    .await
    .expect_error(400, "bad_request");

    // JSON without its content type.
    let body = json!({ "username": "bob", "email": "bob@example.com", "password": PASSWORD });
    app.send(app.request(Method::POST, REGISTER).body(body.to_string()))
        .await
        .expect_error(415, "unsupported_media_type");
    app.send(
        app.request(Method::POST, REGISTER)
            .header(CONTENT_TYPE, "text/plain")
            .body(body.to_string()),
    )
    .await
    .expect_error(415, "unsupported_media_type");

    // Over 1 MiB.
    let huge = json!({
        "username": "bob",
        "email": "bob@example.com",
        "password": "x".repeat(gateway::MAX_BODY_BYTES),
    });
    app.post_json(REGISTER, &huge)
        .await
        .expect_error(413, "payload_too_large");

    // A field the API does not know.
    let reply = app
        .post_json(
            REGISTER,
            &json!({ "username": "bob", "email": "bob@example.com", "password": PASSWORD, "role": "admin" }),
        )
        .await;
    reply.expect_error(422, "validation_failed");

    // A field missing.
    app.post_json(
        REGISTER,
        &json!({ "username": "bob", "password": PASSWORD }),
    )
    .await
    .expect_error(422, "validation_failed");

    // None of these created the account.
    app.get_json("/api/v1/users/bob")
        .await
        .expect_error(404, "not_found");
    assert!(app.mails("verify_email", "bob@example.com").is_empty());
    app.post_json(REGISTER, &body).await.expect(201);
}

async fn unknown_routes_and_methods_answer_in_json(app: TestApp) {
    for path in ["/api/v1/nothing-here", "/api/v2/me", "/"] {
        let reply = app.get_json(path).await;
        reply.expect_error(404, "not_found");
        assert!(reply
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json")));
    }

    for (method, path) in [
        (Method::GET, "/api/v1/auth/login"),
        (Method::DELETE, "/api/v1/auth/register"),
        (Method::PUT, "/api/v1/me"),
        (Method::POST, "/healthz"),
    ] {
        let reply = app.send(app.request(method.clone(), path)).await;
        reply.expect_error(405, "method_not_allowed");
        assert!(
            reply
                .header("content-type")
                .is_some_and(|v| v.starts_with("application/json")),
            "{method} {path}"
        );
    }
}
