//! `/gigs`, `/categories`, `/sellers/{username}/gigs` and `/media`: sellers
//! publish and manage gigs; anyone reads active ones.
//!
//! Writes go through the gig's shard actor (`actors::gigs::GigActors`);
//! reads come from the store, which is the source of truth.

use actors::gig_shard::GigWriteError;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use domain::account::Username;
use domain::error::ErrorCode;
use domain::gig::{Gig, GigCommand, GigError, GigInput, GigMedia, PackageInput};
use domain::ids::GigId;
use domain::ports::{MediaError, MediaLocation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt as _};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorBody, Json};
use crate::extract::AuthUser;
use crate::state::AppState;

pub fn router(max_upload_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(categories))
        .routes(routes!(create_gig))
        .routes(routes!(get_gig, patch_gig, delete_gig))
        .routes(routes!(pause_gig))
        .routes(routes!(resume_gig))
        .routes(routes!(seller_gigs))
        .routes(routes!(upload_media).layer(DefaultBodyLimit::max(max_upload_bytes)))
        .routes(routes!(delete_media))
}

/// Media are served outside `/api/v1`, at stable addresses that search
/// results and gig pages link to.
pub fn media_router() -> Router<AppState> {
    Router::new().route("/media/{*key}", get(serve_media))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubcategoryView {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    pub slug: String,
    pub name: String,
    pub subcategories: Vec<SubcategoryView>,
}

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageBody {
    /// `basic`, `standard` or `premium`; each at most once.
    pub tier: String,
    pub name: String,
    pub description: String,
    /// Minor units (cents), 500 to 5,000,000.
    pub price: i64,
    /// `USD`.
    pub currency: String,
    /// 1 to 90.
    pub delivery_days: i64,
    /// 0 to 20.
    pub revisions: i64,
}

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaqBody {
    pub question: String,
    pub answer: String,
}

/// A new gig.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGigRequest {
    /// 15 to 80 characters.
    pub title: String,
    /// 50 to 5000 characters.
    pub description: String,
    /// A category slug from `GET /categories`.
    pub category: String,
    pub subcategory: String,
    /// Up to 5.
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub faq: Vec<FaqBody>,
    /// One to three.
    pub packages: Vec<PackageBody>,
    /// Publish at once (default) or keep as a draft.
    #[serde(default = "yes")]
    pub publish: bool,
}

fn yes() -> bool {
    true
}

