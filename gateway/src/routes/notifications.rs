//! `/notifications`: the signed-in user's notification list (the
//! `notification` events of their live event log) and its read state. A
//! mark appends `notification.read` to the user's log and publishes it, so
//! every session of the user agrees on what is read. The operations here
//! are shared with the socket's request handlers in `ws`.

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use domain::ids::UserId;
use domain::ports::{NotificationItem, NotificationStore};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorBody, Json, Query};
use crate::extract::AuthUser;
use crate::routes::conversations::bounded;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(unread_notifications))
        .routes(routes!(mark_notification_read))
        .routes(routes!(mark_all_notifications_read))
}

// ------------------------------------------------------------------ REST

/// The signed-in user's notifications, newest first, with read flags.
#[utoipa::path(get, path = "/notifications", tag = "notifications",
    params(NotificationParams), security(("bearer" = [])),
    responses((status = 200, body = NotificationPageView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_notifications(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(params): Query<NotificationParams>,
) -> ApiResult<Json<NotificationPageView>> {
    Ok(Json(list(&state, auth.user.id, params).await?))
}

/// How many of the signed-in user's notifications are unread.
#[utoipa::path(get, path = "/notifications/unread", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, body = UnreadView), (status = 401, body = ErrorBody)))]
async fn unread_notifications(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<UnreadView>> {
    Ok(Json(unread(&state, auth.user.id).await?))
}

/// Marks one notification read; `read` is false when it was read already.
/// The user's sessions receive `notification.read`.
#[utoipa::path(post, path = "/notifications/{cursor}/read", tag = "notifications",
    params(("cursor" = i64, Path, description = "the notification's cursor")), security(("bearer" = [])),
    responses((status = 200, body = MarkedOneView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "not one of the user's notifications")))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn mark_notification_read(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(cursor): Path<String>,
) -> ApiResult<Json<MarkedOneView>> {
    let cursor: i64 = cursor
        .parse()
        .map_err(|_| ApiError::not_found("no such notification"))?;
    Ok(Json(mark_read(&state, auth.user.id, cursor).await?))
}

/// Marks every notification up to `through` (default: all so far) read.
/// The user's sessions receive `notification.read` when any became read.
#[utoipa::path(post, path = "/notifications/read-all", tag = "notifications",
    request_body = ReadAllRequest, security(("bearer" = [])),
    responses((status = 200, body = MarkedAllView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn mark_all_notifications_read(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(request): Json<ReadAllRequest>,
) -> ApiResult<Json<MarkedAllView>> {
    Ok(Json(mark_all_read(&state, auth.user.id, request).await?))
}

// ------------------------------------------------------- shared with `ws`

pub async fn list(
    state: &AppState,
    user: UserId,
    params: NotificationParams,
) -> ApiResult<NotificationPageView> {
    let limit = bounded("limit", params.limit, 20, 100)?;
    let items = state
        .store
        .notifications(user, params.before, limit)
        .await?;
    let unread = state.store.unread_notifications(user).await?;
    let next = if items.len() == limit as usize {
        items.last().map(|item| item.cursor)
    } else {
        None
    };
    Ok(NotificationPageView {
        items: items.iter().map(notification_view).collect(),
        next,
        unread,
    })
}

pub async fn unread(state: &AppState, user: UserId) -> ApiResult<UnreadView> {
    Ok(UnreadView {
        unread: state.store.unread_notifications(user).await?,
    })
}

pub async fn mark_read(state: &AppState, user: UserId, cursor: i64) -> ApiResult<MarkedOneView> {
    let now = state.clock.now();
    match state.store.mark_notification_read(user, cursor, now).await {
        Ok(Some((unread, stored))) => {
            state.chat.live().deliver(&stored);
            Ok(MarkedOneView { read: true, unread })
        }
        Ok(None) => Ok(MarkedOneView {
            read: false,
            unread: state.store.unread_notifications(user).await?,
        }),
        Err(domain::ports::StoreError::NotFound) => {
            Err(ApiError::not_found("no such notification"))
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn mark_all_read(
    state: &AppState,
    user: UserId,
    request: ReadAllRequest,
) -> ApiResult<MarkedAllView> {
    let through = match request.through {
        Some(through) => through,
        None => state.chat.live().log().head(user).await?,
    };
    let now = state.clock.now();
    let (marked, unread, stored) = state
        .store
        .mark_all_notifications_read(user, through, now)
        .await?;
    state.chat.live().deliver(&stored);
    Ok(MarkedAllView { marked, unread })
}

fn notification_view(item: &NotificationItem) -> NotificationView {
    let n = &item.notification;
    NotificationView {
        cursor: item.cursor,
        kind: n.kind.clone(),
        title: n.title.clone(),
        body: n.body.clone(),
        order_id: n.order_id.map(|id| id.as_uuid()),
        offer_id: n.offer_id.map(|id| id.as_uuid()),
        conversation_id: n.conversation_id.map(|id| id.as_uuid()),
        gig_id: n.gig_id.map(|id| id.as_uuid()),
        read: item.read,
        created_at: item.created_at,
    }
}

// ------------------------------------------------------------ wire types

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationParams {
    /// Only notifications with a lower cursor (older ones): the `next` of
    /// the previous page.
    pub before: Option<i64>,
    /// 1 to 100, default 20.
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadAllRequest {
    /// Mark read up to this cursor; default the user's newest.
    pub through: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    /// Position in the user's live event log.
    pub cursor: i64,
    /// What happened (`order.delivered`, `offer.received`, ...).
    pub kind: String,
    pub title: String,
    pub body: String,
    pub order_id: Option<Uuid>,
    pub offer_id: Option<Uuid>,
    pub conversation_id: Option<Uuid>,
    pub gig_id: Option<Uuid>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPageView {
    pub items: Vec<NotificationView>,
    /// `before` for the next (older) page; absent on the last page.
    pub next: Option<i64>,
    /// How many notifications are unread in all.
    pub unread: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadView {
    pub unread: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MarkedOneView {
    /// Whether this mark made it read (false: it was read already).
    pub read: bool,
    pub unread: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MarkedAllView {
    /// How many became read.
    pub marked: i64,
    pub unread: i64,
}
