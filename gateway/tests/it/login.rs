//! Signing in: one answer for every wrong credential, and the failed-login
//! limits per account and per client address, on the server's clock.

use chrono::TimeDelta;
use gateway::config::Settings;

use crate::helpers::{TestApp, ACCOUNT_MAX_FAILURES, PASSWORD};

backend_tests! {
    wrong_password_and_unknown_user_look_the_same,
    an_account_is_locked_after_too_many_failures,
    an_address_is_locked_across_accounts with few_failures_per_address,
}

/// `auth.address_max_failures` in [`an_address_is_locked_across_accounts`].
const ADDRESS_MAX_FAILURES: u32 = 4;

fn few_failures_per_address(settings: &mut Settings) {
    settings.auth.address_max_failures = ADDRESS_MAX_FAILURES;
}

fn lockout(app: &TestApp) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(app.state.settings.auth.lockout_secs).unwrap())
}

#[track_caller]
fn retry_after(reply: &crate::helpers::Reply, app: &TestApp) -> u64 {
    let secs: u64 = reply
        .header("retry-after")
        .unwrap_or_else(|| panic!("a 429 has Retry-After: {:?}", reply.headers))
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        secs >= 1 && secs <= app.state.settings.auth.lockout_secs,
        "Retry-After {secs}"
    );
    secs
}

async fn wrong_password_and_unknown_user_look_the_same(app: TestApp) {
    app.register_user("alan").await;

    let wrong = app.login("alan", "not the password").await;
    let unknown = app.login("nobody", "not the password").await;
    let unknown_email = app.login("nobody@example.com", "not the password").await;
    let garbage = app.login("not a name!", "not the password").await;
    wrong.expect_error(401, "unauthorized");
    for other in [&unknown, &unknown_email, &garbage] {
        assert_eq!(other.status, wrong.status);
        assert_eq!(other.body, wrong.body);
        assert_eq!(
            other.header("www-authenticate"),
            wrong.header("www-authenticate")
        );
    }
    assert_eq!(wrong.header("www-authenticate"), Some("Bearer"));
    assert!(wrong.body.get("fields").is_none(), "{}", wrong.body);

    // A success after failures starts the count again.
    app.login_ok("alan", PASSWORD).await;
}

async fn an_account_is_locked_after_too_many_failures(app: TestApp) {
    app.register_user("alan").await;

    for _ in 0..ACCOUNT_MAX_FAILURES {
        app.login("alan", "not the password")
            .await
            .expect_error(401, "unauthorized");
    }
    let locked = app.login("alan", "not the password").await;
    locked.expect_error(429, "rate_limited");
    let secs = retry_after(&locked, &app);
    // The clock has not moved since the lock began.
    assert_eq!(secs, app.state.settings.auth.lockout_secs);

    // Locked whatever the password and whichever name is used.
    let right = app.login("alan", PASSWORD).await;
    right.expect_error(429, "rate_limited");
    retry_after(&right, &app);
    app.login("ALAN@example.com", PASSWORD)
        .await
        .expect_error(429, "rate_limited");

    // Other accounts are unaffected.
    app.register_user("grace").await;
    app.login_ok("grace", PASSWORD).await;

    // Just before the advertised time it is still locked; after it, the
    // right password works.
    app.clock
        .advance(TimeDelta::seconds(i64::try_from(secs).unwrap() - 2));
    app.login("alan", PASSWORD)
        .await
        .expect_error(429, "rate_limited");
    app.clock.advance(TimeDelta::seconds(2));
    let tokens = app.login_ok("alan", PASSWORD).await;
    app.me(&tokens.access).await.expect(200);

    // The lock is over: a wrong password is an ordinary failure again.
    app.login("alan", "not the password")
        .await
        .expect_error(401, "unauthorized");
    app.login_ok("alan", PASSWORD).await;
}

async fn an_address_is_locked_across_accounts(app: TestApp) {
    const { assert!(ADDRESS_MAX_FAILURES < 2 * ACCOUNT_MAX_FAILURES) };
    let names = ["one", "two", "three"];
    for name in names {
        app.register_user(name).await;
    }
    // Spread the failures so that no single account reaches its own limit.
    for i in 0..ADDRESS_MAX_FAILURES {
        let name = names[usize::try_from(i).unwrap() % 2];
        app.login(name, "not the password")
            .await
            .expect_error(401, "unauthorized");
    }
    // Now this address is locked out, even for an account with no failures
    // and the right password.
    let locked = app.login("three", PASSWORD).await;
    locked.expect_error(429, "rate_limited");
    retry_after(&locked, &app);
    app.login("nobody", PASSWORD)
        .await
        .expect_error(429, "rate_limited");

    app.clock.advance(lockout(&app) + TimeDelta::seconds(1));
    app.login_ok("three", PASSWORD).await;
    app.login_ok("one", PASSWORD).await;
}
