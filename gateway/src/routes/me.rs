//! `/me`: the signed-in account, its profile, its seller profile, its data.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::account::{parse_bio, parse_display_name, Country, ProfileUpdate, Role, User};
use domain::ports::SellerProfileRecord;
use domain::seller::SellerProfileInput;
use domain::validation::ValidationErrors;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorBody, Json};
use crate::extract::AuthUser;
use crate::routes::auth::check_password;
use crate::routes::email_preferences::{self, EmailCategoryView};
use crate::routes::saved::{self, FavouriteItemView, FavouriteParams, SavedSearchView};
use crate::routes::seller::{SellerProfileBody, SellerProfilePatch, SellerProfileView};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_me, patch_me, delete_me))
        .routes(routes!(export_me))
        .routes(routes!(create_seller_profile, patch_seller_profile))
}

/// The signed-in account as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub display_name: Option<String>,
    pub country: Option<String>,
    pub bio: Option<String>,
    pub email_verified: bool,
    /// `buyer`, `seller` (has a seller profile), `admin`; every account is a buyer.
    pub roles: Vec<&'static str>,
    pub created_at: DateTime<Utc>,
}

impl MeView {
    pub fn new(user: &User, is_seller: bool) -> Self {
        let mut roles = vec!["buyer"];
        if is_seller {
            roles.push("seller");
        }
        if user.role == Role::Admin {
            roles.push("admin");
        }
        Self {
            id: user.id.as_uuid(),
            email: user.email.to_string(),
            username: user.username.to_string(),
            display_name: user.display_name.clone(),
            country: user.country.as_ref().map(|c| c.as_str().to_string()),
            bio: user.bio.clone(),
            email_verified: user.email_verified_at.is_some(),
            roles,
            created_at: user.created_at,
        }
    }
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Fields to change; `null` clears one, an absent field stays as it is.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMeRequest {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// ISO 3166-1 alpha-2 code.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub country: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub bio: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteMeRequest {
    pub password: String,
}

/// Everything the marketplace holds about the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportView {
    pub exported_at: DateTime<Utc>,
    pub account: MeView,
    pub seller_profile: Option<SellerProfileView>,
    pub sessions: Vec<SessionView>,
    /// Newest first.
    pub favourites: Vec<FavouriteItemView>,
    pub saved_searches: Vec<SavedSearchView>,
    pub email_preferences: Vec<EmailCategoryView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub current: bool,
}

async fn seller_record(state: &AppState, user: &User) -> ApiResult<Option<SellerProfileRecord>> {
    Ok(state.accounts.seller_profile(user.id).await?)
}

async fn me_view(state: &AppState, user: &User) -> ApiResult<MeView> {
    let is_seller = seller_record(state, user).await?.is_some();
    Ok(MeView::new(user, is_seller))
}

/// The signed-in account.
#[utoipa::path(get, path = "/me", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn get_me(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<MeView>> {
    Ok(Json(me_view(&state, &auth.user).await?))
}

/// Change display name, country or bio.
#[utoipa::path(patch, path = "/me", tag = "me", security(("bearer" = [])),
    request_body = PatchMeRequest,
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn patch_me(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<PatchMeRequest>,
) -> ApiResult<Json<MeView>> {
    let mut errors = ValidationErrors::new();
    // An empty string clears a field just like `null`.
    let mut clearable = |value: Option<Option<String>>,
                         parse: &dyn Fn(&str) -> Result<String, _>| {
        value.map(|inner| match inner {
            Some(raw) if !raw.trim().is_empty() => errors.check(parse(&raw)),
            _ => None,
        })
    };
    let display_name = clearable(body.display_name, &parse_display_name);
    let bio = clearable(body.bio, &parse_bio);
    let country = body.country.map(|inner| match inner {
        Some(raw) if !raw.trim().is_empty() => errors.check(Country::parse(&raw)),
        _ => None,
    });
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let update = ProfileUpdate {
        display_name,
        country,
        bio,
    };
    let user = if update.is_empty() {
        auth.user
    } else {
        state
            .accounts
            .update_profile(auth.user.id, &update, state.clock.now())
            .await?
    };
    Ok(Json(me_view(&state, &user).await?))
}

