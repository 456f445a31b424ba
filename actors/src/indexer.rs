//! The search indexer: makes the search tier follow the database.
//!
//! Gig writes append to the outbox in the same transaction as the gig. This
//! actor drains the outbox (when a shard kicks it, and on a timer, so a
//! failed or missed drain is retried), turns each gig into a search document
//! or a deletion, and acknowledges the entries only after the search tier
//! accepted them. A crash between the two just indexes the gig again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::gig::{Gig, Taxonomy};
use domain::ids::{GigId, UserId};
use domain::ports::{AccountStore, GigStore, StoreError};
use domain::review::{RatingSummary, SellerLevel as Level};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use search::{GigDocument, SearchBackend as _, SearchError, SearchTier, SellerLevel};

pub enum IndexerMsg {
    /// Something was written: drain the outbox now.
    Kick,
    /// Periodic retry.
    Tick,
    /// Empty the index and rebuild it from every gig in the database;
    /// replies with how many gigs are searchable.
    Rebuild(RpcReplyPort<Result<u64, IndexError>>),
    /// Drain, then reply: the index reflects every write made before this.
    Flush(RpcReplyPort<Result<(), IndexError>>),
    Snapshot(RpcReplyPort<IndexerSnapshot>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexerSnapshot {
    pub indexed: u64,
    pub removed: u64,
    pub failures: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("the search indexer is not running")]
    Stopped,
}

/// What a gig's document takes from outside the gig: the gig's rating and
/// its seller's level.
#[async_trait]
pub trait GigSignals: Send + Sync {
    async fn gig_rating(&self, gig: GigId) -> Result<RatingSummary, StoreError>;
    async fn seller_level(&self, seller: UserId) -> Result<Level, StoreError>;
}

/// No reviews and every seller new.
pub struct NoSignals;

#[async_trait]
impl GigSignals for NoSignals {
    async fn gig_rating(&self, _gig: GigId) -> Result<RatingSummary, StoreError> {
        Ok(RatingSummary::default())
    }

    async fn seller_level(&self, _seller: UserId) -> Result<Level, StoreError> {
        Ok(Level::New)
    }
}

/// Hears of the documents the search tier accepted, right after it did.
/// Must not block: hand the work to an actor or a task.
pub trait IndexListener: Send + Sync {
    fn indexed(&self, documents: &[GigDocument]);
}

/// What the indexer reads besides gigs and accounts, and who hears of what
/// it indexed.
#[derive(Clone)]
pub struct IndexerExtras {
    pub signals: Arc<dyn GigSignals>,
    pub listener: Option<Arc<dyn IndexListener>>,
}

impl Default for IndexerExtras {
    fn default() -> Self {
        Self {
            signals: Arc::new(NoSignals),
            listener: None,
        }
    }
}

pub struct IndexerArgs {
    pub gigs: Arc<dyn GigStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub search: Arc<SearchTier>,
    pub extras: IndexerExtras,
    /// How often the outbox is polled even without kicks.
    pub poll: Duration,
    pub batch: u32,
}

pub struct IndexerState {
    args: IndexerArgs,
    taxonomy: Taxonomy,
    snapshot: IndexerSnapshot,
}

pub struct SearchIndexer;

/// Seller details that go into every document of the seller's gigs.
struct SellerInfo {
    username: String,
    name: String,
    level: SellerLevel,
}

impl IndexerState {
    async fn seller(
        &self,
        sellers: &mut HashMap<UserId, Option<Arc<SellerInfo>>>,
        id: UserId,
    ) -> Result<Option<Arc<SellerInfo>>, IndexError> {
        if let Some(known) = sellers.get(&id) {
            return Ok(known.clone());
        }
        let user = self.args.accounts.user_by_id(id).await?;
        let info = match user.filter(|u| u.can_sign_in()) {
            Some(user) => {
                let profile = self.args.accounts.seller_profile(id).await?;
                let name = user
                    .display_name
                    .clone()
                    .or_else(|| profile.map(|p| p.profile.full_name))
                    .unwrap_or_else(|| user.username.to_string());
                let level = self.args.extras.signals.seller_level(id).await?;
                Some(Arc::new(SellerInfo {
                    username: user.username.to_string(),
                    name,
                    level: search_level(level),
                }))
            }
            None => None,
        };
        sellers.insert(id, info.clone());
        Ok(info)
    }

