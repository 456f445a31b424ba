//! What the marketplace needs from the outside world. Adapters implement these
//! traits; the gateway holds them as `Arc<dyn Trait>`, chosen by configuration.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::account::{Email, NewUser, ProfileUpdate, User, Username};
use crate::auth::{NewSession, OneTimeToken, Rotation, Session, TokenPurpose};
use crate::chat::{
    Attachment, Conversation, ConversationSummary, Message, NewConversation, ReadState,
};
use crate::gig::{Gig, Taxonomy};
use crate::ids::ItemId;
use crate::ids::{ConversationId, GigId, MessageId, OfferId, OrderId, SessionId, UserId};
use crate::ledger::{Account, Balance, Transaction, Withdrawal, WithdrawalError};
use crate::live::{LiveEvent, StoredEvent};
use crate::mail::{AccountMail, MailCategory};
use crate::moderation::{
    ActionRecord, AuditEntry, AuditFilter, FeedRecord, GigFilter, Item, ItemChange, ItemFilter,
    OrderFilter as ModerationOrderFilter, Totals, UserFilter,
};
use crate::money::Money;
use crate::offer::Offer;
use crate::order::{Order, OrderStatus, Side};
use crate::payment::{
    NewIntent, PaymentError, PaymentEvent, PaymentIntent, ProviderRefund, RefundStatus,
};
use crate::review::{
    RatingSubject, RatingSummary, Review, ReviewCursor, ReviewReply, SellerLevel, SellerRecord,
};
use crate::seller::SellerProfile;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is already taken; names what (`email`, `username`,
    /// `seller_profile`).
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
    /// A versioned write found another version stored: someone else wrote first.
    #[error("the stored version changed")]
    VersionConflict,
    /// The backend failed; the text is for logs, never for clients.
    #[error("storage failed: {0}")]
    Backend(String),
}

