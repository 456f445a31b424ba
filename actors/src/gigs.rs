//! Starting the gig actors, and the handle the rest of the server uses.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cluster::{LocalPlacement, Placement};
use domain::gig::{Editor, Gig, GigCommand};
use domain::ids::GigId;
use domain::ports::{AccountStore, GigStore, MediaStore};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, RpcReplyPort};
use search::SearchTier;

use crate::gig_shard::{GigShard, GigShardArgs, GigShardMsg, GigShardSnapshot, GigWriteError};
use crate::indexer::{IndexError, IndexerArgs, IndexerExtras, IndexerMsg, SearchIndexer};

pub struct GigActorsConfig {
    pub shards: u32,
    pub cache_per_shard: usize,
    /// How long a caller waits for a shard or the indexer to answer.
    pub call_timeout: Duration,
    pub outbox_poll: Duration,
    pub outbox_batch: u32,
}

impl Default for GigActorsConfig {
    fn default() -> Self {
        Self {
            shards: 64,
            cache_per_shard: 1024,
            call_timeout: Duration::from_secs(10),
            outbox_poll: Duration::from_secs(2),
            outbox_batch: 500,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("starting an actor failed: {0}")]
    Spawn(String),
}

/// The gig shards and the search indexer of this node.
#[derive(Clone)]
pub struct GigActors {
    placement: Arc<LocalPlacement<GigShardMsg>>,
    indexer: ActorRef<IndexerMsg>,
    call_timeout: Duration,
}

impl GigActors {
    pub async fn start(
        config: GigActorsConfig,
        gigs: Arc<dyn GigStore>,
        accounts: Arc<dyn AccountStore>,
        media: Arc<dyn MediaStore>,
        search: Arc<SearchTier>,
        extras: IndexerExtras,
    ) -> Result<Self, StartError> {
        let spawn_error = |e: ractor::SpawnErr| StartError::Spawn(e.to_string());
        let (indexer, _) = Actor::spawn(
            None,
            SearchIndexer,
            IndexerArgs {
                gigs: gigs.clone(),
                accounts,
                search,
                extras,
                poll: config.outbox_poll,
                batch: config.outbox_batch,
            },
        )
        .await
        .map_err(spawn_error)?;
        let mut shards = Vec::new();
        for _ in 0..config.shards.max(1) {
            let (shard, _) = Actor::spawn(
                None,
                GigShard,
                GigShardArgs {
                    store: gigs.clone(),
                    media: media.clone(),
                    indexer: Some(indexer.clone()),
                    cache_capacity: config.cache_per_shard,
                },
            )
            .await
            .map_err(spawn_error)?;
            shards.push(shard);
        }
        tracing::info!(shards = shards.len(), "gig actors started");
        Ok(Self {
            placement: Arc::new(LocalPlacement::new(shards)),
            indexer,
            call_timeout: config.call_timeout,
        })
    }

    /// Applies a command to a gig through its shard.
    pub async fn execute(
        &self,
        gig_id: GigId,
        command: GigCommand,
        actor: impl Into<Editor>,
        now: DateTime<Utc>,
    ) -> Result<Gig, GigWriteError> {
        let actor = actor.into();
        let shard = self
            .placement
            .locate(gig_id.as_uuid())
            .map_err(|_| GigWriteError::Unavailable)?;
        let result = shard
            .call(
                |reply| GigShardMsg::Execute {
                    gig_id,
                    command,
                    actor,
                    now,
                    reply,
                },
                Some(self.call_timeout),
            )
            .await;
        match result {
            Ok(CallResult::Success(result)) => result,
            _ => Err(GigWriteError::Unavailable),
        }
    }

    /// Returns once every write made before the call is in the search index.
    pub async fn flush_index(&self) -> Result<(), IndexError> {
        self.ask_indexer(IndexerMsg::Flush)
            .await
            .unwrap_or(Err(IndexError::Stopped))
    }

    /// What every shard holds, in shard order.
    pub async fn shard_snapshots(&self) -> Vec<Option<GigShardSnapshot>> {
        let mut snapshots = Vec::new();
        for shard in self.placement.actors() {
            let snapshot = match shard
                .call(GigShardMsg::Snapshot, Some(self.call_timeout))
                .await
            {
                Ok(CallResult::Success(snapshot)) => Some(snapshot),
                _ => None,
            };
            snapshots.push(snapshot);
        }
        snapshots
    }

    /// Rebuilds the search index from the database.
    pub async fn rebuild_index(&self) -> Option<Result<u64, IndexError>> {
        self.ask_indexer(IndexerMsg::Rebuild).await
    }

    async fn ask_indexer<T: Send + 'static>(
        &self,
        message: impl FnOnce(RpcReplyPort<T>) -> IndexerMsg,
    ) -> Option<T> {
        match self.indexer.call(message, None).await {
            Ok(CallResult::Success(value)) => Some(value),
            _ => None,
        }
    }

    /// Stops every actor; pending messages are dropped (the outbox keeps
    /// what was not indexed yet).
    pub fn stop(&self) {
        for shard in self.placement.actors() {
            shard.stop(None);
        }
        self.indexer.stop(None);
    }
}
