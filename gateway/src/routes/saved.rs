//! `/me/favourites` and `/me/saved-searches`: gigs a buyer keeps, and
//! searches that tell them about new gigs (a live `saved_search.match`
//! notification, and the daily digest e-mail when asked for).
//!
//! A saved search keeps the parameters of `GET /search/gigs` (without
//! `cursor` and `limit`, which describe a page), parsed by the search
//! route's own parsing ([`SearchParams::into_query`]) and stored in the
//! canonical form that parsing gives. The alert actor
//! (`actors::saved::SavedSearches`) is told of every change made here.
//!
//! A favourite whose gig is no longer public (paused, deleted, removed, or
//! its seller suspended) stays in the list, marked `available: false`
//! without the gig's details, so its owner can see it went and remove it;
//! adding one needs a gig the caller can see. Everything is the caller's
//! own: another user's saved search does not exist for them (404). The
//! operations are shared with the socket (`favourite.*`, `saved_search.*`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, TimeZone as _, Utc};
use domain::error::ErrorCode;
use domain::gig::Gig;
use domain::ids::{GigId, UserId};
use domain::ports::{SavedStore, StoreError};
use domain::saved::{SavedQuery, SavedSearch, SavedSearchEdit, SavedSearchId, SearchName};
use domain::validation::{FieldError, ValidationErrors};
use search::SearchQuery;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorBody, Json, Query};
use crate::extract::AuthUser;
use crate::routes::conversations::bounded;
use crate::routes::gigs::visible_gig;
use crate::routes::search::SearchParams;
use crate::state::AppState;
use crate::ws::frames;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_favourites))
        .routes(routes!(put_favourite, delete_favourite))
        .routes(routes!(list_saved_searches, create_saved_search))
        .routes(routes!(patch_saved_search, delete_saved_search))
}

// ------------------------------------------------------------ wire types

/// The search of a saved search: the parameters of `GET /search/gigs`
/// without `cursor` and `limit`, with the same names and rules.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedQueryBody {
    /// Words to look for; typos in longer words are forgiven.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// A category slug from `GET /categories`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subcategory: Option<String>,
    /// Lowest "starting at" price, minor units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_min: Option<i64>,
    /// Highest "starting at" price, minor units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_delivery_days: Option<u32>,
    /// 0 to 5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_rating: Option<f32>,
    /// Comma-separated: `new`, `level_1`, `level_2`, `top_rated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seller_level: Option<String>,
    /// The order to show results in when the search is run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
}

impl SavedQueryBody {
    fn into_params(self) -> SearchParams {
        SearchParams {
            q: self.q,
            category: self.category,
            subcategory: self.subcategory,
            price_min: self.price_min,
            price_max: self.price_max,
            max_delivery_days: self.max_delivery_days,
            min_rating: self.min_rating,
            seller_level: self.seller_level,
            sort: self.sort,
            cursor: None,
            limit: None,
        }
    }

    /// The canonical parameters of a parsed query: what is stored.
    fn of(query: &SearchQuery) -> Self {
        let levels: Vec<&str> = query.seller_levels.iter().map(|l| l.as_str()).collect();
        Self {
            q: query.text.clone(),
            category: query.category.clone(),
            subcategory: query.subcategory.clone(),
            price_min: query.price_min,
            price_max: query.price_max,
            max_delivery_days: query.max_delivery_days,
            min_rating: query.min_rating,
            seller_level: (!levels.is_empty()).then(|| levels.join(",")),
            sort: Some(query.sort.as_str().to_owned()),
        }
    }
}

/// How stored parameters become a query again: the search route's parsing.
pub fn query_parser() -> actors::saved::QueryParser {
    Arc::new(|saved: &SavedQuery| {
        serde_json::from_str::<SavedQueryBody>(saved.as_json())
            .ok()?
            .into_params()
            .into_query()
            .ok()
    })
}

/// A new saved search.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSavedSearchRequest {
    /// 1 to 80 characters.
    pub name: String,
    #[serde(default)]
    pub query: SavedQueryBody,
    /// A live notification for each new matching gig (default true).
    #[serde(default = "yes")]
    pub alerts: bool,
    /// New matching gigs in the daily e-mail digest (default false).
    #[serde(default)]
    pub email_digest: bool,
}

fn yes() -> bool {
    true
}

