//! Gigs: the category taxonomy, who may create a gig and who sees it,
//! refused input that changes nothing, and a gig's life (edit, pause,
//! resume, delete) as readers and search see it.

use std::collections::BTreeSet;

use chrono::TimeDelta;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{gig_body, package, TestApp};

backend_tests! {
    categories_list_the_seeded_taxonomy,
    only_sellers_create_gigs_and_only_active_ones_are_public,
    bad_input_changes_nothing,
    a_gig_is_edited_paused_resumed_and_deleted,
}

fn id_of(gig: &Value) -> String {
    gig["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {gig}"))
        .to_string()
}

fn ids(gigs: &Value) -> BTreeSet<String> {
    gigs.as_array()
        .unwrap_or_else(|| panic!("not a list: {gigs}"))
        .iter()
        .map(id_of)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn categories_list_the_seeded_taxonomy(app: TestApp) {
    let body = app.get_json("/api/v1/categories").await.expect(200);
    let categories = body.as_array().expect("a list of categories");
    let slugs: Vec<&str> = categories
        .iter()
        .map(|c| c["slug"].as_str().unwrap())
        .collect();
    assert_eq!(
        slugs,
        [
            "graphics-design",
            "programming-tech",
            "digital-marketing",
            "writing-translation",
            "video-animation",
            "music-audio",
            "business",
            "data-ai",
        ]
    );
    let mut subcategories = 0;
    for category in categories {
        assert!(
            category["name"].as_str().is_some_and(|n| !n.is_empty()),
            "{category}"
        );
        let subs = category["subcategories"]
            .as_array()
            .unwrap_or_else(|| panic!("no subcategories in {category}"));
        assert!(!subs.is_empty(), "{category}");
        let unique: BTreeSet<&str> = subs.iter().map(|s| s["slug"].as_str().unwrap()).collect();
        assert_eq!(unique.len(), subs.len(), "{category}");
        for sub in subs {
            assert!(sub["name"].as_str().is_some_and(|n| !n.is_empty()), "{sub}");
        }
        subcategories += subs.len();
    }
    assert_eq!(subcategories, 44);

    let programming = &categories[1];
    assert_eq!(programming["name"], "Programming & Tech");
    assert_eq!(
        programming["subcategories"],
        json!([
            { "slug": "web-development", "name": "Web Development" },
            { "slug": "mobile-apps", "name": "Mobile App Development" },
            { "slug": "ecommerce-development", "name": "E-Commerce Development" },
            { "slug": "desktop-applications", "name": "Desktop Applications" },
            { "slug": "devops-cloud", "name": "DevOps & Cloud" },
            { "slug": "cybersecurity", "name": "Cybersecurity" },
        ])
    );

    // The same for a signed-in caller.
    let (_, tokens) = app.verified_user("bob").await;
    assert_eq!(
        app.get_json_as(&tokens.access, "/api/v1/categories")
            .await
            .expect(200),
        body
    );
}

async fn only_sellers_create_gigs_and_only_active_ones_are_public(app: TestApp) {
    let body = gig_body(
        "I will build a fast website for your business",
        "programming-tech",
        "web-development",
    );
    app.post_json("/api/v1/gigs", &body)
        .await
        .expect_error(401, "unauthorized");
    let (_, buyer) = app.verified_user("bob").await;
    app.create_gig(&buyer.access, &body)
        .await
        .expect_error(403, "forbidden");

    let (seller, tokens) = app.seller("ada").await;
    let (_, other_seller) = app.seller("grace").await;
    let active = app.create_gig_ok(&tokens.access, &body).await;
    assert_eq!(active["status"], "active");
    assert_eq!(active["version"], 1);
    assert_eq!(active["seller_id"], seller.id.to_string());
    for field in [
        "title",
        "description",
        "category",
        "subcategory",
        "tags",
        "faq",
    ] {
        assert_eq!(active[field], body[field], "{field}");
    }
    assert_eq!(active["packages"], body["packages"]);
    assert_eq!(active["media"], json!([]));
    assert_eq!(active["created_at"], active["updated_at"]);
    // Nobody but the seller of a buyer account was refused: it made nothing.
    assert_eq!(
        app.get_json("/api/v1/sellers/bob/gigs").await.expect(200),
        json!([])
    );

    let mut draft_body = gig_body(
        "I will write the documentation for your API",
        "writing-translation",
        "technical-writing",
    );
    draft_body["publish"] = json!(false);
    let draft = app.create_gig_ok(&tokens.access, &draft_body).await;
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["version"], 1);

    let to_pause = app
        .create_gig_ok(
            &tokens.access,
            &gig_body(
                "I will set up continuous delivery for your app",
                "programming-tech",
                "devops-cloud",
            ),
        )
        .await;
    let paused = app
        .post_as(
            &tokens.access,
            &format!("/api/v1/gigs/{}/pause", id_of(&to_pause)),
        )
        .await
        .expect(200);
    assert_eq!(paused["status"], "paused");
    assert_eq!(paused["version"], 2);

    // Active: everyone sees the same gig.
    let active_id = id_of(&active);
    assert_eq!(app.gig(None, &active_id).await.expect(200), active);
    assert_eq!(
        app.gig(Some(&buyer.access), &active_id).await.expect(200),
        active
    );
    assert_eq!(
        app.gig(Some(&tokens.access), &active_id).await.expect(200),
        active
    );

    // Drafts and paused gigs: their seller only.
    for hidden in [&draft, &paused] {
        let id = id_of(hidden);
        assert_eq!(
            app.gig(Some(&tokens.access), &id).await.expect(200),
            *hidden
        );
        app.gig(None, &id).await.expect_error(404, "not_found");
        app.gig(Some(&buyer.access), &id)
            .await
            .expect_error(404, "not_found");
        app.gig(Some(&other_seller.access), &id)
            .await
            .expect_error(404, "not_found");
    }

    // The seller's list: active ones for others, all for the seller.
    let public = set(&[&active_id]);
    assert_eq!(
        ids(&app.get_json("/api/v1/sellers/ada/gigs").await.expect(200)),
        public
    );
    assert_eq!(
        ids(&app
            .get_json_as(&buyer.access, "/api/v1/sellers/ada/gigs")
            .await
            .expect(200)),
        public
    );
    let own = app
        .get_json_as(&tokens.access, "/api/v1/sellers/ada/gigs")
        .await
        .expect(200);
    assert_eq!(
        ids(&own),
        set(&[&active_id, &id_of(&draft), &id_of(&paused)])
    );
    app.get_json("/api/v1/sellers/nobody/gigs")
        .await
        .expect_error(404, "not_found");
    app.get_json("/api/v1/sellers/not%20a%20name/gigs")
        .await
        .expect_error(404, "not_found");

    // Publishing the draft makes it public.
    let published = app
        .post_as(
            &tokens.access,
            &format!("/api/v1/gigs/{}/resume", id_of(&draft)),
        )
        .await
        .expect(200);
    assert_eq!(published["status"], "active");
    assert_eq!(published["version"], 2);
    assert_eq!(app.gig(None, &id_of(&draft)).await.expect(200), published);
    assert_eq!(
        ids(&app.get_json("/api/v1/sellers/ada/gigs").await.expect(200)),
        set(&[&active_id, &id_of(&draft)])
    );
}

