//! Search through the REST API: a few gigs across categories are created
//! with the API, then found by text (typos forgiven), narrowed by filters,
//! sorted, counted per category and paged with cursors; bad parameters are
//! refused in the error shape; suggestions and similar gigs; and the local
//! index is rebuilt from the database when it is lost.

use std::collections::{BTreeMap, BTreeSet};

use chrono::TimeDelta;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{gig_body, hit_ids, package, TestApp, PASSWORD};

backend_tests! {
    text_search_forgives_typos_and_filters_narrow,
    sorts_category_counts_and_cursor_paging,
    bad_search_parameters_are_refused,
    autocomplete_and_similar_gigs,
    the_index_is_rebuilt_after_a_restart,
}

/// The gigs every scenario searches: five active ones across four
/// categories, created one second apart in this order, and a draft.
struct Seeded {
    /// graphics-design/logo-design, from 25.00, 3 days.
    logo: String,
    /// graphics-design/website-app-design, from 80.00, 5 days.
    landing: String,
    /// programming-tech/web-development, from 150.00, 7 days.
    react: String,
    /// writing-translation/articles-blog-posts, from 12.00, 2 days.
    blog: String,
    /// music-audio/mixing-mastering, from 40.00, 10 days.
    mixing: String,
    /// graphics-design/illustration, never published.
    draft: String,
}

impl Seeded {
    fn active(&self) -> Vec<&str> {
        vec![
            &self.logo,
            &self.landing,
            &self.react,
            &self.blog,
            &self.mixing,
        ]
    }
}

async fn seed(app: &TestApp) -> Seeded {
    let (_, ada) = app.seller("ada").await;
    let (_, kwame) = app.seller("kwame").await;
    let gig = |title: &str, category: &str, subcategory: &str, tags: Value, packages: Value| {
        let mut body = gig_body(title, category, subcategory);
        body["tags"] = tags;
        body["packages"] = packages;
        body
    };
    let mut ids = Vec::new();
    for (token, body) in [
        (
            &ada.access,
            gig(
                "I will design a minimalist logo for your brand",
                "graphics-design",
                "logo-design",
                json!(["logo", "branding"]),
                json!([package("basic", 2500, 3)]),
            ),
        ),
        (
            &ada.access,
            gig(
                "I will design a landing page in Figma",
                "graphics-design",
                "website-app-design",
                json!(["landing page", "figma"]),
                json!([package("basic", 8000, 5), package("premium", 20000, 10)]),
            ),
        ),
        (
            &ada.access,
            gig(
                "Landing pages built with React and Rust",
                "programming-tech",
                "web-development",
                json!(["react", "rust", "landing page"]),
                json!([package("standard", 15000, 7)]),
            ),
        ),
        (
            &kwame.access,
            gig(
                "I will write blog posts that rank on Google",
                "writing-translation",
                "articles-blog-posts",
                json!(["seo", "blog"]),
                json!([package("basic", 1200, 2)]),
            ),
        ),
        (
            &kwame.access,
            gig(
                "I will mix and master your song",
                "music-audio",
                "mixing-mastering",
                json!(["mixing", "mastering"]),
                json!([package("basic", 4000, 10)]),
            ),
        ),
    ] {
        let created = app.create_gig_ok(token, &body).await;
        ids.push(created["id"].as_str().unwrap().to_string());
        app.clock.advance(TimeDelta::seconds(1));
    }
    let mut draft = gig(
        "I will design a poster for your concert",
        "graphics-design",
        "illustration",
        json!(["poster", "landing page"]),
        json!([package("basic", 3000, 1)]),
    );
    draft["publish"] = json!(false);
    let draft = app.create_gig_ok(&kwame.access, &draft).await;
    let [logo, landing, react, blog, mixing] = <[String; 5]>::try_from(ids).unwrap();
    let seeded = Seeded {
        logo,
        landing,
        react,
        blog,
        mixing,
        draft: draft["id"].as_str().unwrap().to_string(),
    };
    app.wait_for_hits(&[], &seeded.active()).await;
    seeded
}