/// Fields to change; lists are replaced whole.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchGigRequest {
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub tags: Option<Vec<String>>,
    pub faq: Option<Vec<FaqBody>>,
    pub packages: Option<Vec<PackageBody>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MediaView {
    pub key: String,
    pub url: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GigView {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub title: String,
    pub description: String,
    pub category: String,
    pub subcategory: String,
    pub tags: Vec<String>,
    pub faq: Vec<FaqBody>,
    pub packages: Vec<PackageBody>,
    pub media: Vec<MediaView>,
    /// `draft`, `active`, `paused` or `removed`.
    pub status: &'static str,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Gig> for GigView {
    fn from(gig: &Gig) -> Self {
        let c = &gig.content;
        Self {
            id: gig.id.as_uuid(),
            seller_id: gig.seller_id.as_uuid(),
            title: c.title.clone(),
            description: c.description.clone(),
            category: c.category.clone(),
            subcategory: c.subcategory.clone(),
            tags: c.tags.clone(),
            faq: c
                .faq
                .iter()
                .map(|f| FaqBody {
                    question: f.question.clone(),
                    answer: f.answer.clone(),
                })
                .collect(),
            packages: c
                .packages
                .iter()
                .map(|p| PackageBody {
                    tier: p.tier.as_str().into(),
                    name: p.name.clone(),
                    description: p.description.clone(),
                    price: p.price.amount_minor,
                    currency: p.price.currency.code().into(),
                    delivery_days: i64::from(p.delivery_days),
                    revisions: i64::from(p.revisions),
                })
                .collect(),
            media: gig
                .media
                .iter()
                .map(|m| MediaView {
                    key: m.key.clone(),
                    url: format!("/media/{}", m.key),
                    content_type: m.content_type.clone(),
                    width: m.width,
                    height: m.height,
                    bytes: m.bytes,
                })
                .collect(),
            status: gig.status.as_str(),
            version: gig.version,
            created_at: gig.created_at,
            updated_at: gig.updated_at,
        }
    }
}

fn packages(items: Vec<PackageBody>) -> Vec<PackageInput> {
    items
        .into_iter()
        .map(|p| PackageInput {
            tier: p.tier,
            name: p.name,
            description: p.description,
            price_minor: p.price,
            currency: p.currency,
            delivery_days: p.delivery_days,
            revisions: p.revisions,
        })
        .collect()
}

fn faq(items: Vec<FaqBody>) -> Vec<(String, String)> {
    items.into_iter().map(|f| (f.question, f.answer)).collect()
}

impl From<GigWriteError> for ApiError {
    fn from(error: GigWriteError) -> Self {
        match error {
            GigWriteError::Rule(rule) => match rule {
                GigError::NotFound => ApiError::not_found("no such gig"),
                GigError::NotOwner | GigError::AdminOnly => ApiError::forbidden(rule.to_string()),
                GigError::InvalidTransition { .. } | GigError::VersionConflict => {
                    ApiError::new(ErrorCode::Conflict, rule.to_string())
                }
                GigError::TooManyMedia => {
                    ApiError::new(ErrorCode::ValidationFailed, rule.to_string())
                }
                GigError::NoSuchMedia(_) => ApiError::not_found(rule.to_string()),
            },
            GigWriteError::Store(store) => store.into(),
            GigWriteError::Unavailable => ApiError::new(
                ErrorCode::Unavailable,
                "gigs cannot be changed right now, try again shortly",
            ),
        }
    }
}

impl From<MediaError> for ApiError {
    fn from(error: MediaError) -> Self {
        match error {
            MediaError::Rejected(message) => ApiError::from(domain::validation::FieldError::new(
                "image", "invalid", message,
            )),
            MediaError::Backend(detail) => ApiError::internal(detail),
        }
    }
}

fn parse_gig_id(raw: &str) -> ApiResult<GigId> {
    raw.parse().map_err(|_| ApiError::not_found("no such gig"))
}

async fn execute(
    state: &AppState,
    auth: &AuthUser,
    id: GigId,
    command: GigCommand,
) -> ApiResult<Gig> {
    // Publishing and editing go to the admins' queue; what the gig was
    // before tells a first publication from a resumption.
    let watched = matches!(
        command,
        GigCommand::Create { .. } | GigCommand::Update { .. } | GigCommand::Resume
    );
    let before = match command {
        GigCommand::Update { .. } | GigCommand::Resume => state.gigs.gig(id).await?,
        _ => None,
    };
    let gig = state
        .gig_actors
        .execute(id, command, auth.user.id, state.clock.now())
        .await?;
    if watched {
        crate::admin::sources::gig_written(state, before.as_ref(), &gig);
    }
    Ok(gig)
}

/// A gig the caller may see: active ones to everyone, the rest to their seller.
pub(crate) async fn visible_gig(
    state: &AppState,
    id: GigId,
    viewer: Option<&AuthUser>,
) -> ApiResult<Gig> {
    let gig = state
        .gigs
        .gig(id)
        .await?
        .filter(|g| g.deleted_at.is_none())
        .ok_or_else(|| ApiError::not_found("no such gig"))?;
    let owner = viewer.is_some_and(|v| v.user.id == gig.seller_id);
    if owner {
        return Ok(gig);
    }
    // A suspended seller's gigs are hidden like unpublished ones.
    let seller_active = gig.is_public()
        && state
            .accounts
            .user_by_id(gig.seller_id)
            .await?
            .is_some_and(|s| s.can_sign_in());
    if seller_active {
        Ok(gig)
    } else {
        Err(ApiError::not_found("no such gig"))
    }
}

/// A gig the caller may change: 404 if they cannot see it, 403 if they can
/// but it is not theirs (the rule `domain::gig::decide` applies too).
async fn owned_gig(state: &AppState, id: GigId, auth: &AuthUser) -> ApiResult<Gig> {
    let gig = visible_gig(state, id, Some(auth)).await?;
    if gig.seller_id != auth.user.id {
        return Err(GigWriteError::Rule(GigError::NotOwner).into());
    }
    Ok(gig)
}

/// The fixed category taxonomy.
#[utoipa::path(get, path = "/categories", tag = "gigs",
    responses((status = 200, body = Vec<CategoryView>)))]
