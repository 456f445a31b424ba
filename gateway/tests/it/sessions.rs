//! Sessions: refresh tokens rotate and work once, a reused one ends its
//! session, logout ends one, access tokens expire on the server's clock.

use chrono::TimeDelta;
use domain::ports::SessionStore;
use gateway::config::SessionBackend;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Backend, MotoServer, TestApp};

backend_tests! {
    refresh_rotates_and_reuse_ends_the_session,
    logout_with_the_bearer_token,
    logout_with_a_refresh_token,
    an_expired_access_token_is_refused_but_refresh_works,
    requests_without_a_valid_bearer_token_are_refused,
    a_raced_refresh_token_rotates_once,
}

async fn refresh_rotates_and_reuse_ends_the_session(app: TestApp) {
    let (user, first) = app.signed_up("alan").await;
    let other_session = app.login_ok("alan", &user.password).await;

    let second = app.refresh_ok(&first.refresh).await;
    assert_ne!(second.refresh, first.refresh);
    app.me(&second.access).await.expect(200);
    let third = app.refresh_ok(&second.refresh).await;
    assert_ne!(third.refresh, second.refresh);
    let me = app.me(&third.access).await.expect(200);
    assert_eq!(me["username"], "alan");

    // Presenting a used token again means it leaked: the whole session ends.
    let reused = app.refresh(&first.refresh).await;
    reused.expect_error(401, "unauthorized");
    app.refresh(&third.refresh)
        .await
        .expect_error(401, "unauthorized");
    for access in [&first.access, &second.access, &third.access] {
        app.me(access).await.expect_error(401, "unauthorized");
    }

    // Other sessions of the account are not touched.
    app.me(&other_session.access).await.expect(200);
    app.refresh_ok(&other_session.refresh).await;

    // Unknown tokens are refused and change nothing.
    app.refresh("not-a-token")
        .await
        .expect_error(401, "unauthorized");
    app.refresh("").await.expect_error(401, "unauthorized");
}

