//! `/me/email-preferences`: which e-mail the signed-in user receives.
//! Essential mail (the account's security, notices from the Marketplace
//! team) is always on; every other category is on until the user turns it
//! off, here or with the unsubscribe link in each optional mail (`pages`).
//! The mail worker reads the choice when it sends, so mail already queued
//! follows it too.

use std::collections::HashSet;

use axum::extract::State;
use domain::ids::UserId;
use domain::mail::MailCategory;
use domain::ports::EmailPreferences;
use domain::validation::{FieldError, ValidationErrors};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody, Json};
use crate::extract::AuthUser;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_email_preferences, put_email_preferences))
}

/// Every category of e-mail, in a fixed order.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailPreferencesView {
    pub categories: Vec<EmailCategoryView>,
}

/// One category of e-mail and whether the user receives it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailCategoryView {
    /// `account`, `moderation`, `orders`, `offers`, `reviews`,
    /// `saved_searches`.
    pub category: &'static str,
    /// Always sent; cannot be turned off.
    pub essential: bool,
    pub enabled: bool,
    /// What the category's mail is about, in words.
    pub summary: &'static str,
}

/// Categories to turn on or off; those not listed stay as they are. The
/// body of `GET` is accepted as it is (other fields are ignored).
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailPreferencesRequest {
    pub categories: Vec<EmailCategoryChange>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailCategoryChange {
    pub category: String,
    pub enabled: bool,
}

/// The signed-in user's e-mail categories and which are on.
#[utoipa::path(get, path = "/me/email-preferences", tag = "me",
    security(("bearer" = [])),
    responses((status = 200, body = EmailPreferencesView), (status = 401, body = ErrorBody)))]
async fn get_email_preferences(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<EmailPreferencesView>> {
    Ok(Json(view(&state, auth.user.id).await?))
}

/// Turns categories of e-mail on or off, all or none; answers with every
/// category as `GET` does. Turning an essential category off, an unknown
/// category, or one listed twice is refused (422) and changes nothing.
#[utoipa::path(put, path = "/me/email-preferences", tag = "me",
    request_body = EmailPreferencesRequest, security(("bearer" = [])),
    responses((status = 200, body = EmailPreferencesView), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "an unknown, repeated or essential category")))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn put_email_preferences(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(request): Json<EmailPreferencesRequest>,
) -> ApiResult<Json<EmailPreferencesView>> {
    let changes = parse_changes(&request)?;
    let user = auth.user.id;
    state
        .store
        .set_mail_enabled(user, &changes, state.clock.now())
        .await?;
    for (category, enabled) in &changes {
        tracing::info!(
            category = category.as_str(),
            enabled,
            "e-mail preference set"
        );
    }
    Ok(Json(view(&state, user).await?))
}

/// Every category with the user's choice.
pub async fn view(state: &AppState, user: UserId) -> ApiResult<EmailPreferencesView> {
    let off = state.store.disabled_mail(user).await?;
    Ok(EmailPreferencesView {
        categories: MailCategory::ALL
            .into_iter()
            .map(|category| EmailCategoryView {
                category: category.as_str(),
                essential: category.is_essential(),
                enabled: !off.contains(&category),
                summary: category.summary(),
            })
            .collect(),
    })
}

/// The requested changes, each category known, listed once, and essential
/// ones only ever on.
fn parse_changes(request: &EmailPreferencesRequest) -> ApiResult<Vec<(MailCategory, bool)>> {
    let mut errors = ValidationErrors::new();
    let mut seen = HashSet::new();
    let mut changes = Vec::with_capacity(request.categories.len());
    for (i, change) in request.categories.iter().enumerate() {
        let field = format!("categories[{i}].category");
        let Some(category) = MailCategory::parse(&change.category) else {
            errors.push(FieldError::new(
                field,
                "unknown",
                format!(
                    "must be one of {}",
                    MailCategory::ALL.map(MailCategory::as_str).join(", ")
                ),
            ));
            continue;
        };
        if !seen.insert(category) {
            errors.push(FieldError::new(field, "duplicate", "is listed twice"));
        } else if category.is_essential() && !change.enabled {
            errors.push(FieldError::new(
                field,
                "essential",
                format!(
                    "{} are essential and cannot be turned off",
                    category.summary()
                ),
            ));
        } else {
            changes.push((category, change.enabled));
        }
    }
    Ok(errors.finish(|| Some(changes))?)
}
