//! `/search`: finding gigs, and suggestions as the user types.

use axum::extract::{Path, State};
use domain::error::ErrorCode;
use search::{SearchError, SearchQuery, SellerLevel, Sort, SuggestionKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorBody, Json, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_gigs))
        .routes(routes!(autocomplete))
        .routes(routes!(similar_gigs))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to look for; typos in longer words are forgiven.
    pub q: Option<String>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    /// Lowest "starting at" price, minor units.
    pub price_min: Option<i64>,
    /// Highest "starting at" price, minor units.
    pub price_max: Option<i64>,
    pub max_delivery_days: Option<u32>,
    /// 0 to 5.
    pub min_rating: Option<f32>,
    /// Comma-separated: `new`, `level_1`, `level_2`, `top_rated`.
    pub seller_level: Option<String>,
    /// `relevance` (default with words), `newest` (default without),
    /// `price_asc`, `price_desc`, `rating`.
    pub sort: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 50, default 20.
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GigHitView {
    pub id: Uuid,
    pub title: String,
    pub seller_username: String,
    pub seller_name: String,
    pub seller_level: &'static str,
    pub category: String,
    pub subcategory: String,
    /// "Starting at" price, minor units of USD.
    pub price_from: i64,
    pub delivery_days: u32,
    pub rating: f32,
    pub rating_count: u32,
    pub image_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryCountView {
    pub category: String,
    pub count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    pub hits: Vec<GigHitView>,
    /// Matches in all pages.
    pub total: u64,
    /// Matches per category for this query, whatever category is selected.
    pub categories: Vec<CategoryCountView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AutocompleteParams {
    /// What the user typed so far.
    pub q: String,
    /// 1 to 20, default 8.
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionView {
    pub text: String,
    /// `title`, `tag` or `category`.
    pub kind: &'static str,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SimilarParams {
    /// 1 to 20, default 6.
    pub limit: Option<usize>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    domain::validation::FieldError::new(field, "invalid", message).into()
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::InvalidQuery(message) => {
                ApiError::new(ErrorCode::ValidationFailed, message)
            }
            other => {
                tracing::error!(error = %other, "search failed");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "search is unavailable right now, try again shortly",
                )
            }
        }
    }
}

fn hit_view(hit: search::GigHit) -> GigHitView {
    GigHitView {
        id: hit.gig_id,
        title: hit.title,
        seller_username: hit.seller_username,
        seller_name: hit.seller_name,
        seller_level: hit.seller_level.as_str(),
        category: hit.category,
        subcategory: hit.subcategory,
        price_from: hit.price_min,
        delivery_days: hit.delivery_days_min,
        rating: hit.rating_avg,
        rating_count: hit.rating_count,
        image_url: hit.image_url,
    }
}

impl SearchParams {
    /// The query these parameters ask for; saved searches store them too.
    pub(crate) fn into_query(self) -> ApiResult<SearchQuery> {
        let text = self
            .q
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty());
        let sort = match self.sort.as_deref() {
            None | Some("") => {
                if text.is_some() {
                    Sort::Relevance
                } else {
                    Sort::Newest
                }
            }
            Some(raw) => raw.parse::<Sort>().map_err(|_| {
                invalid(
                    "sort",
                    "must be relevance, newest, price_asc, price_desc or rating",
                )
            })?,
        };
        let mut seller_levels = Vec::new();
        for raw in self.seller_level.iter().flat_map(|s| s.split(',')) {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            seller_levels.push(raw.parse::<SellerLevel>().map_err(|_| {
                invalid("seller_level", "must be new, level_1, level_2 or top_rated")
            })?);
        }
        if let Some(rating) = self.min_rating {
            if !(0.0..=5.0).contains(&rating) {
                return Err(invalid("min_rating", "must be between 0 and 5"));
            }
        }
        for (field, price) in [("price_min", self.price_min), ("price_max", self.price_max)] {
            if price.is_some_and(|p| p < 0) {
                return Err(invalid(field, "must not be negative"));
            }
        }
        let query = SearchQuery {
            text,
            category: self.category.filter(|c| !c.is_empty()),
            subcategory: self.subcategory.filter(|c| !c.is_empty()),
            price_min: self.price_min,
            price_max: self.price_max,
            max_delivery_days: self.max_delivery_days,
            min_rating: self.min_rating,
            seller_levels,
            sort,
            cursor: self.cursor.filter(|c| !c.is_empty()),
            limit: self.limit.unwrap_or(20),
        };
        query.validate()?;
        Ok(query)
    }
}