async fn logout_with_the_bearer_token(app: TestApp) {
    let (user, tokens) = app.signed_up("alan").await;
    let other = app.login_ok("alan", &user.password).await;

    // No body at all: the bearer token's session ends.
    let reply = app
        .send(
            app.request(Method::POST, "/api/v1/auth/logout")
                .bearer_auth(&tokens.access),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    app.me(&tokens.access)
        .await
        .expect_error(401, "unauthorized");
    app.refresh(&tokens.refresh)
        .await
        .expect_error(401, "unauthorized");

    // An empty JSON object does the same.
    let reply = app
        .post_json_as(&other.access, "/api/v1/auth/logout", &json!({}))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    app.me(&other.access)
        .await
        .expect_error(401, "unauthorized");

    // Without a token or with an ended session there is nothing to end.
    app.send(app.request(Method::POST, "/api/v1/auth/logout"))
        .await
        .expect_error(401, "unauthorized");
    app.send(
        app.request(Method::POST, "/api/v1/auth/logout")
            .bearer_auth(&tokens.access),
    )
    .await
    .expect_error(401, "unauthorized");
}

async fn logout_with_a_refresh_token(app: TestApp) {
    let (user, tokens) = app.signed_up("alan").await;
    let other = app.login_ok("alan", &user.password).await;

    let reply = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({ "refresh_token": tokens.refresh }),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    app.me(&tokens.access)
        .await
        .expect_error(401, "unauthorized");
    app.refresh(&tokens.refresh)
        .await
        .expect_error(401, "unauthorized");
    app.me(&other.access).await.expect(200);

    app.post_json(
        "/api/v1/auth/logout",
        &json!({ "refresh_token": "not-a-token" }),
    )
    .await
    .expect_error(401, "unauthorized");
    app.post_json("/api/v1/auth/logout", &json!({ "refresh": "x" }))
        .await
        .expect_error(422, "validation_failed");
}

async fn an_expired_access_token_is_refused_but_refresh_works(app: TestApp) {
    let (_, tokens) = app.signed_up("alan").await;
    let ttl = i64::try_from(app.state.settings.auth.access_token_ttl_secs).unwrap();

    app.clock.advance(TimeDelta::seconds(ttl - 1));
    app.me(&tokens.access).await.expect(200);
    app.clock.advance(TimeDelta::seconds(1));
    let expired = app.me(&tokens.access).await;
    expired.expect_error(401, "unauthorized");
    assert_eq!(expired.header("www-authenticate"), Some("Bearer"));

    let fresh = app.refresh_ok(&tokens.refresh).await;
    app.me(&fresh.access).await.expect(200);
    app.me(&tokens.access)
        .await
        .expect_error(401, "unauthorized");

    // The refresh token outlives many access tokens, but not its own lifetime.
    let days = i64::try_from(app.state.settings.auth.refresh_token_ttl_days).unwrap();
    app.clock
        .advance(TimeDelta::days(days) + TimeDelta::seconds(1));
    app.refresh(&fresh.refresh)
        .await
        .expect_error(401, "unauthorized");
}

async fn requests_without_a_valid_bearer_token_are_refused(app: TestApp) {
    let (_, tokens) = app.signed_up("alan").await;
    app.get_json("/api/v1/me")
        .await
        .expect_error(401, "unauthorized");
    app.me("not.a.jwt").await.expect_error(401, "unauthorized");
    // One character of the signature changed (not the last, whose low bits
    // are padding).
    let mut tampered: Vec<char> = tokens.access.chars().collect();
    let at = tampered.len() - 5;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    app.me(&tampered).await.expect_error(401, "unauthorized");
    app.send(
        app.request(Method::GET, "/api/v1/me")
            .header("authorization", format!("Basic {}", tokens.access)),
    )
    .await
    .expect_error(401, "unauthorized");
    // A refresh token is not an access token.
    app.me(&tokens.refresh)
        .await
        .expect_error(401, "unauthorized");
    app.me(&tokens.access).await.expect(200);
}

async fn a_raced_refresh_token_rotates_once(app: TestApp) {
    let (_, tokens) = app.signed_up("alan").await;
    let (a, b, c) = tokio::join!(
        app.refresh(&tokens.refresh),
        app.refresh(&tokens.refresh),
        app.refresh(&tokens.refresh),
    );
    let replies = [a, b, c];
    let rotated: Vec<&crate::helpers::Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(rotated.len(), 1, "one token, one rotation: {replies:?}");
    for reply in replies.iter().filter(|r| r.status != 200) {
        reply.expect_error(401, "unauthorized");
    }
    // The others presented a token that had just been used: that counts as
    // reuse, so the session is over, the new refresh token included.
    let next = rotated[0].body["refresh_token"].as_str().unwrap();
    app.refresh(next).await.expect_error(401, "unauthorized");
    app.me(&tokens.access)
        .await
        .expect_error(401, "unauthorized");
}

// ------------------------------------------------- sessions in DynamoDB

/// The same flows with `[sessions] backend = "dynamodb"`, on a table of the
/// test's own on a `moto_server` of its own; accounts stay in SQLite.
async fn on_dynamodb<F, Fut>(scenario: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let moto = MotoServer::start();
    let endpoint = moto.endpoint();
    crate::helpers::run_scenario_changed(
        Backend::Sqlite,
        move |settings| {
            let sessions = &mut settings.sessions;
            sessions.backend = SessionBackend::DynamoDb;
            sessions.dynamodb_endpoint = endpoint;
            sessions.dynamodb_region = "us-east-1".into();
            sessions.dynamodb_table = format!("sessions-{}", Uuid::new_v4().simple());
            sessions.dynamodb_access_key_id = "testing".into();
            sessions.dynamodb_secret_access_key =
                Some(SecretString::from("testing-secret".to_string()));
        },
        scenario,
    )
    .await;
    drop(moto);
}

#[tokio::test]
async fn dynamodb_refresh_rotates_and_reuse_ends_the_session() {
    on_dynamodb(|app| async move {
        // Logins open sessions in DynamoDB, none in the database.
        let (user, _) = app.signed_up("grace").await;
        let in_dynamodb = app
            .state
            .sessions
            .sessions_for_user(user.user_id())
            .await
            .unwrap();
        assert_eq!(in_dynamodb.len(), 1);
        assert!(app
            .state
            .store
            .sessions_for_user(user.user_id())
            .await
            .unwrap()
            .is_empty());
        refresh_rotates_and_reuse_ends_the_session(app).await;
    })
    .await;
}

#[tokio::test]
async fn dynamodb_logout_with_a_refresh_token() {
    on_dynamodb(logout_with_a_refresh_token).await;
}

#[tokio::test]
async fn dynamodb_logout_with_the_bearer_token() {
    on_dynamodb(logout_with_the_bearer_token).await;
}

// No raced refresh over HTTP here: moto_server runs each transaction with a
// private backup of the table that it restores when the transaction fails,
// so a loser racing a winner can undo the winner's write. The store suite's
// `store::dynamodb::concurrent_rotation_has_one_winner` covers the race.
