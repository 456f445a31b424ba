//! Elasticsearch request bodies and response parsing, as pure functions.
//!
//! The queries mirror the local index: every search term must match in some
//! field, exactly, as a prefix if it is the last term, or with typos
//! (`fuzziness: "AUTO:5,9"`, the local typo rule); the category filters go
//! to `post_filter` so the category aggregation ignores them; results sort
//! on the same keys with the gig id as tie-break, and `search_after` carries
//! the shared cursor.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::cursor::Cursor;
use crate::error::SearchError;
use crate::model::{
    sort_values, CategoryCount, GigDocument, GigHit, SearchPage, SearchQuery, Sort,
};
use crate::text::{typo_distance, MAX_TERM_CHARS, STOP_WORDS};

/// Full-text fields and their boosts (the local index's weights).
pub(crate) const TEXT_FIELDS: [&str; 7] = [
    "title^3",
    "tags^2",
    "category_name^1.5",
    "subcategory_name^1.5",
    "seller_name",
    "seller_username",
    "description",
];
/// Fields more-like-this compares.
pub(crate) const SIMILAR_FIELDS: [&str; 4] = ["title", "tags", "category_name", "subcategory_name"];
/// Name of the category aggregation.
pub(crate) const CATEGORY_AGG: &str = "categories";
/// Buckets asked for; the taxonomy has far fewer categories.
const CATEGORY_BUCKETS: usize = 100;
const PREFIX_BOOST: f32 = 0.5;
const FUZZY_BOOST: f32 = 0.3;

/// The document as stored in Elasticsearch: the gig plus its creation time
/// in microseconds, the exact sort key (dates sort in milliseconds).
#[derive(Serialize)]
pub(crate) struct Source<'a> {
    #[serde(flatten)]
    pub doc: &'a GigDocument,
    pub created_us: i64,
}

impl<'a> Source<'a> {
    pub fn new(doc: &'a GigDocument) -> Self {
        Source {
            doc,
            created_us: doc.created_at.timestamp_micros(),
        }
    }
}

/// Settings and mappings of the index.
pub(crate) fn index_definition() -> Value {
    let text = json!({ "type": "text", "analyzer": "gig_text" });
    json!({
        "settings": {
            "analysis": {
                "tokenizer": {
                    "gig_words": { "type": "pattern", "pattern": "[^\\p{L}\\p{N}]+" }
                },
                "filter": {
                    "gig_stop": { "type": "stop", "stopwords": STOP_WORDS },
                    "gig_long": { "type": "length", "max": MAX_TERM_CHARS }
                },
                "analyzer": {
                    "gig_text": {
                        "type": "custom",
                        "tokenizer": "gig_words",
                        "filter": ["gig_long", "lowercase", "asciifolding", "gig_stop"]
                    }
                }
            }
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "gig_id": { "type": "keyword" },
                "title": text,
                "description": text,
                "tags": text,
                "category": { "type": "keyword" },
                "category_name": text,
                "subcategory": { "type": "keyword" },
                "subcategory_name": text,
                "seller_id": { "type": "keyword" },
                "seller_username": text,
                "seller_name": text,
                "seller_level": { "type": "keyword" },
                "price_min": { "type": "long" },
                "price_max": { "type": "long" },
                "delivery_days_min": { "type": "integer" },
                "rating_avg": { "type": "float" },
                "rating_count": { "type": "integer" },
                "image_url": { "type": "keyword", "index": false },
                "created_at": { "type": "date" },
                "created_us": { "type": "long" }
            }
        }
    })
}

fn text_clauses(terms: &[String]) -> Vec<Value> {
    terms
        .iter()
        .enumerate()
        .map(|(i, term)| {
            let mut any = vec![json!({ "multi_match": { "query": term, "fields": TEXT_FIELDS } })];
            if i + 1 == terms.len() {
                any.push(json!({ "multi_match": {
                    "query": term, "fields": TEXT_FIELDS, "type": "phrase_prefix", "boost": PREFIX_BOOST
                } }));
            }
            if typo_distance(term) > 0 {
                any.push(json!({ "multi_match": {
                    "query": term, "fields": TEXT_FIELDS, "fuzziness": "AUTO:5,9",
                    "prefix_length": 0, "max_expansions": 50, "boost": FUZZY_BOOST
                } }));
            }
            json!({ "bool": { "should": any, "minimum_should_match": 1 } })
        })
        .collect()
}

