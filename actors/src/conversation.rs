//! Conversation actors: one per active conversation, started on demand by
//! the conversation shard that owns the conversation's id (an
//! [`EntityShard`]) and stopped after a quiet period.
//!
//! The actor serialises the conversation's writes: it gives each message the
//! next sequence number, stores it (with its events, in one transaction)
//! **before** answering, then hands the events to the bus. Its state is a
//! cache of the stored conversation; the store's sequence check keeps two
//! activations (during a membership change) from numbering two messages the
//! same.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::chat::{authorize, ChatError, Conversation, Message, MessageDraft};
use domain::ids::{ConversationId, MessageId, UserId};
use domain::live::LiveEvent;
use domain::ports::{Appended, ChatStore, StoreError};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::entity::{Entity, EntityShard, ShardMsg};

use crate::live::LiveEvents;

/// Why a chat action failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatFailure {
    #[error(transparent)]
    Rule(#[from] ChatError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the chat service is unavailable")]
    Unavailable,
}

/// A stored message, and whether it was stored by an earlier try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub message: Message,
    pub duplicate: bool,
}

pub enum ConversationMsg {
    Send {
        sender: UserId,
        draft: MessageDraft,
        now: DateTime<Utc>,
        reply: RpcReplyPort<Result<Sent, ChatFailure>>,
    },
    Typing {
        user: UserId,
        reply: RpcReplyPort<Result<(), ChatFailure>>,
    },
    /// Move `user`'s read pointer forward to `seq`; answers the pointer.
    Read {
        user: UserId,
        seq: i64,
        now: DateTime<Utc>,
        reply: RpcReplyPort<Result<i64, ChatFailure>>,
    },
    Snapshot(RpcReplyPort<ConversationSnapshot>),
}

/// What a conversation actor holds, for tests and diagnostics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationSnapshot {
    pub last_seq: Option<i64>,
    pub stored: u64,
    pub duplicates: u64,
    pub version_conflicts: u64,
    /// Sends dropped because their caller had stopped waiting.
    pub abandoned: u64,
}

#[derive(Clone)]
pub struct ConversationArgs {
    pub id: ConversationId,
    pub store: Arc<dyn ChatStore>,
    pub live: LiveEvents,
    /// Least time between two typing events of one user reaching the other.
    pub typing_throttle: Duration,
}

pub struct ConversationState {
    args: ConversationArgs,
    conversation: Option<Conversation>,
    last_typing: HashMap<UserId, Instant>,
    stored: u64,
    duplicates: u64,
    version_conflicts: u64,
    abandoned: u64,
}

#[derive(Default)]
pub struct ConversationActor;

impl ConversationState {
    /// The conversation, if `user` takes part in it.
    async fn load_for(&mut self, user: UserId) -> Result<&Conversation, ChatFailure> {
        if self.conversation.is_none() {
            self.conversation = self.args.store.conversation(self.args.id).await?;
        }
        let conversation = self.conversation.as_ref().ok_or(ChatError::NotFound)?;
        authorize(conversation, user)?;
        Ok(conversation)
    }

    async fn send(
        &mut self,
        sender: UserId,
        draft: MessageDraft,
        now: DateTime<Utc>,
    ) -> Result<Sent, ChatFailure> {
        let mut last_seq = self.load_for(sender).await?.last_seq;
        let mut message = Message {
            id: MessageId::new(),
            conversation_id: self.args.id,
            seq: last_seq + 1,
            sender,
            client_id: draft.client_id,
            body: draft.body,
            attachments: draft.attachments,
            sent_at: now,
        };
        let mut retried = false;
        let appended = loop {
            match self.args.store.append_message(&message).await {
                Ok(appended) => break appended,
                Err(StoreError::VersionConflict) if !retried => {
                    // Someone else numbered a message first: read the
                    // stored conversation and try once more.
                    self.version_conflicts += 1;
                    retried = true;
                    self.conversation = None;
                    last_seq = self.load_for(sender).await?.last_seq;
                    message.seq = last_seq + 1;
                    tracing::info!(conversation_id = %self.args.id, "message sequence conflict, retrying from the store");
                }
                Err(error) => {
                    self.conversation = None;
                    return Err(error.into());
                }
            }
        };
        match appended {
            Appended::New { message, events } => {
                self.stored += 1;
                if let Some(conversation) = &mut self.conversation {
                    conversation.last_seq = message.seq;
                    conversation.last_message_at = Some(message.sent_at);
                }
                self.args.live.deliver(&events);
                Ok(Sent {
                    message,
                    duplicate: false,
                })
            }
            Appended::Duplicate(message) => {
                self.duplicates += 1;
                Ok(Sent {
                    message,
                    duplicate: true,
                })
            }
        }
    }

