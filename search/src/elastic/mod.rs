//! The Elasticsearch backend (production), over the `elasticsearch` crate.
//!
//! Writes go through `_bulk` with `refresh=wait_for`, so they are visible
//! when they return; the request bodies are built in [`dsl`].

mod dsl;

use std::time::Duration;

use async_trait::async_trait;
use elasticsearch::auth::Credentials;
use elasticsearch::http::request::JsonBody;
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{StatusCode, Url};
use elasticsearch::indices::{IndicesCreateParts, IndicesExistsParts};
use elasticsearch::params::{Conflicts, Refresh};
use elasticsearch::{BulkParts, CountParts, DeleteByQueryParts, Elasticsearch, SearchParts};
use serde_json::{json, Value};
use tracing::{debug, info};
use uuid::Uuid;

use crate::backend::{validate_similar_limit, SearchBackend};
use crate::error::SearchError;
use crate::model::{GigDocument, GigHit, SearchPage, SearchQuery};

/// Search and writes against one Elasticsearch index.
pub struct ElasticsearchBackend {
    client: Elasticsearch,
    index: String,
}

impl std::fmt::Debug for ElasticsearchBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticsearchBackend")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

fn valid_index_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with(['-', '_', '+', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

impl ElasticsearchBackend {
    /// A client for `index_name` on the cluster at `url`. User and password
    /// in the URL become basic authentication. Every request times out after
    /// `timeout`. Nothing is sent until the first call.
    pub fn new(url: &str, index_name: &str, timeout: Duration) -> Result<Self, SearchError> {
        if !valid_index_name(index_name) {
            return Err(SearchError::Config(format!(
                "invalid elasticsearch index name {index_name:?}"
            )));
        }
        let mut url = Url::parse(url)
            .map_err(|e| SearchError::Config(format!("invalid elasticsearch url: {e}")))?;
        let credentials = (!url.username().is_empty()).then(|| {
            Credentials::Basic(
                url.username().to_owned(),
                url.password().unwrap_or_default().to_owned(),
            )
        });
        // Cannot fail for URLs that have a host, which `SingleNodeConnectionPool` needs anyway.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let mut builder =
            TransportBuilder::new(SingleNodeConnectionPool::new(url)).timeout(timeout);
        if let Some(credentials) = credentials {
            builder = builder.auth(credentials);
        }
        let transport = builder
            .build()
            .map_err(|e| SearchError::Config(format!("elasticsearch client: {e}")))?;
        Ok(ElasticsearchBackend {
            client: Elasticsearch::new(transport),
            index: index_name.to_owned(),
        })
    }

    /// Creates the index with its settings and mapping if it does not exist.
    pub async fn ensure_index(&self) -> Result<(), SearchError> {
        let exists = self
            .client
            .indices()
            .exists(IndicesExistsParts::Index(&[&self.index]))
            .send()
            .await?;
        match exists.status_code() {
            StatusCode::OK => return Ok(()),
            StatusCode::NOT_FOUND => {}
            other => return Err(error_of(other, exists).await),
        }
        let created = self
            .client
            .indices()
            .create(IndicesCreateParts::Index(&self.index))
            .body(dsl::index_definition())
            .send()
            .await?;
        let status = created.status_code();
        if status.is_success() {
            info!(index = %self.index, "elasticsearch index created");
            return Ok(());
        }
        let err = error_of(status, created).await;
        match &err {
            // Another pod created it in between.
            SearchError::Remote { reason, .. } if reason.contains("already exists") => Ok(()),
            _ => Err(err),
        }
    }

    async fn bulk(&self, lines: Vec<JsonBody<Value>>) -> Result<(), SearchError> {
        let response = self
            .client
            .bulk(BulkParts::Index(&self.index))
            .refresh(Refresh::WaitFor)
            .body(lines)
            .send()
            .await?;
        dsl::check_bulk(&json_of(response).await?)
    }
}

/// The body of a successful response, or the error it reports.
async fn json_of(response: Response) -> Result<Value, SearchError> {
    let status = response.status_code();
    if !status.is_success() {
        return Err(error_of(status, response).await);
    }
    Ok(response.json::<Value>().await?)
}

async fn error_of(status: StatusCode, response: Response) -> SearchError {
    let body = response.text().await.unwrap_or_default();
    SearchError::Remote {
        status: status.as_u16(),
        reason: dsl::error_reason(&body),
    }
}

#[async_trait]
impl SearchBackend for ElasticsearchBackend {
    fn name(&self) -> &'static str {
        "elasticsearch"
    }

    async fn upsert(&self, docs: &[GigDocument]) -> Result<(), SearchError> {
        if docs.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::with_capacity(docs.len() * 2);
        for doc in docs {
            lines.push(json!({ "index": { "_id": doc.gig_id.hyphenated().to_string() } }).into());
            let source = serde_json::to_value(dsl::Source::new(doc))
                .map_err(|e| SearchError::Decode(e.to_string()))?;
            lines.push(source.into());
        }
        self.bulk(lines).await?;
        debug!(index = %self.index, count = docs.len(), "gigs indexed in elasticsearch");
        Ok(())
    }

    async fn delete(&self, ids: &[Uuid]) -> Result<(), SearchError> {
        if ids.is_empty() {
            return Ok(());
        }
        let lines = ids
            .iter()
            .map(|id| json!({ "delete": { "_id": id.hyphenated().to_string() } }).into())
            .collect();
        self.bulk(lines).await?;
        debug!(index = %self.index, count = ids.len(), "gigs deleted from elasticsearch");
        Ok(())
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError> {
        let body = dsl::search_body(query)?;
        let response = self
            .client
            .search(SearchParts::Index(&[&self.index]))
            .body(body)
            .send()
            .await?;
        dsl::parse_search(&json_of(response).await?, query)
    }

    async fn similar(&self, gig_id: Uuid, limit: usize) -> Result<Vec<GigHit>, SearchError> {
        validate_similar_limit(limit)?;
        let response = self
            .client
            .search(SearchParts::Index(&[&self.index]))
            .body(dsl::similar_body(&self.index, gig_id, limit))
            .send()
            .await?;
        dsl::parse_similar(&json_of(response).await?)
    }

    async fn clear(&self) -> Result<(), SearchError> {
        let response = self
            .client
            .delete_by_query(DeleteByQueryParts::Index(&[&self.index]))
            .refresh(true)
            .conflicts(Conflicts::Proceed)
            .body(json!({ "query": { "match_all": {} } }))
            .send()
            .await?;
        json_of(response).await?;
        Ok(())
    }

    async fn count(&self) -> Result<u64, SearchError> {
        let response = self
            .client
            .count(CountParts::Index(&[&self.index]))
            .send()
            .await?;
        json_of(response)
            .await?
            .get("count")
            .and_then(Value::as_u64)
            .ok_or_else(|| SearchError::Decode("count response without count".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_checked_up_front() {
        let timeout = Duration::from_secs(1);
        assert!(ElasticsearchBackend::new("http://localhost:9200", "gigs", timeout).is_ok());
        assert!(
            ElasticsearchBackend::new("https://u:p@es.internal:9243", "gigs-v1", timeout).is_ok()
        );
        for bad_index in ["", "Gigs", "_gigs", "gi gs", "gigs*"] {
            assert!(matches!(
                ElasticsearchBackend::new("http://localhost:9200", bad_index, timeout),
                Err(SearchError::Config(_))
            ));
        }
        assert!(matches!(
            ElasticsearchBackend::new("not a url", "gigs", timeout),
            Err(SearchError::Config(_))
        ));
    }
}
