//! Reviews: each side of a completed order reviews the other once, within
//! the review window; a review stays hidden from everyone but its author
//! until both sides have written theirs or the window closes. The seller
//! replies once, publicly, to the buyer's review. Lists of a gig's, a
//! seller's and a buyer's published reviews carry the rating (average,
//! count, histogram).

use std::collections::HashMap;

use actors::reviews::{level_name, ReviewFailure};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::account::Username;
use domain::error::ErrorCode;
use domain::ids::{OrderId, UserId};
use domain::review::{
    RatingSubject, RatingSummary, Review, ReviewCursor, ReviewDraft, ReviewError, SellerLevel,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorBody, Json, Query};
use crate::extract::AuthUser;
use crate::routes::conversations::bounded;
use crate::routes::orders::parse_order_id;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(order_reviews, write_review))
        .routes(routes!(reply_to_review))
        .routes(routes!(gig_reviews))
        .routes(routes!(user_reviews))
}

// ------------------------------------------------------------------ views

/// Average, count and how many reviews gave each number of stars.
#[derive(Debug, Serialize, ToSchema)]
pub struct RatingView {
    /// Rounded to one decimal; 0 without reviews.
    pub average: f32,
    pub count: u32,
    /// Reviews with 1, 2, 3, 4 and 5 stars.
    pub histogram: [u32; 5],
}