/// A seller profile with its bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SellerProfileRecord {
    pub user_id: UserId,
    pub profile: SellerProfile,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Accounts, seller profiles and one-time tokens.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Succeeds when the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores a new account. `Conflict("email")` or `Conflict("username")`
    /// when either is taken, whatever its case.
    async fn create_user(&self, user: &NewUser) -> Result<User, StoreError>;
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError>;
    /// Applies the fields that are set; `NotFound` for an unknown or deleted account.
    async fn update_profile(
        &self,
        id: UserId,
        update: &ProfileUpdate,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError>;
    /// Records the first verification; a second one keeps the first time.
    async fn mark_email_verified(&self, id: UserId, now: DateTime<Utc>) -> Result<(), StoreError>;
    async fn set_password_hash(
        &self,
        id: UserId,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn set_suspended(
        &self,
        id: UserId,
        suspended: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Replaces everything personal with tombstones, deletes the seller
    /// profile and outstanding tokens, and marks the account deleted. The row
    /// and its id stay, so other users' records that point to it stay intact.
    async fn anonymise_user(&self, id: UserId, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// `Conflict("seller_profile")` if the user already has one.
    async fn create_seller_profile(
        &self,
        user_id: UserId,
        profile: &SellerProfile,
        now: DateTime<Utc>,
    ) -> Result<SellerProfileRecord, StoreError>;
    /// `NotFound` if the user has none.
    async fn update_seller_profile(
        &self,
        user_id: UserId,
        profile: &SellerProfile,
        now: DateTime<Utc>,
    ) -> Result<SellerProfileRecord, StoreError>;
    async fn seller_profile(
        &self,
        user_id: UserId,
    ) -> Result<Option<SellerProfileRecord>, StoreError>;

    async fn insert_token(&self, token: &OneTimeToken) -> Result<(), StoreError>;
    /// Marks the token used and returns its owner, if it exists, has this
    /// purpose, is unused and has not expired at `now`. Atomic: of two
    /// concurrent calls with one token, at most one gets the owner.
    async fn consume_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError>;
    /// Invalidates every unused token of this purpose for the user.
    async fn delete_tokens(&self, user_id: UserId, purpose: TokenPurpose)
        -> Result<(), StoreError>;
}

/// Login sessions and their rotating refresh tokens.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, session: &NewSession) -> Result<Session, StoreError>;
    async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError>;
    /// Consumes the presented refresh token and stores `next_token_hash` in
    /// its place, extending the session to `expires_at`. Reuse of a consumed
    /// token revokes the whole session. Atomic per token.
    async fn rotate(
        &self,
        presented_hash: &str,
        next_token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Rotation, StoreError>;
    /// Revokes one session; revoking twice is not an error.
    async fn revoke(&self, id: SessionId, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Revokes the session a refresh token belongs to, returning it.
    async fn revoke_by_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionId>, StoreError>;
    /// Revokes every active session of the user except `except`; returns how many.
    async fn revoke_all_for_user(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Every session of the user, newest first.
    async fn sessions_for_user(&self, user_id: UserId) -> Result<Vec<Session>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
#[error("mail delivery failed: {0}")]
pub struct MailError(pub String);

/// Delivers account e-mails.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, to: &Email, mail: &AccountMail) -> Result<(), MailError>;

    /// [`Mailer::send`] with a stable message id: a mail sent again under
    /// the same `id` (the outbox retrying after a crash) carries the same
    /// `Message-ID`, so receiving systems can drop the repeat. Mailers that
    /// write no MIME message may ignore `id`.
    ///
    /// `unsubscribe`, given for optional mail, is the link that turns its
    /// category off without signing in: it goes into the footer of both
    /// bodies and the `List-Unsubscribe` headers (RFC 8058 one-click).
    async fn send_with_id(
        &self,
        id: uuid::Uuid,
        to: &Email,
        mail: &AccountMail,
        unsubscribe: Option<&str>,
    ) -> Result<(), MailError> {
        let _ = (id, unsubscribe);
        self.send(to, mail).await
    }
}

/// Where an outbox mail stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailStatus {
    /// Waiting for its next attempt (or being sent under a lease).
    Pending,
    Sent,
    /// Given up after the most attempts; kept for inspection.
    Dead,
    /// Not sent: the recipient turned its category off. Final, like sent.
    Skipped,
}

impl MailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::Pending => "pending",
            MailStatus::Sent => "sent",
            MailStatus::Dead => "dead",
            MailStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(MailStatus::Pending),
            "sent" => Some(MailStatus::Sent),
            "dead" => Some(MailStatus::Dead),
            "skipped" => Some(MailStatus::Skipped),
            _ => None,
        }
    }
}

/// A mail in the durable outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedMail {
    /// A UUID v7; also names the message (`Message-ID`) on every attempt.
    pub id: uuid::Uuid,
    /// Chosen by the caller: a second enqueue with the same key writes
    /// nothing (`notice:order:<id>:<version>:<user>`, `account:<uuid>`).
    pub key: String,
    pub to: Email,
    /// The recipient's account, whose e-mail preferences decide, when it
    /// is sent, whether optional mail goes out; `None` sends it as it is.
    pub user_id: Option<UserId>,
    pub mail: AccountMail,
    pub status: MailStatus,
    /// Attempts started so far (a claim counts one).
    pub attempts: u32,
    /// When it may be tried (again).
    pub next_attempt_at: DateTime<Utc>,
    /// Set while a worker holds it; a lease that ran out is free again.
    pub leased_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl QueuedMail {
    /// A new pending mail, due at `now`, for no account in particular
    /// (see [`QueuedMail::for_user`]).
    pub fn new(key: String, to: Email, mail: AccountMail, now: DateTime<Utc>) -> Self {
        Self {
            id: uuid::Uuid::now_v7(),
            key,
            to,
            user_id: None,
            mail,
            status: MailStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            leased_until: None,
            last_error: None,
            created_at: now,
            sent_at: None,
        }
    }

    /// The same mail, to the account `user`.
    pub fn for_user(self, user: UserId) -> Self {
        Self {
            user_id: Some(user),
            ..self
        }
    }
}

/// The durable mail outbox: mail is stored before anyone is told it will
/// be sent, and a worker sends it, retrying, under a lease so that two
/// workers (or two nodes) never send the same mail at once.
#[async_trait]
pub trait MailOutbox: Send + Sync {
    /// Stores `mail` as given; `Ok(false)` and nothing written if its key
    /// is stored already.
    async fn enqueue(&self, mail: &QueuedMail) -> Result<bool, StoreError>;
    /// Up to `limit` pending mails due at `now` (`next_attempt_at <= now`)
    /// and not leased (or whose lease ran out), earliest first.
    async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<QueuedMail>, StoreError>;
    /// Leases a due mail until `lease_until` and counts an attempt, in one
    /// conditional write: of several claims at once exactly one wins and
    /// gets the mail as updated; the others get `None`.
    async fn claim(
        &self,
        id: uuid::Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<QueuedMail>, StoreError>;
    async fn mark_sent(&self, id: uuid::Uuid, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Records the failure and frees the lease; the mail is due again at
    /// `next_attempt_at`.
    async fn mark_failed(
        &self,
        id: uuid::Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Gives up on the mail; it stays stored for inspection.
    async fn mark_dead(&self, id: uuid::Uuid, error: &str) -> Result<(), StoreError>;
    /// Settles a leased mail without sending it (its recipient turned its
    /// category off); it is never due again.
    async fn mark_skipped(&self, id: uuid::Uuid) -> Result<(), StoreError>;
    /// The earliest `next_attempt_at` of a pending, unleased mail.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    async fn mail_by_key(&self, key: &str) -> Result<Option<QueuedMail>, StoreError>;
}

/// Counts failed logins per key (an account, a client address) and blocks a
/// key that failed too often.
#[async_trait]
pub trait LoginLimiter: Send + Sync {
    /// `Err(retry_after)` while the key is blocked.
    async fn check(&self, key: &str, now: DateTime<Utc>) -> Result<(), Duration>;
    async fn record_failure(&self, key: &str, now: DateTime<Utc>);
    /// Forgets the key's failures, after a successful login.
    async fn clear(&self, key: &str);
}

/// The time, so tests can move it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// A gig whose search index entry is out of date, waiting in the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub gig_id: GigId,
    pub created_at: DateTime<Utc>,
}

/// Gigs, the category taxonomy, and the search outbox.
///
/// Every gig write also records the gig in the outbox in the same
/// transaction, so the search index can always catch up with the database.
#[async_trait]
pub trait GigStore: Send + Sync {
    /// The fixed category taxonomy, in display order.
    async fn taxonomy(&self) -> Result<Taxonomy, StoreError>;
    /// The gig, including a deleted one (with `deleted_at` set).
    async fn gig(&self, id: GigId) -> Result<Option<Gig>, StoreError>;
    /// Inserts the gig (`expected_version: None`; `Conflict("gig")` if the id
    /// exists) or replaces it if its stored version is `expected_version`
    /// (else `VersionConflict`; `NotFound` if absent), and appends the gig to
    /// the outbox, atomically.
    async fn save_gig(&self, gig: &Gig, expected_version: Option<i64>) -> Result<(), StoreError>;
    /// The seller's gigs that are not deleted, newest first; only active ones
    /// when `public_only`.
    async fn gigs_by_seller(
        &self,
        seller: UserId,
        public_only: bool,
    ) -> Result<Vec<Gig>, StoreError>;
    /// Up to `limit` gigs (deleted included) with ids above `after`, by id:
    /// pages through everything to rebuild the index.
    async fn gigs_after(&self, after: Option<GigId>, limit: u32) -> Result<Vec<Gig>, StoreError>;
    /// The oldest outbox entries, up to `limit`.
    async fn outbox_pending(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Removes handled entries.
    async fn outbox_ack(&self, ids: &[i64]) -> Result<(), StoreError>;
    /// Appends every gig of the seller that is not deleted to the outbox,
    /// so the index looks at them again (after the seller was suspended or
    /// reinstated); returns how many.
    async fn outbox_enqueue_seller(&self, seller: UserId) -> Result<u64, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The bytes are not an accepted image; the text says why, for the client.
    #[error("{0}")]
    Rejected(String),
    /// The backend failed; for logs only.
    #[error("media storage failed: {0}")]
    Backend(String),
}

/// Where stored media can be read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaLocation {
    /// Serve these bytes.
    Bytes {
        content_type: String,
        bytes: Vec<u8>,
    },
    /// Redirect the client here (a short-lived signed address).
    Redirect(String),
}

/// Stores uploaded media (gig images) by key.
#[async_trait]
pub trait MediaStore: Send + Sync {
    fn name(&self) -> &'static str;
    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), MediaError>;
    async fn fetch(&self, key: &str) -> Result<Option<MediaLocation>, MediaError>;
    /// Deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), MediaError>;
}

/// What storing a message did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Stored now, with the `chat.message` event written to each
    /// participant's log (in participant order).
    New {
        message: Message,
        events: Vec<StoredEvent>,
    },
    /// The sender had already sent a message with this client id in this
    /// conversation: that one, and nothing written.
    Duplicate(Message),
}

/// A page of a user's conversation list: the conversations whose latest
/// activity is before `before` (activity time, then id), newest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConversationPage {
    pub before: Option<(DateTime<Utc>, ConversationId)>,
    pub limit: u32,
}

