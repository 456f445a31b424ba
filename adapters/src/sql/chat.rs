//! `ChatStore`: conversations, messages, read pointers, attachments and
//! last-seen times.
//!
//! Every write that produces live events appends them with
//! [`append_events`] in its own transaction. Row locks are taken in one
//! order everywhere (the conversation, then a member row, then the event
//! heads), so writers on PostgreSQL queue up instead of deadlocking; on
//! SQLite the write transaction serialises them anyway.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::chat::{
    advance_read, Attachment, Conversation, ConversationSummary, Message, NewConversation,
    ReadState,
};
use domain::ids::{ConversationId, MessageId, UserId};
use domain::live::{LiveEvent, StoredEvent};
use domain::ports::{Appended, ChatStore, ConversationPage, StoreError};
use sqlx::types::Json;
use uuid::Uuid;

use super::live::append_events;
use super::rows::{
    conversation_columns, message_columns, summary_columns, AttachmentRow, ConversationRow,
    MessageRow, ReadStateRow, SummaryRow,
};
use super::{on_pool, store_error, ts, SqlStore};

/// How many values one `IN (...)` list names; far below either backend's
/// limit on bound parameters.
const LIST_CHUNK: usize = 500;

const CONVERSATION_BY_ID: &str = concat!(
    "SELECT ",
    conversation_columns!(),
    " FROM conversations c WHERE c.id = $1"
);

const CONVERSATION_BY_PAIR: &str = concat!(
    "SELECT ",
    conversation_columns!(),
    " FROM conversations c WHERE c.user_a = $1 AND c.user_b = $2 AND c.subject_key = $3"
);

/// Inserts a conversation, or nothing if the pair already has one about the
/// subject (a concurrent open got there first).
const INSERT_CONVERSATION: &str = "INSERT INTO conversations \
     (id, user_a, user_b, subject_key, started_by, created_at, last_activity_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $6) \
     ON CONFLICT (user_a, user_b, subject_key) DO NOTHING";

/// The message a sender already sent with this client id.
const MESSAGE_BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE conversation_id = $1 AND sender_id = $2 AND client_id = $3"
);

/// A user's conversations joined with both memberships and the newest
/// message; `$1` the viewer. Callers add the page condition, the order and
/// the limit.
macro_rules! summaries_from {
    () => {
        concat!(
            "SELECT ",
            summary_columns!(),
            " FROM conversation_members m \
             JOIN conversations c ON c.id = m.conversation_id \
             JOIN conversation_members o \
               ON o.conversation_id = m.conversation_id AND o.user_id <> m.user_id \
             LEFT JOIN messages lm ON lm.conversation_id = c.id AND lm.seq = c.last_seq \
             WHERE m.user_id = $1"
        )
    };
}

const SUMMARIES_FIRST_PAGE: &str = concat!(
    summaries_from!(),
    " ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $2"
);

const SUMMARIES_BEFORE: &str = concat!(
    summaries_from!(),
    " AND (c.last_activity_at, c.id) < ($2, $3) \
     ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $4"
);

