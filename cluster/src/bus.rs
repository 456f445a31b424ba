//! The live event bus: features publish a user's events, every open session
//! of that user receives them.
//!
//! A subscriber is told each event with [`Subscriber::deliver`], which must
//! not block: sessions put it in their own bounded queue and cut themselves
//! off when it is full, so one slow client never slows a publisher. The
//! in-process [`LocalBus`] keeps the subscribers of each user in one of a
//! fixed number of locked maps; a Redis bus will forward to the pods that
//! hold the user's sessions behind the same trait.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use domain::ids::UserId;
use domain::live::Delivery;
use parking_lot::RwLock;

/// Receives one user's events.
pub trait Subscriber: Send + Sync {
    /// Takes the event without waiting. `false` means the subscriber is gone
    /// (closed or overflowed) and should be dropped.
    fn deliver(&self, delivery: &Arc<Delivery>) -> bool;
}

/// Identifies one subscription, to end it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

/// Carries live events to users' sessions.
pub trait EventBus: Send + Sync {
    fn subscribe(&self, user: UserId, subscriber: Arc<dyn Subscriber>) -> SubscriptionId;
    /// Ending a subscription twice is not an error.
    fn unsubscribe(&self, user: UserId, id: SubscriptionId);
    /// Hands the event to every current subscriber of the user; returns how
    /// many took it.
    fn publish(&self, user: UserId, delivery: Arc<Delivery>) -> usize;
    /// How many subscribers the user has (on this node).
    fn subscribers(&self, user: UserId) -> usize;
}

type Subscribers = HashMap<UserId, Vec<(SubscriptionId, Arc<dyn Subscriber>)>>;

/// The bus of a single node.
pub struct LocalBus {
    shards: Box<[RwLock<Subscribers>]>,
    next_id: AtomicU64,
}

impl LocalBus {
    /// A bus with `shards` independently locked maps (at least one).
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| RwLock::new(HashMap::new()))
                .collect(),
            next_id: AtomicU64::new(1),
        }
    }

    fn shard(&self, user: UserId) -> &RwLock<Subscribers> {
        let index = crate::shard_of(user.as_uuid(), self.shards.len() as u32) as usize;
        // `shard_of` is below the shard count; the first shard is a safe answer otherwise.
        self.shards.get(index).unwrap_or(&self.shards[0])
    }

    /// Users with at least one subscriber.
    pub fn users(&self) -> usize {
        self.shards.iter().map(|shard| shard.read().len()).sum()
    }
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new(64)
    }
}

impl EventBus for LocalBus {
    fn subscribe(&self, user: UserId, subscriber: Arc<dyn Subscriber>) -> SubscriptionId {
        let id = SubscriptionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.shard(user)
            .write()
            .entry(user)
            .or_default()
            .push((id, subscriber));
        id
    }

    fn unsubscribe(&self, user: UserId, id: SubscriptionId) {
        let mut shard = self.shard(user).write();
        if let Some(list) = shard.get_mut(&user) {
            list.retain(|(sid, _)| *sid != id);
            if list.is_empty() {
                shard.remove(&user);
            }
        }
    }

    fn publish(&self, user: UserId, delivery: Arc<Delivery>) -> usize {
        let mut gone = Vec::new();
        let mut delivered = 0;
        {
            let shard = self.shard(user).read();
            for (id, subscriber) in shard.get(&user).into_iter().flatten() {
                if subscriber.deliver(&delivery) {
                    delivered += 1;
                } else {
                    gone.push(*id);
                }
            }
        }
        for id in gone {
            self.unsubscribe(user, id);
        }
        delivered
    }

    fn subscribers(&self, user: UserId) -> usize {
        self.shard(user).read().get(&user).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use domain::ids::ConversationId;
    use domain::live::LiveEvent;

    use super::*;

    #[derive(Default)]
    struct Counter {
        seen: AtomicUsize,
        closed: bool,
    }

    impl Subscriber for Counter {
        fn deliver(&self, _: &Arc<Delivery>) -> bool {
            self.seen.fetch_add(1, Ordering::SeqCst);
            !self.closed
        }
    }

    fn typing() -> Arc<Delivery> {
        Arc::new(Delivery {
            cursor: None,
            event: LiveEvent::Typing {
                conversation_id: ConversationId::new(),
                user_id: UserId::new(),
            },
        })
    }

    #[test]
    fn events_reach_every_session_of_the_user_only() {
        let bus = LocalBus::new(4);
        let (alice, bob) = (UserId::new(), UserId::new());
        let phone = Arc::new(Counter::default());
        let laptop = Arc::new(Counter::default());
        let other = Arc::new(Counter::default());
        bus.subscribe(alice, phone.clone());
        let laptop_id = bus.subscribe(alice, laptop.clone());
        bus.subscribe(bob, other.clone());
        assert_eq!(bus.publish(alice, typing()), 2);
        assert_eq!(phone.seen.load(Ordering::SeqCst), 1);
        assert_eq!(laptop.seen.load(Ordering::SeqCst), 1);
        assert_eq!(other.seen.load(Ordering::SeqCst), 0);

        bus.unsubscribe(alice, laptop_id);
        bus.unsubscribe(alice, laptop_id);
        assert_eq!(bus.publish(alice, typing()), 1);
        assert_eq!(bus.subscribers(alice), 1);
        assert_eq!(bus.users(), 2);
    }

    #[test]
    fn subscribers_that_are_gone_are_dropped() {
        let bus = LocalBus::default();
        let user = UserId::new();
        bus.subscribe(
            user,
            Arc::new(Counter {
                closed: true,
                ..Counter::default()
            }),
        );
        assert_eq!(bus.publish(user, typing()), 0);
        assert_eq!(bus.subscribers(user), 0);
        assert_eq!(bus.publish(UserId::new(), typing()), 0);
    }
}