/// An `f32` as the JSON number with its shortest decimal form (`4.8`, not
/// `4.800000190734863`), which Elasticsearch parses back to the same float.
fn f32_json(value: f32) -> Value {
    value
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn filter_clauses(query: &SearchQuery) -> Vec<Value> {
    let mut filters = Vec::new();
    if query.price_min.is_some() || query.price_max.is_some() {
        let mut range = serde_json::Map::new();
        if let Some(min) = query.price_min {
            range.insert("gte".into(), json!(min));
        }
        if let Some(max) = query.price_max {
            range.insert("lte".into(), json!(max));
        }
        filters.push(json!({ "range": { "price_min": range } }));
    }
    if let Some(days) = query.max_delivery_days {
        filters.push(json!({ "range": { "delivery_days_min": { "lte": days } } }));
    }
    if let Some(rating) = query.min_rating {
        filters.push(json!({ "range": { "rating_avg": { "gte": f32_json(rating) } } }));
    }
    if !query.seller_levels.is_empty() {
        let levels: Vec<&str> = query.seller_levels.iter().map(|l| l.as_str()).collect();
        filters.push(json!({ "terms": { "seller_level": levels } }));
    }
    filters
}

fn sort_clause(sort: Sort) -> Value {
    let by_id = json!({ "gig_id": "asc" });
    match sort {
        Sort::Relevance => json!([{ "_score": "desc" }, by_id]),
        Sort::PriceAsc => json!([{ "price_min": "asc" }, by_id]),
        Sort::PriceDesc => json!([{ "price_min": "desc" }, by_id]),
        Sort::Rating => json!([{ "rating_avg": "desc" }, { "rating_count": "desc" }, by_id]),
        Sort::Newest => json!([{ "created_us": "desc" }, by_id]),
    }
}

fn search_after(cursor: &Cursor) -> Value {
    let id = cursor.gig_id.hyphenated().to_string();
    let as_f32 = || f32_json(f32::from_bits(cursor.primary as u32));
    match cursor.sort {
        Sort::Relevance => json!([as_f32(), id]),
        Sort::PriceAsc | Sort::PriceDesc | Sort::Newest => json!([cursor.primary as i64, id]),
        Sort::Rating => json!([as_f32(), cursor.secondary, id]),
    }
}

/// The `_search` body of a (validated) query.
pub(crate) fn search_body(query: &SearchQuery) -> Result<Value, SearchError> {
    query.validate()?;
    let sort = query.effective_sort();
    let mut boolean = serde_json::Map::new();
    let must = text_clauses(&query.terms());
    if !must.is_empty() {
        boolean.insert("must".into(), Value::Array(must));
    }
    let filters = filter_clauses(query);
    if !filters.is_empty() {
        boolean.insert("filter".into(), Value::Array(filters));
    }
    let mut body = json!({
        "size": query.limit + 1,
        "track_total_hits": true,
        "query": { "bool": boolean },
        "aggs": { CATEGORY_AGG: { "terms": { "field": "category", "size": CATEGORY_BUCKETS } } },
        "sort": sort_clause(sort),
    });
    let mut post = Vec::new();
    if let Some(category) = &query.category {
        post.push(json!({ "term": { "category": category } }));
    }
    if let Some(subcategory) = &query.subcategory {
        post.push(json!({ "term": { "subcategory": subcategory } }));
    }
    if let Some(object) = body.as_object_mut() {
        if !post.is_empty() {
            object.insert("post_filter".into(), json!({ "bool": { "filter": post } }));
        }
        if let Some(cursor) = query.decoded_cursor()? {
            object.insert("search_after".into(), search_after(&cursor));
        }
    }
    Ok(body)
}

/// The `_search` body of "gigs like `gig_id`".
pub(crate) fn similar_body(index: &str, gig_id: Uuid, limit: usize) -> Value {
    let id = gig_id.hyphenated().to_string();
    json!({
        "size": limit,
        "query": { "bool": {
            "must": [{ "more_like_this": {
                "fields": SIMILAR_FIELDS,
                "like": [{ "_index": index, "_id": id }],
                "min_term_freq": 1,
                "min_doc_freq": 2,
                "max_query_terms": 25,
                "min_word_length": 2
            } }],
            "must_not": [{ "ids": { "values": [id] } }]
        } },
        "sort": sort_clause(Sort::Relevance),
    })
}

fn decode(what: &str) -> SearchError {
    SearchError::Decode(format!("missing or malformed {what}"))
}

/// Hits of a search response with their scores.
fn parse_hits(response: &Value) -> Result<Vec<(GigDocument, Option<f32>)>, SearchError> {
    let hits = response
        .pointer("/hits/hits")
        .and_then(Value::as_array)
        .ok_or_else(|| decode("hits.hits"))?;
    hits.iter()
        .map(|hit| {
            let source = hit.get("_source").ok_or_else(|| decode("_source"))?;
            let doc = GigDocument::deserialize(source)
                .map_err(|e| SearchError::Decode(format!("bad _source: {e}")))?;
            let score = hit.get("_score").and_then(Value::as_f64).map(|s| s as f32);
            Ok((doc, score))
        })
        .collect()
}

/// A search response as a page of `query`.
pub(crate) fn parse_search(
    response: &Value,
    query: &SearchQuery,
) -> Result<SearchPage, SearchError> {
    let sort = query.effective_sort();
    let mut hits = parse_hits(response)?;
    let total = response
        .pointer("/hits/total/value")
        .and_then(Value::as_u64)
        .ok_or_else(|| decode("hits.total"))?;
    let buckets = response
        .pointer(&format!("/aggregations/{CATEGORY_AGG}/buckets"))
        .and_then(Value::as_array)
        .ok_or_else(|| decode("category aggregation"))?;
    let mut categories = buckets
        .iter()
        .map(|bucket| {
            Ok(CategoryCount {
                category: bucket
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| decode("bucket key"))?
                    .to_owned(),
                count: bucket
                    .get("doc_count")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| decode("bucket doc_count"))?,
            })
        })
        .collect::<Result<Vec<_>, SearchError>>()?;
    categories.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.category.cmp(&b.category))
    });
    let more = hits.len() > query.limit;
    hits.truncate(query.limit);
    let next_cursor = match hits.last() {
        Some((doc, score)) if more => {
            let (primary, secondary) = sort_values(sort, doc, score.unwrap_or(0.0));
            Some(
                Cursor {
                    sort,
                    primary,
                    secondary,
                    gig_id: doc.gig_id,
                }
                .encode(),
            )
        }
        _ => None,
    };
    let relevance = sort == Sort::Relevance;
    Ok(SearchPage {
        hits: hits
            .into_iter()
            .map(|(doc, score)| GigHit::from_document(doc, if relevance { score } else { None }))
            .collect(),
        total,
        categories,
        next_cursor,
    })
}

