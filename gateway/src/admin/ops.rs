//! What admins do, shared by the REST routes and the admin socket: each
//! operation takes the verified admin and the request body, and answers
//! the same view either way.
//!
//! An action is checked, carried out through the part of the system that
//! owns the target (accounts and sessions, the gig actors, the order
//! actors), and then recorded: its audit entry and, when it was taken on a
//! queue item, that item's resolution commit together and are pushed to
//! every admin.

use actors::order::Caller;
use chrono::{DateTime, Utc};
use domain::account::{Role, User};
use domain::gig::{Editor, Gig, GigCommand, GigStatus};
use domain::ids::{GigId, ItemId, OrderId, UserId};
use domain::live::{EndedSessions, LiveEvent, Notification};
use domain::mail::AccountMail;
use domain::moderation::{
    parse_reason, AccountState, ActionRecord, AdminAction, AuditEntry, AuditFilter, ClaimError,
    FeedEvent, FeedRecord, GigFilter, Item, ItemChange, ItemFilter, ItemKind, NewAudit,
    OrderFilter, Target, UserFilter,
};
use domain::order::{OrderCommand, OrderStatus, Resolution};
use domain::ports::StoreError;
use domain::validation::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::routes::gigs::GigView;
use crate::routes::orders::{order_view, OrderView};
use crate::state::AppState;
use domain::error::ErrorCode;

/// The most rows a list returns at once.
pub const MAX_PAGE: u32 = 200;
const DEFAULT_PAGE: u32 = 50;

fn page(limit: Option<u32>) -> u32 {
    match limit {
        None | Some(0) => DEFAULT_PAGE,
        Some(limit) => limit.min(MAX_PAGE),
    }
}

// ------------------------------------------------------------------ views

/// A queue item: the stored item as JSON (see `docs/admin.md`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Item>,
    /// Pass as `before` for the next page; null on the last one.
    pub next: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<AuditEntry>,
    pub next: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<FeedEventView>,
    /// The feed's newest number.
    pub head: i64,
}

/// A feed event as both REST and the socket show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedEventView {
    pub seq: i64,
    /// `item.raised`, `item.claimed`, `item.released`, `item.resolved`,
    /// `audit.recorded`.
    pub event: &'static str,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub at: DateTime<Utc>,
}

pub fn feed_event_view(record: &FeedRecord) -> FeedEventView {
    let data = match &record.event {
        FeedEvent::ItemRaised(item)
        | FeedEvent::ItemClaimed(item)
        | FeedEvent::ItemReleased(item)
        | FeedEvent::ItemResolved(item) => serde_json::to_value(item),
        FeedEvent::AuditRecorded(entry) => serde_json::to_value(entry),
    };
    FeedEventView {
        seq: record.seq,
        event: record.event.kind(),
        data: data.unwrap_or(serde_json::Value::Null),
        at: record.at,
    }
}

/// An account as admins see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserView {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub role: &'static str,
    pub display_name: Option<String>,
    pub email_verified: bool,
    /// `active`, `suspended` or `deleted`.
    pub state: &'static str,
    pub suspended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

pub fn user_view(user: &User) -> AdminUserView {
    AdminUserView {
        id: user.id.as_uuid(),
        username: user.username.to_string(),
        email: user.email.to_string(),
        role: user.role.as_str(),
        display_name: user.display_name.clone(),
        email_verified: user.email_verified_at.is_some(),
        state: if user.deleted_at.is_some() {
            "deleted"
        } else if user.suspended_at.is_some() {
            "suspended"
        } else {
            "active"
        },
        suspended_at: user.suspended_at,
        created_at: user.created_at,
    }
}

/// A gig as admins see it: also deleted and removed ones, and what a
/// removed one goes back to.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminGigView {
    #[serde(flatten)]
    pub gig: GigView,
    /// While removed: the status restoring it brings back.
    pub removed_from: Option<&'static str>,
    pub deleted_at: Option<DateTime<Utc>>,
}

pub fn gig_view(gig: &Gig) -> AdminGigView {
    AdminGigView {
        gig: GigView::from(gig),
        removed_from: gig.removed_from.map(GigStatus::as_str),
        deleted_at: gig.deleted_at,
    }
}