/// What may change in a saved search; the search itself is fixed.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSavedSearchRequest {
    pub name: Option<String>,
    pub alerts: Option<bool>,
    pub email_digest: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SavedSearchView {
    pub id: Uuid,
    pub name: String,
    pub query: SavedQueryBody,
    pub alerts: bool,
    pub email_digest: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The last digest covered gigs matched up to this time.
    pub last_digest_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SavedSearchListView {
    /// Newest first.
    pub items: Vec<SavedSearchView>,
    /// How many saved searches one user may keep.
    pub limit: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FavouriteView {
    pub gig_id: Uuid,
    pub saved_at: DateTime<Utc>,
}

/// What a favourites list shows of a gig.
#[derive(Debug, Serialize, ToSchema)]
pub struct GigSummaryView {
    pub id: Uuid,
    pub title: String,
    pub seller_id: Uuid,
    pub seller_username: String,
    pub category: String,
    pub subcategory: String,
    /// "Starting at" price, minor units of USD.
    pub price_from: i64,
    /// Delivery days of the fastest package.
    pub delivery_days: u32,
    pub image_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FavouriteItemView {
    pub gig_id: Uuid,
    pub saved_at: DateTime<Utc>,
    /// False once the gig is no longer public (paused, deleted, removed,
    /// or its seller suspended); `gig` is then null.
    pub available: bool,
    pub gig: Option<GigSummaryView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FavouritePageView {
    /// Newest first.
    pub items: Vec<FavouriteItemView>,
    /// `before` for the next (older) page; absent on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FavouriteParams {
    /// The `next` of the previous page.
    pub before: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<u32>,
}

// ------------------------------------------------------------------ REST

/// The signed-in user's favourite gigs, newest first.
#[utoipa::path(get, path = "/me/favourites", tag = "saved", security(("bearer" = [])),
    params(FavouriteParams),
    responses((status = 200, body = FavouritePageView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_favourites(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(params): Query<FavouriteParams>,
) -> ApiResult<Json<FavouritePageView>> {
    Ok(Json(favourites(&state, auth.user.id, params).await?))
}

/// Keep a gig as a favourite: 201 when added, 200 when it was one already.
#[utoipa::path(put, path = "/me/favourites/{gig_id}", tag = "saved", security(("bearer" = [])),
    params(("gig_id" = Uuid, Path)),
    responses(
        (status = 201, body = FavouriteView, description = "added"),
        (status = 200, body = FavouriteView, description = "a favourite already"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such public gig"),
        (status = 422, body = ErrorBody, description = "as many favourites as allowed"),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn put_favourite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(gig_id): Path<String>,
) -> ApiResult<(StatusCode, Json<FavouriteView>)> {
    let (view, added) = add_favourite(&state, auth.user.id, &gig_id).await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// Stop keeping a gig.
#[utoipa::path(delete, path = "/me/favourites/{gig_id}", tag = "saved", security(("bearer" = [])),
    params(("gig_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "not one of the user's favourites")))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn delete_favourite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(gig_id): Path<String>,
) -> ApiResult<StatusCode> {
    remove_favourite(&state, auth.user.id, &gig_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user's saved searches, newest first.
#[utoipa::path(get, path = "/me/saved-searches", tag = "saved", security(("bearer" = [])),
    responses((status = 200, body = SavedSearchListView), (status = 401, body = ErrorBody)))]
async fn list_saved_searches(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<SavedSearchListView>> {
    Ok(Json(saved_searches(&state, auth.user.id).await?))
}

/// Save a search. Gigs published from now on that match it arrive as
/// `saved_search.match` notifications (`alerts`) and in the daily digest
/// (`email_digest`).
#[utoipa::path(post, path = "/me/saved-searches", tag = "saved", security(("bearer" = [])),
    request_body = CreateSavedSearchRequest,
    responses((status = 201, body = SavedSearchView), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid fields, or as many saved searches as allowed")))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn create_saved_search(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(request): Json<CreateSavedSearchRequest>,
) -> ApiResult<(StatusCode, Json<SavedSearchView>)> {
    let view = create_search(&state, auth.user.id, request).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Rename a saved search, or turn its alerts or digest on or off.
#[utoipa::path(patch, path = "/me/saved-searches/{id}", tag = "saved", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = PatchSavedSearchRequest,
    responses((status = 200, body = SavedSearchView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn patch_saved_search(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<PatchSavedSearchRequest>,
) -> ApiResult<Json<SavedSearchView>> {
    Ok(Json(
        update_search(&state, auth.user.id, &id, request).await?,
    ))
}

/// Delete a saved search; its alerts stop.
#[utoipa::path(delete, path = "/me/saved-searches/{id}", tag = "saved", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn delete_saved_search(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    delete_search(&state, auth.user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------- shared with `ws`

/// The request types of the socket handled here.
pub const SOCKET_KINDS: &[&str] = &[
    "favourite.add",
    "favourite.remove",
    "favourite.list",
    "saved_search.list",
    "saved_search.create",
    "saved_search.update",
    "saved_search.delete",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GigRef {
    gig_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchRef {
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchPatch {
    id: String,
    name: Option<String>,
    alerts: Option<bool>,
    email_digest: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// Carries out one of the [`SOCKET_KINDS`] for `user`.
pub async fn socket_request(
    state: &AppState,
    user: UserId,
    kind: &str,
    data: Value,
) -> ApiResult<Value> {
    let value = match kind {
        "favourite.add" => {
            let request: GigRef = frames::data(kind, data)?;
            let (favourite, added) = add_favourite(state, user, &request.gig_id).await?;
            serde_json::json!({ "favourite": favourite, "added": added })
        }
        "favourite.remove" => {
            let request: GigRef = frames::data(kind, data)?;
            remove_favourite(state, user, &request.gig_id).await?;
            serde_json::json!({})
        }
        "favourite.list" => {
            let params: FavouriteParams = frames::data(kind, data)?;
            json(&favourites(state, user, params).await?)?
        }
        "saved_search.list" => {
            let _: Empty = frames::data(kind, data)?;
            json(&saved_searches(state, user).await?)?
        }
        "saved_search.create" => {
            let request: CreateSavedSearchRequest = frames::data(kind, data)?;
            json(&create_search(state, user, request).await?)?
        }
        "saved_search.update" => {
            let patch: SearchPatch = frames::data(kind, data)?;
            let request = PatchSavedSearchRequest {
                name: patch.name,
                alerts: patch.alerts,
                email_digest: patch.email_digest,
            };
            json(&update_search(state, user, &patch.id, request).await?)?
        }
        "saved_search.delete" => {
            let request: SearchRef = frames::data(kind, data)?;
            delete_search(state, user, &request.id).await?;
            serde_json::json!({})
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "not a favourite or saved search request",
            ))
        }
    };
    Ok(value)
}

fn json(value: &impl Serialize) -> ApiResult<Value> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

fn parse_gig_id(raw: &str) -> ApiResult<GigId> {
    raw.parse().map_err(|_| ApiError::not_found("no such gig"))
}

fn parse_search_id(raw: &str) -> ApiResult<SavedSearchId> {
    raw.parse()
        .map_err(|_| ApiError::not_found("no such saved search"))
}

fn too_many(field: &str, limit: u32, what: &str) -> ApiError {
    FieldError::new(
        field,
        "too_many",
        format!("at most {limit} {what} may be kept; remove one first"),
    )
    .into()
}

/// The gig, if anyone may see it (public, its seller not suspended): the
/// rule of `GET /gigs/{id}` for a visitor.
async fn public_gig(state: &AppState, id: GigId) -> ApiResult<Option<Gig>> {
    match visible_gig(state, id, None).await {
        Ok(gig) => Ok(Some(gig)),
        Err(error) if error.code() == ErrorCode::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

pub async fn add_favourite(
    state: &AppState,
    user: UserId,
    gig_id: &str,
) -> ApiResult<(FavouriteView, bool)> {
    let gig_id = parse_gig_id(gig_id)?;
    if public_gig(state, gig_id).await?.is_none() {
        return Err(ApiError::not_found("no such gig"));
    }
    let limit = state.settings.saved_searches.limits().favourites;
    let (favourite, added) = state
        .store
        .add_favourite(user, gig_id, state.clock.now(), limit)
        .await?
        .map_err(|reached| too_many("favourites", reached.limit, "favourites"))?;
    if added {
        tracing::info!(%gig_id, "favourite added");
    }
    Ok((
        FavouriteView {
            gig_id: favourite.gig_id.as_uuid(),
            saved_at: favourite.created_at,
        },
        added,
    ))
}

pub async fn remove_favourite(state: &AppState, user: UserId, gig_id: &str) -> ApiResult<()> {
    let gig_id = parse_gig_id(gig_id)?;
    if state.store.remove_favourite(user, gig_id).await? {
        Ok(())
    } else {
        Err(ApiError::not_found("the gig is not one of your favourites"))
    }
}

/// A page key: the favourite's time in microseconds and its gig.
fn page_key(at: DateTime<Utc>, gig: GigId) -> String {
    format!("{}.{gig}", at.timestamp_micros())
}

fn parse_page_key(raw: &str) -> ApiResult<(DateTime<Utc>, GigId)> {
    let invalid = || ApiError::from(FieldError::new("before", "invalid", "is not a page key"));
    let (micros, gig) = raw.split_once('.').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let at = Utc.timestamp_micros(micros).single().ok_or_else(invalid)?;
    Ok((at, gig.parse().map_err(|_| invalid())?))
}

pub async fn favourites(
    state: &AppState,
    user: UserId,
    params: FavouriteParams,
) -> ApiResult<FavouritePageView> {
    let limit = bounded("limit", params.limit, 20, 100)?;
    let before = match params.before.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(parse_page_key(raw)?),
    };
    let page = state.store.favourites(user, before, limit).await?;
    let next = (page.len() == limit as usize)
        .then(|| page.last().map(|f| page_key(f.created_at, f.gig_id)))
        .flatten();
    let mut items = Vec::with_capacity(page.len());
    for favourite in page {
        let gig = match public_gig(state, favourite.gig_id).await? {
            Some(gig) => Some(summary(state, &gig).await?),
            None => None,
        };
        items.push(FavouriteItemView {
            gig_id: favourite.gig_id.as_uuid(),
            saved_at: favourite.created_at,
            available: gig.is_some(),
            gig,
        });
    }
    Ok(FavouritePageView { items, next })
}

async fn summary(state: &AppState, gig: &Gig) -> ApiResult<GigSummaryView> {
    let seller = state
        .accounts
        .user_by_id(gig.seller_id)
        .await?
        .map(|s| s.username.to_string())
        .unwrap_or_default();
    Ok(GigSummaryView {
        id: gig.id.as_uuid(),
        title: gig.content.title.clone(),
        seller_id: gig.seller_id.as_uuid(),
        seller_username: seller,
        category: gig.content.category.clone(),
        subcategory: gig.content.subcategory.clone(),
        price_from: gig.price_range().0,
        delivery_days: gig.fastest_delivery_days(),
        image_url: gig.media.first().map(|m| format!("/media/{}", m.key)),
    })
}

fn search_view(search: &SavedSearch) -> SavedSearchView {
    let query = serde_json::from_str(search.query.as_json()).unwrap_or_else(|error| {
        tracing::warn!(search_id = %search.id, %error, "a stored saved search does not parse");
        SavedQueryBody::default()
    });
    SavedSearchView {
        id: search.id.as_uuid(),
        name: search.name.to_string(),
        query,
        alerts: search.alerts,
        email_digest: search.email_digest,
        created_at: search.created_at,
        updated_at: search.updated_at,
        last_digest_at: search.last_digest_at,
    }
}

pub async fn saved_searches(state: &AppState, user: UserId) -> ApiResult<SavedSearchListView> {
    let searches = state.store.saved_searches_of(user).await?;
    Ok(SavedSearchListView {
        items: searches.iter().map(search_view).collect(),
        limit: state.settings.saved_searches.limits().saved_searches,
    })
}

/// Parses the search with the search route's rules, and checks its
/// category against the taxonomy; problems are reported under `query.`.
fn parse_query(
    state: &AppState,
    body: SavedQueryBody,
) -> ApiResult<Result<SearchQuery, Vec<FieldError>>> {
    let query = match body.into_params().into_query() {
        Ok(query) => query,
        Err(error) if error.code() == ErrorCode::ValidationFailed => {
            let body = error.into_body();
            let fields = if body.fields.is_empty() {
                vec![FieldError::new("query", "invalid", body.message)]
            } else {
                body.fields
                    .into_iter()
                    .map(|f| FieldError::new(format!("query.{}", f.field), "invalid", f.message))
                    .collect()
            };
            return Ok(Err(fields));
        }
        Err(error) => return Err(error),
    };
    let taxonomy = &state.taxonomy;
    let mut fields = Vec::new();
    if let Some(category) = &query.category {
        if taxonomy.category(category).is_none() {
            fields.push(FieldError::new(
                "query.category",
                "unknown",
                "is not a category of the marketplace (see GET /api/v1/categories)",
            ));
        }
    }
    if let Some(subcategory) = &query.subcategory {
        let known = match &query.category {
            Some(category) => taxonomy.subcategory(category, subcategory).is_some(),
            None => taxonomy
                .categories
                .iter()
                .any(|c| c.subcategories.iter().any(|s| s.slug == *subcategory)),
        };
        if !known && fields.is_empty() {
            fields.push(FieldError::new(
                "query.subcategory",
                "unknown",
                "is not a subcategory of the category",
            ));
        }
    }
    Ok(if fields.is_empty() {
        Ok(query)
    } else {
        Err(fields)
    })
}

pub async fn create_search(
    state: &AppState,
    user: UserId,
    request: CreateSavedSearchRequest,
) -> ApiResult<SavedSearchView> {
    let mut errors = ValidationErrors::new();
    let name = errors.check(SearchName::parse(&request.name));
    let query = match parse_query(state, request.query)? {
        Ok(query) => Some(query),
        Err(fields) => {
            for field in fields {
                errors.push(field);
            }
            None
        }
    };
    let (name, query) = errors.finish(|| Some((name?, query?)))?;
    let stored = serde_json::to_string(&SavedQueryBody::of(&query)).map_err(ApiError::internal)?;
    let search = SavedSearch::new(
        user,
        name,
        SavedQuery::from_json(stored),
        request.alerts,
        request.email_digest,
        state.clock.now(),
    );
    let limit = state.settings.saved_searches.limits().saved_searches;
    state
        .store
        .create_saved_search(&search, limit)
        .await?
        .map_err(|reached| too_many("saved_searches", reached.limit, "saved searches"))?;
    state.saved.changed(&search);
    tracing::info!(search_id = %search.id, alerts = search.alerts, email_digest = search.email_digest, "search saved");
    Ok(search_view(&search))
}

/// The caller's saved search; another user's does not exist for them.
async fn own_search(state: &AppState, user: UserId, id: &str) -> ApiResult<SavedSearch> {
    let id = parse_search_id(id)?;
    state
        .store
        .saved_search(id)
        .await?
        .filter(|s| s.user_id == user)
        .ok_or_else(|| ApiError::not_found("no such saved search"))
}

pub async fn update_search(
    state: &AppState,
    user: UserId,
    id: &str,
    request: PatchSavedSearchRequest,
) -> ApiResult<SavedSearchView> {
    let search = own_search(state, user, id).await?;
    let name = match &request.name {
        Some(raw) => Some(SearchName::parse(raw)?),
        None => None,
    };
    let edit = SavedSearchEdit {
        name,
        alerts: request.alerts,
        email_digest: request.email_digest,
    };
    let next = search.edited(&edit, state.clock.now());
    match state.store.update_saved_search(&next).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(ApiError::not_found("no such saved search")),
        Err(error) => return Err(error.into()),
    }
    state.saved.changed(&next);
    Ok(search_view(&next))
}

pub async fn delete_search(state: &AppState, user: UserId, id: &str) -> ApiResult<()> {
    let id = parse_search_id(id)?;
    if !state.store.delete_saved_search(user, id).await? {
        return Err(ApiError::not_found("no such saved search"));
    }
    state.saved.removed(id);
    tracing::info!(search_id = %id, "saved search deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_parameters_are_the_canonical_search_parameters() {
        let body = SavedQueryBody {
            q: Some("  logo design ".into()),
            seller_level: Some("top_rated, level_1".into()),
            price_max: Some(5000),
            min_rating: Some(4.5),
            ..SavedQueryBody::default()
        };
        let query = body.into_params().into_query().unwrap();
        let stored = serde_json::to_value(SavedQueryBody::of(&query)).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({
                "q": "logo design", "price_max": 5000, "min_rating": 4.5,
                "seller_level": "top_rated,level_1", "sort": "relevance",
            })
        );
        // Read back, the same query.
        let parse = query_parser();
        let again = parse(&SavedQuery::from_json(stored.to_string())).unwrap();
        assert_eq!(again, query);
        assert!(parse(&SavedQuery::from_json(r#"{"cursor":"x"}"#.into())).is_none());
    }

    #[test]
    fn page_keys_round_trip() {
        let at = Utc
            .timestamp_micros(1_900_000_000_123_456)
            .single()
            .unwrap();
        let gig = GigId::new();
        assert_eq!(parse_page_key(&page_key(at, gig)).unwrap(), (at, gig));
        assert!(parse_page_key("x").is_err());
        assert!(parse_page_key("12.nope").is_err());
    }
}
