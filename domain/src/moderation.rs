//! Moderation: the queue of things that need an admin's eye, the reports
//! users file, claims on queue items, and the append-only audit log of
//! admin actions.
//!
//! Every change to the queue is a [`FeedEvent`] with the next number of one
//! marketplace-wide sequence, so an admin who reconnects with the last
//! number it saw receives everything it missed, in order.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::account::Role;
use crate::gig::GigStatus;
use crate::ids::{ConversationId, GigId, ItemId, MessageId, OrderId, UserId};
use crate::money::Money;
use crate::order::OrderStatus;
use crate::validation::{text, FieldError, ValidationErrors};

/// What a queue item, a report or an admin action is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    User {
        id: UserId,
    },
    Gig {
        id: GigId,
    },
    Message {
        id: MessageId,
        conversation_id: ConversationId,
    },
    Order {
        id: OrderId,
    },
}

impl Target {
    /// `user`, `gig`, `message` or `order`: the stored `target_type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::User { .. } => "user",
            Target::Gig { .. } => "gig",
            Target::Message { .. } => "message",
            Target::Order { .. } => "order",
        }
    }

    /// The target's own id: the stored `target_id`.
    pub fn id(&self) -> uuid::Uuid {
        match self {
            Target::User { id } => id.as_uuid(),
            Target::Gig { id } => id.as_uuid(),
            Target::Message { id, .. } => id.as_uuid(),
            Target::Order { id } => id.as_uuid(),
        }
    }
}

/// Why an item is in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A seller published a gig (created it active, or published a draft).
    GigPublished,
    /// A seller edited a published gig.
    GigEdited,
    /// A chat message the automatic checks flagged.
    MessageFlagged,
    /// A user reported a gig, a user or a message.
    Report,
    DisputeOpened,
    PaymentFailed,
    /// Money went back to a buyer.
    Refund,
}

impl ItemKind {
    pub const ALL: [ItemKind; 7] = [
        ItemKind::GigPublished,
        ItemKind::GigEdited,
        ItemKind::MessageFlagged,
        ItemKind::Report,
        ItemKind::DisputeOpened,
        ItemKind::PaymentFailed,
        ItemKind::Refund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::GigPublished => "gig_published",
            ItemKind::GigEdited => "gig_edited",
            ItemKind::MessageFlagged => "message_flagged",
            ItemKind::Report => "report",
            ItemKind::DisputeOpened => "dispute_opened",
            ItemKind::PaymentFailed => "payment_failed",
            ItemKind::Refund => "refund",
        }
    }
}

impl FromStr for ItemKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Open,
    /// An admin is working on it; other admins leave it alone.
    Claimed,
    Resolved,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Open => "open",
            ItemStatus::Claimed => "claimed",
            ItemStatus::Resolved => "resolved",
        }
    }
}

impl FromStr for ItemStatus {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "open" => Ok(Self::Open),
            "claimed" => Ok(Self::Claimed),
            "resolved" => Ok(Self::Resolved),
            _ => Err(()),
        }
    }
}

/// Why a user reported something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportReason {
    Spam,
    Fraud,
    /// Taking the deal off the platform (contact details, outside payment).
    OffPlatform,
    Inappropriate,
    IntellectualProperty,
    Other,
}

impl ReportReason {
    pub const ALL: [ReportReason; 6] = [
        ReportReason::Spam,
        ReportReason::Fraud,
        ReportReason::OffPlatform,
        ReportReason::Inappropriate,
        ReportReason::IntellectualProperty,
        ReportReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportReason::Spam => "spam",
            ReportReason::Fraud => "fraud",
            ReportReason::OffPlatform => "off_platform",
            ReportReason::Inappropriate => "inappropriate",
            ReportReason::IntellectualProperty => "intellectual_property",
            ReportReason::Other => "other",
        }
    }
}

impl FromStr for ReportReason {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or(())
    }
}

/// A report as a user files it, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportDraft {
    pub target: Target,
    pub reason: ReportReason,
    pub details: String,
}

impl ReportDraft {
    pub const MAX_DETAILS: usize = 2000;

