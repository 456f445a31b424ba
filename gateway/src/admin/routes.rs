//! REST handlers under `/api/v1/admin`: each one reads its input and calls
//! the same operation as the admin socket (`ops`).

use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::admin::ops::{
    self, ActionRequest, ActionView, AdminGigView, AdminUserView, AuditPage, AuditQuery,
    DisputeQuery, FeedPage, FeedQuery, GigQuery, ItemPage, ItemQuery, OrderQuery, ResolveRequest,
    StatsView, UserQuery,
};
use crate::admin::AdminUser;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Query};
use crate::routes::orders::OrderView;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(items))
        .routes(routes!(reports))
        .routes(routes!(disputes))
        .routes(routes!(users))
        .routes(routes!(gigs))
        .routes(routes!(orders))
        .routes(routes!(audit))
        .routes(routes!(feed))
        .routes(routes!(stats))
        .routes(routes!(claim))
        .routes(routes!(release))
        .routes(routes!(dismiss_report))
        .routes(routes!(dismiss))
        .routes(routes!(suspend))
        .routes(routes!(reinstate))
        .routes(routes!(warn))
        .routes(routes!(remove_gig))
        .routes(routes!(restore_gig))
        .routes(routes!(resolve_dispute))
        .routes(routes!(cancel_order))
}

/// A path id; one that is not a UUID names nothing.
fn parse_id(raw: &str, what: &str) -> ApiResult<Uuid> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("no such {what}")))
}

const DENIED: &str = "401: not signed in; 403: not an admin";

/// The moderation queue, newest first, with filters.
#[utoipa::path(get, path = "/admin/items", tag = "admin", params(ItemQuery), security(("bearer" = [])),
    responses((status = 200, body = ItemPage), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 422, body = ErrorBody)))]
async fn items(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<ItemQuery>,
) -> ApiResult<Json<ItemPage>> {
    Ok(Json(ops::items(&state, query).await?))
}

/// Reports users filed (queue items of kind `report`).
#[utoipa::path(get, path = "/admin/reports", tag = "admin", params(ItemQuery), security(("bearer" = [])),
    responses((status = 200, body = ItemPage), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 422, body = ErrorBody)))]
async fn reports(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<ItemQuery>,
) -> ApiResult<Json<ItemPage>> {
    Ok(Json(ops::reports(&state, query).await?))
}

/// Orders in dispute (or that were), newest first.
#[utoipa::path(get, path = "/admin/disputes", tag = "admin", params(DisputeQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<OrderView>), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 422, body = ErrorBody)))]
async fn disputes(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<DisputeQuery>,
) -> ApiResult<Json<Vec<OrderView>>> {
    Ok(Json(ops::disputes(&state, query).await?))
}

/// Accounts, newest first, with filters.
#[utoipa::path(get, path = "/admin/users", tag = "admin", params(UserQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<AdminUserView>), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 422, body = ErrorBody)))]
async fn users(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<UserQuery>,
) -> ApiResult<Json<Vec<AdminUserView>>> {
    Ok(Json(ops::users(&state, query).await?))
}

/// Gigs, newest first, with filters (any status).
#[utoipa::path(get, path = "/admin/gigs", tag = "admin", params(GigQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<AdminGigView>), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 422, body = ErrorBody)))]
async fn gigs(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<GigQuery>,
) -> ApiResult<Json<Vec<AdminGigView>>> {
    Ok(Json(ops::gigs(&state, query).await?))
}

/// Orders, newest first, with filters.
#[utoipa::path(get, path = "/admin/orders", tag = "admin", params(OrderQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<OrderView>), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 422, body = ErrorBody)))]
async fn orders(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<OrderQuery>,
) -> ApiResult<Json<Vec<OrderView>>> {
    Ok(Json(ops::orders(&state, query).await?))
}

/// The audit log, newest first: by admin, action, target and time.
#[utoipa::path(get, path = "/admin/audit", tag = "admin", params(AuditQuery), security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 422, body = ErrorBody)))]
async fn audit(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    Ok(Json(ops::audit(&state, query).await?))
}

/// Feed events after a number: what an admin who was away missed.
#[utoipa::path(get, path = "/admin/feed", tag = "admin", params(FeedQuery), security(("bearer" = [])),
    responses((status = 200, body = FeedPage), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 422, body = ErrorBody)))]
async fn feed(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(query): Query<FeedQuery>,
) -> ApiResult<Json<FeedPage>> {
    Ok(Json(ops::feed(&state, query).await?))
}

/// Users online, orders and takings today, open disputes and reports.
#[utoipa::path(get, path = "/admin/stats", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = StatsView), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED)))]
async fn stats(State(state): State<AppState>, _admin: AdminUser) -> ApiResult<Json<StatsView>> {
    Ok(Json(ops::stats(&state).await?))
}

/// Claims a queue item, so other admins leave it alone.
#[utoipa::path(post, path = "/admin/items/{id}/claim", tag = "admin", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn claim(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<domain::moderation::Item>> {
    let id = parse_id(&id, "queue item")?;
    Ok(Json(ops::claim(&state, &admin, id).await?))
}

