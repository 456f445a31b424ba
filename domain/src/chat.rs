//! Conversations between two users and the messages in them.
//!
//! A conversation has exactly two participants and optionally a subject (a
//! gig). Messages are numbered 1, 2, 3, ... per conversation by the
//! conversation's actor; the sender's own id for a message
//! ([`ClientMessageId`]) makes a retried send land once. Each participant has
//! a read pointer (the last sequence number they have read); what lies past it
//! is unread.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, GigId, MessageId, UserId};
use crate::validation::{FieldError, ValidationErrors};

/// Longest message text, in characters.
pub const MAX_MESSAGE_CHARS: usize = 5000;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 5;
/// Longest client message id.
pub const MAX_CLIENT_ID_CHARS: usize = 64;

/// What a conversation is about, besides the two people in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Subject {
    Gig(GigId),
}

impl Subject {
    /// A stable text key, unique per subject (`gig:<uuid>`).
    pub fn key(&self) -> String {
        match self {
            Subject::Gig(id) => format!("gig:{id}"),
        }
    }

    /// Reads a key written by [`Subject::key`].
    pub fn from_key(key: &str) -> Option<Self> {
        let (kind, id) = key.split_once(':')?;
        match kind {
            "gig" => id.parse().ok().map(Subject::Gig),
            _ => None,
        }
    }
}

/// A conversation as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    /// The two participants, lower id first.
    pub participants: [UserId; 2],
    pub subject: Option<Subject>,
    /// The user who started it.
    pub started_by: UserId,
    pub created_at: DateTime<Utc>,
    /// Sequence number of the newest message; 0 when there is none.
    pub last_seq: i64,
    pub last_message_at: Option<DateTime<Utc>>,
}

impl Conversation {
    pub fn is_participant(&self, user: UserId) -> bool {
        self.participants.contains(&user)
    }

    /// The participant who is not `user` (`user` itself if it is not one).
    pub fn other(&self, user: UserId) -> UserId {
        if self.participants[0] == user {
            self.participants[1]
        } else {
            self.participants[0]
        }
    }
}

/// A request to start (or find) the conversation between two users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewConversation {
    pub id: ConversationId,
    pub started_by: UserId,
    pub with: UserId,
    pub subject: Option<Subject>,
    pub now: DateTime<Utc>,
}

impl NewConversation {
    /// The participants in stored order, lower id first.
    pub fn participants(&self) -> [UserId; 2] {
        let (a, b) = (self.started_by, self.with);
        if a <= b {
            [a, b]
        } else {
            [b, a]
        }
    }
}

/// A file attached to a message, kept in the media store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub key: String,
    pub name: String,
    pub content_type: String,
    pub bytes: u64,
}

impl Attachment {
    /// Attachments of a conversation live under this prefix in the media store.
    pub fn prefix(conversation: ConversationId) -> String {
        format!("chat/{conversation}/")
    }

    pub fn belongs_to(&self, conversation: ConversationId) -> bool {
        self.key.starts_with(&Self::prefix(conversation))
    }
}

/// The sender's own id for a message: sending again with the same id is a
/// retry, not a second message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientMessageId(String);

impl ClientMessageId {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_CLIENT_ID_CHARS
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(FieldError::new(
                field,
                "invalid",
                format!("must be 1 to {MAX_CLIENT_ID_CHARS} letters, digits or - _ . : characters"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    /// 1 for the first message of the conversation, then one more each time.
    pub seq: i64,
    pub sender: UserId,
    pub client_id: ClientMessageId,
    pub body: String,
    pub attachments: Vec<Attachment>,
    pub sent_at: DateTime<Utc>,
}

/// What a participant asks to send, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageDraft {
    pub client_id: ClientMessageId,
    pub body: String,
    pub attachments: Vec<Attachment>,
}

impl MessageDraft {
    /// Checks a message: text (trimmed) up to [`MAX_MESSAGE_CHARS`], empty
    /// only when there are attachments; attachments of this conversation only.
    pub fn parse(
        conversation: ConversationId,
        client_id: &str,
        body: &str,
        attachments: Vec<Attachment>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let client_id = errors.check(ClientMessageId::parse("client_id", client_id));
        let body = body.trim().to_string();
        if body.chars().count() > MAX_MESSAGE_CHARS {
            errors.push(FieldError::new(
                "body",
                "too_long",
                format!("must be at most {MAX_MESSAGE_CHARS} characters"),
            ));
        } else if body.is_empty() && attachments.is_empty() {
            errors.push(FieldError::new(
                "body",
                "required",
                "a message needs text or an attachment",
            ));
        }
        if attachments.len() > MAX_ATTACHMENTS {
            errors.push(FieldError::new(
                "attachments",
                "too_many",
                format!("at most {MAX_ATTACHMENTS} attachments"),
            ));
        }
        for (i, attachment) in attachments.iter().enumerate() {
            if !attachment.belongs_to(conversation) {
                errors.push(FieldError::new(
                    format!("attachments[{i}]"),
                    "invalid",
                    "not an attachment uploaded to this conversation",
                ));
            }
        }
        match client_id {
            Some(client_id) if errors.is_empty() => Ok(Self {
                client_id,
                body,
                attachments,
            }),
            _ => Err(errors),
        }
    }
}

/// A participant's place in a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadState {
    pub user_id: UserId,
    pub last_read_seq: i64,
}

/// One line of a user's conversation list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationSummary {
    pub conversation: Conversation,
    /// The viewer's read pointer.
    pub last_read_seq: i64,
    /// The other participant's read pointer (for read receipts).
    pub other_read_seq: i64,
    pub last_message: Option<Message>,
}

