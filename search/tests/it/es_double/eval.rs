//! The part of the Elasticsearch query DSL our backend sends, evaluated over
//! the documents the double holds.
//!
//! Semantics follow Elasticsearch where the scenarios can observe them:
//! `bool` occurrence rules and `minimum_should_match` defaults, exact `term`s
//! on keyword fields, `range` on numbers with `float` fields compared in
//! single precision, `multi_match` (`best_fields` and `phrase_prefix`, with
//! `fuzziness: "AUTO:low,high"` as optimal-string-alignment edits), and
//! `more_like_this` over per-field terms. Scores only need to be ordered
//! sensibly: an exact term scores 1, a typo 1/(1 + edits), times boosts.
//! Anything else is answered with a 400 `parsing_exception`, so the backend
//! cannot rely on DSL the double does not check.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

/// How text fields are analysed, read from the index settings.
#[derive(Clone, Debug)]
pub struct Analysis {
    pub stop_words: HashSet<String>,
    pub max_token_chars: usize,
}

impl Analysis {
    pub fn analyze(&self, text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty() && t.chars().count() <= self.max_token_chars)
            .map(str::to_lowercase)
            .filter(|t| !self.stop_words.contains(t))
            .collect()
    }
}

pub struct Doc<'a> {
    pub id: &'a str,
    pub source: &'a Value,
}

pub struct Evaluator<'a> {
    pub index_name: &'a str,
    /// Field name to mapping type.
    pub types: &'a HashMap<String, String>,
    pub analysis: &'a Analysis,
    pub docs: &'a BTreeMap<String, Value>,
}

type Outcome = Result<Option<f32>, String>;

fn single(value: &Value, what: &str) -> Result<(String, Value), String> {
    match value.as_object() {
        Some(object) if object.len() == 1 => {
            let (k, v) = object.iter().next().ok_or("empty")?;
            Ok((k.clone(), v.clone()))
        }
        _ => Err(format!(
            "[{what}] malformed query, expected a single key object"
        )),
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Number(n) => vec![n.to_string()],
        Value::Bool(b) => vec![b.to_string()],
        _ => Vec::new(),
    }
}

fn allowed_keys(object: &Map<String, Value>, what: &str, allowed: &[&str]) -> Result<(), String> {
    for key in object.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(format!("[{what}] query does not support [{key}]"));
        }
    }
    Ok(())
}

/// Optimal string alignment distance (edits with adjacent transpositions).
pub fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[derive(Clone, Copy)]
enum Fuzziness {
    None,
    Auto(usize, usize),
    Fixed(usize),
}

impl Fuzziness {
    fn parse(value: Option<&Value>) -> Result<Fuzziness, String> {
        let Some(value) = value else {
            return Ok(Fuzziness::None);
        };
        if let Some(n) = value.as_u64() {
            return Ok(Fuzziness::Fixed(n as usize));
        }
        let text = value
            .as_str()
            .ok_or("fuzziness must be a string or a number")?;
        if text == "AUTO" {
            return Ok(Fuzziness::Auto(3, 6));
        }
        let bounds = text
            .strip_prefix("AUTO:")
            .and_then(|rest| rest.split_once(','))
            .and_then(|(low, high)| Some((low.parse().ok()?, high.parse().ok()?)));
        match bounds {
            Some((low, high)) => Ok(Fuzziness::Auto(low, high)),
            None => Err(format!("failed to parse fuzziness [{text}]")),
        }
    }

    fn edits(self, term: &str) -> usize {
        let len = term.chars().count();
        match self {
            Fuzziness::None => 0,
            Fuzziness::Fixed(n) => n.min(2),
            Fuzziness::Auto(low, high) => {
                if len < low {
                    0
                } else if len < high {
                    1
                } else {
                    2
                }
            }
        }
    }
}