    /// Checks the report: orders are not reported (they have disputes),
    /// nobody reports themselves, and `other` needs details.
    pub fn parse(
        reporter: UserId,
        target: Target,
        reason: ReportReason,
        details: &str,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if let Target::Order { .. } = target {
            errors.push(FieldError::new(
                "target",
                "invalid",
                "orders are not reported; open a dispute on the order instead",
            ));
        }
        if target == (Target::User { id: reporter }) {
            errors.push(FieldError::new(
                "target",
                "invalid",
                "you cannot report yourself",
            ));
        }
        let min = usize::from(reason == ReportReason::Other);
        let details = errors.check(text("details", details, min, Self::MAX_DETAILS));
        errors.finish(|| {
            Some(Self {
                target,
                reason,
                details: details?,
            })
        })
    }
}

/// One thing in the moderation queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: ItemId,
    pub kind: ItemKind,
    pub target: Target,
    /// The user the item is about: the gig's seller, the message's sender,
    /// the reported user or the owner of the reported thing, the order's
    /// buyer for payments and refunds, the side that opened a dispute.
    pub subject_user: Option<UserId>,
    /// One line for the queue, e.g. "Dispute opened on order ...".
    pub summary: String,
    /// The text that raised it: the flagged message, the report's details,
    /// the dispute's reason, the gig's title.
    pub excerpt: Option<String>,
    /// What the automatic checks found (`email`, `phone`, `link`,
    /// `handle`, `word:<listed word>`).
    pub flags: Vec<String>,
    /// For reports: who filed it and why.
    pub reporter: Option<UserId>,
    pub reason: Option<ReportReason>,
    /// For payments and refunds.
    pub amount: Option<Money>,
    /// Makes raising idempotent: an item with a key already stored is not
    /// raised again (e.g. `dispute:<order>:<version>`, `report:<id>`).
    pub source_key: String,
    pub status: ItemStatus,
    pub claimed_by: Option<UserId>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<UserId>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// What was done: the admin action, or `dismissed`.
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// 1 when raised; every change adds one.
    pub version: i64,
}

/// What a new item needs; the rest starts empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewItem {
    pub kind: ItemKind,
    pub target: Target,
    pub subject_user: Option<UserId>,
    pub summary: String,
    pub excerpt: Option<String>,
    pub flags: Vec<String>,
    pub reporter: Option<UserId>,
    pub reason: Option<ReportReason>,
    pub amount: Option<Money>,
    pub source_key: String,
}

/// Longest excerpt kept on an item, in characters.
pub const MAX_EXCERPT: usize = 2000;

