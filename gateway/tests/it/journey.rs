//! The whole way in: register, confirm the address from the e-mailed link,
//! sign in by either name, become a seller and be found by buyers.

use serde_json::json;

use crate::helpers::{has_key, seller_profile, TestApp, PASSWORD};

backend_tests! {
    register_verify_sign_in_and_sell,
}

async fn register_verify_sign_in_and_sell(app: TestApp) {
    // Register: names are stored lowercased; every account starts as a buyer.
    let me = app
        .register("Ada_L", "Ada.Lovelace@Example.COM", PASSWORD)
        .await
        .expect(201);
    assert_eq!(me["username"], "ada_l");
    assert_eq!(me["email"], "ada.lovelace@example.com");
    assert_eq!(me["roles"], json!(["buyer"]));
    assert_eq!(me["email_verified"], false);
    assert!(me["id"].as_str().is_some_and(|id| !id.is_empty()), "{me}");
    assert!(!has_key(&me, "password") && !has_key(&me, "password_hash"));

    // The verification mail is in the outbox, with a link to the web page.
    let mail = app
        .wait_for_mail("verify_email", "ada.lovelace@example.com")
        .await;
    assert!(!mail.subject.is_empty());
    assert!(
        mail.text.contains("ada_l"),
        "greets the user: {}",
        mail.text
    );
    let prefix = format!("{}/verify-email?token=", app.address);
    let link = mail.link(&prefix).expect("a verification link");
    let token = link[prefix.len()..].to_string();

    // Opening the link shows a page and changes nothing by itself.
    let page = app.send(app.client.get(&link)).await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|v| v.starts_with("text/html")));
    let tokens = app.login_ok("ada_l", PASSWORD).await;
    assert_eq!(
        app.me(&tokens.access).await.expect(200)["email_verified"],
        false
    );

    // Confirming works once.
    let verified = app
        .post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
        .await
        .expect(200);
    assert_eq!(verified, json!({ "email_verified": true }));
    app.post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
        .await
        .expect_error(400, "invalid_token");

    // Sign in by username and by e-mail, in any case.
    for login in [
        "ada_l",
        "ADA_L",
        "ada.lovelace@example.com",
        "ADA.LOVELACE@EXAMPLE.COM",
    ] {
        let body = app.login(login, PASSWORD).await.expect(200);
        assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(body["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()));
        assert_eq!(body["token_type"], "Bearer");
        assert!(body["expires_in"].as_i64().is_some_and(|s| s > 0));
        assert_eq!(body["user"]["username"], "ada_l");
    }
    let tokens = app.login_ok("Ada.Lovelace@example.com", PASSWORD).await;
    let me = app.me(&tokens.access).await.expect(200);
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["roles"], json!(["buyer"]));

    // Become a seller.
    let profile = app.become_seller(&tokens.access).await.expect(201);
    assert_eq!(profile["full_name"], "Ada Lovelace");
    assert_eq!(profile["languages"], seller_profile()["languages"]);
    let me = app.me(&tokens.access).await.expect(200);
    assert_eq!(me["roles"], json!(["buyer", "seller"]));

    // Anyone can see the public profile, by any case of the name, never the address.
    let public = app.get_json("/api/v1/users/ADA_L").await.expect(200);
    assert_eq!(public["username"], "ada_l");
    assert_eq!(public["is_seller"], true);
    assert_eq!(public["seller"]["full_name"], "Ada Lovelace");
    assert_eq!(public["seller"]["skills"], json!(["rust", "mathematics"]));
    assert!(!has_key(&public, "email"), "{public}");
    assert!(
        !public.to_string().contains("lovelace@example.com"),
        "{public}"
    );

    // A partial update keeps every other field.
    let updated = app
        .patch_json_as(
            &tokens.access,
            "/api/v1/me/seller",
            &json!({ "one_liner": "Poetical science" }),
        )
        .await
        .expect(200);
    assert_eq!(updated["one_liner"], "Poetical science");
    for field in [
        "full_name",
        "description",
        "languages",
        "skills",
        "education",
        "links",
    ] {
        assert_eq!(updated[field], profile[field], "{field} kept");
    }
    assert_eq!(updated["seller_since"], profile["seller_since"]);
    let public = app.get_json("/api/v1/users/ada_l").await.expect(200);
    assert_eq!(public["seller"]["one_liner"], "Poetical science");
    assert_eq!(public["seller"]["full_name"], "Ada Lovelace");
}