/// What an action did: its audit entry, the queue item it closed (if
/// any), and the target as it is now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionView {
    #[schema(value_type = Object)]
    pub audit: AuditEntry,
    #[schema(value_type = Option<Object>)]
    pub item: Option<Item>,
    pub user: Option<AdminUserView>,
    pub gig: Option<AdminGigView>,
    pub order: Option<OrderView>,
}

/// The admins' live statistics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatsView {
    /// Users with a live session open.
    pub users_online: u64,
    /// Orders paid since midnight UTC.
    pub orders_today: i64,
    /// What buyers paid since midnight UTC, in cents (before refunds).
    pub gmv_today_minor: i64,
    pub currency: &'static str,
    pub open_disputes: i64,
    pub open_reports: i64,
    /// Queue items not yet resolved.
    pub open_items: i64,
}

// ----------------------------------------------------------------- inputs

/// Why the admin acts, and the queue item the action settles.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// Recorded in the audit log; a warning's text is shown to the user.
    pub reason: String,
    /// The queue item this action settles; it is resolved with the action.
    pub item_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// `complete` (the seller is paid) or `refund`.
    pub outcome: String,
    /// With `refund`: how much of the total goes back to the buyer (the
    /// whole total for a full refund; less completes the order for the
    /// rest).
    pub amount_minor: Option<i64>,
    pub reason: String,
    pub item_id: Option<Uuid>,
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ItemQuery {
    /// `open`, `claimed`, `resolved`, or `unresolved` (open or claimed).
    pub status: Option<String>,
    /// `gig_published`, `gig_edited`, `message_flagged`, `report`,
    /// `dispute_opened`, `payment_failed`, `refund`.
    pub kind: Option<String>,
    /// `user`, `gig`, `message`, `order`.
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    pub claimed_by: Option<Uuid>,
    pub before: Option<Uuid>,
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub admin_id: Option<Uuid>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    /// Entries at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Entries before this time.
    pub to: Option<DateTime<Utc>>,
    pub before: Option<i64>,
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// `user` or `admin`.
    pub role: Option<String>,
    /// `active`, `suspended` or `deleted`.
    pub state: Option<String>,
    /// Part of the username or e-mail address.
    pub q: Option<String>,
    pub before: Option<Uuid>,
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GigQuery {
    /// `draft`, `active`, `paused`, `removed`.
    pub status: Option<String>,
    pub seller_id: Option<Uuid>,
    /// Part of the title.
    pub q: Option<String>,
    #[serde(default)]
    pub include_deleted: bool,
    pub before: Option<Uuid>,
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    pub status: Option<String>,
    /// Orders this user buys or sells in.
    pub user_id: Option<Uuid>,
    pub buyer_id: Option<Uuid>,
    pub seller_id: Option<Uuid>,
    pub before: Option<Uuid>,
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DisputeQuery {
    /// `open` (the default: orders frozen in a dispute) or `all` (also
    /// resolved ones).
    pub status: Option<String>,
    pub before: Option<Uuid>,
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The last feed number seen (0: from the start).
    #[serde(default)]
    pub after: i64,
    pub limit: Option<u32>,
}

fn invalid(field: &str, message: &str) -> ApiError {
    FieldError::new(field, "invalid", message).into()
}

fn parse_opt<T: std::str::FromStr>(
    field: &str,
    raw: Option<&str>,
    expected: &str,
) -> ApiResult<Option<T>> {
    raw.map(|value| value.parse::<T>().map_err(|_| invalid(field, expected)))
        .transpose()
}

// ------------------------------------------------------------------ lists

pub async fn items(state: &AppState, query: ItemQuery) -> ApiResult<ItemPage> {
    let mut filter = ItemFilter {
        kind: parse_opt(
            "kind",
            query.kind.as_deref(),
            "must be one of gig_published, gig_edited, message_flagged, report, dispute_opened, payment_failed, refund",
        )?,
        target_type: query.target_type,
        target_id: query.target_id,
        claimed_by: query.claimed_by.map(UserId::from_uuid),
        before: query.before.map(ItemId::from_uuid),
        limit: page(query.limit),
        ..ItemFilter::default()
    };
    if let Some(kind) = &filter.target_type {
        if !["user", "gig", "message", "order"].contains(&kind.as_str()) {
            return Err(invalid(
                "target_type",
                "must be user, gig, message or order",
            ));
        }
    }
    match query.status.as_deref() {
        Some("unresolved") => filter.unresolved = true,
        other => {
            filter.status = parse_opt(
                "status",
                other,
                "must be open, claimed, resolved or unresolved",
            )?;
        }
    }
    let items = state.feed.store().items(&filter).await?;
    let full = items.len() == filter.limit as usize;
    let next = full.then(|| items.last().map(|i| i.id.as_uuid())).flatten();
    Ok(ItemPage { items, next })
}

pub async fn reports(state: &AppState, mut query: ItemQuery) -> ApiResult<ItemPage> {
    query.kind = Some(ItemKind::Report.as_str().into());
    items(state, query).await
}

pub async fn audit(state: &AppState, query: AuditQuery) -> ApiResult<AuditPage> {
    let filter = AuditFilter {
        admin_id: query.admin_id.map(UserId::from_uuid),
        action: parse_opt("action", query.action.as_deref(), "is not an admin action")?,
        target_type: query.target_type,
        target_id: query.target_id,
        from: query.from,
        to: query.to,
        before: query.before,
        limit: page(query.limit),
    };
    let items = state.feed.store().audit(&filter).await?;
    let next = (items.len() == filter.limit as usize)
        .then(|| items.last().map(|e| e.id))
        .flatten();
    Ok(AuditPage { items, next })
}

pub async fn users(state: &AppState, query: UserQuery) -> ApiResult<Vec<AdminUserView>> {
    let filter = UserFilter {
        role: parse_opt::<Role>("role", query.role.as_deref(), "must be user or admin")?,
        state: match query.state.as_deref() {
            None => None,
            Some("active") => Some(AccountState::Active),
            Some("suspended") => Some(AccountState::Suspended),
            Some("deleted") => Some(AccountState::Deleted),
            Some(_) => return Err(invalid("state", "must be active, suspended or deleted")),
        },
        query: query.q.filter(|q| !q.trim().is_empty()),
        before: query.before.map(UserId::from_uuid),
        limit: page(query.limit),
    };
    let users = state.feed.store().users(&filter).await?;
    Ok(users.iter().map(user_view).collect())
}

pub async fn gigs(state: &AppState, query: GigQuery) -> ApiResult<Vec<AdminGigView>> {
    let filter = GigFilter {
        status: parse_opt::<GigStatus>(
            "status",
            query.status.as_deref(),
            "must be draft, active, paused or removed",
        )?,
        seller_id: query.seller_id.map(UserId::from_uuid),
        query: query.q.filter(|q| !q.trim().is_empty()),
        include_deleted: query.include_deleted,
        before: query.before.map(GigId::from_uuid),
        limit: page(query.limit),
    };
    let gigs = state.feed.store().gigs(&filter).await?;
    Ok(gigs.iter().map(gig_view).collect())
}

pub async fn orders(state: &AppState, query: OrderQuery) -> ApiResult<Vec<OrderView>> {
    let filter = OrderFilter {
        status: query
            .status
            .as_deref()
            .map(|raw| {
                OrderStatus::parse(raw).ok_or_else(|| invalid("status", "is not an order status"))
            })
            .transpose()?,
        party: query.user_id.map(UserId::from_uuid),
        buyer_id: query.buyer_id.map(UserId::from_uuid),
        seller_id: query.seller_id.map(UserId::from_uuid),
        disputed: false,
        before: query.before.map(OrderId::from_uuid),
        limit: page(query.limit),
    };
    let orders = state.feed.store().orders(&filter).await?;
    Ok(orders.iter().map(order_view).collect())
}

pub async fn disputes(state: &AppState, query: DisputeQuery) -> ApiResult<Vec<OrderView>> {
    let open = match query.status.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(_) => return Err(invalid("status", "must be open or all")),
    };
    let filter = OrderFilter {
        status: open.then_some(OrderStatus::Disputed),
        disputed: true,
        before: query.before.map(OrderId::from_uuid),
        limit: page(query.limit),
        ..OrderFilter::default()
    };
    let orders = state.feed.store().orders(&filter).await?;
    Ok(orders.iter().map(order_view).collect())
}

pub async fn feed(state: &AppState, query: FeedQuery) -> ApiResult<FeedPage> {
    let store = state.feed.store();
    let head = store.feed_head().await?;
    if query.after < 0 || query.after > head {
        return Err(ApiError::new(
            ErrorCode::CursorExpired,
            "that feed number is not in the feed; list the queue and start from the head",
        ));
    }
    let records = store.feed_after(query.after, page(query.limit)).await?;
    Ok(FeedPage {
        items: records.iter().map(feed_event_view).collect(),
        head,
    })
}

/// Midnight UTC of `now`'s day.
fn day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc()
}

