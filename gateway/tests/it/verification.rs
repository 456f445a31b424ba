//! Account e-mails on request: a resent verification link replaces the
//! older one, and one account triggers only so many mails per hour.

use chrono::TimeDelta;
use serde_json::json;

use crate::helpers::TestApp;

backend_tests! {
    a_resent_verification_link_replaces_the_older,
    account_mail_is_limited_per_hour,
}

async fn a_resent_verification_link_replaces_the_older(app: TestApp) {
    let user = app.register_user("alan").await;
    let older = app.verification_token(&user.email).await;

    let unknown = app
        .post_json(
            "/api/v1/auth/resend-verification",
            &json!({ "email": "nobody@example.com" }),
        )
        .await;
    let known = app
        .post_json(
            "/api/v1/auth/resend-verification",
            &json!({ "email": "ALAN@example.com" }),
        )
        .await;
    assert_eq!(known.status, 202, "{}", known.body);
    assert_eq!(unknown.status, 202);
    assert_eq!(unknown.body, known.body);
    let newer = app.verification_token(&user.email).await;
    assert_ne!(older, newer);
    assert!(app.mails("verify_email", "nobody@example.com").is_empty());

    let verify = |token: String| {
        let app = &app;
        async move {
            app.post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
                .await
        }
    };
    verify(older).await.expect_error(400, "invalid_token");
    verify(newer).await.expect(200);

    // A verified account gets no new link. The reset mail asked for after it
    // shows the resend request has been handled.
    app.post_json(
        "/api/v1/auth/resend-verification",
        &json!({ "email": user.email }),
    )
    .await
    .expect(202);
    app.forgot_password(&user.email).await.expect(202);
    let reset = app.reset_token(&user.email).await;
    assert_eq!(app.mails("verify_email", &user.email).len(), 2);

    // A reset token does not verify an address.
    verify(reset).await.expect_error(400, "invalid_token");
}

async fn account_mail_is_limited_per_hour(app: TestApp) {
    let limit = app.state.settings.auth.mail_per_account_per_hour;
    let alan = app.register_user("alan").await;
    let grace = app.register_user("grace").await;
    for _ in 0..limit {
        app.forgot_password(&alan.email).await.expect(202);
        app.wait_for_mail("reset_password", &alan.email).await;
    }

    // Over the limit the answer is the same, but no mail goes out. Grace's
    // mail, asked for afterwards, shows the request has been handled.
    app.forgot_password(&alan.email).await.expect(202);
    app.forgot_password(&grace.email).await.expect(202);
    app.wait_for_mail("reset_password", &grace.email).await;
    let sent = app.mails("reset_password", &alan.email).len();
    assert_eq!(sent, usize::try_from(limit).unwrap());

    // An hour later the account may ask again.
    app.clock.advance(TimeDelta::minutes(61));
    app.forgot_password(&alan.email).await.expect(202);
    let token = app.reset_token(&alan.email).await;
    let reply = app.reset_password(&token, "a brand new passphrase").await;
    assert_eq!(reply.status, 204, "{}", reply.body);
}