impl Item {
    pub fn raise(new: NewItem, now: DateTime<Utc>) -> Self {
        Self {
            id: ItemId::new(),
            kind: new.kind,
            target: new.target,
            subject_user: new.subject_user,
            summary: new.summary,
            excerpt: new
                .excerpt
                .map(|text| text.chars().take(MAX_EXCERPT).collect()),
            flags: new.flags,
            reporter: new.reporter,
            reason: new.reason,
            amount: new.amount,
            source_key: new.source_key,
            status: ItemStatus::Open,
            claimed_by: None,
            claimed_at: None,
            resolved_by: None,
            resolved_at: None,
            outcome: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// The admin claims the item. Claiming one's own claim again is a
    /// no-op (`Ok(None)`).
    pub fn claim(&self, admin: UserId, now: DateTime<Utc>) -> Result<Option<Item>, ClaimError> {
        match self.status {
            ItemStatus::Resolved => Err(ClaimError::Resolved),
            ItemStatus::Claimed if self.claimed_by == Some(admin) => Ok(None),
            ItemStatus::Claimed => Err(ClaimError::ClaimedBy(self.claimed_by)),
            ItemStatus::Open => {
                let mut next = self.next(now);
                next.status = ItemStatus::Claimed;
                next.claimed_by = Some(admin);
                next.claimed_at = Some(now);
                Ok(Some(next))
            }
        }
    }

    /// The claimer lets go of the item. Releasing an open item is a no-op.
    pub fn release(&self, admin: UserId, now: DateTime<Utc>) -> Result<Option<Item>, ClaimError> {
        match self.status {
            ItemStatus::Resolved => Err(ClaimError::Resolved),
            ItemStatus::Open => Ok(None),
            ItemStatus::Claimed if self.claimed_by != Some(admin) => {
                Err(ClaimError::ClaimedBy(self.claimed_by))
            }
            ItemStatus::Claimed => {
                let mut next = self.next(now);
                next.status = ItemStatus::Open;
                next.claimed_by = None;
                next.claimed_at = None;
                Ok(Some(next))
            }
        }
    }

    /// The admin closes the item with `outcome`. An item another admin
    /// claimed is theirs to close.
    pub fn resolve(
        &self,
        admin: UserId,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<Item, ClaimError> {
        match self.status {
            ItemStatus::Resolved => Err(ClaimError::Resolved),
            ItemStatus::Claimed if self.claimed_by != Some(admin) => {
                Err(ClaimError::ClaimedBy(self.claimed_by))
            }
            ItemStatus::Open | ItemStatus::Claimed => {
                let mut next = self.next(now);
                next.status = ItemStatus::Resolved;
                next.resolved_by = Some(admin);
                next.resolved_at = Some(now);
                next.outcome = Some(outcome.to_string());
                Ok(next)
            }
        }
    }

    fn next(&self, now: DateTime<Utc>) -> Item {
        let mut next = self.clone();
        next.version += 1;
        next.updated_at = now;
        next
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("the item is already resolved")]
    Resolved,
    #[error("another admin has claimed the item")]
    ClaimedBy(Option<UserId>),
}

/// Something every admin's feed is told, in one marketplace-wide order.
///
/// Stored as JSON under these tags, so variants may be added but not
/// renamed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum FeedEvent {
    #[serde(rename = "item.raised")]
    ItemRaised(Box<Item>),
    #[serde(rename = "item.claimed")]
    ItemClaimed(Box<Item>),
    #[serde(rename = "item.released")]
    ItemReleased(Box<Item>),
    #[serde(rename = "item.resolved")]
    ItemResolved(Box<Item>),
    /// An admin acted (the entry as recorded in the audit log).
    #[serde(rename = "audit.recorded")]
    AuditRecorded(Box<AuditEntry>),
}

impl FeedEvent {
    /// The tag, also the stored `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            FeedEvent::ItemRaised(_) => "item.raised",
            FeedEvent::ItemClaimed(_) => "item.claimed",
            FeedEvent::ItemReleased(_) => "item.released",
            FeedEvent::ItemResolved(_) => "item.resolved",
            FeedEvent::AuditRecorded(_) => "audit.recorded",
        }
    }
}

/// A feed event with its place in the feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRecord {
    /// 1, 2, 3, ... without gaps, committed in order.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub event: FeedEvent,
}

/// What an admin did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminAction {
    SuspendUser,
    ReinstateUser,
    WarnUser,
    RemoveGig,
    RestoreGig,
    ResolveDispute,
    CancelOrder,
    DismissReport,
    /// Closes a queue item that needs nothing done (a gig that is fine,
    /// a message flagged wrongly).
    DismissItem,
    ClaimItem,
    ReleaseItem,
}

impl AdminAction {
    pub const ALL: [AdminAction; 11] = [
        AdminAction::SuspendUser,
        AdminAction::ReinstateUser,
        AdminAction::WarnUser,
        AdminAction::RemoveGig,
        AdminAction::RestoreGig,
        AdminAction::ResolveDispute,
        AdminAction::CancelOrder,
        AdminAction::DismissReport,
        AdminAction::DismissItem,
        AdminAction::ClaimItem,
        AdminAction::ReleaseItem,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AdminAction::SuspendUser => "suspend_user",
            AdminAction::ReinstateUser => "reinstate_user",
            AdminAction::WarnUser => "warn_user",
            AdminAction::RemoveGig => "remove_gig",
            AdminAction::RestoreGig => "restore_gig",
            AdminAction::ResolveDispute => "resolve_dispute",
            AdminAction::CancelOrder => "cancel_order",
            AdminAction::DismissReport => "dismiss_report",
            AdminAction::DismissItem => "dismiss_item",
            AdminAction::ClaimItem => "claim_item",
            AdminAction::ReleaseItem => "release_item",
        }
    }
}