#[async_trait]
impl ChatStore for SqlStore {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(conversation_id = %new.id, started_by = %new.started_by, with = %new.with),
        err(level = "debug")
    )]
    async fn open_conversation(
        &self,
        new: &NewConversation,
    ) -> Result<(Conversation, Vec<StoredEvent>), StoreError> {
        if let Some(found) = self.find_conversation(new).await? {
            return Ok((found, Vec::new()));
        }
        let [user_a, user_b] = new.participants();
        let conversation = Conversation {
            id: new.id,
            participants: [user_a, user_b],
            subject: new.subject,
            started_by: new.started_by,
            created_at: ts(new.now),
            last_seq: 0,
            last_message_at: None,
        };
        let inserted = on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let written = sqlx::query(INSERT_CONVERSATION)
                .bind(conversation.id.as_uuid())
                .bind(user_a.as_uuid())
                .bind(user_b.as_uuid())
                .bind(subject_key(new))
                .bind(conversation.started_by.as_uuid())
                .bind(conversation.created_at)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?
                .rows_affected();
            if written == 0 {
                // A concurrent open inserted the conversation since we looked.
                tx.rollback().await.map_err(store_error)?;
                None
            } else {
                sqlx::query(
                    "INSERT INTO conversation_members (conversation_id, user_id) \
                     VALUES ($1, $2), ($1, $3)",
                )
                .bind(conversation.id.as_uuid())
                .bind(user_a.as_uuid())
                .bind(user_b.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
                let event = LiveEvent::ConversationStarted(conversation.clone());
                let events =
                    append_events((&mut *tx).into(), &[user_a, user_b], &event, new.now).await?;
                tx.commit().await.map_err(store_error)?;
                Some(events)
            }
        });
        match inserted {
            Some(events) => Ok((conversation, events)),
            None => match self.find_conversation(new).await? {
                Some(found) => Ok((found, Vec::new())),
                None => Err(StoreError::Backend(format!(
                    "conversation between {user_a} and {user_b} neither inserted nor found"
                ))),
            },
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %id), err(level = "debug"))]
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        let row: Option<ConversationRow> = on_pool!(self, pool => {
            sqlx::query_as(CONVERSATION_BY_ID)
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        row.map(Conversation::try_from).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user, limit = page.limit), err(level = "debug"))]
    async fn conversations_for(
        &self,
        user: UserId,
        page: ConversationPage,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        // Two statements rather than one with `$2 IS NULL OR ...`, so each
        // keeps a simple plan.
        let limit = i64::from(page.limit);
        let rows: Vec<SummaryRow> = on_pool!(self, pool => {
            match page.before {
                None => {
                    sqlx::query_as(SUMMARIES_FIRST_PAGE)
                        .bind(user.as_uuid())
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                }
                Some((at, id)) => {
                    sqlx::query_as(SUMMARIES_BEFORE)
                        .bind(user.as_uuid())
                        .bind(ts(at))
                        .bind(id.as_uuid())
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                }
            }
        })
        .map_err(store_error)?;
        rows.into_iter()
            .map(ConversationSummary::try_from)
            .collect()
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(conversation_id = %message.conversation_id, seq = message.seq, sender = %message.sender),
        err(level = "debug")
    )]
    async fn append_message(&self, message: &Message) -> Result<Appended, StoreError> {
        let message = Message {
            sent_at: ts(message.sent_at),
            ..message.clone()
        };
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            // One statement locks the conversation, checks that the sender
            // takes part and that the message is the next one, and moves the
            // conversation on; concurrent appends queue on the row lock.
            let moved: Option<(Uuid, Uuid)> = sqlx::query_as(
                "UPDATE conversations \
                 SET last_seq = $2, last_message_at = $3, last_activity_at = $3 \
                 WHERE id = $1 AND last_seq = $2 - 1 AND (user_a = $4 OR user_b = $4) \
                 RETURNING user_a, user_b",
            )
            .bind(message.conversation_id.as_uuid())
            .bind(message.seq)
            .bind(message.sent_at)
            .bind(message.sender.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
            let Some((user_a, user_b)) = moved else {
                tx.rollback().await.map_err(store_error)?;
                return self.why_not_appended(&message).await;
            };
            let inserted = sqlx::query(
                "INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, \
                 attachments, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(message.id.as_uuid())
            .bind(message.conversation_id.as_uuid())
            .bind(message.seq)
            .bind(message.sender.as_uuid())
            .bind(message.client_id.as_str())
            .bind(&message.body)
            .bind(Json(&message.attachments))
            .bind(message.sent_at)
            .execute(&mut *tx)
            .await;
            if let Err(error) = inserted {
                tx.rollback().await.map_err(store_error)?;
                let duplicate = matches!(&error, sqlx::Error::Database(db)
                    if db.kind() == sqlx::error::ErrorKind::UniqueViolation);
                if duplicate {
                    // A retry of a message stored before: answer that one.
                    if let Some(existing) = self.message_by_client_id(&message).await? {
                        return Ok(Appended::Duplicate(existing));
                    }
                }
                return Err(store_error(error));
            }
            let participants = [UserId::from_uuid(user_a), UserId::from_uuid(user_b)];
            // The sender has read their own message.
            sqlx::query(
                "UPDATE conversation_members SET last_read_seq = $3 \
                 WHERE conversation_id = $1 AND user_id = $2",
            )
            .bind(message.conversation_id.as_uuid())
            .bind(message.sender.as_uuid())
            .bind(message.seq)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            let event = LiveEvent::ChatMessage(message.clone());
            let events =
                append_events((&mut *tx).into(), &participants, &event, message.sent_at).await?;
            tx.commit().await.map_err(store_error)?;
            Ok(Appended::New { message, events })
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation, before, limit), err(level = "debug"))]
    async fn history(
        &self,
        conversation: ConversationId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let rows: Vec<MessageRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE conversation_id = $1 AND seq < $2 \
                 ORDER BY seq DESC LIMIT $3"
            ))
            .bind(conversation.as_uuid())
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        rows.into_iter().map(Message::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation, message_id = %id), err(level = "debug"))]
    async fn message(
        &self,
        conversation: ConversationId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        let row: Option<MessageRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE conversation_id = $1 AND id = $2"
            ))
            .bind(conversation.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(Message::try_from).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation), err(level = "debug"))]
    async fn read_states(
        &self,
        conversation: ConversationId,
    ) -> Result<Vec<ReadState>, StoreError> {
        let rows: Vec<ReadStateRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT user_id, last_read_seq FROM conversation_members \
                 WHERE conversation_id = $1 ORDER BY user_id",
            )
            .bind(conversation.as_uuid())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %conversation, user_id = %user, seq), err(level = "debug"))]
    async fn mark_read(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<(ReadState, Vec<StoredEvent>)>, StoreError> {
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            // A no-op update: locks the member row, so concurrent moves of
            // one pointer queue up and it never moves backwards.
            let current: Option<(i64,)> = sqlx::query_as(
                "UPDATE conversation_members SET last_read_seq = last_read_seq \
                 WHERE conversation_id = $1 AND user_id = $2 RETURNING last_read_seq",
            )
            .bind(conversation.as_uuid())
            .bind(user.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
            let Some((current,)) = current else {
                tx.rollback().await.map_err(store_error)?;
                return Err(StoreError::NotFound);
            };
            let (user_a, user_b, last_seq): (Uuid, Uuid, i64) = sqlx::query_as(
                "SELECT user_a, user_b, last_seq FROM conversations WHERE id = $1",
            )
            .bind(conversation.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
            let Some(target) = advance_read(current, seq, last_seq) else {
                tx.rollback().await.map_err(store_error)?;
                return Ok(None);
            };
            sqlx::query(
                "UPDATE conversation_members SET last_read_seq = $3 \
                 WHERE conversation_id = $1 AND user_id = $2",
            )
            .bind(conversation.as_uuid())
            .bind(user.as_uuid())
            .bind(target)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            let event = LiveEvent::ChatRead {
                conversation_id: conversation,
                user_id: user,
                last_read_seq: target,
            };
            let participants = [UserId::from_uuid(user_a), UserId::from_uuid(user_b)];
            let events = append_events((&mut *tx).into(), &participants, &event, now).await?;
            tx.commit().await.map_err(store_error)?;
            let state = ReadState {
                user_id: user,
                last_read_seq: target,
            };
            Ok(Some((state, events)))
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user), err(level = "debug"))]
    async fn contacts(&self, user: UserId) -> Result<Vec<UserId>, StoreError> {
        let rows: Vec<(Uuid,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT DISTINCT o.user_id FROM conversation_members m \
                 JOIN conversation_members o \
                   ON o.conversation_id = m.conversation_id AND o.user_id <> m.user_id \
                 WHERE m.user_id = $1 ORDER BY o.user_id",
            )
            .bind(user.as_uuid())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(id,)| UserId::from_uuid(id))
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user), err(level = "debug"))]
    async fn total_unread(&self, user: UserId) -> Result<i64, StoreError> {
        // PostgreSQL sums BIGINTs into a NUMERIC: cast it back.
        let (total,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(CASE WHEN c.last_seq > m.last_read_seq \
                 THEN c.last_seq - m.last_read_seq ELSE 0 END), 0) AS BIGINT) \
                 FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id \
                 WHERE m.user_id = $1",
            )
            .bind(user.as_uuid())
            .fetch_one(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(total)
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(conversation_id = %conversation, uploader = %uploader, key = %attachment.key),
        err(level = "debug")
    )]
    async fn add_attachment(
        &self,
        conversation: ConversationId,
        uploader: UserId,
        attachment: &Attachment,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let bytes = i64::try_from(attachment.bytes).map_err(|_| {
            StoreError::Backend(format!(
                "attachment {:?}: size {} does not fit a BIGINT",
                attachment.key, attachment.bytes
            ))
        })?;
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO chat_attachments \
                 (key, conversation_id, uploader_id, name, content_type, bytes, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&attachment.key)
            .bind(conversation.as_uuid())
            .bind(uploader.as_uuid())
            .bind(&attachment.name)
            .bind(&attachment.content_type)
            .bind(bytes)
            .bind(ts(now))
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(store_error)
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(conversation_id = %conversation, uploader = %uploader, count = keys.len()),
        err(level = "debug")
    )]
    async fn attachments(
        &self,
        conversation: ConversationId,
        uploader: UserId,
        keys: &[String],
    ) -> Result<Vec<Attachment>, StoreError> {
        let mut found: HashMap<String, Attachment> = HashMap::new();
        for chunk in keys.chunks(LIST_CHUNK) {
            let rows: Vec<AttachmentRow> = on_pool!(self, pool => {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT key, name, content_type, bytes FROM chat_attachments \
                     WHERE conversation_id = ",
                );
                query.push_bind(conversation.as_uuid());
                query.push(" AND uploader_id = ");
                query.push_bind(uploader.as_uuid());
                query.push(" AND key IN (");
                let mut list = query.separated(", ");
                for key in chunk {
                    list.push_bind(key);
                }
                query.push(")");
                // The statement's text varies with the chunk's length: do not
                // keep it in the prepared statement cache.
                query
                    .build_query_as()
                    .persistent(false)
                    .fetch_all(pool)
                    .await
                    .map_err(store_error)?
            });
            for row in rows {
                let attachment = Attachment::try_from(row)?;
                found.insert(attachment.key.clone(), attachment);
            }
        }
        Ok(keys.iter().filter_map(|key| found.remove(key)).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user), err(level = "debug"))]
    async fn set_last_seen(&self, user: UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO last_seen (user_id, at) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO UPDATE SET at = excluded.at",
            )
            .bind(user.as_uuid())
            .bind(ts(at))
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(store_error)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(count = users.len()), err(level = "debug"))]
    async fn last_seen(
        &self,
        users: &[UserId],
    ) -> Result<Vec<(UserId, DateTime<Utc>)>, StoreError> {
        let mut found: HashMap<UserId, DateTime<Utc>> = HashMap::new();
        for chunk in users.chunks(LIST_CHUNK) {
            let rows: Vec<(Uuid, DateTime<Utc>)> = on_pool!(self, pool => {
                let mut query =
                    sqlx::QueryBuilder::new("SELECT user_id, at FROM last_seen WHERE user_id IN (");
                let mut list = query.separated(", ");
                for user in chunk {
                    list.push_bind(user.as_uuid());
                }
                query.push(")");
                query
                    .build_query_as()
                    .persistent(false)
                    .fetch_all(pool)
                    .await
                    .map_err(store_error)?
            });
            found.extend(rows.into_iter().map(|(id, at)| (UserId::from_uuid(id), at)));
        }
        // In the order asked, each user once.
        Ok(users
            .iter()
            .filter_map(|user| found.remove(user).map(|at| (*user, at)))
            .collect())
    }
}

