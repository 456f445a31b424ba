//! Entity shards: one actor per active entity (a conversation, an order),
//! started on demand by the shard that owns the entity's id and drained
//! after a quiet period.
//!
//! A shard routes each message to its entity's actor, starting one if none
//! runs. Entity actors are linked to their shard, which forgets them when
//! they stop or fail; the next message starts a fresh one, which reloads
//! from the store. Placement (which node runs which shard) is the cluster
//! layer's business; a shard only knows its own entities.

use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

/// An actor that stands for one entity.
pub trait Entity: Actor<Arguments: Clone> + Default {
    type Id: Copy + Eq + Hash + std::fmt::Display + Send + Sync + 'static;
    /// For logs: `conversation`, `order`.
    const KIND: &'static str;
    /// The arguments for the entity `id`, from the shard's template.
    fn args(template: &Self::Arguments, id: Self::Id) -> Self::Arguments;
}

pub enum ShardMsg<A: Entity> {
    /// Deliver a message to the entity's actor, starting it if needed.
    Route(A::Id, A::Msg),
    /// Stop the actors that have been quiet for the idle period.
    Sweep,
    /// How many entity actors the shard runs.
    Active(RpcReplyPort<usize>),
}

pub struct ShardArgs<A: Entity> {
    pub template: A::Arguments,
    pub idle: Duration,
}

struct Child<M> {
    actor: ActorRef<M>,
    last_used: Instant,
}

pub struct ShardState<A: Entity> {
    args: ShardArgs<A>,
    children: HashMap<A::Id, Child<A::Msg>>,
}

/// Owns the entities of one shard and starts their actors on demand.
pub struct EntityShard<A>(PhantomData<fn() -> A>);

impl<A> Default for EntityShard<A> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<A: Entity> Actor for EntityShard<A> {
    type Msg = ShardMsg<A>;
    type State = ShardState<A>;
    type Arguments = ShardArgs<A>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ShardArgs<A>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let every = (args.idle / 2).max(Duration::from_millis(100));
        myself.send_interval(every, || ShardMsg::Sweep);
        Ok(ShardState {
            args,
            children: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ShardMsg::Route(id, message) => {
                let now = Instant::now();
                if let Some(child) = state.children.get_mut(&id) {
                    child.last_used = now;
                    if let Err(error) = child.actor.cast(message) {
                        // Stopping between our lookup and the send: start a
                        // fresh one for this message.
                        state.children.remove(&id);
                        if let ractor::MessagingErr::SendErr(message) = error {
                            spawn_child(&myself, state, id, message, now).await;
                        }
                    }
                } else {
                    spawn_child(&myself, state, id, message, now).await;
                }
            }
            ShardMsg::Sweep => {
                let idle = state.args.idle;
                let now = Instant::now();
                state.children.retain(|_, child| {
                    let keep = now.duration_since(child.last_used) < idle;
                    if !keep {
                        // Finishes what is queued, then stops.
                        let _ = child.actor.drain();
                    }
                    keep
                });
            }
            ShardMsg::Active(reply) => {
                let _ = reply.send(state.children.len());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let who = match event {
            SupervisionEvent::ActorTerminated(who, _, _) => who,
            SupervisionEvent::ActorFailed(who, error) => {
                tracing::error!(%error, kind = A::KIND, "entity actor failed");
                who
            }
            _ => return Ok(()),
        };
        state
            .children
            .retain(|_, child| child.actor.get_id() != who.get_id());
        Ok(())
    }
}

async fn spawn_child<A: Entity>(
    myself: &ActorRef<ShardMsg<A>>,
    state: &mut ShardState<A>,
    id: A::Id,
    message: A::Msg,
    now: Instant,
) {
    let args = A::args(&state.args.template, id);
    match Actor::spawn_linked(None, A::default(), args, myself.get_cell()).await {
        Ok((actor, _)) => {
            if actor.cast(message).is_ok() {
                state.children.insert(
                    id,
                    Child {
                        actor,
                        last_used: now,
                    },
                );
            }
        }
        // The message (and its reply port) is dropped: the caller sees the
        // service as unavailable.
        Err(error) => {
            tracing::error!(%error, kind = A::KIND, id = %id, "starting an entity actor failed")
        }
    }
}