/// Search active gigs with filters, sorts, category counts and cursor paging.
#[utoipa::path(get, path = "/search/gigs", tag = "search",
    params(SearchParams),
    responses((status = 200, body = SearchResponse), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn search_gigs(
    State(state): State<AppState>,
    Query(params): Query<SearchParams>,
) -> ApiResult<Json<SearchResponse>> {
    Ok(Json(search(&state, params).await?))
}

/// Runs a search; the REST handler and the socket's `search.query` share it.
pub async fn search(state: &AppState, params: SearchParams) -> ApiResult<SearchResponse> {
    let query = params.into_query()?;
    let page = state.search.search(&query).await?;
    Ok(SearchResponse {
        hits: page.hits.into_iter().map(hit_view).collect(),
        total: page.total,
        categories: page
            .categories
            .into_iter()
            .map(|c| CategoryCountView {
                category: c.category,
                count: c.count,
            })
            .collect(),
        next_cursor: page.next_cursor,
    })
}

/// Suggestions for what the user is typing: gig titles, tags, categories.
#[utoipa::path(get, path = "/search/autocomplete", tag = "search",
    params(AutocompleteParams),
    responses((status = 200, body = Vec<SuggestionView>), (status = 422, body = ErrorBody)))]
async fn autocomplete(
    State(state): State<AppState>,
    Query(params): Query<AutocompleteParams>,
) -> ApiResult<Json<Vec<SuggestionView>>> {
    Ok(Json(suggest(&state, params).await?))
}

/// Suggestions; the REST handler and the socket's `search.autocomplete` share it.
pub async fn suggest(
    state: &AppState,
    params: AutocompleteParams,
) -> ApiResult<Vec<SuggestionView>> {
    let limit = params.limit.unwrap_or(8);
    if !(1..=20).contains(&limit) {
        return Err(invalid("limit", "must be between 1 and 20"));
    }
    if params.q.chars().count() > 100 {
        return Err(invalid("q", "must be at most 100 characters"));
    }
    let suggestions = state.search.autocomplete(params.q.trim(), limit).await?;
    Ok(suggestions
        .into_iter()
        .map(|s| SuggestionView {
            text: s.text,
            kind: match s.kind {
                SuggestionKind::Title => "title",
                SuggestionKind::Tag => "tag",
                SuggestionKind::Category => "category",
            },
        })
        .collect())
}

/// Active gigs like this one.
#[utoipa::path(get, path = "/gigs/{id}/similar", tag = "search",
    params(("id" = Uuid, Path), SimilarParams),
    responses(
        (status = 200, body = Vec<GigHitView>, description = "empty for a gig that is not searchable"),
        (status = 404, body = ErrorBody, description = "malformed id"),
    ))]
async fn similar_gigs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<SimilarParams>,
) -> ApiResult<Json<Vec<GigHitView>>> {
    let id: Uuid = id.parse().map_err(|_| ApiError::not_found("no such gig"))?;
    let limit = params.limit.unwrap_or(6);
    if !(1..=20).contains(&limit) {
        return Err(invalid("limit", "must be between 1 and 20"));
    }
    let hits = state.search.similar(id, limit).await?;
    Ok(Json(hits.into_iter().map(hit_view).collect()))
}
