//! What the rest of the system uses: Elasticsearch as the primary when
//! configured, the local tantivy index always kept up to date as the
//! autocomplete cache and the fallback.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;
use uuid::Uuid;

use crate::backend::{validate_similar_limit, SearchBackend};
use crate::error::{report, SearchError};
use crate::local::TantivyIndex;
use crate::model::{GigDocument, GigHit, SearchPage, SearchQuery, Suggestion};

/// Longest the tier waits for the remote backend, whatever its own timeout.
pub const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(5);

/// The search tier of a pod.
pub struct SearchTier {
    local: Arc<TantivyIndex>,
    remote: Option<Arc<dyn SearchBackend>>,
    remote_timeout: Duration,
    fallbacks: AtomicU64,
}

impl SearchTier {
    /// `remote` is the primary for searches when present; `local` is
    /// written on every update either way.
    pub fn new(local: Arc<TantivyIndex>, remote: Option<Arc<dyn SearchBackend>>) -> Self {
        SearchTier {
            local,
            remote,
            remote_timeout: DEFAULT_REMOTE_TIMEOUT,
            fallbacks: AtomicU64::new(0),
        }
    }

    /// Bounds every remote call (default [`DEFAULT_REMOTE_TIMEOUT`]); a
    /// search past it is answered locally.
    pub fn with_remote_timeout(mut self, timeout: Duration) -> Self {
        self.remote_timeout = timeout;
        self
    }

    async fn remote_call<T>(
        &self,
        call: impl Future<Output = Result<T, SearchError>>,
    ) -> Result<T, SearchError> {
        tokio::time::timeout(self.remote_timeout, call)
            .await
            .unwrap_or(Err(SearchError::Timeout))
    }

    /// Writes the local index, then the remote one. A remote failure is
    /// returned so the caller's outbox retries (both writes are idempotent).
    pub async fn upsert(&self, docs: &[GigDocument]) -> Result<(), SearchError> {
        self.local.upsert(docs).await?;
        if let Some(remote) = &self.remote {
            if let Err(err) = self.remote_call(remote.upsert(docs)).await {
                warn!(backend = remote.name(), count = docs.len(), error = %report(&err), "remote index update failed");
                return Err(err);
            }
        }
        Ok(())
    }

    /// Deletes from the local index, then the remote one (see [`Self::upsert`]).
    pub async fn delete(&self, ids: &[Uuid]) -> Result<(), SearchError> {
        self.local.delete(ids).await?;
        if let Some(remote) = &self.remote {
            if let Err(err) = self.remote_call(remote.delete(ids)).await {
                warn!(backend = remote.name(), count = ids.len(), error = %report(&err), "remote index delete failed");
                return Err(err);
            }
        }
        Ok(())
    }

    /// Searches the remote backend; if it fails or times out, logs, counts
    /// a fallback and answers from the local index. Invalid queries fail
    /// without fallback.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError> {
        query.validate()?;
        if let Some(remote) = &self.remote {
            match self.remote_call(remote.search(query)).await {
                Ok(page) => return Ok(page),
                Err(err) if err.is_invalid_query() => return Err(err),
                Err(err) => self.fell_back(remote.name(), "search", &err),
            }
        }
        self.local.search(query).await
    }

    /// Similar gigs, with the same fallback as [`Self::search`].
    pub async fn similar(&self, id: Uuid, limit: usize) -> Result<Vec<GigHit>, SearchError> {
        validate_similar_limit(limit)?;
        if let Some(remote) = &self.remote {
            match self.remote_call(remote.similar(id, limit)).await {
                Ok(hits) => return Ok(hits),
                Err(err) if err.is_invalid_query() => return Err(err),
                Err(err) => self.fell_back(remote.name(), "similar", &err),
            }
        }
        self.local.similar(id, limit).await
    }

    /// Always answered by the local index.
    pub async fn autocomplete(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<Suggestion>, SearchError> {
        self.local.autocomplete(prefix, limit).await
    }

    /// How many requests were answered locally because the remote failed.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    pub fn local(&self) -> &Arc<TantivyIndex> {
        &self.local
    }

    /// The primary backend, when one is configured.
    pub fn remote(&self) -> Option<&Arc<dyn SearchBackend>> {
        self.remote.as_ref()
    }

    fn fell_back(&self, backend: &str, operation: &str, err: &SearchError) {
        let total = self.fallbacks.fetch_add(1, Ordering::Relaxed) + 1;
        warn!(
            backend,
            operation,
            fallbacks = total,
            error = %report(err),
            "remote search failed, answering from the local index"
        );
    }
}