impl Evaluator<'_> {
    fn field_type(&self, field: &str) -> Result<&str, String> {
        self.types
            .get(field)
            .map(String::as_str)
            .ok_or_else(|| format!("no mapping found for field [{field}]"))
    }

    /// The terms of a field of a document, as the field's mapping indexes them.
    fn field_terms(&self, doc: &Doc<'_>, field: &str) -> Result<Vec<String>, String> {
        let values = strings(doc.source.get(field).unwrap_or(&Value::Null));
        Ok(match self.field_type(field)? {
            "text" => values
                .iter()
                .flat_map(|v| self.analysis.analyze(v))
                .collect(),
            _ => values,
        })
    }

    pub fn eval(&self, query: &Value, doc: &Doc<'_>) -> Outcome {
        let (kind, body) = single(query, "query")?;
        match kind.as_str() {
            "match_all" => Ok(Some(1.0)),
            "bool" => self.eval_bool(&body, doc),
            "term" => {
                let (field, value) = single(&body, "term")?;
                let value = value.get("value").cloned().unwrap_or(value);
                if self.field_type(&field)? == "text" {
                    return Err(format!(
                        "[term] on text field [{field}] is not supported by the double"
                    ));
                }
                let wanted = strings(&value);
                let have = strings(doc.source.get(&field).unwrap_or(&Value::Null));
                Ok(have.iter().any(|v| wanted.contains(v)).then_some(1.0))
            }
            "terms" => {
                let (field, values) = single(&body, "terms")?;
                let wanted = values.as_array().ok_or("[terms] expects an array")?;
                let wanted: Vec<String> = wanted.iter().flat_map(strings).collect();
                self.field_type(&field)?;
                let have = strings(doc.source.get(&field).unwrap_or(&Value::Null));
                Ok(have.iter().any(|v| wanted.contains(v)).then_some(1.0))
            }
            "range" => self.eval_range(&body, doc),
            "ids" => {
                let values = body
                    .get("values")
                    .and_then(Value::as_array)
                    .ok_or("[ids] expects values")?;
                Ok(values
                    .iter()
                    .any(|v| v.as_str() == Some(doc.id))
                    .then_some(1.0))
            }
            "multi_match" => self.eval_multi_match(&body, doc),
            "more_like_this" => self.eval_more_like_this(&body, doc),
            other => Err(format!("unknown query [{other}]")),
        }
    }

    fn clauses(body: &Value, key: &str) -> Result<Vec<Value>, String> {
        match body.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(single @ Value::Object(_)) => Ok(vec![single.clone()]),
            Some(_) => Err(format!("[bool] malformed [{key}]")),
        }
    }

    fn eval_bool(&self, body: &Value, doc: &Doc<'_>) -> Outcome {
        let object = body.as_object().ok_or("[bool] expects an object")?;
        allowed_keys(
            object,
            "bool",
            &[
                "must",
                "should",
                "filter",
                "must_not",
                "minimum_should_match",
                "boost",
            ],
        )?;
        let must = Self::clauses(body, "must")?;
        let filter = Self::clauses(body, "filter")?;
        let should = Self::clauses(body, "should")?;
        let must_not = Self::clauses(body, "must_not")?;
        let mut score = 0.0;
        for clause in &must {
            match self.eval(clause, doc)? {
                Some(s) => score += s,
                None => return Ok(None),
            }
        }
        for clause in &filter {
            if self.eval(clause, doc)?.is_none() {
                return Ok(None);
            }
        }
        for clause in &must_not {
            if self.eval(clause, doc)?.is_some() {
                return Ok(None);
            }
        }
        let default_minimum = if must.is_empty() && filter.is_empty() && !should.is_empty() {
            1
        } else {
            0
        };
        let minimum = match body.get("minimum_should_match") {
            None => default_minimum,
            Some(v) => {
                v.as_u64()
                    .ok_or("minimum_should_match must be a number here")? as usize
            }
        };
        let mut matched = 0;
        for clause in &should {
            if let Some(s) = self.eval(clause, doc)? {
                matched += 1;
                score += s;
            }
        }
        if matched < minimum {
            return Ok(None);
        }
        let boost = body.get("boost").and_then(Value::as_f64).unwrap_or(1.0) as f32;
        Ok(Some(score * boost))
    }

    fn eval_range(&self, body: &Value, doc: &Doc<'_>) -> Outcome {
        let (field, bounds) = single(body, "range")?;
        let bounds = bounds.as_object().ok_or("[range] expects bounds")?;
        allowed_keys(bounds, "range", &["gte", "lte", "gt", "lt"])?;
        let float = match self.field_type(&field)? {
            "float" => true,
            "long" | "integer" => false,
            other => {
                return Err(format!(
                    "[range] on a {other} field is not supported by the double"
                ))
            }
        };
        let Some(value) = doc.source.get(&field).and_then(Value::as_f64) else {
            return Ok(None);
        };
        for (op, bound) in bounds {
            let bound = bound.as_f64().ok_or("[range] bounds must be numbers")?;
            let ordering = compare_numbers(value, bound, float);
            let ok = match op.as_str() {
                "gte" => ordering != Ordering::Less,
                "gt" => ordering == Ordering::Greater,
                "lte" => ordering != Ordering::Greater,
                _ => ordering == Ordering::Less,
            };
            if !ok {
                return Ok(None);
            }
        }
        Ok(Some(1.0))
    }

    fn eval_multi_match(&self, body: &Value, doc: &Doc<'_>) -> Outcome {
        let object = body.as_object().ok_or("[multi_match] expects an object")?;
        allowed_keys(
            object,
            "multi_match",
            &[
                "query",
                "fields",
                "type",
                "fuzziness",
                "prefix_length",
                "max_expansions",
                "boost",
            ],
        )?;
        let query = body
            .get("query")
            .and_then(Value::as_str)
            .ok_or("[multi_match] requires query")?;
        let tokens = self.analysis.analyze(query);
        let kind = body
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("best_fields");
        let fuzziness = Fuzziness::parse(body.get("fuzziness"))?;
        if kind == "phrase_prefix" && !matches!(fuzziness, Fuzziness::None) {
            return Err("[multi_match] fuzziness not allowed for type [phrase_prefix]".into());
        }
        let fields = body
            .get("fields")
            .and_then(Value::as_array)
            .ok_or("[multi_match] requires fields")?;
        let mut best: Option<f32> = None;
        for spec in fields {
            let spec = spec.as_str().ok_or("field names must be strings")?;
            let (name, boost) = match spec.split_once('^') {
                Some((name, boost)) => (name, boost.parse::<f32>().map_err(|e| e.to_string())?),
                None => (spec, 1.0),
            };
            let terms = self.field_terms(doc, name)?;
            let score = match kind {
                "best_fields" => {
                    let mut sum = 0.0;
                    for token in &tokens {
                        sum += token_score(token, &terms, fuzziness);
                    }
                    (sum > 0.0).then_some(sum)
                }
                "phrase_prefix" => {
                    let Some((last, rest)) = tokens.split_last() else {
                        return Ok(None);
                    };
                    let all = rest.iter().all(|t| terms.contains(t))
                        && terms.iter().any(|t| t.starts_with(last.as_str()));
                    all.then_some(tokens.len() as f32)
                }
                other => {
                    return Err(format!(
                        "[multi_match] type [{other}] is not supported by the double"
                    ))
                }
            };
            if let Some(score) = score {
                let score = score * boost;
                best = Some(best.map_or(score, |b: f32| b.max(score)));
            }
        }
        let boost = body.get("boost").and_then(Value::as_f64).unwrap_or(1.0) as f32;
        Ok(best.map(|s| s * boost))
    }

    fn eval_more_like_this(&self, body: &Value, doc: &Doc<'_>) -> Outcome {
        let object = body
            .as_object()
            .ok_or("[more_like_this] expects an object")?;
        allowed_keys(
            object,
            "more_like_this",
            &[
                "fields",
                "like",
                "min_term_freq",
                "min_doc_freq",
                "max_query_terms",
                "min_word_length",
                "include",
            ],
        )?;
        let fields: Vec<String> = body
            .get("fields")
            .and_then(Value::as_array)
            .ok_or("[more_like_this] requires fields")?
            .iter()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect();
        let min_tf = body
            .get("min_term_freq")
            .and_then(Value::as_u64)
            .unwrap_or(2) as usize;
        let min_df = body
            .get("min_doc_freq")
            .and_then(Value::as_u64)
            .unwrap_or(5) as usize;
        let max_terms = body
            .get("max_query_terms")
            .and_then(Value::as_u64)
            .unwrap_or(25) as usize;
        let min_len = body
            .get("min_word_length")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        let include = body
            .get("include")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut liked = Vec::new();
        for like in body
            .get("like")
            .and_then(Value::as_array)
            .ok_or("[more_like_this] requires like")?
        {
            if let Some(index) = like.get("_index").and_then(Value::as_str) {
                if index != self.index_name {
                    return Err(format!("no such index [{index}]"));
                }
            }
            let id = like
                .get("_id")
                .and_then(Value::as_str)
                .ok_or("like items need an _id")?;
            liked.push(id.to_owned());
        }
        if !include && liked.iter().any(|id| id == doc.id) {
            return Ok(None);
        }
        // Terms of the liked documents, per field.
        let mut tf: HashMap<(String, String), usize> = HashMap::new();
        for id in &liked {
            let Some(source) = self.docs.get(id) else {
                continue;
            };
            let liked_doc = Doc { id, source };
            for field in &fields {
                for term in self.field_terms(&liked_doc, field)? {
                    if term.chars().count() >= min_len {
                        *tf.entry((field.clone(), term)).or_default() += 1;
                    }
                }
            }
        }
        let total = self.docs.len() as f32;
        let mut selected = Vec::new();
        for ((field, term), freq) in tf {
            if freq < min_tf {
                continue;
            }
            let mut df = 0;
            for (id, source) in self.docs {
                if self
                    .field_terms(&Doc { id, source }, &field)?
                    .contains(&term)
                {
                    df += 1;
                }
            }
            if df < min_df {
                continue;
            }
            let idf = (1.0 + total / df as f32).ln();
            selected.push((freq as f32 * idf, idf, field, term));
        }
        selected.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.3.cmp(&b.3)));
        selected.truncate(max_terms);
        let mut score = 0.0;
        for (_, idf, field, term) in &selected {
            if self.field_terms(doc, field)?.contains(term) {
                score += idf;
            }
        }
        Ok((score > 0.0).then_some(score))
    }
}