    /// Sends these gigs to the search tier: public ones as documents, the
    /// rest (and gigs of sellers who can no longer sign in) as deletions.
    async fn apply(&mut self, gigs: Vec<(GigId, Option<Gig>)>) -> Result<(), IndexError> {
        let mut sellers = HashMap::new();
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        for (id, gig) in gigs {
            let public = match gig {
                Some(gig) if gig.is_public() => Some(gig),
                _ => None,
            };
            let document = match public {
                Some(gig) => match self.seller(&mut sellers, gig.seller_id).await? {
                    Some(seller) => {
                        let rating = self.args.extras.signals.gig_rating(gig.id).await?;
                        Some(document(&gig, &self.taxonomy, &seller, &rating))
                    }
                    None => None,
                },
                None => None,
            };
            match document {
                Some(document) => upserts.push(document),
                None => deletes.push(id.as_uuid()),
            }
        }
        if !upserts.is_empty() {
            self.args.search.upsert(&upserts).await?;
            if let Some(listener) = &self.args.extras.listener {
                listener.indexed(&upserts);
            }
        }
        if !deletes.is_empty() {
            self.args.search.delete(&deletes).await?;
        }
        self.snapshot.indexed += upserts.len() as u64;
        self.snapshot.removed += deletes.len() as u64;
        Ok(())
    }

    async fn drain(&mut self) -> Result<(), IndexError> {
        loop {
            let entries = self.args.gigs.outbox_pending(self.args.batch).await?;
            if entries.is_empty() {
                return Ok(());
            }
            let mut seen = HashSet::new();
            let mut gigs = Vec::new();
            for entry in &entries {
                if seen.insert(entry.gig_id) {
                    gigs.push((entry.gig_id, self.args.gigs.gig(entry.gig_id).await?));
                }
            }
            self.apply(gigs).await?;
            let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
            self.args.gigs.outbox_ack(&ids).await?;
        }
    }

    async fn rebuild(&mut self) -> Result<u64, IndexError> {
        let search = &self.args.search;
        search.local().clear().await?;
        if let Some(remote) = search.remote() {
            remote.clear().await?;
        }
        let mut after = None;
        loop {
            let page = self.args.gigs.gigs_after(after, self.args.batch).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            self.apply(page.into_iter().map(|g| (g.id, Some(g))).collect())
                .await?;
        }
        // Entries written meanwhile are applied again; that is harmless.
        self.drain().await?;
        let count = self.args.search.local().count().await?;
        tracing::info!(searchable = count, "search index rebuilt from the database");
        Ok(count)
    }

    async fn drain_logged(&mut self) -> Result<(), IndexError> {
        let result = self.drain().await;
        if let Err(error) = &result {
            self.snapshot.failures += 1;
            tracing::warn!(%error, "indexing from the outbox failed, will retry");
        }
        result
    }
}

fn search_level(level: Level) -> SellerLevel {
    match level {
        Level::New => SellerLevel::New,
        Level::Level1 => SellerLevel::Level1,
        Level::Level2 => SellerLevel::Level2,
        Level::TopRated => SellerLevel::TopRated,
    }
}

/// The search document of a public gig.
fn document(
    gig: &Gig,
    taxonomy: &Taxonomy,
    seller: &SellerInfo,
    rating: &RatingSummary,
) -> GigDocument {
    let (price_min, price_max) = gig.price_range();
    let content = &gig.content;
    let category = taxonomy.category(&content.category);
    let subcategory = taxonomy.subcategory(&content.category, &content.subcategory);
    GigDocument {
        gig_id: gig.id.as_uuid(),
        title: content.title.clone(),
        description: content.description.clone(),
        tags: content.tags.clone(),
        category: content.category.clone(),
        category_name: category.map_or_else(String::new, |c| c.name.clone()),
        subcategory: content.subcategory.clone(),
        subcategory_name: subcategory.map_or_else(String::new, |s| s.name.clone()),
        seller_id: gig.seller_id.as_uuid(),
        seller_username: seller.username.clone(),
        seller_name: seller.name.clone(),
        seller_level: seller.level,
        price_min,
        price_max,
        delivery_days_min: gig.fastest_delivery_days(),
        rating_avg: rating.average(),
        rating_count: rating.count,
        image_url: gig.media.first().map(|m| format!("/media/{}", m.key)),
        created_at: gig.created_at,
    }
}

impl Actor for SearchIndexer {
    type Msg = IndexerMsg;
    type State = IndexerState;
    type Arguments = IndexerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: IndexerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let taxonomy = args.gigs.taxonomy().await?;
        myself.send_interval(args.poll, || IndexerMsg::Tick);
        let _ = myself.cast(IndexerMsg::Kick);
        Ok(IndexerState {
            args,
            taxonomy,
            snapshot: IndexerSnapshot {
                indexed: 0,
                removed: 0,
                failures: 0,
            },
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            IndexerMsg::Kick | IndexerMsg::Tick => {
                let _ = state.drain_logged().await;
            }
            IndexerMsg::Flush(reply) => {
                let _ = reply.send(state.drain_logged().await);
            }
            IndexerMsg::Rebuild(reply) => {
                let result = state.rebuild().await;
                if let Err(error) = &result {
                    state.snapshot.failures += 1;
                    tracing::error!(%error, "rebuilding the search index failed");
                }
                let _ = reply.send(result);
            }
            IndexerMsg::Snapshot(reply) => {
                let _ = reply.send(state.snapshot.clone());
            }
        }
        Ok(())
    }
}