pub async fn stats(state: &AppState) -> ApiResult<StatsView> {
    let totals = state
        .feed
        .store()
        .totals(day_start(state.clock.now()))
        .await?;
    Ok(StatsView {
        users_online: state.chat.presence().online_users() as u64,
        orders_today: totals.orders_today,
        gmv_today_minor: totals.gmv_today_minor,
        currency: domain::money::Currency::MARKETPLACE.code(),
        open_disputes: totals.open_disputes,
        open_reports: totals.open_reports,
        open_items: totals.open_items,
    })
}

// ----------------------------------------------------------------- claims

async fn load_item(state: &AppState, id: Uuid) -> ApiResult<Item> {
    state
        .feed
        .store()
        .item(ItemId::from_uuid(id))
        .await?
        .ok_or_else(|| ApiError::not_found("no such queue item"))
}

fn claim_error(error: ClaimError) -> ApiError {
    ApiError::new(ErrorCode::Conflict, error.to_string())
}

/// The admin claims a queue item, so other admins leave it alone.
pub async fn claim(state: &AppState, admin: &User, id: Uuid) -> ApiResult<Item> {
    change_claim(state, admin, id, AdminAction::ClaimItem).await
}

/// The admin lets go of an item they claimed.
pub async fn release(state: &AppState, admin: &User, id: Uuid) -> ApiResult<Item> {
    change_claim(state, admin, id, AdminAction::ReleaseItem).await
}

