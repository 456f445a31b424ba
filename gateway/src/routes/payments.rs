//! What payment providers call: Stripe's webhook, and the development
//! provider's stand-in for a bank's extra step (3-D Secure).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use domain::error::ErrorCode;
use domain::ports::PaymentEvents;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody, Json};
use crate::extract::AuthUser;
use crate::routes::orders::{order_view, CheckoutView};
use crate::state::{AppState, Payments};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stripe_webhook))
        .routes(routes!(authenticate))
}

/// Stripe's events (payment succeeded or failed, refunds). The
/// `Stripe-Signature` header must sign the raw body with the endpoint's
/// secret, within 5 minutes; anything else is refused and changes nothing.
/// Each event is applied once however often it is delivered.
#[utoipa::path(post, path = "/webhooks/stripe", tag = "webhooks",
    request_body(content = String, content_type = "application/json"),
    responses(
        (status = 204, description = "applied, or already applied"),
        (status = 400, body = ErrorBody, description = "bad signature, stale or unreadable"),
        (status = 404, body = ErrorBody, description = "Stripe is not the configured provider"),
        (status = 503, body = ErrorBody, description = "not applied now: Stripe delivers it again")))]
#[tracing::instrument(skip_all)]
async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let Payments::Stripe(stripe) = &state.payments else {
        return Err(ApiError::not_found("no such route"));
    };
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let event = stripe
        .parse_webhook(&body, signature, state.clock.now())
        .map_err(|error| {
            tracing::warn!(%error, "stripe webhook refused");
            ApiError::new(ErrorCode::BadRequest, error.to_string())
        })?;
    if let Some(event) = event {
        tracing::info!(event_id = %event.id, "stripe event received");
        state.orders.received(event).await.map_err(|error| {
            tracing::warn!(%error, "stripe event not applied, it will be delivered again");
            ApiError::new(ErrorCode::Unavailable, "try again later")
        })?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthenticateRequest {
    /// `true` completes the payment; `false` refuses it as a bank would.
    pub approve: bool,
}

/// Development provider only: the buyer completes (or refuses) the extra
/// step a payment waits for (`requires_action`, test card
/// 4000002500003155), as they would in their bank's window.
#[utoipa::path(post, path = "/payments/dev/{intent_id}/authenticate", tag = "checkout",
    params(("intent_id" = String, Path)), request_body = AuthenticateRequest, security(("bearer" = [])),
    responses((status = 200, body = CheckoutView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn authenticate(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(intent_id): Path<String>,
    Json(request): Json<AuthenticateRequest>,
) -> ApiResult<Json<CheckoutView>> {
    let Payments::Dev(dev) = &state.payments else {
        return Err(ApiError::not_found("no such route"));
    };
    let order = state
        .orders
        .store()
        .order_by_intent("dev", &intent_id)
        .await?
        .filter(|order| order.buyer_id == auth.user.id)
        .ok_or_else(|| ApiError::not_found("no such payment"))?;
    let intent = dev
        .authenticate(&intent_id, request.approve)
        .await
        .map_err(actors::order::OrderFailure::from)?;
    let order = state.orders.order(auth.user.id, false, order.id).await?;
    Ok(Json(CheckoutView {
        order: order_view(&order),
        payment: Some(crate::routes::orders::payment_view(&intent)),
    }))
}
