//! Passwords: reset from an e-mailed single-use link that expires, and
//! change knowing the current one; both end the other sessions.

use chrono::TimeDelta;
use serde_json::json;

use crate::helpers::{TestApp, ACCOUNT_MAX_FAILURES, PASSWORD};

backend_tests! {
    a_forgotten_password_is_reset_from_the_mailed_link,
    an_expired_reset_link_changes_nothing,
    an_invalid_new_password_keeps_the_link_usable,
    a_newer_reset_link_replaces_the_older,
    change_password_needs_the_current_one,
    wrong_current_passwords_count_towards_the_lockout,
    a_raced_reset_link_works_once,
}

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn a_forgotten_password_is_reset_from_the_mailed_link(app: TestApp) {
    let (user, first) = app.signed_up("alan").await;
    let second = app.login_ok(&user.email, PASSWORD).await;

    // The same answer whether or not the address has an account. The unknown
    // address is asked for first, so by the time the known one's mail is
    // written, the unknown one's lookup has had its turn.
    let unknown = app.forgot_password("nobody@example.com").await;
    let malformed = app.forgot_password("not an address").await;
    let known = app.forgot_password("ALAN@Example.com").await;
    assert_eq!(unknown.status, 202, "{}", unknown.body);
    assert_eq!(known.status, 202);
    assert_eq!(malformed.status, 202);
    assert_eq!(unknown.body, known.body);
    assert_eq!(malformed.body, known.body);

    let token = app.reset_token(&user.email).await;
    assert!(app.mails("reset_password", "nobody@example.com").is_empty());

    // Until the link is used the password stays as it is.
    let third = app.login_ok("alan", PASSWORD).await;

    let reply = app.reset_password(&token, NEW_PASSWORD).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    app.login("alan", PASSWORD)
        .await
        .expect_error(401, "unauthorized");
    let fresh = app.login_ok("alan", NEW_PASSWORD).await;

    // Every session from before the reset is over.
    for tokens in [&first, &second, &third] {
        app.me(&tokens.access)
            .await
            .expect_error(401, "unauthorized");
        app.refresh(&tokens.refresh)
            .await
            .expect_error(401, "unauthorized");
    }
    let me = app.me(&fresh.access).await.expect(200);
    // Following the link proved the address.
    assert_eq!(me["email_verified"], true);

    // The owner is told, and the link worked once.
    let mail = app.wait_for_mail("password_changed", &user.email).await;
    assert!(mail.text.contains("alan"), "{}", mail.text);
    app.reset_password(&token, "yet another passphrase")
        .await
        .expect_error(400, "invalid_token");
    app.login_ok("alan", NEW_PASSWORD).await;
}

async fn an_expired_reset_link_changes_nothing(app: TestApp) {
    let user = app.register_user("alan").await;
    app.forgot_password(&user.email).await.expect(202);
    let token = app.reset_token(&user.email).await;

    app.clock.advance(TimeDelta::minutes(61));
    app.reset_password(&token, NEW_PASSWORD)
        .await
        .expect_error(400, "invalid_token");
    app.login_ok("alan", PASSWORD).await;
    app.login("alan", NEW_PASSWORD)
        .await
        .expect_error(401, "unauthorized");
    assert!(app.mails("password_changed", &user.email).is_empty());
}

async fn an_invalid_new_password_keeps_the_link_usable(app: TestApp) {
    let user = app.register_user("alan").await;
    app.forgot_password(&user.email).await.expect(202);
    let token = app.reset_token(&user.email).await;

    for bad in ["short", &"x".repeat(129)] {
        let reply = app.reset_password(&token, bad).await;
        reply.expect_error(422, "validation_failed");
        assert_eq!(reply.error_fields(), ["password"], "{}", reply.body);
    }
    app.login_ok("alan", PASSWORD).await;

    let reply = app.reset_password(&token, NEW_PASSWORD).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    app.login_ok("alan", NEW_PASSWORD).await;

    // A made-up token is refused like a used one.
    app.reset_password("made-up-token", NEW_PASSWORD)
        .await
        .expect_error(400, "invalid_token");
}

async fn a_newer_reset_link_replaces_the_older(app: TestApp) {
    let user = app.register_user("alan").await;
    app.forgot_password(&user.email).await.expect(202);
    let older = app.reset_token(&user.email).await;
    app.forgot_password(&user.email).await.expect(202);
    let newer = app.reset_token(&user.email).await;
    assert_ne!(older, newer);

    app.reset_password(&older, NEW_PASSWORD)
        .await
        .expect_error(400, "invalid_token");
    app.login_ok("alan", PASSWORD).await;
    let reply = app.reset_password(&newer, NEW_PASSWORD).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    app.login_ok("alan", NEW_PASSWORD).await;
}

