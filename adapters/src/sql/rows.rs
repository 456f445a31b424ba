//! Rows as the backends return them, and their conversion into domain types.
//! The `FromRow` derives are generic over the row type, so one struct decodes
//! from SQLite and from PostgreSQL.

use chrono::{DateTime, Utc};
use domain::account::{Country, Email, Role, User, Username};
use domain::auth::Session;
use domain::chat::{
    Attachment, ClientMessageId, Conversation, ConversationSummary, Message, ReadState, Subject,
};
use domain::gig::{Faq, Gig, GigContent, GigMedia, GigStatus, Package};
use domain::ids::{
    ConversationId, GigId, ItemId, MessageId, OrderId, SessionId, UserId, WithdrawalId,
};
use domain::ledger::{Account, Posting, Transaction, TransactionKind, Withdrawal};
use domain::live::{LiveEvent, StoredEvent};
use domain::moderation::{AdminAction, AuditEntry, FeedEvent, FeedRecord, Item, Target};
use domain::money::{Currency, Money};
use domain::offer::Offer;
use domain::order::Order;
use domain::payment::RefundStatus;
use domain::ports::{OutboxEntry, RefundRecord, SellerProfileRecord, StoreError};
use domain::seller::{Certificate, Education, Language, SellerProfile};
use sqlx::types::Json;
use uuid::Uuid;

/// The columns of `users`, in `UserRow`'s order.
macro_rules! user_columns {
    () => {
        "id, email, username, password_hash, role, display_name, country, bio, \
         email_verified_at, suspended_at, deleted_at, created_at, updated_at"
    };
}
pub(crate) use user_columns;

/// The columns of `seller_profiles`.
macro_rules! seller_profile_columns {
    () => {
        "user_id, full_name, one_liner, description, languages, skills, education, \
         certificates, links, created_at, updated_at"
    };
}
pub(crate) use seller_profile_columns;

