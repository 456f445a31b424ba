//! Seller profiles: only with a verified address, only once, every bad
//! field reported by its path.

use serde_json::{json, Value};

use crate::helpers::{seller_profile, TestApp};

backend_tests! {
    a_seller_profile_needs_a_verified_address,
    a_seller_profile_is_created_once,
    invalid_seller_profiles_list_every_field,
    patching_a_seller_profile,
}

async fn a_seller_profile_needs_a_verified_address(app: TestApp) {
    let (user, tokens) = app.signed_up("alan").await;
    app.become_seller(&tokens.access)
        .await
        .expect_error(403, "forbidden");
    let me = app.me(&tokens.access).await.expect(200);
    assert_eq!(me["roles"], json!(["buyer"]));

    // The same access token works once the address is confirmed.
    app.verify_latest_link(&user.email).await.expect(200);
    app.become_seller(&tokens.access).await.expect(201);

    app.send(
        app.request(reqwest::Method::POST, "/api/v1/me/seller")
            .json(&seller_profile()),
    )
    .await
    .expect_error(401, "unauthorized");
}

async fn a_seller_profile_is_created_once(app: TestApp) {
    let (_, tokens) = app.verified_user("alan").await;
    let created = app.become_seller(&tokens.access).await.expect(201);

    let mut second = seller_profile();
    second["full_name"] = json!("Someone Else");
    let reply = app
        .post_json_as(&tokens.access, "/api/v1/me/seller", &second)
        .await;
    reply.expect_error(409, "conflict");

    let public = app.get_json("/api/v1/users/alan").await.expect(200);
    assert_eq!(public["seller"]["full_name"], created["full_name"]);
}

async fn invalid_seller_profiles_list_every_field(app: TestApp) {
    let (_, tokens) = app.verified_user("alan").await;
    let mut bad = seller_profile();
    bad["full_name"] = json!("   ");
    bad["languages"] = json!([
        { "language": "English", "level": "native" },
        { "language": "French", "level": "pro" },
    ]);
    bad["skills"] = json!(["rust", "Rust"]);
    bad["education"] = json!([{ "school": "MIT", "degree": "BSc", "year": 1066 }]);
    bad["links"] = json!(["javascript:alert(1)"]);
    let reply = app
        .post_json_as(&tokens.access, "/api/v1/me/seller", &bad)
        .await;
    reply.expect_error(422, "validation_failed");
    assert_eq!(
        reply.error_fields(),
        [
            "full_name",
            "languages[1].level",
            "skills[1]",
            "education[0].year",
            "links[0]"
        ],
        "{}",
        reply.body
    );

    let mut no_language = seller_profile();
    no_language["languages"] = json!([]);
    let reply = app
        .post_json_as(&tokens.access, "/api/v1/me/seller", &no_language)
        .await;
    reply.expect_error(422, "validation_failed");
    assert_eq!(reply.error_fields(), ["languages"], "{}", reply.body);

    let mut first_level = seller_profile();
    first_level["languages"][0]["level"] = json!("expert");
    let reply = app
        .post_json_as(&tokens.access, "/api/v1/me/seller", &first_level)
        .await;
    assert_eq!(
        reply.error_fields(),
        ["languages[0].level"],
        "{}",
        reply.body
    );

    // Nothing was created.
    let me = app.me(&tokens.access).await.expect(200);
    assert_eq!(me["roles"], json!(["buyer"]));
    let public = app.get_json("/api/v1/users/alan").await.expect(200);
    assert_eq!(public["seller"], Value::Null);
    app.patch_json_as(
        &tokens.access,
        "/api/v1/me/seller",
        &json!({ "one_liner": "x" }),
    )
    .await
    .expect_error(404, "not_found");
}

async fn patching_a_seller_profile(app: TestApp) {
    let (_, tokens) = app.verified_user("alan").await;
    let created = app.become_seller(&tokens.access).await.expect(201);
    let patch = |body: Value| {
        let app = &app;
        let token = tokens.access.clone();
        async move { app.patch_json_as(&token, "/api/v1/me/seller", &body).await }
    };

    // Lists are replaced whole; other fields stay.
    let updated = patch(json!({
        "languages": [
            { "language": "English", "level": "native" },
            { "language": "French", "level": "fluent" },
        ],
        "skills": [],
    }))
    .await
    .expect(200);
    assert_eq!(updated["languages"][1]["level"], "fluent");
    assert_eq!(updated["skills"], json!([]));
    for field in [
        "full_name",
        "one_liner",
        "description",
        "education",
        "links",
    ] {
        assert_eq!(updated[field], created[field], "{field} kept");
    }

    // An invalid patch changes nothing.
    let reply = patch(json!({ "full_name": "Ada", "links": ["ftp://example.com"] })).await;
    reply.expect_error(422, "validation_failed");
    assert_eq!(reply.error_fields(), ["links[0]"], "{}", reply.body);
    let reply = patch(json!({ "unknown": true })).await;
    reply.expect_error(422, "validation_failed");
    let public = app.get_json("/api/v1/users/alan").await.expect(200);
    assert_eq!(public["seller"]["full_name"], created["full_name"]);
    assert_eq!(public["seller"]["languages"], updated["languages"]);
}