/// The ids of a search's first page as a set.
async fn found(app: &TestApp, params: &[(&str, &str)]) -> BTreeSet<String> {
    hit_ids(&app.search_ok(params).await).into_iter().collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// `categories` of a search page as a map.
fn facets(page: &Value) -> BTreeMap<String, u64> {
    page["categories"]
        .as_array()
        .unwrap_or_else(|| panic!("no categories in {page}"))
        .iter()
        .map(|c| {
            (
                c["category"].as_str().unwrap().to_string(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn counts(items: &[(&str, u64)]) -> BTreeMap<String, u64> {
    items.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Follows `next_cursor` from the first page of `params` with `limit=1`
/// (bounded), and returns every id in the order visited.
async fn page_through(app: &TestApp, params: &[(&str, &str)], total: u64) -> Vec<String> {
    let mut visited = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..=total {
        let mut query: Vec<(&str, &str)> = params.to_vec();
        query.push(("limit", "1"));
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor));
        }
        let page = app.search_ok(&query).await;
        assert_eq!(page["total"].as_u64(), Some(total), "{page}");
        let ids = hit_ids(&page);
        assert!(ids.len() <= 1, "{page}");
        visited.extend(ids);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return visited,
        }
    }
    panic!("still a next page after {total} pages: {visited:?}");
}

async fn text_search_forgives_typos_and_filters_narrow(app: TestApp) {
    let gigs = seed(&app).await;
    let designs = set(&[&gigs.logo, &gigs.landing]);
    assert_eq!(found(&app, &[("q", "design")]).await, designs);
    assert_eq!(found(&app, &[("q", "desgin")]).await, designs);
    assert_eq!(found(&app, &[("q", "DESIGN")]).await, designs);
    assert_eq!(
        found(&app, &[("q", "landing")]).await,
        set(&[&gigs.landing, &gigs.react])
    );
    assert_eq!(found(&app, &[("q", "logo")]).await, set(&[&gigs.logo]));
    assert_eq!(
        found(&app, &[("q", "mastering song")]).await,
        set(&[&gigs.mixing])
    );
    assert!(found(&app, &[("q", "poster")]).await.is_empty());
    assert!(found(&app, &[("q", "quantum")]).await.is_empty());

    let page = app.search_ok(&[("q", "mix")]).await;
    let hit = &page["hits"][0];
    assert_eq!(hit["id"], gigs.mixing.as_str());
    assert_eq!(hit["title"], "I will mix and master your song");
    assert_eq!(hit["seller_username"], "kwame");
    assert_eq!(hit["seller_name"], "Ada Lovelace");
    assert_eq!(hit["seller_level"], "new");
    assert_eq!(hit["category"], "music-audio");
    assert_eq!(hit["subcategory"], "mixing-mastering");
    assert_eq!(hit["price_from"], 4000);
    assert_eq!(hit["delivery_days"], 10);
    assert_eq!(hit["image_url"], Value::Null);

    // Each filter narrows to the gigs that pass it.
    let every = set(&gigs.active());
    assert_eq!(found(&app, &[]).await, every);
    for (params, expected) in [
        (
            vec![("category", "graphics-design")],
            vec![gigs.logo.as_str(), gigs.landing.as_str()],
        ),
        (
            vec![("subcategory", "web-development")],
            vec![gigs.react.as_str()],
        ),
        (
            vec![
                ("category", "programming-tech"),
                ("subcategory", "web-development"),
            ],
            vec![gigs.react.as_str()],
        ),
        (vec![("category", "business")], vec![]),
        (
            vec![("price_min", "3000"), ("price_max", "10000")],
            vec![gigs.landing.as_str(), gigs.mixing.as_str()],
        ),
        (
            vec![("price_min", "8000")],
            vec![gigs.landing.as_str(), gigs.react.as_str()],
        ),
        (
            vec![("price_max", "2500")],
            vec![gigs.logo.as_str(), gigs.blog.as_str()],
        ),
        (
            vec![("max_delivery_days", "3")],
            vec![gigs.logo.as_str(), gigs.blog.as_str()],
        ),
        (
            vec![("max_delivery_days", "7")],
            vec![
                gigs.logo.as_str(),
                gigs.landing.as_str(),
                gigs.react.as_str(),
                gigs.blog.as_str(),
            ],
        ),
        (vec![("seller_level", "new")], gigs.active()),
        (vec![("seller_level", "top_rated")], vec![]),
        (vec![("seller_level", "level_1,level_2")], vec![]),
        (vec![("min_rating", "0")], gigs.active()),
        (
            vec![("q", "design"), ("price_max", "5000")],
            vec![gigs.logo.as_str()],
        ),
        (
            vec![("q", "landing"), ("category", "programming-tech")],
            vec![gigs.react.as_str()],
        ),
    ] {
        let page = app.search_ok(&params).await;
        let ids: BTreeSet<String> = hit_ids(&page).into_iter().collect();
        assert_eq!(ids, set(&expected), "{params:?}");
        assert_eq!(
            page["total"].as_u64(),
            Some(expected.len() as u64),
            "{params:?}"
        );
    }
}

async fn sorts_category_counts_and_cursor_paging(app: TestApp) {
    let gigs = seed(&app).await;
    let by_price = vec![
        gigs.blog.clone(),
        gigs.logo.clone(),
        gigs.mixing.clone(),
        gigs.landing.clone(),
        gigs.react.clone(),
    ];
    let page = app.search_ok(&[("sort", "price_asc")]).await;
    assert_eq!(hit_ids(&page), by_price);
    let prices: Vec<i64> = page["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["price_from"].as_i64().unwrap())
        .collect();
    assert_eq!(prices, [1200, 2500, 4000, 8000, 15000]);
    let mut descending = by_price.clone();
    descending.reverse();
    assert_eq!(
        hit_ids(&app.search_ok(&[("sort", "price_desc")]).await),
        descending
    );
    let newest = vec![
        gigs.mixing.clone(),
        gigs.blog.clone(),
        gigs.react.clone(),
        gigs.landing.clone(),
        gigs.logo.clone(),
    ];
    assert_eq!(hit_ids(&app.search_ok(&[("sort", "newest")]).await), newest);
    // Without words, newest first is the default.
    assert_eq!(hit_ids(&app.search_ok(&[]).await), newest);
    assert_eq!(
        hit_ids(
            &app.search_ok(&[("q", "design"), ("sort", "price_desc")])
                .await
        ),
        [gigs.landing.clone(), gigs.logo.clone()]
    );

    // Counts per category, whatever category is selected; other filters count.
    let everything = app.search_ok(&[]).await;
    assert_eq!(everything["total"], 5);
    let all_counts = counts(&[
        ("graphics-design", 2),
        ("programming-tech", 1),
        ("writing-translation", 1),
        ("music-audio", 1),
    ]);
    assert_eq!(facets(&everything), all_counts);
    let design = app.search_ok(&[("category", "graphics-design")]).await;
    assert_eq!(design["total"], 2);
    assert_eq!(facets(&design), all_counts);
    let landing_counts = counts(&[("graphics-design", 1), ("programming-tech", 1)]);
    assert_eq!(
        facets(&app.search_ok(&[("q", "landing")]).await),
        landing_counts
    );
    let landing_code = app
        .search_ok(&[("q", "landing"), ("category", "programming-tech")])
        .await;
    assert_eq!(hit_ids(&landing_code), [gigs.react.as_str()]);
    assert_eq!(facets(&landing_code), landing_counts);
    assert_eq!(
        facets(&app.search_ok(&[("price_max", "2500")]).await),
        counts(&[("graphics-design", 1), ("writing-translation", 1)])
    );

    // Pages of one visit every match once, in order.
    assert_eq!(
        page_through(&app, &[("sort", "price_asc")], 5).await,
        by_price
    );
    assert_eq!(page_through(&app, &[("sort", "newest")], 5).await, newest);
    let relevant = hit_ids(&app.search_ok(&[("q", "landing")]).await);
    assert_eq!(page_through(&app, &[("q", "landing")], 2).await, relevant);
    let ones = page_through(&app, &[("category", "graphics-design")], 2).await;
    assert_eq!(
        ones.iter().cloned().collect::<BTreeSet<_>>(),
        set(&[&gigs.logo, &gigs.landing])
    );
    assert_eq!(ones.len(), 2);

    // A page of two, then the rest.
    let first = app
        .search_ok(&[("sort", "price_asc"), ("limit", "2")])
        .await;
    assert_eq!(hit_ids(&first), by_price[..2]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let rest = app
        .search_ok(&[("sort", "price_asc"), ("limit", "20"), ("cursor", cursor)])
        .await;
    assert_eq!(hit_ids(&rest), by_price[2..]);
    assert_eq!(rest["next_cursor"], Value::Null);

    // A cursor only continues the sort it was made for, and must be one.
    app.search(&[("sort", "newest"), ("cursor", cursor)])
        .await
        .expect_error(422, "validation_failed");
    for malformed in ["not-a-cursor", "AAAA", "%%%", &"A".repeat(100)] {
        app.search(&[("sort", "price_asc"), ("cursor", malformed)])
            .await
            .expect_error(422, "validation_failed");
    }
}

async fn bad_search_parameters_are_refused(app: TestApp) {
    let gigs = seed(&app).await;
    let long = "word ".repeat(50);
    for (params, field) in [
        (vec![("sort", "cheapest")], Some("sort")),
        (vec![("limit", "0")], None),
        (vec![("limit", "51")], None),
        (vec![("limit", "500")], None),
        (vec![("limit", "-1")], None),
        (vec![("limit", "many")], None),
        (vec![("price_min", "abc")], None),
        (vec![("price_max", "1.5")], None),
        (vec![("price_min", "-1")], Some("price_min")),
        (vec![("price_min", "5000"), ("price_max", "1000")], None),
        (vec![("max_delivery_days", "-3")], None),
        (vec![("min_rating", "9")], Some("min_rating")),
        (vec![("min_rating", "-0.5")], Some("min_rating")),
        (vec![("seller_level", "gold")], Some("seller_level")),
        (vec![("q", long.as_str())], None),
        (vec![("colour", "blue")], None),
    ] {
        let reply = app.search(&params).await;
        reply.expect_error(422, "validation_failed");
        if let Some(field) = field {
            assert_eq!(reply.error_fields(), [field], "{params:?}");
        }
        assert!(
            reply
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{params:?}"
        );
    }
    // Refusals changed nothing.
    assert_eq!(found(&app, &[]).await, set(&gigs.active()));

    for params in [
        vec![("q", "l"), ("limit", "0")],
        vec![("q", "l"), ("limit", "21")],
        vec![("q", "l"), ("limit", "x")],
    ] {
        app.send(
            app.request(reqwest::Method::GET, "/api/v1/search/autocomplete")
                .query(&params),
        )
        .await
        .expect_error(422, "validation_failed");
    }
    app.send(app.request(reqwest::Method::GET, "/api/v1/search/autocomplete"))
        .await
        .expect_error(422, "validation_failed");
    for limit in ["0", "21"] {
        app.get_json(&format!("/api/v1/gigs/{}/similar?limit={limit}", gigs.logo))
            .await
            .expect_error(422, "validation_failed");
    }
}

async fn autocomplete_and_similar_gigs(app: TestApp) {
    let gigs = seed(&app).await;
    let suggest = |q: &'static str| {
        let app = &app;
        async move {
            app.send(
                app.request(reqwest::Method::GET, "/api/v1/search/autocomplete")
                    .query(&[("q", q), ("limit", "20")]),
            )
            .await
            .expect(200)
            .as_array()
            .expect("a list of suggestions")
            .iter()
            .map(|s| {
                (
                    s["text"].as_str().unwrap().to_string(),
                    s["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
        }
    };
    let l = suggest("l").await;
    for (text, _) in &l {
        assert!(text.to_lowercase().starts_with('l'), "{text} in {l:?}");
    }
    let kinds: BTreeSet<&str> = l.iter().map(|(_, kind)| kind.as_str()).collect();
    assert_eq!(kinds, BTreeSet::from(["category", "tag", "title"]), "{l:?}");
    for expected in [
        ("Landing pages built with React and Rust", "title"),
        ("landing page", "tag"),
        ("logo", "tag"),
        ("Logo Design", "category"),
    ] {
        assert!(
            l.iter().any(|(t, k)| (t.as_str(), k.as_str()) == expected),
            "{expected:?} not in {l:?}"
        );
    }
    // Case and a longer prefix.
    assert_eq!(suggest("L").await, l);
    let lo = suggest("lo").await;
    assert!(lo.iter().any(|(t, _)| t == "logo"), "{lo:?}");
    assert!(
        lo.iter().all(|(t, _)| t.to_lowercase().starts_with("lo")),
        "{lo:?}"
    );
    // Titles drop their "I will"; a draft suggests nothing.
    assert!(suggest("design a min")
        .await
        .iter()
        .any(|(t, k)| t == "design a minimalist logo for your brand" && k == "title"));
    assert!(suggest("poster").await.is_empty());
    assert!(suggest("zzz").await.is_empty());

    // Similar gigs: never the gig itself, never a draft.
    let active = set(&gigs.active());
    for gig in gigs.active() {
        let similar = app
            .get_json(&format!("/api/v1/gigs/{gig}/similar"))
            .await
            .expect(200);
        let ids: BTreeSet<String> = hit_ids(&json!({ "hits": similar })).into_iter().collect();
        assert!(!ids.contains(gig), "{gig} is similar to itself: {similar}");
        assert!(ids.is_subset(&active), "{similar}");
    }
    let like_logo = app
        .get_json(&format!("/api/v1/gigs/{}/similar", gigs.logo))
        .await
        .expect(200);
    assert!(
        hit_ids(&json!({ "hits": like_logo })).contains(&gigs.landing),
        "the other design gig is similar to the logo: {like_logo}"
    );
    let limited = app
        .get_json(&format!("/api/v1/gigs/{}/similar?limit=1", gigs.logo))
        .await
        .expect(200);
    assert_eq!(limited.as_array().map(Vec::len), Some(1), "{limited}");
    // Unknown or unpublished gigs have no similar gigs.
    for unknown in [Uuid::now_v7().to_string(), gigs.draft.clone()] {
        assert_eq!(
            app.get_json(&format!("/api/v1/gigs/{unknown}/similar"))
                .await
                .expect(200),
            json!([])
        );
    }
    // A malformed id answers 404 in the error shape, like every other gig route.
    app.get_json("/api/v1/gigs/not-a-gig/similar")
        .await
        .expect_error(404, "not_found");
}

async fn the_index_is_rebuilt_after_a_restart(app: TestApp) {
    let gigs = seed(&app).await;
    // Signed in before the restarts; the session outlives them.
    let ada = app.login_ok("ada", PASSWORD).await;
    let params: &[(&str, &str)] = &[("sort", "price_asc")];
    let before = app.search_ok(params).await;
    let typo = app.search_ok(&[("q", "desgin")]).await;
    let search_dir = app.state.settings.search_dir();
    assert!(search_dir.is_dir());

    // A plain restart keeps the index.
    let app = app.restart(|_| {}).await;
    assert_eq!(app.search_ok(params).await, before);

    // Without its index, the server rebuilds it from the database as it
    // starts: the results are back at once, no waiting.
    let app = app
        .restart(|settings| {
            std::fs::remove_dir_all(settings.search_dir()).expect("delete the search index");
        })
        .await;
    assert!(search_dir.is_dir());
    let after = app.search_ok(params).await;
    assert_eq!(after, before);
    assert_eq!(app.search_ok(&[("q", "desgin")]).await, typo);
    let suggestions = app
        .get_json("/api/v1/search/autocomplete?q=landing")
        .await
        .expect(200);
    assert!(
        suggestions
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["text"] == "landing page")),
        "{suggestions}"
    );
    assert!(!hit_ids(&app.search_ok(&[("q", "poster")]).await).contains(&gigs.draft));

    // Writes after the restart reach the new index.
    app.post_as(&ada.access, &format!("/api/v1/gigs/{}/pause", gigs.logo))
        .await
        .expect(200);
    app.wait_for_hits(&[("q", "design")], &[&gigs.landing])
        .await;
}