impl SqlStore {
    /// The conversation between the pair about the subject, if there is one.
    async fn find_conversation(
        &self,
        new: &NewConversation,
    ) -> Result<Option<Conversation>, StoreError> {
        let [user_a, user_b] = new.participants();
        let row: Option<ConversationRow> = on_pool!(self, pool => {
            sqlx::query_as(CONVERSATION_BY_PAIR)
                .bind(user_a.as_uuid())
                .bind(user_b.as_uuid())
                .bind(subject_key(new))
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        row.map(Conversation::try_from).transpose()
    }
}

/// The stored form of the conversation's subject: its key, or ''.
fn subject_key(new: &NewConversation) -> String {
    new.subject.map(|s| s.key()).unwrap_or_default()
}

impl SqlStore {
    /// The message the sender already sent with this client id, if any.
    async fn message_by_client_id(&self, message: &Message) -> Result<Option<Message>, StoreError> {
        let row: Option<MessageRow> = on_pool!(self, pool => {
            sqlx::query_as(MESSAGE_BY_CLIENT_ID)
                .bind(message.conversation_id.as_uuid())
                .bind(message.sender.as_uuid())
                .bind(message.client_id.as_str())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        row.map(Message::try_from).transpose()
    }

    /// Why a message could not be appended: it is a retry (answered with
    /// the stored message), the conversation is unknown or the sender is not
    /// in it, or another message took its number.
    async fn why_not_appended(&self, message: &Message) -> Result<Appended, StoreError> {
        if let Some(existing) = self.message_by_client_id(message).await? {
            return Ok(Appended::Duplicate(existing));
        }
        match self.conversation(message.conversation_id).await? {
            Some(conversation) if conversation.is_participant(message.sender) => {
                Err(StoreError::VersionConflict)
            }
            _ => Err(StoreError::NotFound),
        }
    }
}
