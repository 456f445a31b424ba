//! Starting the conversation shards, and the chat handle the gateway calls
//! for every chat action, over the socket or REST alike.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cluster::{LocalPlacement, Placement, Presence, PresenceChange};
use domain::chat::{
    authorize, ChatError, Conversation, ConversationSummary, Message, MessageDraft,
    NewConversation, ReadState, Subject,
};
use domain::ids::{ConversationId, UserId};
use domain::live::LiveEvent;
use domain::ports::{AccountStore, ChatStore, ConversationPage};
use ractor::rpc::CallResult;
use ractor::{Actor, RpcReplyPort};
use tokio::sync::mpsc;

use crate::conversation::{
    ChatFailure, ConversationArgs, ConversationMsg, ConversationShard, ConversationShardMsg, Sent,
};
use crate::entity::ShardArgs;
use crate::gigs::StartError;
use crate::live::LiveEvents;

pub struct ChatConfig {
    pub shards: u32,
    /// A conversation actor quiet for this long is stopped.
    pub idle: Duration,
    pub typing_throttle: Duration,
    /// How long a caller waits for a conversation actor to answer.
    pub call_timeout: Duration,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            shards: 64,
            idle: Duration::from_secs(300),
            typing_throttle: Duration::from_secs(3),
            call_timeout: Duration::from_secs(10),
        }
    }
}

/// Conversations, messages, read pointers and presence.
#[derive(Clone)]
pub struct ChatService {
    placement: Arc<LocalPlacement<ConversationShardMsg>>,
    store: Arc<dyn ChatStore>,
    accounts: Arc<dyn AccountStore>,
    live: LiveEvents,
    presence: Arc<dyn Presence>,
    /// Presence changes to store and announce, one at a time.
    presence_jobs: mpsc::UnboundedSender<PresenceJob>,
    call_timeout: Duration,
}

/// A user came online or went offline.
struct PresenceJob {
    user: UserId,
    online: bool,
    /// When they went offline.
    at: Option<DateTime<Utc>>,
}

/// Stores last-seen times and tells contacts, one change after another: when
/// thousands of sessions close at once (a pod restarting, a network
/// blip), their database work queues here instead of crowding the pool.
/// Each session adds at most two jobs, so the queue is bounded by the
/// sessions there are.
async fn announce_presence(
    mut jobs: mpsc::UnboundedReceiver<PresenceJob>,
    store: Arc<dyn ChatStore>,
    live: LiveEvents,
    presence: Arc<dyn Presence>,
) {
    while let Some(job) = jobs.recv().await {
        let user = job.user;
        if let Some(at) = job.at {
            if let Err(error) = store.set_last_seen(user, at).await {
                tracing::warn!(%error, user_id = %user, "storing last seen failed");
            }
        }
        let contacts = match store.contacts(user).await {
            Ok(contacts) => contacts,
            Err(error) => {
                tracing::warn!(%error, user_id = %user, "reading contacts for presence failed");
                continue;
            }
        };
        for contact in contacts {
            if presence.is_online(contact) {
                live.notify(
                    contact,
                    LiveEvent::Presence {
                        user_id: user,
                        online: job.online,
                        last_seen_at: job.at,
                    },
                );
            }
        }
    }
}

impl ChatService {
    pub async fn start(
        config: ChatConfig,
        store: Arc<dyn ChatStore>,
        accounts: Arc<dyn AccountStore>,
        live: LiveEvents,
        presence: Arc<dyn Presence>,
    ) -> Result<Self, StartError> {
        let template = ConversationArgs {
            id: ConversationId::new(),
            store: store.clone(),
            live: live.clone(),
            typing_throttle: config.typing_throttle,
        };
        let mut shards = Vec::new();
        for _ in 0..config.shards.max(1) {
            let (shard, _) = Actor::spawn(
                None,
                ConversationShard::default(),
                ShardArgs {
                    template: template.clone(),
                    idle: config.idle,
                },
            )
            .await
            .map_err(|e| StartError::Spawn(e.to_string()))?;
            shards.push(shard);
        }
        let (presence_jobs, jobs) = mpsc::unbounded_channel();
        tokio::spawn(announce_presence(
            jobs,
            store.clone(),
            live.clone(),
            presence.clone(),
        ));
        Ok(Self {
            placement: Arc::new(LocalPlacement::new(shards)),
            store,
            accounts,
            live,
            presence,
            presence_jobs,
            call_timeout: config.call_timeout,
        })
    }

    pub fn live(&self) -> &LiveEvents {
        &self.live
    }

    pub fn presence(&self) -> &Arc<dyn Presence> {
        &self.presence
    }

    pub fn store(&self) -> &Arc<dyn ChatStore> {
        &self.store
    }

    /// Finds or starts the conversation between `by` and `with` about
    /// `subject`; `true` when it was started now. The caller has checked
    /// that the subject exists.
    pub async fn open(
        &self,
        by: UserId,
        with: UserId,
        subject: Option<Subject>,
        now: DateTime<Utc>,
    ) -> Result<(Conversation, bool), ChatFailure> {
        if with == by {
            return Err(ChatError::WithSelf.into());
        }
        let other = self.accounts.user_by_id(with).await?;
        if !other.is_some_and(|user| user.can_sign_in()) {
            return Err(ChatError::RecipientUnavailable.into());
        }
        let (conversation, events) = self
            .store
            .open_conversation(&NewConversation {
                id: ConversationId::new(),
                started_by: by,
                with,
                subject,
                now,
            })
            .await?;
        self.live.deliver(&events);
        Ok((conversation, !events.is_empty()))
    }

