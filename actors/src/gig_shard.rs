//! The gig shard actor: every write to a gig goes through the actor of the
//! gig's shard, so writes to one gig are serialised on one node, and the
//! version check in the store keeps two activations (during a membership
//! change) from overwriting each other.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::gig::{decide, Editor, Gig, GigCommand, GigError};
use domain::ids::GigId;
use domain::ports::{GigStore, MediaStore, StoreError};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::indexer::IndexerMsg;

/// Why a gig write failed.
#[derive(Debug, thiserror::Error)]
pub enum GigWriteError {
    #[error(transparent)]
    Rule(#[from] GigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the gig service is unavailable")]
    Unavailable,
}

// Nearly every message is an `Execute`; boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum GigShardMsg {
    /// Apply `command` to gig `gig_id` on behalf of `actor`.
    Execute {
        gig_id: GigId,
        command: GigCommand,
        actor: Editor,
        now: DateTime<Utc>,
        reply: RpcReplyPort<Result<Gig, GigWriteError>>,
    },
    /// What the shard holds, for tests and diagnostics.
    Snapshot(RpcReplyPort<GigShardSnapshot>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GigShardSnapshot {
    pub cached: usize,
    pub writes: u64,
    pub version_conflicts: u64,
}

pub struct GigShardArgs {
    pub store: Arc<dyn GigStore>,
    pub media: Arc<dyn MediaStore>,
    pub indexer: Option<ActorRef<IndexerMsg>>,
    /// Gigs kept in memory; past this the cache starts over.
    pub cache_capacity: usize,
}

pub struct GigShardState {
    args: GigShardArgs,
    cache: HashMap<GigId, Gig>,
    writes: u64,
    version_conflicts: u64,
}

pub struct GigShard;

impl GigShardState {
    async fn load(&mut self, id: GigId) -> Result<Option<Gig>, StoreError> {
        if let Some(gig) = self.cache.get(&id) {
            return Ok(Some(gig.clone()));
        }
        self.args.store.gig(id).await
    }

    async fn execute(
        &mut self,
        id: GigId,
        command: GigCommand,
        actor: Editor,
        now: DateTime<Utc>,
    ) -> Result<Gig, GigWriteError> {
        let cached = self.cache.contains_key(&id);
        let current = self.load(id).await?;
        let mut change = match decide(current.as_ref(), command.clone(), actor, now) {
            Ok(change) => change,
            // The cache may be behind a write made elsewhere (another
            // activation of this shard): judge again against the store.
            Err(_) if cached => {
                self.cache.remove(&id);
                let current = self.args.store.gig(id).await?;
                decide(current.as_ref(), command.clone(), actor, now)?
            }
            Err(error) => return Err(error.into()),
        };
        match self
            .args
            .store
            .save_gig(&change.gig, change.expected_version)
            .await
        {
            Ok(()) => {}
            Err(StoreError::VersionConflict) => {
                // Another writer got there first: start again from the
                // stored gig, once.
                self.version_conflicts += 1;
                self.cache.remove(&id);
                tracing::info!(gig_id = %id, "gig version conflict, retrying from the store");
                let current = self.args.store.gig(id).await?;
                change = decide(current.as_ref(), command, actor, now)?;
                self.args
                    .store
                    .save_gig(&change.gig, change.expected_version)
                    .await?;
            }
            Err(error) => {
                self.cache.remove(&id);
                return Err(error.into());
            }
        }
        self.writes += 1;
        if self.cache.len() >= self.args.cache_capacity {
            self.cache.clear();
        }
        self.cache.insert(id, change.gig.clone());
        for media in change.removed_media {
            let store = self.args.media.clone();
            tokio::spawn(async move {
                if let Err(error) = store.delete(&media.key).await {
                    tracing::warn!(%error, key = %media.key, "deleting gig media failed");
                }
            });
        }
        if let Some(indexer) = &self.args.indexer {
            // The outbox holds the change durably; this only wakes the indexer.
            let _ = indexer.cast(IndexerMsg::Kick);
        }
        Ok(change.gig)
    }
}

impl Actor for GigShard {
    type Msg = GigShardMsg;
    type State = GigShardState;
    type Arguments = GigShardArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: GigShardArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(GigShardState {
            args,
            cache: HashMap::new(),
            writes: 0,
            version_conflicts: 0,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            GigShardMsg::Execute {
                gig_id,
                command,
                actor,
                now,
                reply,
            } => {
                let result = state.execute(gig_id, command, actor, now).await;
                if let Err(GigWriteError::Store(error)) = &result {
                    tracing::error!(%error, %gig_id, "gig write failed");
                }
                // The caller may have given up waiting; that is not our failure.
                let _ = reply.send(result);
            }
            GigShardMsg::Snapshot(reply) => {
                let _ = reply.send(GigShardSnapshot {
                    cached: state.cache.len(),
                    writes: state.writes,
                    version_conflicts: state.version_conflicts,
                });
            }
        }
        Ok(())
    }
}