    async fn typing(&mut self, user: UserId) -> Result<(), ChatFailure> {
        let other = self.load_for(user).await?.other(user);
        let now = Instant::now();
        let throttle = self.args.typing_throttle;
        let recent = self
            .last_typing
            .get(&user)
            .is_some_and(|at| now.duration_since(*at) < throttle);
        if !recent {
            self.last_typing.insert(user, now);
            self.args.live.notify(
                other,
                LiveEvent::Typing {
                    conversation_id: self.args.id,
                    user_id: user,
                },
            );
        }
        Ok(())
    }

    async fn read(
        &mut self,
        user: UserId,
        seq: i64,
        now: DateTime<Utc>,
    ) -> Result<i64, ChatFailure> {
        self.load_for(user).await?;
        let store = &self.args.store;
        match store.mark_read(self.args.id, user, seq, now).await? {
            Some((state, events)) => {
                self.args.live.deliver(&events);
                Ok(state.last_read_seq)
            }
            None => Ok(store
                .read_states(self.args.id)
                .await?
                .into_iter()
                .find(|state| state.user_id == user)
                .map_or(0, |state| state.last_read_seq)),
        }
    }
}

impl Actor for ConversationActor {
    type Msg = ConversationMsg;
    type State = ConversationState;
    type Arguments = ConversationArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ConversationArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(ConversationState {
            args,
            conversation: None,
            last_typing: HashMap::new(),
            stored: 0,
            duplicates: 0,
            version_conflicts: 0,
            abandoned: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let failed = match message {
            // A caller that stopped waiting (its timeout passed while the
            // request queued) has been told the outcome is unknown and will
            // retry with the same client id: under overload, shed the work
            // instead of doing it late.
            ConversationMsg::Send { reply, .. } if reply.is_closed() => {
                state.abandoned += 1;
                false
            }
            ConversationMsg::Send {
                sender,
                draft,
                now,
                reply,
            } => answer(reply, state.send(sender, draft, now).await),
            ConversationMsg::Typing { user, reply } => answer(reply, state.typing(user).await),
            ConversationMsg::Read {
                user,
                seq,
                now,
                reply,
            } => answer(reply, state.read(user, seq, now).await),
            ConversationMsg::Snapshot(reply) => {
                let _ = reply.send(ConversationSnapshot {
                    last_seq: state.conversation.as_ref().map(|c| c.last_seq),
                    stored: state.stored,
                    duplicates: state.duplicates,
                    version_conflicts: state.version_conflicts,
                    abandoned: state.abandoned,
                });
                false
            }
        };
        if state.conversation.is_none() && failed {
            // No such conversation (or the store failed before loading it):
            // keep nothing in memory for an id that may be made up.
            myself.stop(None);
        }
        Ok(())
    }
}

/// Sends the result to the caller; whether it was a failure. A caller that
/// gave up waiting is not our failure, so a closed reply port is ignored.
fn answer<T>(reply: RpcReplyPort<Result<T, ChatFailure>>, result: Result<T, ChatFailure>) -> bool {
    let failed = result.is_err();
    let _ = reply.send(result);
    failed
}

impl Entity for ConversationActor {
    type Id = ConversationId;
    const KIND: &'static str = "conversation";

    fn args(template: &ConversationArgs, id: ConversationId) -> ConversationArgs {
        ConversationArgs {
            id,
            ..template.clone()
        }
    }
}

/// The shard that starts conversation actors.
pub type ConversationShard = EntityShard<ConversationActor>;
pub type ConversationShardMsg = ShardMsg<ConversationActor>;