    /// The conversation, if `user` takes part in it.
    pub async fn conversation(
        &self,
        id: ConversationId,
        user: UserId,
    ) -> Result<Conversation, ChatFailure> {
        let conversation = self
            .store
            .conversation(id)
            .await?
            .ok_or(ChatError::NotFound)?;
        authorize(&conversation, user)?;
        Ok(conversation)
    }

    /// One line of `user`'s conversation list.
    pub async fn summary(
        &self,
        id: ConversationId,
        user: UserId,
    ) -> Result<ConversationSummary, ChatFailure> {
        let conversation = self.conversation(id, user).await?;
        let states = self.store.read_states(id).await?;
        let pointer = |who: UserId| {
            states
                .iter()
                .find(|s| s.user_id == who)
                .map_or(0, |s| s.last_read_seq)
        };
        let last_message = if conversation.last_seq > 0 {
            self.store
                .history(id, Some(conversation.last_seq + 1), 1)
                .await?
                .pop()
        } else {
            None
        };
        Ok(ConversationSummary {
            last_read_seq: pointer(user),
            other_read_seq: pointer(conversation.other(user)),
            last_message,
            conversation,
        })
    }

    pub async fn list(
        &self,
        user: UserId,
        page: ConversationPage,
    ) -> Result<Vec<ConversationSummary>, ChatFailure> {
        Ok(self.store.conversations_for(user, page).await?)
    }

    /// Messages before `before` (newest first) and both read pointers.
    pub async fn history(
        &self,
        id: ConversationId,
        user: UserId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Message>, Vec<ReadState>), ChatFailure> {
        self.conversation(id, user).await?;
        let messages = self.store.history(id, before, limit).await?;
        let states = self.store.read_states(id).await?;
        Ok((messages, states))
    }

    /// Stores the message through the conversation's actor; answers once it
    /// is stored.
    pub async fn send(
        &self,
        id: ConversationId,
        sender: UserId,
        draft: MessageDraft,
        now: DateTime<Utc>,
    ) -> Result<Sent, ChatFailure> {
        self.ask(id, |reply| ConversationMsg::Send {
            sender,
            draft,
            now,
            reply,
        })
        .await
    }

    pub async fn typing(&self, id: ConversationId, user: UserId) -> Result<(), ChatFailure> {
        self.ask(id, |reply| ConversationMsg::Typing { user, reply })
            .await
    }

    /// Moves the user's read pointer forward; answers where it is.
    pub async fn read(
        &self,
        id: ConversationId,
        user: UserId,
        seq: i64,
        now: DateTime<Utc>,
    ) -> Result<i64, ChatFailure> {
        self.ask(id, |reply| ConversationMsg::Read {
            user,
            seq,
            now,
            reply,
        })
        .await
    }

    async fn ask<T: Send + 'static>(
        &self,
        id: ConversationId,
        message: impl FnOnce(RpcReplyPort<Result<T, ChatFailure>>) -> ConversationMsg,
    ) -> Result<T, ChatFailure> {
        let shard = self
            .placement
            .locate(id.as_uuid())
            .map_err(|_| ChatFailure::Unavailable)?;
        let result = shard
            .call(
                |reply| ConversationShardMsg::Route(id, message(reply)),
                Some(self.call_timeout),
            )
            .await;
        match result {
            Ok(CallResult::Success(result)) => result,
            _ => Err(ChatFailure::Unavailable),
        }
    }

    /// A session of `user` opened. When it is their first, the people they
    /// talk to who are online hear that they are (in the background).
    pub fn connected(&self, user: UserId) {
        if self.presence.connected(user) == PresenceChange::CameOnline {
            let _ = self.presence_jobs.send(PresenceJob {
                user,
                online: true,
                at: None,
            });
        }
    }

    /// A session of `user` closed. When it was their last, their last-seen
    /// time is stored and the people they talk to hear it (in the background).
    pub fn disconnected(&self, user: UserId, now: DateTime<Utc>) {
        if self.presence.disconnected(user) == PresenceChange::WentOffline {
            let _ = self.presence_jobs.send(PresenceJob {
                user,
                online: false,
                at: Some(now),
            });
        }
    }

    /// Whether each user is online, and when each offline one was last seen.
    pub async fn presence_of(
        &self,
        users: &[UserId],
    ) -> Result<Vec<(UserId, bool, Option<DateTime<Utc>>)>, ChatFailure> {
        let seen = self.store.last_seen(users).await?;
        Ok(users
            .iter()
            .map(|user| {
                let online = self.presence.is_online(*user);
                let at = seen.iter().find(|(id, _)| id == user).map(|(_, at)| *at);
                (*user, online, at)
            })
            .collect())
    }

    /// Conversation actors running, over all shards.
    pub async fn active_conversations(&self) -> usize {
        let mut total = 0;
        for shard in self.placement.actors() {
            if let Ok(CallResult::Success(n)) = shard
                .call(ConversationShardMsg::Active, Some(self.call_timeout))
                .await
            {
                total += n;
            }
        }
        total
    }

    pub fn stop(&self) {
        for shard in self.placement.actors() {
            shard.stop(None);
        }
    }
}