impl From<RatingSummary> for RatingView {
    fn from(summary: RatingSummary) -> Self {
        Self {
            average: summary.shown_average(),
            count: summary.count,
            histogram: summary.histogram,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplyView {
    pub text: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub order_id: Uuid,
    /// The side that wrote it: `buyer` (about the seller and the gig) or
    /// `seller` (about the buyer).
    pub side: &'static str,
    pub author_id: Uuid,
    /// The author's username; absent for a deleted account.
    pub author_username: Option<String>,
    pub subject_id: Uuid,
    pub gig_id: Option<Uuid>,
    /// 1 to 5 stars.
    pub rating: u8,
    pub text: String,
    pub created_at: DateTime<Utc>,
    /// False while hidden (only its author sees it then).
    pub published: bool,
    pub published_at: Option<DateTime<Utc>>,
    pub reply: Option<ReplyView>,
}

/// Views of `reviews`, with their authors' usernames.
async fn views(state: &AppState, reviews: &[Review]) -> ApiResult<Vec<ReviewView>> {
    let mut names: HashMap<UserId, Option<String>> = HashMap::new();
    for review in reviews {
        if let std::collections::hash_map::Entry::Vacant(entry) = names.entry(review.author_id) {
            let name = state
                .accounts
                .user_by_id(review.author_id)
                .await?
                .filter(|u| u.deleted_at.is_none())
                .map(|u| u.username.to_string());
            entry.insert(name);
        }
    }
    Ok(reviews
        .iter()
        .map(|r| ReviewView {
            order_id: r.order_id.as_uuid(),
            side: r.side.as_str(),
            author_id: r.author_id.as_uuid(),
            author_username: names.get(&r.author_id).cloned().flatten(),
            subject_id: r.subject_id.as_uuid(),
            gig_id: r.gig_id.map(|g| g.as_uuid()),
            rating: r.rating.get(),
            text: r.text.clone(),
            created_at: r.created_at,
            published: r.is_published(),
            published_at: r.published_at,
            reply: r.reply.as_ref().map(|reply| ReplyView {
                text: reply.text.clone(),
                created_at: reply.created_at,
            }),
        })
        .collect())
}

/// An order's reviews as one of its parties sees them.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderReviewsView {
    /// Published reviews, and the caller's own.
    pub reviews: Vec<ReviewView>,
    /// When the review window closes; absent while the order is not completed.
    pub window_closes_at: Option<DateTime<Utc>>,
    /// The caller may still write their review.
    pub can_review: bool,
    /// The other side has written a review the caller cannot see yet.
    pub other_side_reviewed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewPageView {
    pub rating: RatingView,
    /// Published reviews, newest first.
    pub items: Vec<ReviewView>,
    /// Pass as `before` for the next page; absent on the last.
    pub next: Option<String>,
}

// --------------------------------------------------------------- requests

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// 1 to 5 stars.
    pub rating: i64,
    /// Up to 2,000 characters; may be empty.
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    /// 1 to 1,000 characters.
    pub text: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReviewListParams {
    /// The `next` of the previous page.
    pub before: Option<String>,
    /// 1 to 50, default 10.
    pub limit: Option<u32>,
    /// For `/users/{username}/reviews`: `seller` (reviews from buyers, the
    /// default) or `buyer` (reviews from sellers).
    #[serde(rename = "as")]
    pub role: Option<String>,
}

impl From<ReviewFailure> for ApiError {
    fn from(failure: ReviewFailure) -> Self {
        match failure {
            ReviewFailure::NotFound => ApiError::not_found("no such order"),
            ReviewFailure::Rule(rule) => match rule {
                ReviewError::NotAParty | ReviewError::NotYours => {
                    ApiError::forbidden(rule.to_string())
                }
                ReviewError::NotCompleted
                | ReviewError::WindowClosed
                | ReviewError::AlreadyReviewed
                | ReviewError::NotPublished
                | ReviewError::AlreadyReplied => {
                    ApiError::new(ErrorCode::Conflict, rule.to_string())
                }
            },
            ReviewFailure::Invalid(errors) => errors.into(),
            ReviewFailure::Store(error) => error.into(),
        }
    }
}

// ------------------------------------------------------------------- REST

/// Review a completed order (its buyer or its seller, once each, within the
/// window). The review stays hidden until the other side has reviewed too
/// or the window closes; then both parties are notified and ratings and
/// search follow.
#[utoipa::path(post, path = "/orders/{id}/reviews", tag = "reviews",
    params(("id" = Uuid, Path)), request_body = ReviewRequest, security(("bearer" = [])),
    responses((status = 201, body = ReviewView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such order, or not a party"),
        (status = 409, body = ErrorBody, description = "not completed, window closed, or already reviewed"),
        (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id, order_id = %id))]
async fn write_review(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<ReviewRequest>,
) -> ApiResult<(StatusCode, Json<ReviewView>)> {
    let id = parse_order_id(&id)?;
    Ok((
        StatusCode::CREATED,
        Json(write(&state, auth.user.id, id, request).await?),
    ))
}

/// The order's reviews as the caller (a party) may see them.
#[utoipa::path(get, path = "/orders/{id}/reviews", tag = "reviews",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = OrderReviewsView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn order_reviews(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderReviewsView>> {
    let id = parse_order_id(&id)?;
    Ok(Json(of_order(&state, auth.user.id, id).await?))
}

/// The seller's one public reply to the buyer's published review.
#[utoipa::path(post, path = "/orders/{id}/reviews/reply", tag = "reviews",
    params(("id" = Uuid, Path)), request_body = ReplyRequest, security(("bearer" = [])),
    responses((status = 200, body = ReviewView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not the seller"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not published yet, or already replied"),
        (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id, order_id = %id))]
async fn reply_to_review(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<ReplyRequest>,
) -> ApiResult<Json<ReviewView>> {
    let id = parse_order_id(&id)?;
    Ok(Json(reply(&state, auth.user.id, id, request).await?))
}

/// A gig's published reviews (from its buyers) and its rating.
#[utoipa::path(get, path = "/gigs/{id}/reviews", tag = "reviews",
    params(("id" = Uuid, Path), ReviewListParams),
    responses((status = 200, body = ReviewPageView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn gig_reviews(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<ReviewListParams>,
) -> ApiResult<Json<ReviewPageView>> {
    let not_found = || ApiError::not_found("no such gig");
    let id = id.parse().map_err(|_| not_found())?;
    state
        .gigs
        .gig(id)
        .await?
        .filter(|g| g.is_public())
        .ok_or_else(not_found)?;
    if params.role.is_some() {
        return Err(domain::validation::FieldError::new(
            "as",
            "invalid",
            "only for a user's reviews",
        )
        .into());
    }
    Ok(Json(page(&state, RatingSubject::Gig(id), &params).await?))
}

/// A user's published reviews and rating: as a seller (from buyers) or as
/// a buyer (from sellers).
#[utoipa::path(get, path = "/users/{username}/reviews", tag = "reviews",
    params(("username" = String, Path), ReviewListParams),
    responses((status = 200, body = ReviewPageView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn user_reviews(
    State(state): State<AppState>,
    Path(username): Path<String>,
    Query(params): Query<ReviewListParams>,
) -> ApiResult<Json<ReviewPageView>> {
    let not_found = || ApiError::not_found("no such user");
    let username = Username::parse(&username).map_err(|_| not_found())?;
    let user = state
        .accounts
        .user_by_username(&username)
        .await?
        .filter(|u| u.can_sign_in())
        .ok_or_else(not_found)?;
    let subject = match params.role.as_deref() {
        None | Some("seller") => RatingSubject::Seller(user.id),
        Some("buyer") => RatingSubject::Buyer(user.id),
        Some(_) => {
            return Err(domain::validation::FieldError::new(
                "as",
                "invalid",
                "must be seller or buyer",
            )
            .into())
        }
    };
    Ok(Json(page(&state, subject, &params).await?))
}

async fn page(
    state: &AppState,
    subject: RatingSubject,
    params: &ReviewListParams,
) -> ApiResult<ReviewPageView> {
    let limit = bounded("limit", params.limit, 10, 50)?;
    let before = match params.before.as_deref() {
        None => None,
        Some(raw) => Some(ReviewCursor::decode(raw).ok_or_else(|| {
            domain::validation::FieldError::new("before", "invalid", "not a page cursor")
        })?),
    };
    let items = state.reviews.list(subject, before, limit).await?;
    let rating = state.reviews.rating(subject).await?;
    let next = if items.len() == limit as usize {
        items.last().and_then(ReviewCursor::of).map(|c| c.encode())
    } else {
        None
    };
    Ok(ReviewPageView {
        rating: rating.into(),
        items: views(state, &items).await?,
        next,
    })
}

// ------------------------------------------------------- shared with `ws`

pub async fn write(
    state: &AppState,
    user: UserId,
    id: OrderId,
    request: ReviewRequest,
) -> ApiResult<ReviewView> {
    let draft = ReviewDraft::parse(request.rating, &request.text)?;
    let review = state.reviews.submit(user, id, draft).await?;
    one_view(state, review).await
}

pub async fn reply(
    state: &AppState,
    user: UserId,
    id: OrderId,
    request: ReplyRequest,
) -> ApiResult<ReviewView> {
    let review = state.reviews.reply(user, id, &request.text).await?;
    one_view(state, review).await
}

pub async fn of_order(state: &AppState, me: UserId, id: OrderId) -> ApiResult<OrderReviewsView> {
    let (order, all) = state.reviews.of_order(me, false, id).await?;
    let visible: Vec<Review> = all
        .iter()
        .filter(|r| r.visible_to(Some(me)))
        .cloned()
        .collect();
    let window_closes_at = state.reviews.policy().closes_at(&order);
    let now = state.clock.now();
    let mine = all.iter().any(|r| r.author_id == me);
    let other_side_reviewed = all
        .iter()
        .any(|r| r.author_id != me && !r.visible_to(Some(me)));
    Ok(OrderReviewsView {
        reviews: views(state, &visible).await?,
        window_closes_at,
        can_review: !mine && window_closes_at.is_some_and(|at| now < at),
        other_side_reviewed,
    })
}

async fn one_view(state: &AppState, review: Review) -> ApiResult<ReviewView> {
    views(state, std::slice::from_ref(&review))
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("no view of the review"))
}

// ------------------------------------------------------ profiles and gigs

/// A seller's standing as profiles and gig pages show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SellerStandingView {
    /// `new`, `level_1`, `level_2` or `top_rated`.
    pub level: &'static str,
    /// `New seller`, `Level 1`, `Level 2`, `Top Rated`.
    pub level_name: &'static str,
    pub rating: RatingView,
}

pub async fn seller_standing(state: &AppState, seller: UserId) -> ApiResult<SellerStandingView> {
    let level: SellerLevel = state.reviews.level(seller).await?;
    let rating = state.reviews.rating(RatingSubject::Seller(seller)).await?;
    Ok(SellerStandingView {
        level: level.as_str(),
        level_name: level_name(level),
        rating: rating.into(),
    })
}

pub async fn rating_of(state: &AppState, subject: RatingSubject) -> ApiResult<RatingView> {
    Ok(state.reviews.rating(subject).await?.into())
}