async fn change_claim(
    state: &AppState,
    admin: &User,
    id: Uuid,
    action: AdminAction,
) -> ApiResult<Item> {
    let item = load_item(state, id).await?;
    let now = state.clock.now();
    let (next, event) = match action {
        AdminAction::ClaimItem => {
            let next = item.claim(admin.id, now).map_err(claim_error)?;
            (next, FeedEvent::ItemClaimed as fn(Box<Item>) -> FeedEvent)
        }
        _ => {
            let next = item.release(admin.id, now).map_err(claim_error)?;
            (next, FeedEvent::ItemReleased as fn(Box<Item>) -> FeedEvent)
        }
    };
    // Claiming one's own claim again (or releasing an open item) changes
    // nothing and records nothing.
    let Some(next) = next else {
        return Ok(item);
    };
    let record = ActionRecord {
        audit: NewAudit {
            admin_id: admin.id,
            action,
            target: item.target,
            reason: format!(
                "{} {}",
                action.as_str().replace('_', " "),
                item.kind.as_str()
            ),
            details: None,
            item_id: Some(item.id),
            at: now,
        },
        item: Some(ItemChange {
            expected_version: item.version,
            event: event(Box::new(next.clone())),
            item: next.clone(),
        }),
    };
    match state.feed.store().record_action(&record).await {
        Ok((_, records)) => {
            state.feed.publish(records);
            Ok(next)
        }
        Err(StoreError::VersionConflict) => Err(ApiError::new(
            ErrorCode::Conflict,
            "the item changed meanwhile (another admin claimed or resolved it); reload it",
        )),
        Err(error) => Err(error.into()),
    }
}

// ---------------------------------------------------------------- actions

/// An action about to be taken: who, what, on what, why, and the queue
/// item it settles (checked before anything is done).
struct Pending {
    admin: UserId,
    action: AdminAction,
    target: Target,
    reason: String,
    item: Option<Item>,
}

