//! The search tier: Elasticsearch first, tantivy always written and used for
//! autocomplete and as the fallback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::http::Method;
use search::{
    GigDocument, GigHit, SearchBackend, SearchError, SearchPage, SearchQuery, SearchTier,
    TantivyIndex,
};
use uuid::Uuid;

use crate::es_double::{EsDouble, Mode};
use crate::fixtures::{gigs, id, ids, sorted};

async fn tier_with_double(timeout: Duration) -> (SearchTier, EsDouble) {
    let double = EsDouble::start().await;
    let remote = double.backend_with_timeout("gigs", timeout);
    remote.ensure_index().await.unwrap();
    let local = Arc::new(TantivyIndex::in_memory().unwrap());
    let tier = SearchTier::new(local, Some(Arc::new(remote)));
    tier.upsert(&gigs()).await.unwrap();
    double.clear_requests();
    (tier, double)
}

fn python() -> SearchQuery {
    SearchQuery {
        text: Some("python".into()),
        ..SearchQuery::default()
    }
}

fn searches(double: &EsDouble) -> usize {
    double
        .requests()
        .iter()
        .filter(|r| r.method == Method::POST && r.path.ends_with("/_search"))
        .count()
}

#[tokio::test]
async fn writes_reach_both_backends_and_searches_go_remote() {
    let (tier, double) = tier_with_double(Duration::from_secs(5)).await;
    assert_eq!(tier.local().count().await.unwrap(), 12);
    assert_eq!(double.visible_ids("gigs").len(), 12);

    let page = tier.search(&python()).await.unwrap();
    assert_eq!(sorted(ids(&page.hits)), [4, 5, 12]);
    assert_eq!(searches(&double), 1);
    let similar = tier.similar(id(4), 5).await.unwrap();
    assert!(!ids(&similar).contains(&4));
    assert_eq!(searches(&double), 2);
    assert_eq!(tier.fallbacks(), 0);

    // Autocomplete never leaves the pod.
    double.clear_requests();
    let found = tier.autocomplete("py", 5).await.unwrap();
    assert_eq!(found[0].text, "python");
    assert!(double.requests().is_empty());

    tier.delete(&[id(4)]).await.unwrap();
    assert_eq!(tier.local().count().await.unwrap(), 11);
    assert_eq!(double.visible_ids("gigs").len(), 11);
}

#[tokio::test]
async fn an_erroring_cluster_falls_back_to_the_local_index() {
    let (tier, double) = tier_with_double(Duration::from_secs(5)).await;
    double.set_mode(Mode::Fail);
    let page = tier.search(&python()).await.unwrap();
    assert_eq!(sorted(ids(&page.hits)), [4, 5, 12]);
    assert_eq!(searches(&double), 1, "the remote was tried");
    assert_eq!(tier.fallbacks(), 1);
    let similar = tier.similar(id(4), 5).await.unwrap();
    assert!(ids(&similar).contains(&5));
    assert_eq!(tier.fallbacks(), 2);

    double.set_mode(Mode::Normal);
    tier.search(&python()).await.unwrap();
    assert_eq!(tier.fallbacks(), 2, "a healthy cluster is used again");
}

