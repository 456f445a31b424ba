//! The Elasticsearch backend: the scenario suite against the double, and
//! the shape of what it sends.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use search::{SearchBackend, SearchError, SearchQuery, SellerLevel, Sort};
use serde_json::{json, Value};

use crate::es_double::{EsDouble, Recorded};
use crate::fixtures::{gigs, id};
use crate::scenarios::Backend;

async fn elasticsearch() -> Backend {
    let double = EsDouble::start().await;
    Arc::new(double.backend("gigs").await)
}

mod scenarios_on_elasticsearch {
    crate::scenario_tests!(super::elasticsearch);
}

fn only(requests: &[Recorded], method: Method, suffix: &str) -> Vec<Recorded> {
    requests
        .iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix))
        .cloned()
        .collect()
}

#[tokio::test]
async fn ensure_index_creates_the_mapping_once() {
    let double = EsDouble::start().await;
    let backend = double.backend_with_timeout("gigs-v1", Duration::from_secs(5));
    backend.ensure_index().await.unwrap();
    backend.ensure_index().await.unwrap();
    let requests = double.requests();
    let heads = only(&requests, Method::HEAD, "/gigs-v1");
    assert_eq!(heads.len(), 2);
    let puts = only(&requests, Method::PUT, "/gigs-v1");
    assert_eq!(puts.len(), 1, "created once");
    let definition = puts[0].json();
    let properties = &definition["mappings"]["properties"];
    assert_eq!(definition["mappings"]["dynamic"], "strict");
    for keyword in [
        "gig_id",
        "category",
        "subcategory",
        "seller_level",
        "seller_id",
    ] {
        assert_eq!(properties[keyword]["type"], "keyword", "{keyword}");
    }
    for text in [
        "title",
        "description",
        "tags",
        "category_name",
        "subcategory_name",
        "seller_name",
    ] {
        assert_eq!(properties[text]["type"], "text", "{text}");
        assert_eq!(properties[text]["analyzer"], "gig_text", "{text}");
    }
    for (field, kind) in [
        ("price_min", "long"),
        ("delivery_days_min", "integer"),
        ("rating_avg", "float"),
        ("rating_count", "integer"),
        ("created_at", "date"),
        ("created_us", "long"),
    ] {
        assert_eq!(properties[field]["type"], kind, "{field}");
    }
    let filters = &definition["settings"]["analysis"]["analyzer"]["gig_text"]["filter"];
    assert_eq!(
        *filters,
        json!(["gig_long", "lowercase", "asciifolding", "gig_stop"])
    );
}

#[tokio::test]
async fn writes_are_ndjson_bulk_requests_that_wait_for_refresh() {
    let double = EsDouble::start().await;
    let backend = double.backend("gigs").await;
    double.clear_requests();
    let docs = gigs();
    backend.upsert(&docs[..3]).await.unwrap();
    backend.delete(&[id(2), id(77)]).await.unwrap();
    backend.upsert(&[]).await.unwrap();
    backend.delete(&[]).await.unwrap();

    let requests = double.requests();
    assert_eq!(requests.len(), 2, "empty writes send nothing");
    for request in &requests {
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.path, "/gigs/_bulk");
        assert_eq!(
            request.params.get("refresh").map(String::as_str),
            Some("wait_for")
        );
        assert!(request.body.ends_with('\n'));
        let content_type = request.content_type.as_deref().unwrap_or_default();
        assert!(content_type.contains("json"), "{content_type}");
        for line in request.body.lines() {
            serde_json::from_str::<Value>(line).expect("every line is one json document");
        }
    }
    let lines: Vec<Value> = requests[0]
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    for (pair, doc) in lines.chunks(2).zip(&docs[..3]) {
        assert_eq!(
            pair[0],
            json!({ "index": { "_id": doc.gig_id.to_string() } })
        );
        assert_eq!(pair[1]["gig_id"], doc.gig_id.to_string());
        assert_eq!(pair[1]["title"], doc.title);
        assert_eq!(pair[1]["seller_level"], doc.seller_level.as_str());
        assert_eq!(pair[1]["created_us"], doc.created_at.timestamp_micros());
    }
    let deletes: Vec<Value> = requests[1]
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        deletes,
        [
            json!({ "delete": { "_id": id(2).to_string() } }),
            json!({ "delete": { "_id": id(77).to_string() } })
        ]
    );
    let mut visible = double.visible_ids("gigs");
    visible.sort();
    assert_eq!(visible, [id(1).to_string(), id(3).to_string()]);
}