fn token_score(token: &str, terms: &[String], fuzziness: Fuzziness) -> f32 {
    if terms.iter().any(|t| t == token) {
        return 1.0;
    }
    let allowed = fuzziness.edits(token);
    if allowed == 0 {
        return 0.0;
    }
    terms
        .iter()
        .map(|t| osa_distance(token, t))
        .filter(|&d| d <= allowed)
        .min()
        .map_or(0.0, |d| 1.0 / (1.0 + d as f32))
}

pub fn compare_numbers(a: f64, b: f64, float: bool) -> Ordering {
    if float {
        (a as f32).total_cmp(&(b as f32))
    } else {
        a.total_cmp(&b)
    }
}

/// Compares two sort values; missing values sort last.
pub fn compare_values(a: &Value, b: &Value, float: bool) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        (Value::Number(x), Value::Number(y)) => {
            compare_numbers(x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0), float)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

#[test]
fn osa_counts_transpositions_as_one_edit() {
    assert_eq!(osa_distance("pyhton", "python"), 1);
    assert_eq!(osa_distance("desgin", "design"), 1);
    assert_eq!(osa_distance("react", "reach"), 1);
    assert_eq!(osa_distance("logo", "logo"), 0);
    assert_eq!(osa_distance("kitten", "sitting"), 3);
}