async fn categories(State(state): State<AppState>) -> ApiResult<Json<Vec<CategoryView>>> {
    Ok(Json(
        state
            .taxonomy
            .categories
            .iter()
            .map(|c| CategoryView {
                slug: c.slug.clone(),
                name: c.name.clone(),
                subcategories: c
                    .subcategories
                    .iter()
                    .map(|s| SubcategoryView {
                        slug: s.slug.clone(),
                        name: s.name.clone(),
                    })
                    .collect(),
            })
            .collect(),
    ))
}

/// Create a gig (sellers only). Published at once unless `publish` is false.
#[utoipa::path(post, path = "/gigs", tag = "gigs", security(("bearer" = [])),
    request_body = CreateGigRequest,
    responses(
        (status = 201, body = GigView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not a seller"),
        (status = 422, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn create_gig(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<CreateGigRequest>,
) -> ApiResult<(StatusCode, Json<GigView>)> {
    if state.accounts.seller_profile(auth.user.id).await?.is_none() {
        return Err(ApiError::forbidden(
            "create a seller profile before publishing gigs",
        ));
    }
    let content = GigInput {
        title: body.title,
        description: body.description,
        category: body.category,
        subcategory: body.subcategory,
        tags: body.tags,
        faq: faq(body.faq),
        packages: packages(body.packages),
    }
    .validate(&state.taxonomy)?;
    let id = GigId::new();
    let gig = execute(
        &state,
        &auth,
        id,
        GigCommand::Create {
            id,
            content,
            publish: body.publish,
        },
    )
    .await?;
    tracing::info!(gig_id = %gig.id, status = gig.status.as_str(), "gig created");
    Ok((StatusCode::CREATED, Json(GigView::from(&gig))))
}

/// A gig: active ones for everyone, drafts and paused ones for their seller.
#[utoipa::path(get, path = "/gigs/{id}", tag = "gigs",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = GigView), (status = 404, body = ErrorBody)))]
async fn get_gig(
    State(state): State<AppState>,
    viewer: Option<AuthUser>,
    Path(id): Path<String>,
) -> ApiResult<Json<GigView>> {
    let gig = visible_gig(&state, parse_gig_id(&id)?, viewer.as_ref()).await?;
    Ok(Json(GigView::from(&gig)))
}

/// Edit a gig (its seller only).
#[utoipa::path(patch, path = "/gigs/{id}", tag = "gigs", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = PatchGigRequest,
    responses(
        (status = 200, body = GigView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn patch_gig(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(patch): Json<PatchGigRequest>,
) -> ApiResult<Json<GigView>> {
    let id = parse_gig_id(&id)?;
    let current = owned_gig(&state, id, &auth).await?;
    let mut input = GigInput::from(&current.content);
    if let Some(v) = patch.title {
        input.title = v;
    }
    if let Some(v) = patch.description {
        input.description = v;
    }
    if let Some(v) = patch.category {
        input.category = v;
    }
    if let Some(v) = patch.subcategory {
        input.subcategory = v;
    }
    if let Some(v) = patch.tags {
        input.tags = v;
    }
    if let Some(v) = patch.faq {
        input.faq = faq(v);
    }
    if let Some(v) = patch.packages {
        input.packages = packages(v);
    }
    let content = input.validate(&state.taxonomy)?;
    let gig = execute(&state, &auth, id, GigCommand::Update { content }).await?;
    Ok(Json(GigView::from(&gig)))
}

/// Delete a gig (its seller only); it leaves search at once.
#[utoipa::path(delete, path = "/gigs/{id}", tag = "gigs", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn delete_gig(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    execute(&state, &auth, parse_gig_id(&id)?, GigCommand::Delete).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pause an active gig: it leaves search until resumed.
#[utoipa::path(post, path = "/gigs/{id}/pause", tag = "gigs", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = GigView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn pause_gig(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<GigView>> {
    let gig = execute(&state, &auth, parse_gig_id(&id)?, GigCommand::Pause).await?;
    Ok(Json(GigView::from(&gig)))
}

/// Publish a draft or resume a paused gig.
#[utoipa::path(post, path = "/gigs/{id}/resume", tag = "gigs", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = GigView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn resume_gig(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<GigView>> {
    let gig = execute(&state, &auth, parse_gig_id(&id)?, GigCommand::Resume).await?;
    Ok(Json(GigView::from(&gig)))
}

/// A seller's gigs: the active ones, or all but deleted ones for the seller.
#[utoipa::path(get, path = "/sellers/{username}/gigs", tag = "gigs",
    params(("username" = String, Path)),
    responses((status = 200, body = Vec<GigView>), (status = 404, body = ErrorBody)))]
async fn seller_gigs(
    State(state): State<AppState>,
    viewer: Option<AuthUser>,
    Path(username): Path<String>,
) -> ApiResult<Json<Vec<GigView>>> {
    let not_found = || ApiError::not_found("no such seller");
    let username = Username::parse(&username).map_err(|_| not_found())?;
    let seller = state
        .accounts
        .user_by_username(&username)
        .await?
        .filter(|u| u.can_sign_in())
        .ok_or_else(not_found)?;
    let own = viewer.is_some_and(|v| v.user.id == seller.id);
    let gigs = state.gigs.gigs_by_seller(seller.id, !own).await?;
    Ok(Json(gigs.iter().map(GigView::from).collect()))
}

/// Add an image to a gig: the request body is the JPEG, PNG or WebP file
/// itself; its type is read from the bytes.
#[utoipa::path(post, path = "/gigs/{id}/media", tag = "gigs", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, body = GigView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "not an accepted image, or already five images"),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn upload_media(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<GigView>)> {
    let id = parse_gig_id(&id)?;
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the image is larger than allowed",
            )
        } else {
            ApiError::new(ErrorCode::BadRequest, e.body_text())
        }
    })?;
    // Check ownership before storing anything.
    owned_gig(&state, id, &auth).await?;
    let limits = state.image_limits.clone();
    let inspected = {
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || adapters::media::inspect(&bytes, &limits))
            .await
            .map_err(ApiError::internal)??
    };
    let extension = inspected.content_type.rsplit('/').next().unwrap_or("img");
    let key = format!("gigs/{}/{}.{}", id, Uuid::now_v7().simple(), extension);
    state
        .media
        .put(&key, inspected.content_type, bytes.to_vec())
        .await?;
    let media = GigMedia {
        key: key.clone(),
        content_type: inspected.content_type.to_string(),
        width: inspected.width,
        height: inspected.height,
        bytes: bytes.len() as u64,
    };
    match execute(&state, &auth, id, GigCommand::AddMedia(media)).await {
        Ok(gig) => Ok((StatusCode::CREATED, Json(GigView::from(&gig)))),
        Err(error) => {
            if let Err(cleanup) = state.media.delete(&key).await {
                tracing::warn!(error = %cleanup, %key, "removing an unattached upload failed");
            }
            Err(error)
        }
    }
}