/// Delete the account: personal data is erased and every session ended;
/// records other people rely on keep pointing to an anonymous account.
#[utoipa::path(delete, path = "/me", tag = "me", security(("bearer" = [])),
    request_body = DeleteMeRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody, description = "wrong password")))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn delete_me(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<DeleteMeRequest>,
) -> ApiResult<StatusCode> {
    check_password(&state, &auth.user, &body.password, "password").await?;
    let now = state.clock.now();
    state
        .sessions
        .revoke_all_for_user(auth.user.id, None, now)
        .await?;
    state.accounts.anonymise_user(auth.user.id, now).await?;
    state.end_live_sessions(auth.user.id, domain::live::EndedSessions::AllExcept(None));
    tracing::info!("account deleted and anonymised");
    Ok(StatusCode::NO_CONTENT)
}

/// Download everything held about the caller, as JSON.
#[utoipa::path(get, path = "/me/export", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = ExportView), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn export_me(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<ExportView>> {
    let record = seller_record(&state, &auth.user).await?;
    let sessions = state.sessions.sessions_for_user(auth.user.id).await?;
    let mut favourites = Vec::new();
    let mut before = None;
    loop {
        let page = saved::favourites(
            &state,
            auth.user.id,
            FavouriteParams {
                before,
                limit: Some(100),
            },
        )
        .await?;
        favourites.extend(page.items);
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let saved_searches = saved::saved_searches(&state, auth.user.id).await?.items;
    let email_preferences = email_preferences::view(&state, auth.user.id)
        .await?
        .categories;
    Ok(Json(ExportView {
        exported_at: state.clock.now(),
        account: MeView::new(&auth.user, record.is_some()),
        seller_profile: record.as_ref().map(SellerProfileView::from),
        sessions: sessions
            .into_iter()
            .map(|s| SessionView {
                id: s.id.as_uuid(),
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
                revoked_at: s.revoked_at,
                user_agent: s.user_agent,
                ip: s.ip,
                current: s.id == auth.session_id,
            })
            .collect(),
        favourites,
        saved_searches,
        email_preferences,
    }))
}

/// Start selling: create the seller profile. Needs a verified e-mail address.
#[utoipa::path(post, path = "/me/seller", tag = "me", security(("bearer" = [])),
    request_body = SellerProfileBody,
    responses(
        (status = 201, body = SellerProfileView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "e-mail address not verified yet"),
        (status = 409, body = ErrorBody, description = "already a seller"),
        (status = 422, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn create_seller_profile(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<SellerProfileBody>,
) -> ApiResult<(StatusCode, Json<SellerProfileView>)> {
    if auth.user.email_verified_at.is_none() {
        return Err(ApiError::forbidden(
            "verify your e-mail address before you start selling",
        ));
    }
    let profile = SellerProfileInput::from(body).validate()?;
    let record = state
        .accounts
        .create_seller_profile(auth.user.id, &profile, state.clock.now())
        .await?;
    tracing::info!("seller profile created");
    Ok((StatusCode::CREATED, Json(SellerProfileView::from(&record))))
}

/// Edit the seller profile; absent fields stay as they are.
#[utoipa::path(patch, path = "/me/seller", tag = "me", security(("bearer" = [])),
    request_body = SellerProfilePatch,
    responses(
        (status = 200, body = SellerProfileView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "not a seller yet"),
        (status = 422, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn patch_seller_profile(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(patch): Json<SellerProfilePatch>,
) -> ApiResult<Json<SellerProfileView>> {
    let current = seller_record(&state, &auth.user)
        .await?
        .ok_or_else(|| ApiError::not_found("you have no seller profile yet"))?;
    let profile = patch.apply(&current.profile).validate()?;
    let record = state
        .accounts
        .update_seller_profile(auth.user.id, &profile, state.clock.now())
        .await?;
    Ok(Json(SellerProfileView::from(&record)))
}
