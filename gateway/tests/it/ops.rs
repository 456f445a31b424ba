//! Operations: probes, the OpenAPI document, request ids and shutdown.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::TestApp;

backend_tests! {
    probes_answer,
    the_openapi_document_lists_every_route,
    every_response_carries_a_request_id,
    shutdown_makes_run_return,
}

async fn probes_answer(app: TestApp) {
    let health = app.get_json("/healthz").await.expect(200);
    assert_eq!(health["status"], "ok");
    let ready = app.get_json("/readyz").await.expect(200);
    assert_eq!(ready["status"], "ready");
}

async fn the_openapi_document_lists_every_route(app: TestApp) {
    let reply = app.get_json("/api/openapi.json").await;
    assert!(reply
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json")));
    let spec = reply.expect(200);
    assert!(
        spec["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "{spec}"
    );
    let paths = spec["paths"].as_object().expect("an object of paths");
    let expected = [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/verify-email", "post"),
        ("/api/v1/auth/resend-verification", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/forgot-password", "post"),
        ("/api/v1/auth/reset-password", "post"),
        ("/api/v1/auth/change-password", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/me", "patch"),
        ("/api/v1/me", "delete"),
        ("/api/v1/me/export", "get"),
        ("/api/v1/me/seller", "post"),
        ("/api/v1/me/seller", "patch"),
        ("/api/v1/users/{username}", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    // The served document is the one the crate builds.
    let built: Value = serde_json::to_value(gateway::openapi()).unwrap();
    for (path, _) in expected {
        assert!(
            built["paths"].get(path).is_some(),
            "{path} in gateway::openapi()"
        );
    }
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
}

async fn every_response_carries_a_request_id(app: TestApp) {
    // `TestApp::send` checks this on every response of every test; here the
    // id is also unique per request and a caller's own id is kept.
    let first = app.get_json("/healthz").await;
    let second = app.get_json("/healthz").await;
    assert_ne!(first.header("x-request-id"), second.header("x-request-id"));

    let mine = app
        .send(
            app.request(Method::GET, "/api/v1/nothing-here")
                .header("x-request-id", "trace-me-42"),
        )
        .await;
    assert_eq!(mine.status, 404);
    assert_eq!(mine.header("x-request-id"), Some("trace-me-42"));

    let error = app
        .post_json("/api/v1/auth/login", &serde_json::json!({}))
        .await;
    assert_eq!(error.status, 422);
    assert!(error.header("x-request-id").is_some());
}

async fn shutdown_makes_run_return(app: TestApp) {
    // Leaves an idle keep-alive connection in the client's pool.
    app.get_json("/healthz").await.expect(200);
    let started = std::time::Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(20), app.shutdown())
        .await
        .expect("run returns after the shutdown signal");
    stopped.expect("run returns Ok");
    // The client's idle keep-alive connection did not hold the server up
    // until the grace period ran out.
    let grace = Duration::from_secs(app.state.settings.server.shutdown_grace_secs);
    assert!(
        started.elapsed() < grace,
        "shutdown took {:?}",
        started.elapsed()
    );

    // Nothing listens any more.
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(fresh.get(app.url("/healthz")).send().await.is_err());
}
