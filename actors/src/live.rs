//! Publishing live events: durable ones go through the user's event log
//! first (so a reconnecting session can replay them), then onto the bus.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cluster::EventBus;
use domain::ids::UserId;
use domain::live::{Delivery, LiveEvent, StoredEvent};
use domain::ports::{EventLog, StoreError};

/// The one way features tell users' sessions what happened.
#[derive(Clone)]
pub struct LiveEvents {
    log: Arc<dyn EventLog>,
    bus: Arc<dyn EventBus>,
}

impl LiveEvents {
    pub fn new(log: Arc<dyn EventLog>, bus: Arc<dyn EventBus>) -> Self {
        Self { log, bus }
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.bus
    }

    /// Stores a durable event in each user's log, then delivers it.
    pub async fn publish(
        &self,
        users: &[UserId],
        event: LiveEvent,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let stored = self.log.append(users, &event, now).await?;
        self.deliver(&stored);
        Ok(stored)
    }

    /// Delivers events that are already in the users' logs (a store wrote
    /// them in the same transaction as the change they describe).
    pub fn deliver(&self, stored: &[StoredEvent]) {
        for event in stored {
            self.bus
                .publish(event.user_id, Arc::new(Delivery::from(event.clone())));
        }
    }

    /// Delivers an ephemeral event (no cursor, never replayed).
    pub fn notify(&self, user: UserId, event: LiveEvent) {
        self.bus.publish(
            user,
            Arc::new(Delivery {
                cursor: None,
                event,
            }),
        );
    }
}

impl LiveEvents {
    /// Deletes events older than `retention` every `every`, in the
    /// background, for as long as the runtime runs. A client whose cursor
    /// is older than what is kept is told to reload (`cursor_expired`).
    pub fn spawn_pruning(&self, retention: chrono::TimeDelta, every: std::time::Duration) {
        let log = self.log.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match log.prune(Utc::now() - retention).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "old live events pruned"),
                    Err(error) => tracing::warn!(%error, "pruning live events failed"),
                }
            }
        });
    }
}