/// Remove an image from a gig.
#[utoipa::path(delete, path = "/gigs/{id}/media/{key}", tag = "gigs", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("key" = String, Path, description = "the file name part of the media key")),
    responses((status = 200, body = GigView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_media(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<Json<GigView>> {
    let id = parse_gig_id(&id)?;
    let key = format!("gigs/{id}/{name}");
    let gig = execute(&state, &auth, id, GigCommand::RemoveMedia { key }).await?;
    Ok(Json(GigView::from(&gig)))
}

async fn serve_media(State(state): State<AppState>, Path(key): Path<String>) -> Response {
    // Chat attachments and order files are private: only their own routes,
    // which check who asks, serve them.
    if key.starts_with("chat/") || key.starts_with("orders/") {
        return ApiError::not_found("no such media").into_response();
    }
    media_response(&state, &key, "public, max-age=31536000, immutable").await
}

/// Serves stored media: the bytes, or a redirect to a signed address.
pub(crate) async fn media_response(state: &AppState, key: &str, cache: &'static str) -> Response {
    match state.media.fetch(key).await {
        Ok(Some(MediaLocation::Bytes {
            content_type,
            bytes,
        })) => {
            let content_type = HeaderValue::from_str(&content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    // Keys are never reused, so a stored file never changes.
                    (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
                    (
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Ok(Some(MediaLocation::Redirect(url))) => Redirect::temporary(&url).into_response(),
        Ok(None) => ApiError::not_found("no such media").into_response(),
        Err(MediaError::Rejected(_)) => ApiError::not_found("no such media").into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}