/// The columns of `sessions`.
macro_rules! session_columns {
    () => {
        "id, user_id, created_at, last_used_at, expires_at, revoked_at, user_agent, ip"
    };
}
pub(crate) use session_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    email: String,
    username: String,
    password_hash: String,
    role: String,
    display_name: Option<String>,
    country: Option<String>,
    bio: Option<String>,
    email_verified_at: Option<DateTime<Utc>>,
    suspended_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(User {
            id: UserId::from_uuid(row.id),
            email: Email::from_trusted(row.email),
            username: Username::from_trusted(row.username),
            password_hash: row.password_hash,
            role: row
                .role
                .parse::<Role>()
                .map_err(|e| StoreError::Backend(format!("stored user {}: {e}", row.id)))?,
            display_name: row.display_name,
            country: row.country.map(Country::from_trusted),
            bio: row.bio,
            email_verified_at: row.email_verified_at,
            suspended_at: row.suspended_at,
            deleted_at: row.deleted_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SellerProfileRow {
    user_id: Uuid,
    full_name: String,
    one_liner: String,
    description: String,
    languages: Json<Vec<Language>>,
    skills: Json<Vec<String>>,
    education: Json<Vec<Education>>,
    certificates: Json<Vec<Certificate>>,
    links: Json<Vec<String>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<SellerProfileRow> for SellerProfileRecord {
    fn from(row: SellerProfileRow) -> Self {
        SellerProfileRecord {
            user_id: UserId::from_uuid(row.user_id),
            profile: SellerProfile {
                full_name: row.full_name,
                one_liner: row.one_liner,
                description: row.description,
                languages: row.languages.0,
                skills: row.skills.0,
                education: row.education.0,
                certificates: row.certificates.0,
                links: row.links.0,
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    user_agent: Option<String>,
    ip: Option<String>,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Session {
            id: SessionId::from_uuid(row.id),
            user_id: UserId::from_uuid(row.user_id),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            user_agent: row.user_agent,
            ip: row.ip,
        }
    }
}

/// The columns of `gigs`, in `GigRow`'s order.
macro_rules! gig_columns {
    () => {
        "id, seller_id, title, description, category, subcategory, tags, faq, packages, \
         media, status, version, created_at, updated_at, deleted_at, removed_from"
    };
}
pub(crate) use gig_columns;

/// A JSON column that does not decode fails the whole row with a decode
/// error, which the store reports as `StoreError::Backend`.
#[derive(sqlx::FromRow)]
pub(crate) struct GigRow {
    id: Uuid,
    seller_id: Uuid,
    title: String,
    description: String,
    category: String,
    subcategory: String,
    tags: Json<Vec<String>>,
    faq: Json<Vec<Faq>>,
    packages: Json<Vec<Package>>,
    media: Json<Vec<GigMedia>>,
    status: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    removed_from: Option<String>,
}

impl TryFrom<GigRow> for Gig {
    type Error = StoreError;

    fn try_from(row: GigRow) -> Result<Self, Self::Error> {
        let parse = |status: &str| {
            status.parse::<GigStatus>().map_err(|()| {
                StoreError::Backend(format!("stored gig {}: unknown status {status:?}", row.id))
            })
        };
        let status = parse(&row.status)?;
        let removed_from = row.removed_from.as_deref().map(parse).transpose()?;
        Ok(Gig {
            id: GigId::from_uuid(row.id),
            seller_id: UserId::from_uuid(row.seller_id),
            content: GigContent {
                title: row.title,
                description: row.description,
                category: row.category,
                subcategory: row.subcategory,
                tags: row.tags.0,
                faq: row.faq.0,
                packages: row.packages.0,
            },
            media: row.media.0,
            status,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
            removed_from,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OutboxRow {
    id: i64,
    gig_id: Uuid,
    created_at: DateTime<Utc>,
}

impl From<OutboxRow> for OutboxEntry {
    fn from(row: OutboxRow) -> Self {
        OutboxEntry {
            id: row.id,
            gig_id: GigId::from_uuid(row.gig_id),
            created_at: row.created_at,
        }
    }
}

/// The columns of `conversations` (aliased `c`), in `ConversationRow`'s order.
macro_rules! conversation_columns {
    () => {
        "c.id, c.user_a, c.user_b, c.subject_key, c.started_by, c.created_at, c.last_seq, \
         c.last_message_at"
    };
}
pub(crate) use conversation_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct ConversationRow {
    id: Uuid,
    user_a: Uuid,
    user_b: Uuid,
    subject_key: String,
    started_by: Uuid,
    created_at: DateTime<Utc>,
    last_seq: i64,
    last_message_at: Option<DateTime<Utc>>,
}

impl TryFrom<ConversationRow> for Conversation {
    type Error = StoreError;

    fn try_from(row: ConversationRow) -> Result<Self, Self::Error> {
        let subject = match row.subject_key.as_str() {
            "" => None,
            key => Some(Subject::from_key(key).ok_or_else(|| {
                StoreError::Backend(format!(
                    "stored conversation {}: unknown subject {key:?}",
                    row.id
                ))
            })?),
        };
        Ok(Conversation {
            id: ConversationId::from_uuid(row.id),
            participants: [UserId::from_uuid(row.user_a), UserId::from_uuid(row.user_b)],
            subject,
            started_by: UserId::from_uuid(row.started_by),
            created_at: row.created_at,
            last_seq: row.last_seq,
            last_message_at: row.last_message_at,
        })
    }
}

/// The columns of `messages`, in `MessageRow`'s order.
macro_rules! message_columns {
    () => {
        "id, conversation_id, seq, sender_id, client_id, body, attachments, sent_at"
    };
}
pub(crate) use message_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: Uuid,
    conversation_id: Uuid,
    seq: i64,
    sender_id: Uuid,
    client_id: String,
    body: String,
    attachments: Json<Vec<Attachment>>,
    sent_at: DateTime<Utc>,
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;

    fn try_from(row: MessageRow) -> Result<Self, Self::Error> {
        Ok(Message {
            id: MessageId::from_uuid(row.id),
            conversation_id: ConversationId::from_uuid(row.conversation_id),
            seq: row.seq,
            sender: UserId::from_uuid(row.sender_id),
            client_id: stored_client_id(row.id, &row.client_id)?,
            body: row.body,
            attachments: row.attachments.0,
            sent_at: row.sent_at,
        })
    }
}

fn stored_client_id(message: Uuid, raw: &str) -> Result<ClientMessageId, StoreError> {
    ClientMessageId::parse("client_id", raw).map_err(|_| {
        StoreError::Backend(format!(
            "stored message {message}: invalid client id {raw:?}"
        ))
    })
}

/// The columns of one line of a user's conversation list: the conversation
/// (`c`), the viewer's membership (`m`), the other participant's (`o`) and the
/// newest message (`lm`, absent before the first), in `SummaryRow`'s order.
macro_rules! summary_columns {
    () => {
        concat!(
            $crate::sql::rows::conversation_columns!(),
            ", m.last_read_seq, o.last_read_seq AS other_read_seq, \
             lm.id AS message_id, lm.sender_id AS message_sender_id, \
             lm.client_id AS message_client_id, lm.body AS message_body, \
             lm.attachments AS message_attachments, lm.sent_at AS message_sent_at"
        )
    };
}
pub(crate) use summary_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct SummaryRow {
    #[sqlx(flatten)]
    conversation: ConversationRow,
    last_read_seq: i64,
    other_read_seq: i64,
    message_id: Option<Uuid>,
    message_sender_id: Option<Uuid>,
    message_client_id: Option<String>,
    message_body: Option<String>,
    message_attachments: Option<Json<Vec<Attachment>>>,
    message_sent_at: Option<DateTime<Utc>>,
}

impl TryFrom<SummaryRow> for ConversationSummary {
    type Error = StoreError;

    fn try_from(row: SummaryRow) -> Result<Self, Self::Error> {
        let conversation = Conversation::try_from(row.conversation)?;
        let last_message = match (
            row.message_id,
            row.message_sender_id,
            row.message_client_id,
            row.message_body,
            row.message_attachments,
            row.message_sent_at,
        ) {
            (None, ..) => None,
            (
                Some(id),
                Some(sender),
                Some(client_id),
                Some(body),
                Some(attachments),
                Some(sent_at),
            ) => Some(Message {
                id: MessageId::from_uuid(id),
                conversation_id: conversation.id,
                seq: conversation.last_seq,
                sender: UserId::from_uuid(sender),
                client_id: stored_client_id(id, &client_id)?,
                body,
                attachments: attachments.0,
                sent_at,
            }),
            (Some(id), ..) => {
                return Err(StoreError::Backend(format!(
                    "stored message {id}: a required column is null"
                )))
            }
        };
        Ok(ConversationSummary {
            conversation,
            last_read_seq: row.last_read_seq,
            other_read_seq: row.other_read_seq,
            last_message,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ReadStateRow {
    user_id: Uuid,
    last_read_seq: i64,
}

impl From<ReadStateRow> for ReadState {
    fn from(row: ReadStateRow) -> Self {
        ReadState {
            user_id: UserId::from_uuid(row.user_id),
            last_read_seq: row.last_read_seq,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AttachmentRow {
    key: String,
    name: String,
    content_type: String,
    bytes: i64,
}

impl TryFrom<AttachmentRow> for Attachment {
    type Error = StoreError;

    fn try_from(row: AttachmentRow) -> Result<Self, Self::Error> {
        let bytes = u64::try_from(row.bytes).map_err(|_| {
            StoreError::Backend(format!(
                "stored attachment {:?}: negative size {}",
                row.key, row.bytes
            ))
        })?;
        Ok(Attachment {
            key: row.key,
            name: row.name,
            content_type: row.content_type,
            bytes,
        })
    }
}

/// A payload that does not decode as a `LiveEvent` fails the row with a
/// decode error, which the store reports as `StoreError::Backend`.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    user_id: Uuid,
    cursor: i64,
    payload: Json<LiveEvent>,
    created_at: DateTime<Utc>,
}

impl From<EventRow> for StoredEvent {
    fn from(row: EventRow) -> Self {
        StoredEvent {
            user_id: UserId::from_uuid(row.user_id),
            cursor: row.cursor,
            event: row.payload.0,
            created_at: row.created_at,
        }
    }
}

/// An order: the whole `Order` as JSON, and the `version` column, which is
/// the stored version (the JSON carries the same number).
#[derive(sqlx::FromRow)]
pub(crate) struct OrderRow {
    data: Json<Order>,
    version: i64,
}

impl From<OrderRow> for Order {
    fn from(row: OrderRow) -> Self {
        Order {
            version: row.version,
            ..row.data.0
        }
    }
}

/// An offer, stored as an order is: the JSON and the `version` column.
#[derive(sqlx::FromRow)]
pub(crate) struct OfferRow {
    data: Json<Offer>,
    version: i64,
}

impl From<OfferRow> for Offer {
    fn from(row: OfferRow) -> Self {
        Offer {
            version: row.version,
            ..row.data.0
        }
    }
}

/// A currency code as stored (`Currency::code()`).
fn stored_currency(what: &str, code: &str) -> Result<Currency, StoreError> {
    Currency::parse(code)
        .ok_or_else(|| StoreError::Backend(format!("stored {what}: unknown currency {code:?}")))
}

/// A refund's status as stored.
pub(crate) fn refund_status_str(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::Pending => "pending",
        RefundStatus::Succeeded => "succeeded",
        RefundStatus::Failed => "failed",
    }
}

/// The columns of `refunds`, in `RefundRow`'s order.
macro_rules! refund_columns {
    () => {
        "id, order_id, provider, intent_id, amount_minor, currency, status, \
         provider_refund_id, created_at"
    };
}
pub(crate) use refund_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct RefundRow {
    id: Uuid,
    order_id: Uuid,
    provider: String,
    intent_id: String,
    amount_minor: i64,
    currency: String,
    status: String,
    provider_refund_id: Option<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<RefundRow> for RefundRecord {
    type Error = StoreError;

    fn try_from(row: RefundRow) -> Result<Self, Self::Error> {
        let what = format!("refund {}", row.id);
        let status = [
            RefundStatus::Pending,
            RefundStatus::Succeeded,
            RefundStatus::Failed,
        ]
        .into_iter()
        .find(|status| refund_status_str(*status) == row.status)
        .ok_or_else(|| {
            StoreError::Backend(format!("stored {what}: unknown status {:?}", row.status))
        })?;
        Ok(RefundRecord {
            id: row.id,
            order_id: OrderId::from_uuid(row.order_id),
            provider: row.provider,
            intent_id: row.intent_id,
            amount: Money {
                amount_minor: row.amount_minor,
                currency: stored_currency(&what, &row.currency)?,
            },
            status,
            provider_refund_id: row.provider_refund_id,
            created_at: row.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct WithdrawalRow {
    id: Uuid,
    seller_id: Uuid,
    amount_minor: i64,
    currency: String,
    requested_at: DateTime<Utc>,
}

impl TryFrom<WithdrawalRow> for Withdrawal {
    type Error = StoreError;

    fn try_from(row: WithdrawalRow) -> Result<Self, Self::Error> {
        let what = format!("withdrawal {}", row.id);
        Ok(Withdrawal {
            id: WithdrawalId::from_uuid(row.id),
            seller_id: UserId::from_uuid(row.seller_id),
            amount: Money {
                amount_minor: row.amount_minor,
                currency: stored_currency(&what, &row.currency)?,
            },
            requested_at: row.requested_at,
        })
    }
}

/// One posting of a ledger transaction, with its transaction's columns; a
/// transaction without postings has one row with `account` NULL.
#[derive(sqlx::FromRow)]
pub(crate) struct LedgerRow {
    pub(crate) id: i64,
    kind: String,
    order_id: Option<Uuid>,
    withdrawal_id: Option<Uuid>,
    currency: String,
    created_at: DateTime<Utc>,
    account: Option<String>,
    amount_minor: Option<i64>,
}

impl LedgerRow {
    /// The transaction of this row, without postings.
    pub(crate) fn transaction(&self) -> Result<Transaction, StoreError> {
        let what = format!("ledger transaction {}", self.id);
        Ok(Transaction {
            kind: self
                .kind
                .parse::<TransactionKind>()
                .map_err(|e| StoreError::Backend(format!("stored {what}: {e}")))?,
            order_id: self.order_id.map(OrderId::from_uuid),
            withdrawal_id: self.withdrawal_id.map(WithdrawalId::from_uuid),
            currency: stored_currency(&what, &self.currency)?,
            postings: Vec::new(),
            at: self.created_at,
        })
    }

    /// The posting of this row, if the transaction has one.
    pub(crate) fn posting(&self) -> Result<Option<Posting>, StoreError> {
        match (&self.account, self.amount_minor) {
            (Some(account), Some(amount_minor)) => Ok(Some(Posting {
                account: account.parse::<Account>().map_err(|e| {
                    StoreError::Backend(format!("stored ledger transaction {}: {e}", self.id))
                })?,
                amount_minor,
            })),
            _ => Ok(None),
        }
    }
}

/// A queue item, stored as an order is: the whole `Item` as JSON and the
/// `version` column.
#[derive(sqlx::FromRow)]
pub(crate) struct ItemRow {
    data: Json<Item>,
    version: i64,
}

impl From<ItemRow> for Item {
    fn from(row: ItemRow) -> Self {
        Item {
            version: row.version,
            ..row.data.0
        }
    }
}

/// The columns of `audit_log`, in `AuditRow`'s order.
macro_rules! audit_columns {
    () => {
        "id, admin_id, action, target, reason, details, item_id, at"
    };
}
pub(crate) use audit_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: i64,
    admin_id: Uuid,
    action: String,
    target: Json<Target>,
    reason: String,
    details: Option<String>,
    item_id: Option<Uuid>,
    at: DateTime<Utc>,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<Self, Self::Error> {
        let action = row.action.parse::<AdminAction>().map_err(|()| {
            StoreError::Backend(format!(
                "stored audit entry {}: unknown action {:?}",
                row.id, row.action
            ))
        })?;
        Ok(AuditEntry {
            id: row.id,
            admin_id: UserId::from_uuid(row.admin_id),
            action,
            target: row.target.0,
            reason: row.reason,
            details: row.details,
            item_id: row.item_id.map(ItemId::from_uuid),
            at: row.at,
        })
    }
}

/// A payload that does not decode as a `FeedEvent` fails the row with a
/// decode error, which the store reports as `StoreError::Backend`.
#[derive(sqlx::FromRow)]
pub(crate) struct FeedRow {
    seq: i64,
    payload: Json<FeedEvent>,
    created_at: DateTime<Utc>,
}

impl From<FeedRow> for FeedRecord {
    fn from(row: FeedRow) -> Self {
        FeedRecord {
            seq: row.seq,
            at: row.created_at,
            event: row.payload.0,
        }
    }
}