impl Pending {
    async fn new(
        state: &AppState,
        admin: &User,
        action: AdminAction,
        target: Target,
        request: &ActionRequest,
    ) -> ApiResult<Self> {
        let reason = parse_reason(&request.reason)?;
        let item = match request.item_id {
            Some(id) => {
                let item = load_item(state, id).await?;
                // An item is settled by acting on what it is about, or on
                // the user it is about.
                let about_user =
                    matches!(target, Target::User { id } if item.subject_user == Some(id));
                if item.target != target && !about_user {
                    return Err(FieldError::new(
                        "item_id",
                        "invalid",
                        "the item is about something else than this action's target",
                    )
                    .into());
                }
                // Refused before anything is done: someone else's claim,
                // or an item already settled.
                item.resolve(admin.id, action.as_str(), state.clock.now())
                    .map_err(claim_error)?;
                Some(item)
            }
            None => None,
        };
        Ok(Self {
            admin: admin.id,
            action,
            target,
            reason,
            item,
        })
    }

    /// Records the action that was just carried out. The audit entry is
    /// always written; if the item changed meanwhile (another admin
    /// resolved it), it is left as it is.
    async fn record(
        self,
        state: &AppState,
        details: Option<String>,
    ) -> ApiResult<(AuditEntry, Option<Item>)> {
        let now = state.clock.now();
        let audit = NewAudit {
            admin_id: self.admin,
            action: self.action,
            target: self.target,
            reason: self.reason,
            details,
            item_id: self.item.as_ref().map(|i| i.id),
            at: now,
        };
        let store = state.feed.store();
        let mut item = self.item;
        for _ in 0..3 {
            let change = match &item {
                Some(current) => match current.resolve(self.admin, self.action.as_str(), now) {
                    Ok(next) => Some(ItemChange {
                        expected_version: current.version,
                        event: FeedEvent::ItemResolved(Box::new(next.clone())),
                        item: next,
                    }),
                    Err(_) => None,
                },
                None => None,
            };
            let resolved = change.as_ref().map(|c| c.item.clone());
            let record = ActionRecord {
                audit: audit.clone(),
                item: change,
            };
            match store.record_action(&record).await {
                Ok((entry, records)) => {
                    state.feed.publish(records);
                    return Ok((entry, resolved));
                }
                Err(StoreError::VersionConflict) => {
                    let id = item.as_ref().map(|i| i.id);
                    item = match id {
                        Some(id) => store.item(id).await?,
                        None => None,
                    };
                }
                Err(error) => return Err(unrecorded(&audit, error)),
            }
        }
        // The item keeps changing: record the action without it.
        let record = ActionRecord {
            audit: audit.clone(),
            item: None,
        };
        let (entry, records) = store
            .record_action(&record)
            .await
            .map_err(|error| unrecorded(&audit, error))?;
        state.feed.publish(records);
        Ok((entry, None))
    }
}

/// An action took effect but its audit entry could not be stored: the
/// entry goes to the error log in full, so it can be recorded by hand.
fn unrecorded(audit: &NewAudit, error: StoreError) -> ApiError {
    tracing::error!(
        %error,
        admin_id = %audit.admin_id,
        action = audit.action.as_str(),
        target = ?audit.target,
        reason = %audit.reason,
        details = ?audit.details,
        at = %audit.at,
        "an admin action took effect but its audit entry was not stored"
    );
    error.into()
}

fn action_view(audit: AuditEntry, item: Option<Item>) -> ActionView {
    ActionView {
        audit,
        item,
        user: None,
        gig: None,
        order: None,
    }
}