/// Lets go of a claimed item.
#[utoipa::path(post, path = "/admin/items/{id}/release", tag = "admin", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn release(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<domain::moderation::Item>> {
    let id = parse_id(&id, "queue item")?;
    Ok(Json(ops::release(&state, &admin, id).await?))
}

/// Closes a report without acting on its target.
#[utoipa::path(post, path = "/admin/reports/{id}/dismiss", tag = "admin", params(("id" = Uuid, Path)), request_body = ActionRequest, security(("bearer" = [])),
    responses((status = 200, body = ActionView), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn dismiss_report(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    Json(request): Json<ActionRequest>,
) -> ApiResult<Json<ActionView>> {
    let id = parse_id(&id, "report")?;
    Ok(Json(
        ops::dismiss_report(&state, &admin, id, request).await?,
    ))
}

/// Suspends an account: sessions end now, live sockets close, gigs leave search.
#[utoipa::path(post, path = "/admin/users/{id}/suspend", tag = "admin", params(("id" = Uuid, Path)), request_body = ActionRequest, security(("bearer" = [])),
    responses((status = 200, body = ActionView), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn suspend(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    Json(request): Json<ActionRequest>,
) -> ApiResult<Json<ActionView>> {
    let id = parse_id(&id, "user")?;
    Ok(Json(ops::suspend(&state, &admin, id, request).await?))
}

/// Lifts a suspension.
#[utoipa::path(post, path = "/admin/users/{id}/reinstate", tag = "admin", params(("id" = Uuid, Path)), request_body = ActionRequest, security(("bearer" = [])),
    responses((status = 200, body = ActionView), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reinstate(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    Json(request): Json<ActionRequest>,
) -> ApiResult<Json<ActionView>> {
    let id = parse_id(&id, "user")?;
    Ok(Json(ops::reinstate(&state, &admin, id, request).await?))
}

/// Warns a user (notification and e-mail; `reason` is the text they read).
#[utoipa::path(post, path = "/admin/users/{id}/warn", tag = "admin", params(("id" = Uuid, Path)), request_body = ActionRequest, security(("bearer" = [])),
    responses((status = 200, body = ActionView), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn warn(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    Json(request): Json<ActionRequest>,
) -> ApiResult<Json<ActionView>> {
    let id = parse_id(&id, "user")?;
    Ok(Json(ops::warn(&state, &admin, id, request).await?))
}

/// Removes a gig from the marketplace; gone from search when this answers.
#[utoipa::path(post, path = "/admin/gigs/{id}/remove", tag = "admin", params(("id" = Uuid, Path)), request_body = ActionRequest, security(("bearer" = [])),
    responses((status = 200, body = ActionView), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn remove_gig(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    Json(request): Json<ActionRequest>,
) -> ApiResult<Json<ActionView>> {
    let id = parse_id(&id, "gig")?;
    Ok(Json(ops::remove_gig(&state, &admin, id, request).await?))
}

/// Restores a removed gig to the status it had.
#[utoipa::path(post, path = "/admin/gigs/{id}/restore", tag = "admin", params(("id" = Uuid, Path)), request_body = ActionRequest, security(("bearer" = [])),
    responses((status = 200, body = ActionView), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn restore_gig(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    Json(request): Json<ActionRequest>,
) -> ApiResult<Json<ActionView>> {
    let id = parse_id(&id, "gig")?;
    Ok(Json(ops::restore_gig(&state, &admin, id, request).await?))
}

/// Resolves a dispute: complete, or refund in full or in part.
#[utoipa::path(post, path = "/admin/orders/{id}/resolve", tag = "admin", params(("id" = Uuid, Path)), request_body = ResolveRequest, security(("bearer" = [])),
    responses((status = 200, body = ActionView), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn resolve_dispute(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    Json(request): Json<ResolveRequest>,
) -> ApiResult<Json<ActionView>> {
    let id = parse_id(&id, "order")?;
    Ok(Json(
        ops::resolve_dispute(&state, &admin, id, request).await?,
    ))
}

/// Cancels an order at once and refunds what was paid.
#[utoipa::path(post, path = "/admin/orders/{id}/cancel", tag = "admin", params(("id" = Uuid, Path)), request_body = ActionRequest, security(("bearer" = [])),
    responses((status = 200, body = ActionView), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn cancel_order(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    Json(request): Json<ActionRequest>,
) -> ApiResult<Json<ActionView>> {
    let id = parse_id(&id, "order")?;
    Ok(Json(ops::cancel_order(&state, &admin, id, request).await?))
}

/// Closes any queue item as needing nothing done.
#[utoipa::path(post, path = "/admin/items/{id}/dismiss", tag = "admin", params(("id" = Uuid, Path)), request_body = ActionRequest, security(("bearer" = [])),
    responses((status = 200, body = ActionView), (status = 401, body = ErrorBody, description = DENIED), (status = 403, body = ErrorBody, description = DENIED), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn dismiss(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    Json(request): Json<ActionRequest>,
) -> ApiResult<Json<ActionView>> {
    let id = parse_id(&id, "queue item")?;
    Ok(Json(ops::dismiss(&state, &admin, id, request).await?))
}
