//! An Elasticsearch double on loopback: the HTTP API subset the backend
//! uses, checked strictly and answered in Elasticsearch's response shapes.
//!
//! It keeps the documents it receives and evaluates searches over them (see
//! `eval`), so the shared scenario suite runs against the real
//! `ElasticsearchBackend`. It also:
//! - records every request, for tests that assert request shapes;
//! - enforces what a real cluster would: a created index with a strict
//!   mapping (unknown or mistyped fields are rejected per bulk item), NDJSON
//!   bulk bodies ending in a newline with an action line before each
//!   source, writes visible to search only after a refresh (so a missing
//!   `refresh` parameter fails the suite), `search_after` matching the sort;
//! - can be switched to answer 500 or to never answer, for fallback tests.

mod eval;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use search::ElasticsearchBackend;
use serde_json::{json, Map, Value};

use self::eval::{compare_values, Analysis, Doc, Evaluator};

/// How the double answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Every request gets a 500.
    Fail,
    /// Requests are accepted and never answered.
    Hang,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub params: HashMap<String, String>,
    pub content_type: Option<String>,
    pub body: String,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

struct IndexState {
    types: HashMap<String, String>,
    analysis: Analysis,
    /// Visible to search.
    docs: BTreeMap<String, Value>,
    /// Written but not yet refreshed: `None` is a delete.
    pending: Vec<(String, Option<Value>)>,
}

impl IndexState {
    fn refresh(&mut self) {
        for (id, doc) in self.pending.drain(..) {
            match doc {
                Some(doc) => self.docs.insert(id, doc),
                None => self.docs.remove(&id),
            };
        }
    }

    /// The document as of the last write, refreshed or not.
    fn latest(&self, id: &str) -> Option<&Value> {
        match self.pending.iter().rev().find(|(pending, _)| pending == id) {
            Some((_, doc)) => doc.as_ref(),
            None => self.docs.get(id),
        }
    }
}

struct DoubleState {
    mode: Mode,
    log: Vec<Recorded>,
    indices: HashMap<String, IndexState>,
}

type Shared = Arc<Mutex<DoubleState>>;

pub struct EsDouble {
    pub url: String,
    state: Shared,
}

impl EsDouble {
    pub async fn start() -> EsDouble {
        let state: Shared = Arc::new(Mutex::new(DoubleState {
            mode: Mode::Normal,
            log: Vec::new(),
            indices: HashMap::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, app).await });
        EsDouble { url, state }
    }

    /// A backend for `index` on this double, its index created.
    pub async fn backend(&self, index: &str) -> ElasticsearchBackend {
        let backend = self.backend_with_timeout(index, Duration::from_secs(10));
        backend.ensure_index().await.unwrap();
        backend
    }