/// Conversations, messages, read pointers and last-seen times.
///
/// Writes that produce live events append them to the participants' event
/// logs (see [`EventLog`]) in the same transaction, so an event is stored
/// exactly when its change is.
#[async_trait]
pub trait ChatStore: Send + Sync {
    /// The conversation between the two users about the subject: found, or
    /// created with `conversation.started` appended to both participants'
    /// logs (the events are empty when it was found).
    async fn open_conversation(
        &self,
        new: &NewConversation,
    ) -> Result<(Conversation, Vec<StoredEvent>), StoreError>;
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError>;
    /// The user's conversations, latest activity (newest message, else
    /// creation) first.
    async fn conversations_for(
        &self,
        user: UserId,
        page: ConversationPage,
    ) -> Result<Vec<ConversationSummary>, StoreError>;
    /// Stores a message whose `seq` must be the conversation's `last_seq + 1`
    /// (else `VersionConflict`), moves the conversation's `last_seq`, moves
    /// the sender's read pointer to the message, and appends `chat.message`
    /// to both participants' logs, atomically. A repeated client id from the
    /// same sender in the same conversation gives `Duplicate` and writes
    /// nothing. `NotFound` for an unknown conversation.
    async fn append_message(&self, message: &Message) -> Result<Appended, StoreError>;
    /// Up to `limit` messages with `seq` below `before` (or the newest),
    /// newest first.
    async fn history(
        &self,
        conversation: ConversationId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// One message of the conversation.
    async fn message(
        &self,
        conversation: ConversationId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError>;
    /// Both participants' read pointers.
    async fn read_states(&self, conversation: ConversationId)
        -> Result<Vec<ReadState>, StoreError>;
    /// Moves the user's read pointer forward to `seq` (at most the
    /// conversation's `last_seq`) and appends `chat.read` to both
    /// participants' logs; `None` when the pointer would not move forward.
    async fn mark_read(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<(ReadState, Vec<StoredEvent>)>, StoreError>;
    /// Everyone the user has a conversation with, each once.
    async fn contacts(&self, user: UserId) -> Result<Vec<UserId>, StoreError>;
    /// Unread messages over all the user's conversations.
    async fn total_unread(&self, user: UserId) -> Result<i64, StoreError>;
    /// Records a file uploaded to the conversation (its bytes are already in
    /// the media store under [`Attachment::prefix`]).
    async fn add_attachment(
        &self,
        conversation: ConversationId,
        uploader: UserId,
        attachment: &Attachment,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The attachments with these keys that `uploader` uploaded to the
    /// conversation, in the order of `keys`; unknown keys are left out.
    async fn attachments(
        &self,
        conversation: ConversationId,
        uploader: UserId,
        keys: &[String],
    ) -> Result<Vec<Attachment>, StoreError>;
    /// Records when the user was last connected.
    async fn set_last_seen(&self, user: UserId, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// When each of these users was last connected (absent: never).
    async fn last_seen(&self, users: &[UserId])
        -> Result<Vec<(UserId, DateTime<Utc>)>, StoreError>;
}

/// Each user's log of durable live events, numbered by a per-user cursor.
///
/// Cursors are 1, 2, 3, ... per user with no gaps, and a transaction that
/// takes cursor `n` commits before any that takes `n + 1` (the user's head
/// is locked until commit), so a reader that has seen `n + 1` committed can
/// always read `n`.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Appends the event to each user's log in one transaction.
    async fn append(
        &self,
        users: &[UserId],
        event: &LiveEvent,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// Up to `limit` of the user's events with a cursor above `after`,
    /// oldest first.
    async fn events_after(
        &self,
        user: UserId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The user's newest cursor; 0 before the first event.
    async fn head(&self, user: UserId) -> Result<i64, StoreError>;
    /// Deletes events created before `before`; the heads stay, so cursors
    /// never repeat. Returns how many were deleted.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// One notification in a user's list: its cursor in the user's event log,
/// what it says, when it came, and whether the user has read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationItem {
    pub cursor: i64,
    pub notification: crate::live::Notification,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

/// Read state of the notifications in each user's event log (the
/// `notification` events): read one by one, or all up to a cursor. Each
/// mark that changes something appends `notification.read` to the user's
/// own log in the same transaction, so their other sessions agree.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Up to `limit` of the user's notifications with a cursor below
    /// `before` (or the newest), newest first.
    async fn notifications(
        &self,
        user: UserId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<NotificationItem>, StoreError>;
    /// How many of the user's notifications are unread.
    async fn unread_notifications(&self, user: UserId) -> Result<i64, StoreError>;
    /// Marks one notification read. `NotFound` unless `cursor` is one of the
    /// user's notifications; `None` when it was read already (nothing is
    /// written), else the number still unread and the stored event.
    async fn mark_notification_read(
        &self,
        user: UserId,
        cursor: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<(i64, Vec<StoredEvent>)>, StoreError>;
    /// Marks every notification up to `through` read; the mark only moves
    /// forward. Returns how many became read, the number still unread, and
    /// the stored event (none when nothing became read).
    async fn mark_all_notifications_read(
        &self,
        user: UserId,
        through: i64,
        now: DateTime<Utc>,
    ) -> Result<(i64, i64, Vec<StoredEvent>), StoreError>;
}

/// A payment provider: collects an order's total and refunds it.
///
/// Every call that creates something carries an idempotency key, so a
/// retried call (after a timeout, a crash, a retried checkout) never charges
/// or refunds twice. What happened afterwards (a payment succeeded or
/// failed, a refund went through) reaches [`PaymentEvents`], by the same
/// path for every provider.
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// `dev` or `stripe`; stored with each order's intent.
    fn name(&self) -> &'static str;
    /// Creates an intent to collect `intent.amount`; the same idempotency
    /// key returns the same intent.
    async fn create_intent(&self, intent: &NewIntent) -> Result<PaymentIntent, PaymentError>;
    /// Confirms the intent with a payment method (a card token or a test
    /// card number). A decline is `Err(Declined)` and also reported as a
    /// `Failed` event; a success is reported as a `Succeeded` event.
    async fn confirm(
        &self,
        intent_id: &str,
        payment_method: &str,
    ) -> Result<PaymentIntent, PaymentError>;
    /// The intent as the provider has it now.
    async fn intent(&self, intent_id: &str) -> Result<PaymentIntent, PaymentError>;
    /// Refunds `amount` of a succeeded intent; the same idempotency key
    /// returns the same refund.
    async fn refund(
        &self,
        intent_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<ProviderRefund, PaymentError>;
}

/// Where providers' events go: the marketplace applies each once.
#[async_trait]
pub trait PaymentEvents: Send + Sync {
    /// Applies the event (or recognises it as already applied). An error
    /// means it was not applied and the provider should deliver it again.
    async fn received(&self, event: PaymentEvent) -> Result<(), PaymentError>;
}

/// An order checkout's idempotency key: a buyer's retried checkout with the
/// same key and the same request finds the order the first one placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutKey {
    pub buyer_id: UserId,
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// A digest of the request, to tell a retry from a different request
    /// under the same key.
    pub fingerprint: String,
}

/// Live events to store in users' logs in the same transaction as the
/// change they describe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventsFor {
    pub users: Vec<UserId>,
    pub event: LiveEvent,
}

/// A refund the marketplace owes a buyer, to be sent to the provider. It is
/// stored with the order change that decided it, so a crash before the
/// provider is called loses nothing: pending refunds are sent again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRecord {
    pub id: uuid::Uuid,
    pub order_id: OrderId,
    pub provider: String,
    pub intent_id: String,
    pub amount: Money,
    pub status: RefundStatus,
    /// The provider's refund id, once it answered.
    pub provider_refund_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One stored change to an order, written atomically.
#[derive(Clone, Debug)]
pub struct OrderWrite<'a> {
    /// The order after the change. Stored with version `expected_version +
    /// 1`.
    pub order: &'a Order,
    pub expected_version: i64,
    /// Its deadline for the clock after the change.
    pub deadline: Option<DateTime<Utc>>,
    pub transactions: &'a [Transaction],
    /// A refund to send to the provider.
    pub refund: Option<&'a RefundRecord>,
    /// The provider event this change applies: recorded so a second
    /// delivery of it is recognised (`Conflict("payment_event")`, and
    /// nothing is written).
    pub payment_event: Option<&'a PaymentEvent>,
    pub events: &'a [EventsFor],
}

/// A page of orders, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    /// Pass as `before` for the next page; `None` on the last.
    pub next: Option<OrderId>,
}

/// Orders, custom offers, checkout keys, the ledger, refunds and seller
/// withdrawals.
///
/// Every write of an order or an offer checks its version (optimistic
/// concurrency: `VersionConflict` when someone wrote first), and stores its
/// ledger transactions, refunds and live events in the same transaction.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Inserts a newly placed order with its checkout key, its deadline and
    /// its events; for an offer's order, also records the order on the
    /// offer (which must be accepted and have none yet). `Conflict("checkout")`
    /// when the buyer already used the key, `Conflict("offer")` when the offer
    /// already has an order; nothing is written then.
    async fn place_order(
        &self,
        order: &Order,
        key: &CheckoutKey,
        deadline: Option<DateTime<Utc>>,
        events: &[EventsFor],
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The fingerprint and order of a checkout key, if used.
    async fn checkout(
        &self,
        buyer: UserId,
        key: &str,
    ) -> Result<Option<(String, OrderId)>, StoreError>;
    async fn order(&self, id: OrderId) -> Result<Option<Order>, StoreError>;
    /// The order paid (or to be paid) by this intent.
    async fn order_by_intent(
        &self,
        provider: &str,
        intent_id: &str,
    ) -> Result<Option<Order>, StoreError>;
    /// A user's orders as buyer (`Side::Buyer`) or seller, newest first,
    /// optionally only in one status, `limit` at most, older than `before`.
    async fn orders_for(
        &self,
        user: UserId,
        side: Side,
        status: Option<OrderStatus>,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<OrderPage, StoreError>;
    /// Stores a decided change (see [`OrderWrite`]).
    async fn save_order(&self, write: &OrderWrite<'_>) -> Result<Vec<StoredEvent>, StoreError>;
    /// Completed orders that completed after `after` (a completion time and
    /// an order id, exclusive) and at or before `until`, in that order,
    /// `limit` at most.
    async fn completed_between(
        &self,
        after: (DateTime<Utc>, Option<OrderId>),
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError>;
    /// Orders whose deadline is at or before `now`, earliest first.
    async fn due_orders(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<OrderId>, StoreError>;
    /// The earliest deadline of any order or pending offer.
    async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Records a provider event that changes no order (a refund's
    /// confirmation); `false` if it was recorded before.
    async fn record_payment_event(
        &self,
        event: &PaymentEvent,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Refunds not yet accepted by the provider, oldest first.
    async fn pending_refunds(&self, limit: u32) -> Result<Vec<RefundRecord>, StoreError>;
    /// Records the provider's answer to a refund.
    async fn update_refund(
        &self,
        id: uuid::Uuid,
        status: RefundStatus,
        provider_refund_id: Option<&str>,
    ) -> Result<(), StoreError>;
    /// The refunds of an order, oldest first.
    async fn refunds_for(&self, order: OrderId) -> Result<Vec<RefundRecord>, StoreError>;

    /// The ledger transactions of an order, in order.
    async fn transactions_for(&self, order: OrderId) -> Result<Vec<Transaction>, StoreError>;
    /// A seller's pending, available and withdrawn earnings.
    async fn balance(&self, seller: UserId) -> Result<Balance, StoreError>;
    /// The balance of every account that has postings: their sum is zero.
    async fn account_balances(&self) -> Result<Vec<(Account, i64)>, StoreError>;
    /// Records a withdrawal of available earnings, checking the balance in
    /// the same transaction (two withdrawals at once cannot both spend the
    /// same money). `Ok(Err(..))` when the balance does not allow it.
    async fn withdraw(
        &self,
        withdrawal: &Withdrawal,
    ) -> Result<Result<(), WithdrawalError>, StoreError>;
    /// A seller's withdrawals, newest first.
    async fn withdrawals(&self, seller: UserId) -> Result<Vec<Withdrawal>, StoreError>;

    /// Inserts a new offer and its events.
    async fn create_offer(
        &self,
        offer: &Offer,
        events: &[EventsFor],
    ) -> Result<Vec<StoredEvent>, StoreError>;
    async fn offer(&self, id: OfferId) -> Result<Option<Offer>, StoreError>;
    /// The offers of a conversation, newest first.
    async fn offers_in(&self, conversation: ConversationId) -> Result<Vec<Offer>, StoreError>;
    /// Replaces the offer if its stored version is `expected_version`
    /// (stored as `expected_version + 1`), with its events.
    async fn save_offer(
        &self,
        offer: &Offer,
        expected_version: i64,
        events: &[EventsFor],
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// Pending offers past their expiry at `now`.
    async fn due_offers(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<OfferId>, StoreError>;
}

/// The moderation queue, its feed, the audit log, and what admins list.
///
/// The feed is numbered 1, 2, 3, ... without gaps: every write that changes
/// the queue or the audit log appends its events in the same transaction,
/// holding a single head row until commit, so numbers also commit in order.
/// The audit log is append-only: nothing here updates or deletes an entry,
/// and the database refuses to (triggers).
#[async_trait]
pub trait ModerationStore: Send + Sync {
    /// Stores a new item with its `item.raised` event. An item whose
    /// `source_key` is stored already is not raised again (`Ok(None)`). A
    /// report from a reporter who has an unresolved report on the same
    /// target is refused with `Conflict("report")`.
    async fn raise(&self, item: &Item) -> Result<Option<FeedRecord>, StoreError>;
    async fn item(&self, id: ItemId) -> Result<Option<Item>, StoreError>;
    /// Replaces the item if it still has `expected_version`
    /// (`VersionConflict` otherwise, `NotFound` if absent) and appends the
    /// change's event.
    async fn update_item(&self, change: &ItemChange) -> Result<FeedRecord, StoreError>;
    async fn items(&self, filter: &ItemFilter) -> Result<Vec<Item>, StoreError>;
    /// Records an admin action: the audit entry and its `audit.recorded`
    /// event, and the item change if any (all or nothing; the item's
    /// version is checked as in `update_item`). Returns the entry and the
    /// events in feed order.
    async fn record_action(
        &self,
        record: &ActionRecord,
    ) -> Result<(AuditEntry, Vec<FeedRecord>), StoreError>;
    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
    /// The newest feed number (0 before the first event).
    async fn feed_head(&self) -> Result<i64, StoreError>;
    /// Up to `limit` feed events after `after`, in order.
    async fn feed_after(&self, after: i64, limit: u32) -> Result<Vec<FeedRecord>, StoreError>;

    async fn users(&self, filter: &UserFilter) -> Result<Vec<User>, StoreError>;
    async fn gigs(&self, filter: &GigFilter) -> Result<Vec<Gig>, StoreError>;
    async fn orders(&self, filter: &ModerationOrderFilter) -> Result<Vec<Order>, StoreError>;
    /// Totals since `day_start`, and what is open now.
    async fn totals(&self, day_start: DateTime<Utc>) -> Result<Totals, StoreError>;
}

/// Reviews of completed orders, one per side, hidden until both sides have
/// written theirs or the window closes (see [`crate::review`]).
///
/// Implemented on SQL and on DynamoDB; both pass the same suite.
#[async_trait]
pub trait ReviewStore: Send + Sync {
    /// Stores `review` (unpublished). `Conflict("review")` when this side
    /// already reviewed the order, whoever wins a race. When the other side's
    /// review is stored, both are published at `now` in the same write.
    /// Returns the reviews this made visible (none, or both).
    async fn submit(&self, review: &Review, now: DateTime<Utc>) -> Result<Vec<Review>, StoreError>;
    /// Both sides' reviews of an order, published or not.
    async fn reviews_of_order(&self, order: OrderId) -> Result<Vec<Review>, StoreError>;
    /// Publishes up to `limit` hidden reviews whose window closed at or
    /// before `now`, and returns them.
    async fn publish_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Review>, StoreError>;
    /// When the earliest hidden review's window closes.
    async fn next_window_close(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Adds the seller's reply to the buyer's published review of `order`.
    /// `NotFound` when there is no published buyer review;
    /// `Conflict("reply")` when it has a reply already.
    async fn reply(&self, order: OrderId, reply: &ReviewReply) -> Result<Review, StoreError>;
    /// Published reviews counting towards `subject`, newest published
    /// first, after `before`.
    async fn reviews(
        &self,
        subject: RatingSubject,
        before: Option<ReviewCursor>,
        limit: u32,
    ) -> Result<Vec<Review>, StoreError>;
    /// The rating of `subject` over its published reviews.
    async fn rating(&self, subject: RatingSubject) -> Result<RatingSummary, StoreError>;
}

/// Each seller's level, recomputed on a schedule from their record.
#[async_trait]
pub trait SellerLevelStore: Send + Sync {
    /// Users with a seller profile, by id, after `after`.
    async fn sellers_after(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError>;
    /// The seller's record from their orders, chats and profile at `now`;
    /// the rating is left empty (reviews may live in another store).
    async fn seller_record(
        &self,
        seller: UserId,
        now: DateTime<Utc>,
    ) -> Result<SellerRecord, StoreError>;
    /// Stores the seller's level and record; returns the level stored
    /// before, if any.
    async fn set_level(
        &self,
        seller: UserId,
        level: SellerLevel,
        record: &SellerRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<SellerLevel>, StoreError>;
    /// The stored level, record and when it was computed.
    async fn level(&self, seller: UserId) -> Result<Option<StoredLevel>, StoreError>;
}

/// A seller's level as last computed.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredLevel {
    pub level: SellerLevel,
    pub record: SellerRecord,
    pub computed_at: DateTime<Utc>,
}

/// Which optional e-mail each user wants ([`MailCategory`]): every optional
/// category is on until its user turns it off; essential mail (account
/// security, moderation) cannot be turned off.
#[async_trait]
pub trait EmailPreferences: Send + Sync {
    /// The optional categories `user` turned off, in [`MailCategory::ALL`]
    /// order (none for an unknown user).
    async fn disabled_mail(&self, user: UserId) -> Result<Vec<MailCategory>, StoreError>;
    /// Whether mail of `category` goes to `user`: always for essential
    /// categories, otherwise unless they turned it off.
    async fn mail_enabled(&self, user: UserId, category: MailCategory) -> Result<bool, StoreError>;
    /// Turns each listed category on or off for `user`, all at once.
    /// Setting a category as it already is changes nothing. `NotFound` for
    /// an unknown user; turning an essential category off is refused
    /// (`Backend`: callers check [`MailCategory::is_essential`] first).
    async fn set_mail_enabled(
        &self,
        user: UserId,
        changes: &[(MailCategory, bool)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// Links that turn one category of optional mail off for one user without
/// signing in (`<public_url>/unsubscribe?token=...`), signed so that only
/// the marketplace can make them.
pub trait UnsubscribeLinks: Send + Sync {
    fn unsubscribe_link(&self, user: UserId, category: MailCategory) -> String;
}

/// A gig matched against saved searches of one user, to store once per
/// search and gig (see [`SavedStore::record_matches`]).
#[derive(Clone, Debug)]
pub struct MatchWrite<'a> {
    pub user_id: UserId,
    pub gig_id: GigId,
    /// The user's saved searches the gig matches.
    pub searches: &'a [crate::saved::SavedSearchId],
    /// The user's live notification, when one of those searches has alerts
    /// on.
    pub alert: Option<&'a LiveEvent>,
    pub now: DateTime<Utc>,
}

/// A saved search with the digest on, and the gigs it matched since its
/// last digest (gig, matched at), oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestSearch {
    pub search: crate::saved::SavedSearch,
    pub gigs: Vec<(GigId, DateTime<Utc>)>,
}

/// Favourites, saved searches, and what saved searches matched.
///
/// Adding a favourite or a saved search checks the user's limit in the
/// same transaction as the insert, so concurrent adds never pass it.
#[async_trait]
pub trait SavedStore: Send + Sync {
    /// Adds the gig to the user's favourites (`true`), or finds it there
    /// already (`false`, nothing written); `Ok(Err(..))` when the user keeps
    /// `max` already. `NotFound` for an unknown gig or user.
    async fn add_favourite(
        &self,
        user: UserId,
        gig: GigId,
        now: DateTime<Utc>,
        max: u32,
    ) -> Result<Result<(crate::saved::Favourite, bool), crate::saved::LimitReached>, StoreError>;
    /// `false` when the gig was not one of the user's favourites.
    async fn remove_favourite(&self, user: UserId, gig: GigId) -> Result<bool, StoreError>;
    /// Up to `limit` of the user's favourites, newest first, after `before`
    /// (the time and gig of the last one of the previous page).
    async fn favourites(
        &self,
        user: UserId,
        before: Option<(DateTime<Utc>, GigId)>,
        limit: u32,
    ) -> Result<Vec<crate::saved::Favourite>, StoreError>;

    /// Stores a new saved search; `Ok(Err(..))` and nothing written when
    /// its user keeps `max` already.
    async fn create_saved_search(
        &self,
        search: &crate::saved::SavedSearch,
        max: u32,
    ) -> Result<Result<(), crate::saved::LimitReached>, StoreError>;
    async fn saved_search(
        &self,
        id: crate::saved::SavedSearchId,
    ) -> Result<Option<crate::saved::SavedSearch>, StoreError>;
    /// The user's saved searches, newest first.
    async fn saved_searches_of(
        &self,
        user: UserId,
    ) -> Result<Vec<crate::saved::SavedSearch>, StoreError>;
    /// Replaces the name, flags, `updated_at` and `last_digest_at` of the
    /// search, if it belongs to its `user_id`; `NotFound` otherwise.
    async fn update_saved_search(
        &self,
        search: &crate::saved::SavedSearch,
    ) -> Result<(), StoreError>;
    /// Deletes the user's saved search and its matches; `false` when the
    /// user has no such search.
    async fn delete_saved_search(
        &self,
        user: UserId,
        id: crate::saved::SavedSearchId,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` saved searches with alerts or the digest on, by id,
    /// after `after`.
    async fn watching_searches(
        &self,
        after: Option<crate::saved::SavedSearchId>,
        limit: u32,
    ) -> Result<Vec<crate::saved::SavedSearch>, StoreError>;

    /// When each gig first became public: `now` for a gig seen for the
    /// first time (recorded), else the time recorded before. In the order
    /// of `gigs`.
    async fn first_public(
        &self,
        gigs: &[GigId],
        now: DateTime<Utc>,
    ) -> Result<Vec<(GigId, DateTime<Utc>)>, StoreError>;
    /// Stores a match of the gig for each search (a repeated pair writes
    /// nothing). When one of them is new and the user was never alerted to
    /// the gig, also appends `alert` to the user's log in the same
    /// transaction, and returns it stored.
    async fn record_matches(&self, write: &MatchWrite<'_>) -> Result<Vec<StoredEvent>, StoreError>;
    /// Up to `limit` users, by id after `after`, with a saved search that
    /// has the digest on and matched gigs since its last digest.
    async fn digest_users(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError>;
    /// The user's saved searches with the digest on that matched gigs since
    /// their last digest, oldest search first.
    async fn digest_pending(&self, user: UserId) -> Result<Vec<DigestSearch>, StoreError>;
    /// Records that the user's digest covered every match up to `through`
    /// (the digest time of each search with the digest on only moves
    /// forward).
    async fn mark_digested(&self, user: UserId, through: DateTime<Utc>) -> Result<(), StoreError>;
}
