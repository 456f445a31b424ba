//! `/users`: public profiles.

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use domain::account::Username;
use domain::review::RatingSubject;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody, Json};
use crate::routes::reviews::{rating_of, seller_standing, RatingView, SellerStandingView};
use crate::routes::seller::SellerProfileView;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(public_profile))
}

/// What anyone may see of an account: never its e-mail address.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicProfile {
    pub username: String,
    pub display_name: Option<String>,
    pub country: Option<String>,
    pub bio: Option<String>,
    pub member_since: DateTime<Utc>,
    pub is_seller: bool,
    /// Present when the account sells.
    pub seller: Option<SellerProfileView>,
    /// Level and rating as a seller, when the account sells.
    pub seller_standing: Option<SellerStandingView>,
    /// Rating as a buyer, from sellers' reviews.
    pub buyer_rating: RatingView,
}

/// The public profile of an account, buyer and seller parts.
#[utoipa::path(get, path = "/users/{username}", tag = "users",
    params(("username" = String, Path, description = "case-insensitive")),
    responses((status = 200, body = PublicProfile), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
async fn public_profile(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> ApiResult<Json<PublicProfile>> {
    let not_found = || ApiError::not_found("no such user");
    let username = Username::parse(&username).map_err(|_| not_found())?;
    let user = state
        .accounts
        .user_by_username(&username)
        .await?
        .filter(|u| u.can_sign_in())
        .ok_or_else(not_found)?;
    let seller = state.accounts.seller_profile(user.id).await?;
    let seller_standing = match seller {
        Some(_) => Some(seller_standing(&state, user.id).await?),
        None => None,
    };
    let buyer_rating = rating_of(&state, RatingSubject::Buyer(user.id)).await?;
    Ok(Json(PublicProfile {
        username: user.username.to_string(),
        display_name: user.display_name,
        country: user.country.map(|c| c.as_str().to_string()),
        bio: user.bio,
        member_since: user.created_at,
        is_seller: seller.is_some(),
        seller: seller.as_ref().map(SellerProfileView::from),
        seller_standing,
        buyer_rating,
    }))
}