impl ConversationSummary {
    pub fn unread(&self) -> i64 {
        (self.conversation.last_seq - self.last_read_seq).max(0)
    }
}

/// Why a chat action was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Unknown, or the caller is not a participant: the two look the same,
    /// so outsiders learn nothing.
    #[error("conversation not found")]
    NotFound,
    #[error("you cannot start a conversation with yourself")]
    WithSelf,
    #[error("that user cannot receive messages")]
    RecipientUnavailable,
    #[error("invalid message")]
    Invalid(ValidationErrors),
}

/// Who may read or write a conversation: its two participants, nobody else.
pub fn authorize(conversation: &Conversation, user: UserId) -> Result<(), ChatError> {
    if conversation.is_participant(user) {
        Ok(())
    } else {
        Err(ChatError::NotFound)
    }
}

/// Where a read pointer moves when `user` reads up to `seq`: only forward,
/// never past the newest message.
pub fn advance_read(current: i64, seq: i64, last_seq: i64) -> Option<i64> {
    let target = seq.min(last_seq);
    (target > current).then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation() -> Conversation {
        let a = UserId::new();
        let b = UserId::new();
        Conversation {
            id: ConversationId::new(),
            participants: if a < b { [a, b] } else { [b, a] },
            subject: None,
            started_by: a,
            created_at: Utc::now(),
            last_seq: 3,
            last_message_at: None,
        }
    }

    #[test]
    fn only_participants_are_authorized() {
        let c = conversation();
        assert!(authorize(&c, c.participants[0]).is_ok());
        assert!(authorize(&c, c.participants[1]).is_ok());
        assert_eq!(authorize(&c, UserId::new()), Err(ChatError::NotFound));
        assert_eq!(c.other(c.participants[0]), c.participants[1]);
    }

    #[test]
    fn drafts_are_checked() {
        let id = ConversationId::new();
        assert!(MessageDraft::parse(id, "m-1", " hi ", vec![]).is_ok());
        assert_eq!(
            MessageDraft::parse(id, "m-1", " hi ", vec![]).unwrap().body,
            "hi"
        );
        assert!(MessageDraft::parse(id, "m-1", "   ", vec![]).is_err());
        assert!(MessageDraft::parse(id, "", "hi", vec![]).is_err());
        assert!(MessageDraft::parse(id, "bad id", "hi", vec![]).is_err());
        let long = "x".repeat(MAX_MESSAGE_CHARS + 1);
        assert!(MessageDraft::parse(id, "m", &long, vec![]).is_err());
        let foreign = Attachment {
            key: format!("{}x", Attachment::prefix(ConversationId::new())),
            name: "a.png".into(),
            content_type: "image/png".into(),
            bytes: 1,
        };
        let errors = MessageDraft::parse(id, "m", "", vec![foreign]).unwrap_err();
        assert_eq!(errors.errors()[0].field, "attachments[0]");
    }

    #[test]
    fn read_pointers_only_move_forward() {
        assert_eq!(advance_read(2, 5, 4), Some(4));
        assert_eq!(advance_read(4, 3, 9), None);
        assert_eq!(advance_read(4, 4, 9), None);
        assert_eq!(advance_read(0, 1, 1), Some(1));
    }

    #[test]
    fn subject_keys_round_trip() {
        let s = Subject::Gig(GigId::new());
        assert_eq!(Subject::from_key(&s.key()), Some(s));
        assert_eq!(Subject::from_key("order:x"), None);
    }
}