#[tokio::test]
async fn searches_send_each_filter_and_sort_as_dsl() {
    let double = EsDouble::start().await;
    let backend = double.backend("gigs").await;
    backend.upsert(&gigs()).await.unwrap();
    double.clear_requests();

    let query = SearchQuery {
        text: Some("python web".into()),
        category: Some("programming-tech".into()),
        subcategory: Some("web-development".into()),
        price_min: Some(1000),
        price_max: Some(30000),
        max_delivery_days: Some(10),
        min_rating: Some(4.5),
        seller_levels: vec![SellerLevel::Level1, SellerLevel::Level2],
        sort: Sort::Rating,
        limit: 1,
        ..SearchQuery::default()
    };
    let first = backend.search(&query).await.unwrap();
    let body = double.requests()[0].json();
    assert_eq!(double.requests()[0].path, "/gigs/_search");
    assert_eq!(body["size"], 2);
    assert_eq!(body["track_total_hits"], true);
    let filters = body["query"]["bool"]["filter"].as_array().unwrap();
    assert!(filters.contains(&json!({ "range": { "price_min": { "gte": 1000, "lte": 30000 } } })));
    assert!(filters.contains(&json!({ "range": { "delivery_days_min": { "lte": 10 } } })));
    assert!(filters.contains(&json!({ "range": { "rating_avg": { "gte": 4.5 } } })));
    assert!(filters.contains(&json!({ "terms": { "seller_level": ["level_1", "level_2"] } })));
    let post = &body["post_filter"]["bool"]["filter"];
    assert_eq!(
        *post,
        json!([{ "term": { "category": "programming-tech" } }, { "term": { "subcategory": "web-development" } }])
    );
    assert_eq!(body["aggs"]["categories"]["terms"]["field"], "category");
    assert_eq!(
        body["sort"],
        json!([{ "rating_avg": "desc" }, { "rating_count": "desc" }, { "gig_id": "asc" }])
    );
    let must = body["query"]["bool"]["must"].as_array().unwrap();
    assert_eq!(must.len(), 2, "one clause per term");
    // "python": exact or with typos; "web", the last and short term: exact or as a prefix.
    let python = must[0]["bool"]["should"].as_array().unwrap();
    assert!(python
        .iter()
        .any(|c| c["multi_match"]["fuzziness"] == "AUTO:5,9"));
    assert!(python
        .iter()
        .all(|c| c["multi_match"]["type"] != "phrase_prefix"));
    let web = must[1]["bool"]["should"].as_array().unwrap();
    assert!(web
        .iter()
        .any(|c| c["multi_match"]["type"] == "phrase_prefix"));
    assert!(web
        .iter()
        .all(|c| c["multi_match"].get("fuzziness").is_none()));
    for clause in python.iter().chain(web) {
        assert_eq!(clause["multi_match"]["fields"][0], "title^3");
        assert_eq!(
            clause["multi_match"]["query"].as_str().map(str::len),
            Some(if clause["multi_match"]["query"] == "web" {
                3
            } else {
                6
            })
        );
    }
    assert!(body.get("search_after").is_none());

    // The scraper (rated 5.0) and the django site (4.7) pass the filters.
    assert_eq!(first.total, 2);
    assert_eq!(first.hits[0].gig_id, id(4));
    double.clear_requests();
    let cursor = first.next_cursor.clone();
    let second = backend
        .search(&SearchQuery {
            cursor: cursor.clone(),
            ..query.clone()
        })
        .await
        .unwrap();
    let body = double.requests()[0].json();
    let after = body["search_after"].as_array().unwrap();
    assert_eq!(after.len(), 3, "rating, review count, gig id");
    assert_eq!(after[2], json!(first.hits[0].gig_id.to_string()));
    assert_eq!(after[0], json!(first.hits[0].rating_avg));
    assert_eq!(second.hits[0].gig_id, id(5));
    assert_eq!(second.next_cursor, None);

    // Without text there is nothing to score and the default order is newest.
    double.clear_requests();
    backend.search(&SearchQuery::default()).await.unwrap();
    let body = double.requests()[0].json();
    assert!(body["query"]["bool"].get("must").is_none());
    assert_eq!(body["sort"][0], json!({ "created_us": "desc" }));

    // Similar gigs use more_like_this on the stored document and exclude it.
    double.clear_requests();
    backend.similar(id(4), 5).await.unwrap();
    let body = double.requests()[0].json();
    let mlt = &body["query"]["bool"]["must"][0]["more_like_this"];
    assert_eq!(
        mlt["like"],
        json!([{ "_index": "gigs", "_id": id(4).to_string() }])
    );
    assert_eq!(
        mlt["fields"],
        json!(["title", "tags", "category_name", "subcategory_name"])
    );
    assert_eq!(
        body["query"]["bool"]["must_not"],
        json!([{ "ids": { "values": [id(4).to_string()] } }])
    );
    assert_eq!(body["size"], 5);
}

#[tokio::test]
async fn elasticsearch_errors_become_backend_errors() {
    let double = EsDouble::start().await;
    // No ensure_index: the index does not exist.
    let backend = double.backend_with_timeout("missing", Duration::from_secs(5));
    match backend.search(&SearchQuery::default()).await {
        Err(SearchError::Remote {
            status: 404,
            reason,
        }) => assert!(reason.contains("no such index"), "{reason}"),
        other => panic!("{other:?}"),
    }
    match backend.count().await {
        Err(SearchError::Remote { status: 404, .. }) => {}
        other => panic!("{other:?}"),
    }

    // Invalid queries never reach the server.
    let backend = double.backend("gigs").await;
    double.clear_requests();
    let bad = SearchQuery {
        limit: 0,
        ..SearchQuery::default()
    };
    assert!(backend.search(&bad).await.unwrap_err().is_invalid_query());
    assert!(backend
        .similar(id(1), 0)
        .await
        .unwrap_err()
        .is_invalid_query());
    assert!(double.requests().is_empty());
}

#[tokio::test]
async fn an_unreachable_cluster_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let backend = search::ElasticsearchBackend::new(&url, "gigs", Duration::from_secs(2)).unwrap();
    assert!(matches!(
        backend.count().await,
        Err(SearchError::Transport(_))
    ));
    assert!(matches!(
        backend.ensure_index().await,
        Err(SearchError::Transport(_))
    ));
}