impl fmt::Display for AdminAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AdminAction {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or(())
    }
}

/// Longest reason an admin may give, in characters.
pub const MAX_REASON: usize = 1000;

/// Checks an admin's reason: every action needs one (the audit log says
/// why), up to [`MAX_REASON`] characters.
pub fn parse_reason(raw: &str) -> Result<String, FieldError> {
    text("reason", raw, 1, MAX_REASON)
}

/// An entry of the audit log as it is recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAudit {
    pub admin_id: UserId,
    pub action: AdminAction,
    pub target: Target,
    pub reason: String,
    /// What exactly was done, for people (e.g. "refunded 50.00 USD").
    pub details: Option<String>,
    /// The queue item the action was taken on, if any.
    pub item_id: Option<ItemId>,
    pub at: DateTime<Utc>,
}

/// A stored audit entry: never changed or deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 1, 2, 3, ... in the order recorded.
    pub id: i64,
    pub admin_id: UserId,
    pub action: AdminAction,
    pub target: Target,
    pub reason: String,
    pub details: Option<String>,
    pub item_id: Option<ItemId>,
    pub at: DateTime<Utc>,
}

/// An admin action to record: the audit entry, and the queue item it
/// closes or changes (stored only if the item still has
/// `expected_version`), in one transaction with their feed events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRecord {
    pub audit: NewAudit,
    pub item: Option<ItemChange>,
}

/// A queue item after a change, the version it must still have, and the
/// feed event announcing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemChange {
    pub item: Item,
    pub expected_version: i64,
    pub event: FeedEvent,
}

/// Filters for the queue. Newest first; `before` pages (an item id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemFilter {
    pub status: Option<ItemStatus>,
    /// Only items not yet resolved (open or claimed).
    pub unresolved: bool,
    pub kind: Option<ItemKind>,
    pub target_type: Option<String>,
    pub target_id: Option<uuid::Uuid>,
    pub claimed_by: Option<UserId>,
    pub before: Option<ItemId>,
    pub limit: u32,
}

/// Filters for the audit log. Newest first; `before` pages (an entry id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub admin_id: Option<UserId>,
    pub action: Option<AdminAction>,
    pub target_type: Option<String>,
    pub target_id: Option<uuid::Uuid>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// Whether an account may sign in, for the user list filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountState {
    Active,
    Suspended,
    Deleted,
}

/// Filters for the admin's user list. Newest first; `before` pages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub state: Option<AccountState>,
    /// Part of the username or e-mail address (case-insensitive).
    pub query: Option<String>,
    pub before: Option<UserId>,
    pub limit: u32,
}

/// Filters for the admin's gig list (deleted gigs included only when
/// asked). Newest first; `before` pages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GigFilter {
    pub status: Option<GigStatus>,
    pub seller_id: Option<UserId>,
    /// Part of the title (case-insensitive).
    pub query: Option<String>,
    pub include_deleted: bool,
    pub before: Option<GigId>,
    pub limit: u32,
}

/// Filters for the admin's order list (also the dispute list, with
/// `status: Disputed`). Newest first; `before` pages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    /// Orders where this user is the buyer or the seller.
    pub party: Option<UserId>,
    pub buyer_id: Option<UserId>,
    pub seller_id: Option<UserId>,
    /// Orders that have a dispute (open or resolved).
    pub disputed: bool,
    pub before: Option<OrderId>,
    pub limit: u32,
}