async fn load_user(state: &AppState, id: UserId) -> ApiResult<User> {
    state
        .accounts
        .user_by_id(id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or_else(|| ApiError::not_found("no such user"))
}

/// Suspends an account: it can no longer sign in, its sessions and tokens
/// end now (live sockets close), and its gigs leave search.
pub async fn suspend(
    state: &AppState,
    admin: &User,
    user_id: Uuid,
    request: ActionRequest,
) -> ApiResult<ActionView> {
    let user_id = UserId::from_uuid(user_id);
    let user = load_user(state, user_id).await?;
    if user.id == admin.id {
        return Err(ApiError::forbidden("you cannot suspend yourself"));
    }
    if user.is_admin() {
        return Err(ApiError::forbidden("admins cannot be suspended"));
    }
    if user.suspended_at.is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the account is already suspended",
        ));
    }
    let pending = Pending::new(
        state,
        admin,
        AdminAction::SuspendUser,
        Target::User { id: user_id },
        &request,
    )
    .await?;
    let now = state.clock.now();
    state.accounts.set_suspended(user_id, true, now).await?;
    let ended = state
        .sessions
        .revoke_all_for_user(user_id, None, now)
        .await?;
    state.end_live_sessions(user_id, EndedSessions::AllExcept(None));
    let gigs = reindex_seller(state, user_id).await?;
    state.send_mail(
        &user,
        notice_mail(
            state,
            &user,
            "account.suspended",
            "Your account has been suspended",
            &format!(
                "An administrator suspended your account: {}\n\nYou cannot sign in while it is suspended. Reply to this e-mail if you think this is a mistake.",
                pending.reason
            ),
        ),
    ).await;
    let details = format!("{ended} sessions ended, {gigs} gigs taken out of search");
    let (audit, item) = pending.record(state, Some(details)).await?;
    tracing::info!(user_id = %user_id, admin_id = %admin.id, "account suspended");
    let mut view = action_view(audit, item);
    view.user = Some(user_view(&load_user(state, user_id).await?));
    Ok(view)
}

/// Lifts a suspension: the account may sign in again and its public gigs
/// return to search.
pub async fn reinstate(
    state: &AppState,
    admin: &User,
    user_id: Uuid,
    request: ActionRequest,
) -> ApiResult<ActionView> {
    let user_id = UserId::from_uuid(user_id);
    let user = load_user(state, user_id).await?;
    if user.suspended_at.is_none() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the account is not suspended",
        ));
    }
    let pending = Pending::new(
        state,
        admin,
        AdminAction::ReinstateUser,
        Target::User { id: user_id },
        &request,
    )
    .await?;
    let now = state.clock.now();
    state.accounts.set_suspended(user_id, false, now).await?;
    let gigs = reindex_seller(state, user_id).await?;
    state
        .send_mail(
            &user,
            notice_mail(
                state,
                &user,
                "account.reinstated",
                "Your account is active again",
                "An administrator lifted the suspension of your account. You can sign in again.",
            ),
        )
        .await;
    let (audit, item) = pending
        .record(
            state,
            Some(format!("{gigs} gigs looked at again for search")),
        )
        .await?;
    tracing::info!(user_id = %user_id, admin_id = %admin.id, "account reinstated");
    let mut view = action_view(audit, item);
    view.user = Some(user_view(&load_user(state, user_id).await?));
    Ok(view)
}

/// Sends a user a warning: a notification on every device and an e-mail.
pub async fn warn(
    state: &AppState,
    admin: &User,
    user_id: Uuid,
    request: ActionRequest,
) -> ApiResult<ActionView> {
    let user_id = UserId::from_uuid(user_id);
    let user = load_user(state, user_id).await?;
    let pending = Pending::new(
        state,
        admin,
        AdminAction::WarnUser,
        Target::User { id: user_id },
        &request,
    )
    .await?;
    if user.id == admin.id {
        return Err(ApiError::forbidden("you cannot warn yourself"));
    }
    // A warning is its notification: if that cannot be stored, nothing
    // was done.
    let title = "A warning from the marketplace team";
    publish_notice(
        state,
        &user,
        "account.warning",
        title,
        &pending.reason,
        None,
    )
    .await?;
    let (audit, item) = pending.record(state, None).await?;
    let mut view = action_view(audit, item);
    view.user = Some(user_view(&user));
    Ok(view)
}

/// Removes a gig from the marketplace (gone from search when this
/// answers); its seller is told why.
pub async fn remove_gig(
    state: &AppState,
    admin: &User,
    gig_id: Uuid,
    request: ActionRequest,
) -> ApiResult<ActionView> {
    moderate_gig(state, admin, gig_id, request, AdminAction::RemoveGig).await
}

/// Puts a removed gig back as it was.
pub async fn restore_gig(
    state: &AppState,
    admin: &User,
    gig_id: Uuid,
    request: ActionRequest,
) -> ApiResult<ActionView> {
    moderate_gig(state, admin, gig_id, request, AdminAction::RestoreGig).await
}