/// The hits of a similar-gigs response.
pub(crate) fn parse_similar(response: &Value) -> Result<Vec<GigHit>, SearchError> {
    Ok(parse_hits(response)?
        .into_iter()
        .map(|(doc, score)| GigHit::from_document(doc, score))
        .collect())
}

/// Checks a `_bulk` response; a delete of a missing document is fine.
pub(crate) fn check_bulk(response: &Value) -> Result<(), SearchError> {
    if response.get("errors").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let items = response
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| decode("bulk items"))?;
    for item in items {
        let Some((action, result)) = item.as_object().and_then(|o| o.iter().next()) else {
            return Err(decode("bulk item"));
        };
        let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
        let missing_delete = action == "delete" && status == 404;
        if status >= 300 && !missing_delete {
            let reason = result
                .pointer("/error/reason")
                .and_then(Value::as_str)
                .unwrap_or("bulk item failed");
            return Err(SearchError::Remote {
                status: u16::try_from(status).unwrap_or(500),
                reason: format!(
                    "{action} {}: {reason}",
                    result.get("_id").and_then(Value::as_str).unwrap_or("?")
                ),
            });
        }
    }
    Ok(())
}

/// The human part of an Elasticsearch error body.
pub(crate) fn error_reason(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let reason = parsed.as_ref().and_then(|v| {
        v.pointer("/error/reason")
            .or_else(|| v.pointer("/error/type"))
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    reason.unwrap_or_else(|| body.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SellerLevel;

    #[test]
    fn filters_go_to_the_query_and_categories_to_the_post_filter() {
        let query = SearchQuery {
            text: Some("logo desgin".into()),
            category: Some("graphics-design".into()),
            subcategory: Some("logo-design".into()),
            price_min: Some(1000),
            price_max: Some(5000),
            max_delivery_days: Some(3),
            min_rating: Some(4.5),
            seller_levels: vec![SellerLevel::Level2, SellerLevel::TopRated],
            sort: Sort::PriceAsc,
            ..SearchQuery::default()
        };
        let body = search_body(&query).unwrap();
        assert_eq!(body["size"], 21);
        let filter = &body["query"]["bool"]["filter"];
        assert_eq!(
            filter[0],
            json!({ "range": { "price_min": { "gte": 1000, "lte": 5000 } } })
        );
        assert_eq!(
            filter[1],
            json!({ "range": { "delivery_days_min": { "lte": 3 } } })
        );
        assert_eq!(
            filter[2],
            json!({ "range": { "rating_avg": { "gte": 4.5 } } })
        );
        assert_eq!(
            filter[3],
            json!({ "terms": { "seller_level": ["level_2", "top_rated"] } })
        );
        assert_eq!(
            body["post_filter"],
            json!({ "bool": { "filter": [
                { "term": { "category": "graphics-design" } },
                { "term": { "subcategory": "logo-design" } }
            ] } })
        );
        assert_eq!(body["aggs"]["categories"]["terms"]["field"], "category");
        assert_eq!(
            body["sort"],
            json!([{ "price_min": "asc" }, { "gig_id": "asc" }])
        );
        let must = body["query"]["bool"]["must"].as_array().unwrap();
        assert_eq!(must.len(), 2);
        let second = must[1]["bool"]["should"].as_array().unwrap();
        assert!(second
            .iter()
            .any(|c| c["multi_match"]["fuzziness"] == "AUTO:5,9"));
        assert!(second
            .iter()
            .any(|c| c["multi_match"]["type"] == "phrase_prefix"));
        let first = must[0]["bool"]["should"].as_array().unwrap();
        assert!(first
            .iter()
            .all(|c| c["multi_match"]["type"] != "phrase_prefix"));
        assert!(body.get("search_after").is_none());
    }

    #[test]
    fn cursors_become_search_after() {
        let id = Uuid::from_u128(7);
        for (sort, primary, secondary, expected) in [
            (
                Sort::PriceDesc,
                1500u64,
                0u32,
                json!([1500, id.to_string()]),
            ),
            (
                Sort::Newest,
                1_700_000_000_000_000,
                0,
                json!([1_700_000_000_000_000i64, id.to_string()]),
            ),
            (
                Sort::Rating,
                u64::from(4.5f32.to_bits()),
                12,
                json!([4.5, 12, id.to_string()]),
            ),
        ] {
            let cursor = Cursor {
                sort,
                primary,
                secondary,
                gig_id: id,
            }
            .encode();
            let query = SearchQuery {
                sort,
                cursor: Some(cursor),
                ..SearchQuery::default()
            };
            assert_eq!(
                search_body(&query).unwrap()["search_after"],
                expected,
                "{sort}"
            );
        }
    }

    #[test]
    fn without_text_nothing_is_scored() {
        let body = search_body(&SearchQuery::default()).unwrap();
        assert_eq!(body["query"], json!({ "bool": {} }));
        assert_eq!(body["sort"][0], json!({ "created_us": "desc" }));
        assert!(body.get("post_filter").is_none());
    }

    #[test]
    fn bulk_errors_are_reported_but_missing_deletes_are_not() {
        let ok = json!({ "errors": true, "items": [
            { "delete": { "_id": "a", "status": 404, "result": "not_found" } }
        ] });
        assert!(check_bulk(&ok).is_ok());
        let bad = json!({ "errors": true, "items": [
            { "index": { "_id": "b", "status": 400, "error": { "type": "mapper_parsing_exception", "reason": "boom" } } }
        ] });
        match check_bulk(&bad) {
            Err(SearchError::Remote {
                status: 400,
                reason,
            }) => assert!(reason.contains("boom")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_reasons_are_extracted() {
        assert_eq!(
            error_reason(
                r#"{"error":{"type":"index_not_found_exception","reason":"no such index [gigs]"},"status":404}"#
            ),
            "no such index [gigs]"
        );
        assert_eq!(error_reason("gateway timeout"), "gateway timeout");
    }
}
