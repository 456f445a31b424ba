//! The port every search backend implements.

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::SearchError;
use crate::model::{GigDocument, GigHit, SearchPage, SearchQuery};

/// A searchable store of active gigs.
///
/// Writes are idempotent (an upsert replaces the gig with the same id, a
/// delete of an unknown id succeeds) and visible to searches when they
/// return, so an outbox can retry them blindly.
#[async_trait]
pub trait SearchBackend: Send + Sync {
    /// Short name for logs and metrics, e.g. `"tantivy"`.
    fn name(&self) -> &'static str;
    /// Adds or replaces gigs by id.
    async fn upsert(&self, docs: &[GigDocument]) -> Result<(), SearchError>;
    /// Removes gigs by id.
    async fn delete(&self, ids: &[Uuid]) -> Result<(), SearchError>;
    /// One page of results; fails with `InvalidQuery` for what
    /// [`SearchQuery::validate`] rejects.
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError>;
    /// Gigs like `gig_id` (more-like-this on title, tags and category),
    /// never `gig_id` itself; empty when the gig is unknown.
    async fn similar(&self, gig_id: Uuid, limit: usize) -> Result<Vec<GigHit>, SearchError>;
    /// Removes every gig.
    async fn clear(&self) -> Result<(), SearchError>;
    /// Number of gigs held.
    async fn count(&self) -> Result<u64, SearchError>;
}

/// Checks the `limit` of [`SearchBackend::similar`].
pub(crate) fn validate_similar_limit(limit: usize) -> Result<(), SearchError> {
    if (1..=crate::model::MAX_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(SearchError::invalid(format!(
            "limit must be between 1 and {}",
            crate::model::MAX_LIMIT
        )))
    }
}