async fn moderate_gig(
    state: &AppState,
    admin: &User,
    gig_id: Uuid,
    request: ActionRequest,
    action: AdminAction,
) -> ApiResult<ActionView> {
    let gig_id = GigId::from_uuid(gig_id);
    let pending = Pending::new(state, admin, action, Target::Gig { id: gig_id }, &request).await?;
    let command = match action {
        AdminAction::RemoveGig => GigCommand::Remove,
        _ => GigCommand::Restore,
    };
    let gig = state
        .gig_actors
        .execute(gig_id, command, Editor::Admin(admin.id), state.clock.now())
        .await?;
    // Answer once search agrees.
    if let Err(error) = state.gig_actors.flush_index().await {
        tracing::warn!(%error, gig_id = %gig_id, "search index not yet updated after moderation");
    }
    if let Ok(seller) = load_user(state, gig.seller_id).await {
        let (kind, title, body) = match action {
            AdminAction::RemoveGig => (
                "gig.removed",
                format!("Your gig \"{}\" was removed", gig.content.title),
                format!(
                    "An administrator removed your gig from the marketplace: {}",
                    pending.reason
                ),
            ),
            _ => (
                "gig.restored",
                format!("Your gig \"{}\" was restored", gig.content.title),
                "An administrator restored your gig.".to_string(),
            ),
        };
        notify(state, &seller, kind, &title, &body, Some(gig.id)).await;
    }
    let details = format!("the gig is now {}", gig.status.as_str());
    let (audit, item) = pending.record(state, Some(details)).await?;
    let mut view = action_view(audit, item);
    view.gig = Some(gig_view(&gig));
    Ok(view)
}

/// Resolves a disputed order: complete it, or refund the buyer in full or
/// in part; the ledger and the payment provider follow.
pub async fn resolve_dispute(
    state: &AppState,
    admin: &User,
    order_id: Uuid,
    request: ResolveRequest,
) -> ApiResult<ActionView> {
    let resolution = match (request.outcome.as_str(), request.amount_minor) {
        ("complete", None) => Resolution::Complete,
        ("refund", Some(amount_minor)) => Resolution::Refund { amount_minor },
        _ => return Err(invalid("outcome", "complete, or refund with amount_minor")),
    };
    let action = ActionRequest {
        reason: request.reason,
        item_id: request.item_id,
    };
    act_on_order(
        state,
        admin,
        order_id,
        action,
        AdminAction::ResolveDispute,
        OrderCommand::Resolve(resolution),
    )
    .await
}

/// Cancels an order at once; whatever the buyer paid goes back.
pub async fn cancel_order(
    state: &AppState,
    admin: &User,
    order_id: Uuid,
    request: ActionRequest,
) -> ApiResult<ActionView> {
    let command = OrderCommand::Cancel {
        reason: request.reason.clone(),
    };
    act_on_order(
        state,
        admin,
        order_id,
        request,
        AdminAction::CancelOrder,
        command,
    )
    .await
}