#[tokio::test]
async fn a_hanging_cluster_falls_back_after_the_client_timeout() {
    let (tier, double) = tier_with_double(Duration::from_millis(300)).await;
    double.set_mode(Mode::Hang);
    let started = Instant::now();
    let page = tier.search(&python()).await.unwrap();
    assert_eq!(sorted(ids(&page.hits)), [4, 5, 12]);
    assert_eq!(tier.fallbacks(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the request timeout"
    );
}

/// A remote backend that never answers.
struct Unresponsive;

#[async_trait]
impl SearchBackend for Unresponsive {
    fn name(&self) -> &'static str {
        "unresponsive"
    }
    async fn upsert(&self, _: &[GigDocument]) -> Result<(), SearchError> {
        std::future::pending().await
    }
    async fn delete(&self, _: &[Uuid]) -> Result<(), SearchError> {
        std::future::pending().await
    }
    async fn search(&self, _: &SearchQuery) -> Result<SearchPage, SearchError> {
        std::future::pending().await
    }
    async fn similar(&self, _: Uuid, _: usize) -> Result<Vec<GigHit>, SearchError> {
        std::future::pending().await
    }
    async fn clear(&self) -> Result<(), SearchError> {
        std::future::pending().await
    }
    async fn count(&self) -> Result<u64, SearchError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn the_tier_bounds_any_remote_with_its_own_timeout() {
    let local = Arc::new(TantivyIndex::in_memory().unwrap());
    local.upsert(&gigs()).await.unwrap();
    let tier = SearchTier::new(local, Some(Arc::new(Unresponsive)))
        .with_remote_timeout(Duration::from_millis(100));
    let page = tier.search(&python()).await.unwrap();
    assert_eq!(sorted(ids(&page.hits)), [4, 5, 12]);
    assert_eq!(tier.fallbacks(), 1);
    // A write that cannot reach the remote is an error for the outbox to retry.
    assert!(matches!(
        tier.upsert(&gigs()[..1]).await,
        Err(SearchError::Timeout)
    ));
}

#[tokio::test]
async fn a_failed_remote_write_is_returned_and_retried_idempotently() {
    let (tier, double) = tier_with_double(Duration::from_secs(5)).await;
    let mut gig = gigs().remove(0);
    gig.gig_id = id(13);
    gig.title = "I will paint a watercolor portrait".into();

    double.set_mode(Mode::Fail);
    match tier.upsert(std::slice::from_ref(&gig)).await {
        Err(SearchError::Remote { status: 500, .. }) => {}
        other => panic!("{other:?}"),
    }
    // The local index already has it (local first), and serves it while the cluster is down.
    let watercolor = SearchQuery {
        text: Some("watercolor".into()),
        ..SearchQuery::default()
    };
    assert_eq!(ids(&tier.search(&watercolor).await.unwrap().hits), [13]);
    assert!(matches!(
        tier.delete(&[id(1)]).await,
        Err(SearchError::Remote { .. })
    ));

    // The outbox retries once the cluster is back.
    double.set_mode(Mode::Normal);
    tier.upsert(std::slice::from_ref(&gig)).await.unwrap();
    tier.delete(&[id(1)]).await.unwrap();
    assert_eq!(tier.local().count().await.unwrap(), 12);
    assert_eq!(double.visible_ids("gigs").len(), 12);
    let fallbacks = tier.fallbacks();
    assert_eq!(ids(&tier.search(&watercolor).await.unwrap().hits), [13]);
    assert_eq!(tier.fallbacks(), fallbacks, "served by the cluster");
}

#[tokio::test]
async fn invalid_queries_fail_without_touching_either_backend() {
    let (tier, double) = tier_with_double(Duration::from_secs(5)).await;
    let bad = SearchQuery {
        cursor: Some("garbage".into()),
        ..SearchQuery::default()
    };
    assert!(tier.search(&bad).await.unwrap_err().is_invalid_query());
    assert!(tier.similar(id(1), 0).await.unwrap_err().is_invalid_query());
    assert!(tier
        .autocomplete("p", 0)
        .await
        .unwrap_err()
        .is_invalid_query());
    assert!(double.requests().is_empty());
    assert_eq!(tier.fallbacks(), 0);
}

#[tokio::test]
async fn without_a_remote_everything_is_local() {
    let local = Arc::new(TantivyIndex::in_memory().unwrap());
    let tier = SearchTier::new(Arc::clone(&local), None);
    tier.upsert(&gigs()).await.unwrap();
    assert_eq!(
        sorted(ids(&tier.search(&python()).await.unwrap().hits)),
        [4, 5, 12]
    );
    assert!(!tier.similar(id(4), 3).await.unwrap().is_empty());
    assert!(tier.remote().is_none());
    assert!(Arc::ptr_eq(tier.local(), &local));
    assert_eq!(tier.fallbacks(), 0);
}