async fn change_password_needs_the_current_one(app: TestApp) {
    let (user, current) = app.signed_up("alan").await;
    let other = app.login_ok("alan", PASSWORD).await;
    let path = "/api/v1/auth/change-password";

    let reply = app
        .post_json_as(
            &current.access,
            path,
            &json!({ "current_password": "not the password", "new_password": NEW_PASSWORD }),
        )
        .await;
    reply.expect_error(422, "validation_failed");
    assert_eq!(reply.error_fields(), ["current_password"], "{}", reply.body);

    let reply = app
        .post_json_as(
            &current.access,
            path,
            &json!({ "current_password": PASSWORD, "new_password": "short" }),
        )
        .await;
    reply.expect_error(422, "validation_failed");
    assert_eq!(reply.error_fields(), ["new_password"], "{}", reply.body);

    app.post_json(
        path,
        &json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
    )
    .await
    .expect_error(401, "unauthorized");

    // Nothing changed so far.
    app.me(&other.access).await.expect(200);
    assert!(app.mails("password_changed", &user.email).is_empty());

    // A reset link requested before the change must not work after it.
    app.forgot_password(&user.email).await.expect(202);
    let stale_reset = app.reset_token(&user.email).await;

    let reply = app
        .post_json_as(
            &current.access,
            path,
            &json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);

    // The other session is over; this one goes on.
    app.me(&other.access)
        .await
        .expect_error(401, "unauthorized");
    app.refresh(&other.refresh)
        .await
        .expect_error(401, "unauthorized");
    app.me(&current.access).await.expect(200);
    let rotated = app.refresh_ok(&current.refresh).await;
    app.me(&rotated.access).await.expect(200);

    let mail = app.wait_for_mail("password_changed", &user.email).await;
    assert!(mail.text.contains("alan"), "{}", mail.text);
    app.login("alan", PASSWORD)
        .await
        .expect_error(401, "unauthorized");
    app.login_ok("alan", NEW_PASSWORD).await;
    app.reset_password(&stale_reset, "a third password")
        .await
        .expect_error(400, "invalid_token");
    app.login_ok("alan", NEW_PASSWORD).await;
}

async fn wrong_current_passwords_count_towards_the_lockout(app: TestApp) {
    let (_, tokens) = app.signed_up("alan").await;
    let wrong = json!({ "current_password": "not the password", "new_password": NEW_PASSWORD });
    for _ in 0..ACCOUNT_MAX_FAILURES {
        app.post_json_as(&tokens.access, "/api/v1/auth/change-password", &wrong)
            .await
            .expect_error(422, "validation_failed");
    }
    // Guessing through the signed-in session locks the account like guessing
    // at the login form does.
    let right = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
    let locked = app
        .post_json_as(&tokens.access, "/api/v1/auth/change-password", &right)
        .await;
    locked.expect_error(429, "rate_limited");
    assert!(locked.header("retry-after").is_some());
    app.login("alan", PASSWORD)
        .await
        .expect_error(429, "rate_limited");

    let lockout = i64::try_from(app.state.settings.auth.lockout_secs).unwrap();
    app.clock.advance(TimeDelta::seconds(lockout));
    // The access token has expired meanwhile (the lockout is as long as its
    // lifetime); the session goes on with a refreshed one.
    let tokens = app.refresh_ok(&tokens.refresh).await;
    let reply = app
        .post_json_as(&tokens.access, "/api/v1/auth/change-password", &right)
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    app.login_ok("alan", NEW_PASSWORD).await;
}

async fn a_raced_reset_link_works_once(app: TestApp) {
    let user = app.register_user("alan").await;
    app.forgot_password(&user.email).await.expect(202);
    let token = app.reset_token(&user.email).await;

    let passwords = [
        "first passphrase",
        "second passphrase",
        "third passphrase",
        "fourth passphrase",
    ];
    let (a, b, c, d) = tokio::join!(
        app.reset_password(&token, passwords[0]),
        app.reset_password(&token, passwords[1]),
        app.reset_password(&token, passwords[2]),
        app.reset_password(&token, passwords[3]),
    );
    let replies = [a, b, c, d];
    let winners: Vec<usize> = (0..replies.len())
        .filter(|&i| replies[i].status == 204)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one reset wins: {replies:?}");
    for (i, reply) in replies.iter().enumerate() {
        if i != winners[0] {
            reply.expect_error(400, "invalid_token");
        }
    }
    // The winner's first: the losers' three failures then lock the account
    // (`ACCOUNT_MAX_FAILURES`), which must not hide whether it signs in.
    let reply = app.login("alan", passwords[winners[0]]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for (i, password) in passwords.iter().enumerate() {
        if i != winners[0] {
            app.login("alan", password)
                .await
                .expect_error(401, "unauthorized");
        }
    }
}