async fn act_on_order(
    state: &AppState,
    admin: &User,
    order_id: Uuid,
    request: ActionRequest,
    action: AdminAction,
    command: OrderCommand,
) -> ApiResult<ActionView> {
    let order_id = OrderId::from_uuid(order_id);
    let order = state
        .orders
        .store()
        .order(order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such order"))?;
    if order.parties().contains(&admin.id) {
        return Err(ApiError::forbidden(
            "you take part in this order; another admin must act on it",
        ));
    }
    let pending = Pending::new(
        state,
        admin,
        action,
        Target::Order { id: order_id },
        &request,
    )
    .await?;
    let after = state
        .orders
        .act(
            Caller::User {
                id: admin.id,
                admin: true,
            },
            order_id,
            command,
        )
        .await?;
    let refunded = domain::money::Money {
        amount_minor: after.refunded_minor - order.refunded_minor,
        currency: after.amounts.total.currency,
    };
    let details = match (action, refunded.amount_minor > 0) {
        (AdminAction::CancelOrder, true) => format!("cancelled; {refunded} goes back to the buyer"),
        (AdminAction::CancelOrder, false) => "cancelled; nothing had been paid".to_string(),
        (_, true) => format!(
            "{refunded} goes back to the buyer; the order is {}",
            after.status.as_str()
        ),
        (_, false) => format!("the order is {}; the seller is paid", after.status.as_str()),
    };
    let order = after;
    let (audit, item) = pending.record(state, Some(details)).await?;
    let mut view = action_view(audit, item);
    view.order = Some(order_view(&order));
    Ok(view)
}

/// Closes a report without acting on its target.
pub async fn dismiss_report(
    state: &AppState,
    admin: &User,
    item_id: Uuid,
    request: ActionRequest,
) -> ApiResult<ActionView> {
    let item = load_item(state, item_id).await?;
    if item.kind != ItemKind::Report {
        return Err(ApiError::not_found("no such report"));
    }
    dismiss_as(state, admin, item, request, AdminAction::DismissReport).await
}

/// Closes any queue item as needing nothing done (a report is recorded
/// as a dismissed report).
pub async fn dismiss(
    state: &AppState,
    admin: &User,
    item_id: Uuid,
    request: ActionRequest,
) -> ApiResult<ActionView> {
    let item = load_item(state, item_id).await?;
    let action = match item.kind {
        ItemKind::Report => AdminAction::DismissReport,
        _ => AdminAction::DismissItem,
    };
    dismiss_as(state, admin, item, request, action).await
}

async fn dismiss_as(
    state: &AppState,
    admin: &User,
    item: Item,
    request: ActionRequest,
    action: AdminAction,
) -> ApiResult<ActionView> {
    let request = ActionRequest {
        reason: request.reason,
        item_id: Some(item.id.as_uuid()),
    };
    let pending = Pending::new(state, admin, action, item.target, &request).await?;
    let (audit, item) = pending.record(state, None).await?;
    Ok(action_view(audit, item))
}

// ---------------------------------------------------------------- helpers

/// Puts a seller's gigs through the indexer again (it drops the gigs of
/// accounts that cannot sign in) and waits until search agrees.
async fn reindex_seller(state: &AppState, seller: UserId) -> ApiResult<u64> {
    let count = state.gigs.outbox_enqueue_seller(seller).await?;
    if count > 0 {
        if let Err(error) = state.gig_actors.flush_index().await {
            tracing::warn!(%error, seller_id = %seller, "search index not yet updated for the seller");
        }
    }
    Ok(count)
}

/// Tells a user something on every device (a durable notification) and
/// by e-mail, after an action that already took effect: a failure is
/// logged, and the action is still recorded.
async fn notify(
    state: &AppState,
    user: &User,
    kind: &'static str,
    title: &str,
    body: &str,
    gig_id: Option<GigId>,
) {
    if let Err(error) = publish_notice(state, user, kind, title, body, gig_id).await {
        tracing::error!(%error, user_id = %user.id, kind, "telling the user about an admin action failed");
    }
}

/// [`notify`], failing when the notification cannot be stored.
async fn publish_notice(
    state: &AppState,
    user: &User,
    kind: &'static str,
    title: &str,
    body: &str,
    gig_id: Option<GigId>,
) -> ApiResult<()> {
    let notification = Notification {
        kind: kind.to_string(),
        title: title.to_string(),
        body: body.to_string(),
        order_id: None,
        offer_id: None,
        conversation_id: None,
        gig_id,
    };
    state
        .chat
        .live()
        .publish(
            &[user.id],
            LiveEvent::Notification(notification),
            state.clock.now(),
        )
        .await?;
    state
        .send_mail(user, notice_mail(state, user, kind, title, body))
        .await;
    Ok(())
}

fn notice_mail(
    state: &AppState,
    user: &User,
    kind: &'static str,
    subject: &str,
    body: &str,
) -> AccountMail {
    AccountMail::Notice {
        username: user.username.to_string(),
        kind: kind.to_owned(),
        subject: subject.to_string(),
        body: body.to_string(),
        action: "Open the marketplace".into(),
        link: state.settings.server.public_url.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    #[test]
    fn the_day_starts_at_midnight_utc() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 17, 5, 9).unwrap()
            + TimeDelta::microseconds(123_456);
        assert_eq!(
            day_start(now),
            Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap()
        );
    }
}