/// Every invalid variant of a valid gig body, and the fields it must name.
fn invalid_bodies() -> Vec<(&'static str, Value, Vec<&'static str>)> {
    let valid = gig_body(
        "I will design a clean logo for your company",
        "graphics-design",
        "logo-design",
    );
    let with = |changes: Value| {
        let mut body = valid.clone();
        for (key, value) in changes.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    vec![
        (
            "an unknown category",
            with(json!({ "category": "astrology", "subcategory": "tarot" })),
            vec!["category"],
        ),
        (
            "a subcategory of another category",
            with(json!({ "category": "programming-tech", "subcategory": "logo-design" })),
            vec!["subcategory"],
        ),
        (
            "a negative price",
            with(json!({ "packages": [package("basic", -500, 3)] })),
            vec!["packages[0].price"],
        ),
        (
            "a price under 5.00",
            with(json!({ "packages": [package("basic", 499, 3)] })),
            vec!["packages[0].price"],
        ),
        (
            "a price over 50,000.00",
            with(json!({ "packages": [package("basic", 5_000_001, 3)] })),
            vec!["packages[0].price"],
        ),
        (
            "a huge price",
            with(json!({ "packages": [package("basic", 9_007_199_254_740_991_i64, 3)] })),
            vec!["packages[0].price"],
        ),
        (
            "six tags",
            with(json!({ "tags": ["one", "two", "three", "four", "five", "six"] })),
            vec!["tags"],
        ),
        (
            "no packages",
            with(json!({ "packages": [] })),
            vec!["packages"],
        ),
        (
            "four packages",
            with(json!({ "packages": [
                package("basic", 1000, 3),
                package("standard", 2000, 3),
                package("premium", 3000, 3),
                package("basic", 4000, 3),
            ] })),
            vec!["packages", "packages[3].tier"],
        ),
        (
            "a tier twice",
            with(json!({ "packages": [package("basic", 1000, 3), package("basic", 2000, 5)] })),
            vec!["packages[1].tier"],
        ),
        (
            "an unknown tier",
            with(json!({ "packages": [package("platinum", 1000, 3)] })),
            vec!["packages[0].tier"],
        ),
        (
            "a price in EUR",
            with(json!({ "packages": [{
                "tier": "basic", "name": "Basic", "description": "The logo.",
                "price": 2500, "currency": "EUR", "delivery_days": 3, "revisions": 1,
            }] })),
            vec!["packages[0].currency"],
        ),
        (
            "no delivery time",
            with(json!({ "packages": [package("basic", 1000, 0)] })),
            vec!["packages[0].delivery_days"],
        ),
        (
            "a title that is too short",
            with(json!({ "title": "Logo design" })),
            vec!["title"],
        ),
        (
            "a description that is too short",
            with(json!({ "description": "A logo." })),
            vec!["description"],
        ),
    ]
}

fn sorted(fields: Vec<String>) -> Vec<String> {
    let mut fields = fields;
    fields.sort();
    fields
}

async fn bad_input_changes_nothing(app: TestApp) {
    let (_, tokens) = app.seller("ada").await;
    let (_, other) = app.seller("grace").await;
    let (_, buyer) = app.verified_user("bob").await;
    let gig = app
        .create_gig_ok(
            &tokens.access,
            &gig_body(
                "I will design a clean logo for your company",
                "graphics-design",
                "logo-design",
            ),
        )
        .await;
    let id = id_of(&gig);
    let mut draft_body = gig_body(
        "I will design a poster for your concert",
        "graphics-design",
        "illustration",
    );
    draft_body["publish"] = json!(false);
    let draft = app.create_gig_ok(&tokens.access, &draft_body).await;
    let draft_id = id_of(&draft);
    let path = format!("/api/v1/gigs/{id}");

    // What must hold after every refused request.
    let unchanged = || async {
        assert_eq!(app.gig(Some(&tokens.access), &id).await.expect(200), gig);
        assert_eq!(
            app.gig(Some(&tokens.access), &draft_id).await.expect(200),
            draft
        );
        assert_eq!(
            ids(&app
                .get_json_as(&tokens.access, "/api/v1/sellers/ada/gigs")
                .await
                .expect(200)),
            set(&[&id, &draft_id])
        );
    };

    for (what, body, fields) in invalid_bodies() {
        let mut expected: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        expected.sort();
        let created = app.create_gig(&tokens.access, &body).await;
        created.expect_error(422, "validation_failed");
        assert_eq!(
            sorted(created.error_fields()),
            expected,
            "create with {what}"
        );
        let patched = app.patch_json_as(&tokens.access, &path, &body).await;
        patched.expect_error(422, "validation_failed");
        assert_eq!(sorted(patched.error_fields()), expected, "edit with {what}");
        unchanged().await;
    }
    // A field of the wrong type, or one the API does not know.
    let mut wrong_type = gig["packages"].clone();
    wrong_type[0]["price"] = json!("25.00");
    app.patch_json_as(&tokens.access, &path, &json!({ "packages": wrong_type }))
        .await
        .expect_error(422, "validation_failed");
    app.patch_json_as(&tokens.access, &path, &json!({ "status": "removed" }))
        .await
        .expect_error(422, "validation_failed");
    unchanged().await;

    // Someone else's gig.
    let title = json!({ "title": "I will take over somebody else's gig" });
    for token in [&other.access, &buyer.access] {
        app.patch_json_as(token, &path, &title)
            .await
            .expect_error(403, "forbidden");
        app.post_as(token, &format!("{path}/pause"))
            .await
            .expect_error(403, "forbidden");
        app.delete_as(token, &path)
            .await
            .expect_error(403, "forbidden");
        // A draft is hidden from them: they cannot even learn it exists.
        app.post_as(token, &format!("/api/v1/gigs/{draft_id}/resume"))
            .await
            .expect_error(404, "not_found");
    }
    app.send(app.request(reqwest::Method::PATCH, &path).json(&title))
        .await
        .expect_error(401, "unauthorized");
    app.send(app.request(reqwest::Method::DELETE, &path))
        .await
        .expect_error(401, "unauthorized");
    unchanged().await;

    // Unknown and malformed ids.
    let unknown = Uuid::now_v7().to_string();
    for missing in [unknown.as_str(), "not-a-gig", "12345", "%20"] {
        let path = format!("/api/v1/gigs/{missing}");
        app.gig(None, missing).await.expect_error(404, "not_found");
        app.gig(Some(&tokens.access), missing)
            .await
            .expect_error(404, "not_found");
        app.patch_json_as(&tokens.access, &path, &title)
            .await
            .expect_error(404, "not_found");
        app.post_as(&tokens.access, &format!("{path}/pause"))
            .await
            .expect_error(404, "not_found");
        app.post_as(&tokens.access, &format!("{path}/resume"))
            .await
            .expect_error(404, "not_found");
        app.delete_as(&tokens.access, &path)
            .await
            .expect_error(404, "not_found");
    }
    unchanged().await;

    // Transitions that do not exist.
    app.post_as(&tokens.access, &format!("/api/v1/gigs/{draft_id}/pause"))
        .await
        .expect_error(409, "conflict");
    app.post_as(&tokens.access, &format!("{path}/resume"))
        .await
        .expect_error(409, "conflict");
    unchanged().await;
}

async fn a_gig_is_edited_paused_resumed_and_deleted(app: TestApp) {
    let (_, tokens) = app.seller("ada").await;
    let mut body = gig_body(
        "I will draw a watercolour mascot for your team",
        "graphics-design",
        "illustration",
    );
    body["tags"] = json!(["mascot", "watercolour"]);
    body["faq"] = json!([{ "question": "Do you draw animals?", "answer": "Yes, any animal." }]);
    body["packages"] = json!([package("basic", 3000, 5), package("premium", 12000, 10)]);
    let created = app.create_gig_ok(&tokens.access, &body).await;
    let id = id_of(&created);
    let path = format!("/api/v1/gigs/{id}");
    app.wait_for_hits(&[("q", "watercolour")], &[&id]).await;

    // A partial edit changes the title only, and the version.
    app.clock.advance(TimeDelta::seconds(5));
    let new_title = "I will paint a watercolour mascot for your club";
    let patched = app
        .patch_json_as(&tokens.access, &path, &json!({ "title": new_title }))
        .await
        .expect(200);
    assert_eq!(patched["title"], new_title);
    assert_eq!(patched["version"], 2);
    for field in [
        "id",
        "seller_id",
        "description",
        "category",
        "subcategory",
        "tags",
        "faq",
        "packages",
        "media",
        "status",
        "created_at",
    ] {
        assert_eq!(patched[field], created[field], "{field}");
    }
    assert_ne!(patched["updated_at"], created["updated_at"]);
    assert_eq!(app.gig(None, &id).await.expect(200), patched);
    app.wait_for_hits(&[("q", "club")], &[&id]).await;
    app.wait_for_hits(&[("q", "team")], &[]).await;

    // Lists are replaced whole.
    let retagged = app
        .patch_json_as(&tokens.access, &path, &json!({ "tags": ["cartoon"] }))
        .await
        .expect(200);
    assert_eq!(retagged["tags"], json!(["cartoon"]));
    assert_eq!(retagged["title"], new_title);
    assert_eq!(retagged["version"], 3);

    // Paused: out of search and out of sight, until resumed.
    let paused = app
        .post_as(&tokens.access, &format!("{path}/pause"))
        .await
        .expect(200);
    assert_eq!(paused["status"], "paused");
    assert_eq!(paused["version"], 4);
    app.wait_for_hits(&[("q", "watercolour")], &[]).await;
    app.gig(None, &id).await.expect_error(404, "not_found");
    app.post_as(&tokens.access, &format!("{path}/pause"))
        .await
        .expect_error(409, "conflict");
    assert_eq!(app.gig(Some(&tokens.access), &id).await.expect(200), paused);

    let resumed = app
        .post_as(&tokens.access, &format!("{path}/resume"))
        .await
        .expect(200);
    assert_eq!(resumed["status"], "active");
    assert_eq!(resumed["version"], 5);
    app.wait_for_hits(&[("q", "watercolour")], &[&id]).await;
    assert_eq!(app.gig(None, &id).await.expect(200), resumed);

    // Deleted: gone for everyone, the seller included, and from search.
    let deleted = app.delete_as(&tokens.access, &path).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(deleted.body, Value::Null);
    app.gig(None, &id).await.expect_error(404, "not_found");
    app.gig(Some(&tokens.access), &id)
        .await
        .expect_error(404, "not_found");
    app.wait_for_hits(&[("q", "watercolour")], &[]).await;
    assert_eq!(
        app.get_json_as(&tokens.access, "/api/v1/sellers/ada/gigs")
            .await
            .expect(200),
        json!([])
    );
    app.delete_as(&tokens.access, &path)
        .await
        .expect_error(404, "not_found");
    app.patch_json_as(&tokens.access, &path, &json!({ "title": new_title }))
        .await
        .expect_error(404, "not_found");
    app.post_as(&tokens.access, &format!("{path}/resume"))
        .await
        .expect_error(404, "not_found");
}
