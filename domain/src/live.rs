//! Live events: what a user's open sessions are told as it happens.
//!
//! Durable events ([`LiveEvent::is_durable`]) are appended to the user's event
//! log, where each gets the next number of that user's cursor (1, 2, 3, ...
//! with no gaps), and are then published; a client that reconnects with the
//! last cursor it saw receives every later one, in order. Ephemeral events
//! (typing, presence) are only published: they have no cursor, and a client
//! that was away has nothing to catch up on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::chat::{Conversation, Message};
use crate::ids::{ConversationId, GigId, OfferId, OrderId, SessionId, UserId};
use crate::offer::Offer;
use crate::order::{Order, OrderChange};

/// Something that happened that a user's sessions should hear about.
///
/// Stored in the event log as JSON under these tags, so variants may be
/// added but not renamed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum LiveEvent {
    /// A conversation the user takes part in was started.
    #[serde(rename = "conversation.started")]
    ConversationStarted(Conversation),
    /// A new message in one of the user's conversations (their own ones
    /// too, so their other devices see it).
    #[serde(rename = "chat.message")]
    ChatMessage(Message),
    /// A participant's read pointer moved.
    #[serde(rename = "chat.read")]
    ChatRead {
        conversation_id: ConversationId,
        user_id: UserId,
        last_read_seq: i64,
    },
    /// The other participant is typing (ephemeral).
    #[serde(rename = "chat.typing")]
    Typing {
        conversation_id: ConversationId,
        user_id: UserId,
    },
    /// Login sessions of the user ended (logout, password change or
    /// reset, account deleted or suspended): live sockets opened with them
    /// close at once (ephemeral; never shown to clients as an event).
    #[serde(rename = "session.ended")]
    SessionsEnded(EndedSessions),
    /// One of the user's orders changed (either side sees every change).
    #[serde(rename = "order.updated")]
    OrderUpdated {
        change: OrderChange,
        order: Box<Order>,
    },
    /// A custom offer in one of the user's conversations was sent or
    /// answered.
    #[serde(rename = "offer.updated")]
    OfferUpdated(Box<Offer>),
    /// Something the user should know about, for the notification list.
    #[serde(rename = "notification")]
    Notification(Notification),
    /// Notifications of the user were marked read (by one of their
    /// sessions), so their other sessions agree: the cursors marked one by
    /// one, or everything up to `through`, and how many are still unread.
    #[serde(rename = "notification.read")]
    NotificationsRead {
        cursors: Vec<i64>,
        through: Option<i64>,
        unread: i64,
    },
    /// Someone the user talks to came online or went offline (ephemeral).
    #[serde(rename = "presence")]
    Presence {
        user_id: UserId,
        online: bool,
        last_seen_at: Option<DateTime<Utc>>,
    },
}

impl LiveEvent {
    /// Whether the event goes through the user's event log (and so has a
    /// cursor and is replayed on resume).
    pub fn is_durable(&self) -> bool {
        !matches!(
            self,
            LiveEvent::Typing { .. } | LiveEvent::Presence { .. } | LiveEvent::SessionsEnded(_)
        )
    }

    /// The event's type name, as clients see it.
    pub fn kind(&self) -> &'static str {
        match self {
            LiveEvent::ConversationStarted(_) => "conversation.started",
            LiveEvent::ChatMessage(_) => "chat.message",
            LiveEvent::ChatRead { .. } => "chat.read",
            LiveEvent::Typing { .. } => "chat.typing",
            LiveEvent::Presence { .. } => "presence",
            LiveEvent::SessionsEnded(_) => "session.ended",
            LiveEvent::OrderUpdated { .. } => "order.updated",
            LiveEvent::OfferUpdated(_) => "offer.updated",
            LiveEvent::Notification(_) => "notification",
            LiveEvent::NotificationsRead { .. } => "notification.read",
        }
    }
}

/// A notification for one user: what happened, in words, and what it is
/// about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// What happened (`order.delivered`, `offer.received`, ...).
    pub kind: String,
    pub title: String,
    pub body: String,
    pub order_id: Option<OrderId>,
    pub offer_id: Option<OfferId>,
    pub conversation_id: Option<ConversationId>,
    /// The gig it is about (an admin removed or restored it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gig_id: Option<GigId>,
}

/// Which of a user's login sessions ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedSessions {
    One(SessionId),
    /// All of them, except this one if given (the one that changed the
    /// password).
    AllExcept(Option<SessionId>),
}

impl EndedSessions {
    pub fn includes(&self, session: SessionId) -> bool {
        match self {
            EndedSessions::One(id) => *id == session,
            EndedSessions::AllExcept(kept) => *kept != Some(session),
        }
    }
}

/// A durable event in one user's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub user_id: UserId,
    /// Position in the user's log: 1 for the first event, no gaps.
    pub cursor: i64,
    pub event: LiveEvent,
    pub created_at: DateTime<Utc>,
}

/// One event on its way to one user's sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// `None` for ephemeral events.
    pub cursor: Option<i64>,
    pub event: LiveEvent,
}

impl From<StoredEvent> for Delivery {
    fn from(stored: StoredEvent) -> Self {
        Self {
            cursor: Some(stored.cursor),
            event: stored.event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_events_are_not_durable() {
        let typing = LiveEvent::Typing {
            conversation_id: ConversationId::new(),
            user_id: UserId::new(),
        };
        assert!(!typing.is_durable());
        assert_eq!(typing.kind(), "chat.typing");
        let read = LiveEvent::ChatRead {
            conversation_id: ConversationId::new(),
            user_id: UserId::new(),
            last_read_seq: 1,
        };
        assert!(read.is_durable());
        let (one, other) = (SessionId::new(), SessionId::new());
        assert!(EndedSessions::One(one).includes(one));
        assert!(!EndedSessions::One(one).includes(other));
        assert!(EndedSessions::AllExcept(None).includes(one));
        assert!(!EndedSessions::AllExcept(Some(one)).includes(one));
        assert!(EndedSessions::AllExcept(Some(one)).includes(other));
        assert!(!LiveEvent::SessionsEnded(EndedSessions::One(one)).is_durable());
    }
}