/// Marketplace totals for the admins' live stats.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Orders paid since the start of the day (UTC).
    pub orders_today: i64,
    /// What buyers paid since the start of the day, in minor units of the
    /// marketplace currency (gross: before refunds).
    pub gmv_today_minor: i64,
    pub open_disputes: i64,
    /// Reports not yet resolved.
    pub open_reports: i64,
    /// Queue items not yet resolved, of every kind.
    pub open_items: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap()
    }

    fn item() -> Item {
        Item::raise(
            NewItem {
                kind: ItemKind::Report,
                target: Target::Gig { id: GigId::new() },
                subject_user: None,
                summary: "reported".into(),
                excerpt: Some("x".repeat(MAX_EXCERPT + 10)),
                flags: Vec::new(),
                reporter: None,
                reason: Some(ReportReason::Spam),
                amount: None,
                source_key: "report:1".into(),
            },
            now(),
        )
    }

    #[test]
    fn claims_keep_two_admins_apart() {
        let (a, b) = (UserId::new(), UserId::new());
        let open = item();
        assert_eq!(open.excerpt.as_ref().unwrap().chars().count(), MAX_EXCERPT);
        let claimed = open.claim(a, now()).unwrap().unwrap();
        assert_eq!(claimed.status, ItemStatus::Claimed);
        assert_eq!(claimed.version, 2);
        // Claiming again is a no-op for the claimer and refused for others.
        assert_eq!(claimed.claim(a, now()), Ok(None));
        assert_eq!(claimed.claim(b, now()), Err(ClaimError::ClaimedBy(Some(a))));
        assert_eq!(
            claimed.release(b, now()),
            Err(ClaimError::ClaimedBy(Some(a)))
        );
        assert_eq!(
            claimed.resolve(b, "dismissed", now()),
            Err(ClaimError::ClaimedBy(Some(a)))
        );
        let released = claimed.release(a, now()).unwrap().unwrap();
        assert_eq!(released.status, ItemStatus::Open);
        assert_eq!(released.claimed_by, None);
        assert_eq!(released.release(a, now()), Ok(None));
        // Anyone may resolve an open item; a resolved one stays resolved.
        let resolved = released.resolve(b, "dismissed", now()).unwrap();
        assert_eq!(resolved.outcome.as_deref(), Some("dismissed"));
        assert_eq!(resolved.resolved_by, Some(b));
        assert_eq!(resolved.claim(a, now()), Err(ClaimError::Resolved));
        assert_eq!(resolved.release(b, now()), Err(ClaimError::Resolved));
        assert_eq!(
            resolved.resolve(b, "again", now()),
            Err(ClaimError::Resolved)
        );
    }

    #[test]
    fn reports_are_checked() {
        let me = UserId::new();
        let gig = Target::Gig { id: GigId::new() };
        let ok = ReportDraft::parse(me, gig, ReportReason::Spam, "  buy followers  ").unwrap();
        assert_eq!(ok.details, "buy followers");
        assert!(ReportDraft::parse(me, gig, ReportReason::Fraud, "").is_ok());
        let field =
            |r: Result<ReportDraft, ValidationErrors>| r.unwrap_err().errors()[0].field.clone();
        assert_eq!(
            field(ReportDraft::parse(me, gig, ReportReason::Other, " ")),
            "details"
        );
        assert_eq!(
            field(ReportDraft::parse(
                me,
                Target::User { id: me },
                ReportReason::Spam,
                ""
            )),
            "target"
        );
        assert_eq!(
            field(ReportDraft::parse(
                me,
                Target::Order { id: OrderId::new() },
                ReportReason::Fraud,
                ""
            )),
            "target"
        );
        let long = "x".repeat(ReportDraft::MAX_DETAILS + 1);
        assert_eq!(
            field(ReportDraft::parse(me, gig, ReportReason::Spam, &long)),
            "details"
        );
    }

    #[test]
    fn names_round_trip() {
        for kind in ItemKind::ALL {
            assert_eq!(kind.as_str().parse::<ItemKind>(), Ok(kind));
        }
        for action in AdminAction::ALL {
            assert_eq!(action.as_str().parse::<AdminAction>(), Ok(action));
        }
        for reason in ReportReason::ALL {
            assert_eq!(reason.as_str().parse::<ReportReason>(), Ok(reason));
        }
        let target = Target::Message {
            id: MessageId::new(),
            conversation_id: ConversationId::new(),
        };
        assert_eq!(target.kind(), "message");
        assert_eq!(Target::Order { id: OrderId::new() }.kind(), "order");
        assert!(parse_reason(" ").is_err());
        assert_eq!(parse_reason(" spam ").unwrap(), "spam");
    }
}