    pub fn backend_with_timeout(&self, index: &str, timeout: Duration) -> ElasticsearchBackend {
        ElasticsearchBackend::new(&self.url, index, timeout).unwrap()
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// Ids of the documents visible to search in `index`.
    pub fn visible_ids(&self, index: &str) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .indices
            .get(index)
            .map(|i| i.docs.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [
            ("content-type", "application/json"),
            ("x-elastic-product", "Elasticsearch"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn es_error(status: StatusCode, kind: &str, reason: &str) -> Response {
    reply(
        status,
        json!({
            "error": { "root_cause": [{ "type": kind, "reason": reason }], "type": kind, "reason": reason },
            "status": status.as_u16()
        }),
    )
}

fn bad_request(reason: impl AsRef<str>) -> Response {
    es_error(
        StatusCode::BAD_REQUEST,
        "parsing_exception",
        reason.as_ref(),
    )
}

fn no_index(name: &str) -> Response {
    es_error(
        StatusCode::NOT_FOUND,
        "index_not_found_exception",
        &format!("no such index [{name}]"),
    )
}

fn params_of(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}

fn refreshes(params: &HashMap<String, String>) -> bool {
    matches!(
        params.get("refresh").map(String::as_str),
        Some("" | "true" | "wait_for")
    )
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method: method.clone(),
        path: uri.path().to_owned(),
        params: params_of(&uri),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let mode = {
        let mut state = state.lock().unwrap();
        state.log.push(recorded.clone());
        state.mode
    };
    match mode {
        Mode::Normal => {}
        Mode::Fail => {
            return es_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error",
                "injected failure",
            )
        }
        Mode::Hang => std::future::pending::<()>().await,
    }
    let segments: Vec<&str> = recorded.path.trim_matches('/').split('/').collect();
    let mut state = state.lock().unwrap();
    match (method, segments.as_slice()) {
        (Method::HEAD, [index]) => {
            let status = if state.indices.contains_key(*index) {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            status.into_response()
        }
        (Method::PUT, [index]) => create_index(&mut state, index, &recorded.body),
        (Method::POST | Method::PUT, [index, "_bulk"]) => match state.indices.get_mut(*index) {
            Some(target) => bulk(target, index, &recorded),
            None => no_index(index),
        },
        (Method::POST | Method::GET, [index, "_search"]) => match state.indices.get(*index) {
            Some(target) => search(target, index, &recorded.body),
            None => no_index(index),
        },
        (Method::POST | Method::GET, [index, "_count"]) => match state.indices.get(*index) {
            Some(target) => reply(
                StatusCode::OK,
                json!({ "count": target.docs.len(), "_shards": shards() }),
            ),
            None => no_index(index),
        },
        (Method::POST, [index, "_refresh"]) => match state.indices.get_mut(*index) {
            Some(target) => {
                target.refresh();
                reply(StatusCode::OK, json!({ "_shards": shards() }))
            }
            None => no_index(index),
        },
        (Method::POST, [index, "_delete_by_query"]) => match state.indices.get_mut(*index) {
            Some(target) => delete_by_query(target, &recorded),
            None => no_index(index),
        },
        _ => bad_request(format!(
            "the double does not serve {} {}",
            recorded.method, recorded.path
        )),
    }
}

fn shards() -> Value {
    json!({ "total": 1, "successful": 1, "skipped": 0, "failed": 0 })
}

const FIELD_TYPES: &[&str] = &["text", "keyword", "long", "integer", "float", "date"];

fn create_index(state: &mut DoubleState, name: &str, body: &str) -> Response {
    if state.indices.contains_key(name) {
        return es_error(
            StatusCode::BAD_REQUEST,
            "resource_already_exists_exception",
            &format!("index [{name}/abc123] already exists"),
        );
    }
    let Ok(definition) = serde_json::from_str::<Value>(body) else {
        return bad_request("index definition is not json");
    };
    let analysis = &definition["settings"]["analysis"];
    // The analyser chain the double implements: a pattern tokenizer on
    // non-alphanumerics, length, lowercase, asciifolding, stop.
    let Some(analyzers) = analysis["analyzer"].as_object() else {
        return bad_request("settings.analysis.analyzer missing");
    };
    let mut stop_words = HashSet::new();
    let mut max_token_chars = usize::MAX;
    for (analyzer_name, analyzer) in analyzers {
        let tokenizer = &analysis["tokenizer"][analyzer["tokenizer"].as_str().unwrap_or_default()];
        if tokenizer["type"] != "pattern" || tokenizer["pattern"] != "[^\\p{L}\\p{N}]+" {
            return bad_request(format!(
                "analyzer [{analyzer_name}]: tokenizer not supported by the double"
            ));
        }
        for filter in analyzer["filter"].as_array().cloned().unwrap_or_default() {
            let filter = filter.as_str().unwrap_or_default();
            if filter == "lowercase" || filter == "asciifolding" {
                continue;
            }
            let definition = &analysis["filter"][filter];
            match definition["type"].as_str() {
                Some("stop") => {
                    let Some(words) = definition["stopwords"].as_array() else {
                        return bad_request("stop filter needs an explicit list");
                    };
                    stop_words.extend(words.iter().filter_map(|w| w.as_str().map(str::to_owned)));
                }
                Some("length") => {
                    max_token_chars = definition["max"].as_u64().unwrap_or(u64::MAX) as usize;
                }
                _ => return bad_request(format!("unknown token filter [{filter}]")),
            }
        }
    }
    if definition["mappings"]["dynamic"] != "strict" {
        return bad_request("the double expects a strict mapping");
    }
    let Some(properties) = definition["mappings"]["properties"].as_object() else {
        return bad_request("mappings.properties missing");
    };
    let mut types = HashMap::new();
    for (field, mapping) in properties {
        let kind = mapping["type"].as_str().unwrap_or_default();
        if !FIELD_TYPES.contains(&kind) {
            return bad_request(format!("field [{field}]: unknown type [{kind}]"));
        }
        if kind == "text" {
            let analyzer = mapping["analyzer"].as_str().unwrap_or_default();
            if !analyzers.contains_key(analyzer) {
                return bad_request(format!(
                    "field [{field}]: analyzer [{analyzer}] has not been configured"
                ));
            }
        }
        types.insert(field.clone(), kind.to_owned());
    }
    state.indices.insert(
        name.to_owned(),
        IndexState {
            types,
            analysis: Analysis {
                stop_words,
                max_token_chars,
            },
            docs: BTreeMap::new(),
            pending: Vec::new(),
        },
    );
    reply(
        StatusCode::OK,
        json!({ "acknowledged": true, "shards_acknowledged": true, "index": name }),
    )
}

/// Why `source` does not fit the strict mapping, if it does not.
fn mapping_violation(
    types: &HashMap<String, String>,
    source: &Map<String, Value>,
) -> Option<String> {
    for (field, value) in source {
        let Some(kind) = types.get(field) else {
            return Some(format!(
                "mapping set to strict, dynamic introduction of [{field}] within [_doc] is not allowed"
            ));
        };
        let scalar_ok = |v: &Value| match kind.as_str() {
            "text" | "keyword" => v.is_string(),
            "long" | "integer" => v.is_i64() || v.is_u64(),
            "float" => v.is_number(),
            "date" => v
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
            _ => false,
        };
        let ok = match value {
            Value::Null => true,
            Value::Array(items) => items.iter().all(scalar_ok),
            other => scalar_ok(other),
        };
        if !ok {
            return Some(format!("failed to parse field [{field}] of type [{kind}]"));
        }
    }
    None
}

fn bulk(target: &mut IndexState, index: &str, request: &Recorded) -> Response {
    if !request.body.ends_with('\n') {
        return es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        );
    }
    let mut lines = request.body.lines().filter(|l| !l.trim().is_empty());
    let mut items = Vec::new();
    let mut errors = false;
    while let Some(line) = lines.next() {
        let Ok(action) = serde_json::from_str::<Value>(line) else {
            return bad_request(format!("malformed action/metadata line [{line}]"));
        };
        let Some((kind, meta)) = action
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
        else {
            return bad_request("malformed action/metadata line, expected a single action");
        };
        if meta.get("_index").is_some_and(|i| i != index) {
            return bad_request("bulk item targets another index");
        }
        let Some(id) = meta.get("_id").and_then(Value::as_str).map(str::to_owned) else {
            return bad_request("the double needs an explicit _id");
        };
        match kind.as_str() {
            "index" => {
                let Some(source_line) = lines.next() else {
                    return bad_request("index action without a source line");
                };
                let Ok(Value::Object(source)) = serde_json::from_str::<Value>(source_line) else {
                    return bad_request("source line is not a json object");
                };
                if let Some(reason) = mapping_violation(&target.types, &source) {
                    errors = true;
                    items.push(json!({ "index": {
                        "_index": index, "_id": id, "status": 400,
                        "error": { "type": "document_parsing_exception", "reason": reason }
                    } }));
                    continue;
                }
                let existed = target.latest(&id).is_some();
                target
                    .pending
                    .push((id.clone(), Some(Value::Object(source))));
                items.push(json!({ "index": {
                    "_index": index, "_id": id, "_version": 1,
                    "result": if existed { "updated" } else { "created" },
                    "status": if existed { 200 } else { 201 }
                } }));
            }
            "delete" => {
                let existed = target.latest(&id).is_some();
                target.pending.push((id.clone(), None));
                items.push(json!({ "delete": {
                    "_index": index, "_id": id, "_version": 1,
                    "result": if existed { "deleted" } else { "not_found" },
                    "status": if existed { 200 } else { 404 }
                } }));
            }
            other => {
                return bad_request(format!("action [{other}] is not supported by the double"))
            }
        }
    }
    if refreshes(&request.params) {
        target.refresh();
    }
    reply(
        StatusCode::OK,
        json!({ "took": 1, "errors": errors, "items": items }),
    )
}

fn delete_by_query(target: &mut IndexState, request: &Recorded) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(&request.body) else {
        return bad_request("body is not json");
    };
    if body != json!({ "query": { "match_all": {} } }) {
        return bad_request("the double only deletes by match_all");
    }
    let ids: Vec<String> = target.docs.keys().cloned().collect();
    for id in &ids {
        target.pending.push((id.clone(), None));
    }
    if refreshes(&request.params) {
        target.refresh();
    }
    reply(
        StatusCode::OK,
        json!({ "took": 1, "timed_out": false, "deleted": ids.len(), "failures": [] }),
    )
}

struct SortSpec {
    field: String,
    descending: bool,
}

fn parse_sort(value: Option<&Value>) -> Result<Vec<SortSpec>, String> {
    let Some(value) = value else {
        return Ok(vec![SortSpec {
            field: "_score".into(),
            descending: true,
        }]);
    };
    let items = value.as_array().ok_or("sort must be an array")?;
    items
        .iter()
        .map(|item| match item {
            Value::String(field) => Ok(SortSpec {
                descending: field == "_score",
                field: field.clone(),
            }),
            Value::Object(o) if o.len() == 1 => {
                let (field, order) = o.iter().next().ok_or("empty sort")?;
                let order = order.get("order").unwrap_or(order);
                match order.as_str() {
                    Some("asc") => Ok(SortSpec {
                        field: field.clone(),
                        descending: false,
                    }),
                    Some("desc") => Ok(SortSpec {
                        field: field.clone(),
                        descending: true,
                    }),
                    _ => Err(format!("bad sort order for [{field}]")),
                }
            }
            _ => Err("malformed sort".to_owned()),
        })
        .collect()
}

fn search(target: &IndexState, index: &str, body: &str) -> Response {
    match run_search(target, index, body) {
        Ok(response) => reply(StatusCode::OK, response),
        Err(reason) => bad_request(reason),
    }
}

fn run_search(target: &IndexState, index: &str, body: &str) -> Result<Value, String> {
    let body: Value = if body.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(body).map_err(|e| e.to_string())?
    };
    let object = body.as_object().ok_or("search body must be an object")?;
    for key in object.keys() {
        if ![
            "size",
            "track_total_hits",
            "query",
            "post_filter",
            "aggs",
            "sort",
            "search_after",
        ]
        .contains(&key.as_str())
        {
            return Err(format!("unknown key [{key}] in the search body"));
        }
    }
    let evaluator = Evaluator {
        index_name: index,
        types: &target.types,
        analysis: &target.analysis,
        docs: &target.docs,
    };
    let query = body
        .get("query")
        .cloned()
        .unwrap_or(json!({ "match_all": {} }));
    let mut matches = Vec::new();
    for (id, source) in &target.docs {
        let doc = Doc { id, source };
        if let Some(score) = evaluator.eval(&query, &doc)? {
            matches.push((id.as_str(), source, score));
        }
    }

    // Aggregations see the query's matches, before the post filter.
    let mut aggregations = Map::new();
    if let Some(aggs) = body.get("aggs") {
        for (name, agg) in aggs.as_object().ok_or("aggs must be an object")? {
            let terms = agg
                .get("terms")
                .ok_or("only terms aggregations are supported by the double")?;
            let field = terms["field"]
                .as_str()
                .ok_or("terms aggregation needs a field")?;
            if target.types.get(field).map(String::as_str) != Some("keyword") {
                return Err(format!("terms aggregation on non-keyword field [{field}]"));
            }
            let size = terms.get("size").and_then(Value::as_u64).unwrap_or(10) as usize;
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for (_, source, _) in &matches {
                if let Some(value) = source.get(field).and_then(Value::as_str) {
                    *counts.entry(value.to_owned()).or_default() += 1;
                }
            }
            let mut buckets: Vec<(String, u64)> = counts.into_iter().collect();
            buckets.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let other: u64 = buckets.iter().skip(size).map(|b| b.1).sum();
            buckets.truncate(size);
            aggregations.insert(
                name.clone(),
                json!({
                    "doc_count_error_upper_bound": 0,
                    "sum_other_doc_count": other,
                    "buckets": buckets.iter().map(|(key, count)| json!({ "key": key, "doc_count": count })).collect::<Vec<_>>()
                }),
            );
        }
    }

    if let Some(post_filter) = body.get("post_filter") {
        let mut kept = Vec::new();
        for (id, source, score) in matches {
            if evaluator.eval(post_filter, &Doc { id, source })?.is_some() {
                kept.push((id, source, score));
            }
        }
        matches = kept;
    }
    let total = matches.len();

    let sort = parse_sort(body.get("sort"))?;
    let sort_values =
        |id: &str, source: &Value, score: f32| -> Result<Vec<(Value, bool)>, String> {
            sort.iter()
                .map(|spec| match spec.field.as_str() {
                    "_score" => Ok((json!(score), true)),
                    field => {
                        let kind = target.types.get(field).ok_or(format!(
                            "no mapping found for [{field}] in order to sort on"
                        ))?;
                        if kind == "text" {
                            return Err(format!("text field [{field}] cannot be sorted on"));
                        }
                        let value = if field == "_id" {
                            json!(id)
                        } else {
                            source.get(field).cloned().unwrap_or(Value::Null)
                        };
                        Ok((value, kind == "float"))
                    }
                })
                .collect()
        };
    let compare = |a: &[(Value, bool)], b: &[(Value, bool)]| {
        for (spec, ((x, float), (y, _))) in sort.iter().zip(a.iter().zip(b)) {
            let ordering = compare_values(x, y, *float);
            let ordering = if spec.descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != std::cmp::Ordering::Equal {
                return ordering;
            }
        }
        std::cmp::Ordering::Equal
    };
    let mut keyed = Vec::new();
    for (id, source, score) in matches {
        keyed.push((sort_values(id, source, score)?, id, source, score));
    }
    keyed.sort_by(|a, b| compare(&a.0, &b.0));

    if let Some(after) = body.get("search_after") {
        let after = after.as_array().ok_or("search_after must be an array")?;
        if after.len() != sort.len() {
            return Err(format!(
                "search_after has {} value(s) but sort has {}",
                after.len(),
                sort.len()
            ));
        }
        let after: Vec<(Value, bool)> = after
            .iter()
            .zip(&sort)
            .map(|(v, spec)| {
                (
                    v.clone(),
                    spec.field == "_score"
                        || target.types.get(&spec.field).is_some_and(|t| t == "float"),
                )
            })
            .collect();
        keyed.retain(|(values, ..)| compare(values, &after) == std::cmp::Ordering::Greater);
    }

    let size = body.get("size").and_then(Value::as_u64).unwrap_or(10) as usize;
    let scored = sort.iter().any(|s| s.field == "_score");
    let hits: Vec<Value> = keyed
        .into_iter()
        .take(size)
        .map(|(values, id, source, score)| {
            json!({
                "_index": index,
                "_id": id,
                "_score": if scored { json!(score) } else { Value::Null },
                "_source": source,
                "sort": values.into_iter().map(|(v, _)| v).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut response = json!({
        "took": 1,
        "timed_out": false,
        "_shards": shards(),
        "hits": { "total": { "value": total, "relation": "eq" }, "max_score": Value::Null, "hits": hits }
    });
    if !aggregations.is_empty() {
        response["aggregations"] = Value::Object(aggregations);
    }
    Ok(response)
}
