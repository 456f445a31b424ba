//! Where actors live.
//!
//! Entities (gigs, later conversations and orders) map to a fixed number of
//! shards by their id; code asks a [`Placement`] for the actor that owns a
//! shard and gets a handle it can send to. On one node every shard is local
//! ([`LocalPlacement`]); with several nodes, shards map to live pods by
//! rendezvous hashing over a membership kept in Redis, behind the same trait.
//!
//! Live events travel to users' sessions over an [`EventBus`], and who is
//! connected is kept by [`Presence`]; both are in-process on one node
//! ([`LocalBus`], [`LocalPresence`]) and go through Redis with several.
//!
//! Layout:
//! - [`shard_of`]: the stable entity-to-shard mapping every node agrees on.
//! - [`Placement`], [`LocalPlacement`]: finding a shard's actor.
//! - [`bus`]: publishing a user's live events to every session of that user.
//! - [`presence`]: which users have a session open.

pub mod bus;
pub mod presence;

pub use bus::{EventBus, LocalBus, Subscriber, SubscriptionId};
pub use presence::{LocalPresence, Presence, PresenceChange};

use ractor::{ActorRef, Message};
use uuid::Uuid;

/// The shard an entity belongs to, out of `shards`: the same on every node
/// and every run, because it only reads the id's random low bits.
pub fn shard_of(id: Uuid, shards: u32) -> u32 {
    let bytes = id.as_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..16]);
    let shards = u64::from(shards.max(1));
    // The remainder is below `shards`, which fits in u32.
    u32::try_from(u64::from_be_bytes(low) % shards).unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("shard {0} has no live owner")]
    Unavailable(u32),
}

/// Finds the actor that owns an entity.
pub trait Placement<M: Message>: Send + Sync {
    fn shards(&self) -> u32;
    fn shard(&self, shard: u32) -> Result<ActorRef<M>, PlacementError>;

    /// The actor owning the entity `id`.
    fn locate(&self, id: Uuid) -> Result<ActorRef<M>, PlacementError> {
        self.shard(shard_of(id, self.shards()))
    }
}

/// One node owns every shard: shard `i` is the `i`-th actor.
pub struct LocalPlacement<M: Message> {
    actors: Vec<ActorRef<M>>,
}

impl<M: Message> LocalPlacement<M> {
    pub fn new(actors: Vec<ActorRef<M>>) -> Self {
        Self { actors }
    }

    pub fn actors(&self) -> &[ActorRef<M>] {
        &self.actors
    }
}

impl<M: Message> Placement<M> for LocalPlacement<M> {
    fn shards(&self) -> u32 {
        u32::try_from(self.actors.len()).unwrap_or(u32::MAX)
    }

    fn shard(&self, shard: u32) -> Result<ActorRef<M>, PlacementError> {
        usize::try_from(shard)
            .ok()
            .and_then(|i| self.actors.get(i))
            .cloned()
            .ok_or(PlacementError::Unavailable(shard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        let id = Uuid::parse_str("01a214d2-977b-707c-94a0-57648f8e6a42").unwrap();
        assert_eq!(shard_of(id, 64), shard_of(id, 64));
        assert_eq!(shard_of(id, 64), (0x94a0_5764_8f8e_6a42u64 % 64) as u32);
        let mut counts = [0u32; 8];
        for _ in 0..8000 {
            counts[shard_of(Uuid::now_v7(), 8) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        assert_eq!(shard_of(id, 0), 0);
    }
}
