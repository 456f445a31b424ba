//! `/reports`: any signed-in user reports a gig, a user or a message to
//! the marketplace team.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::admin::sources::{file_report, ReportRequest, ReportView};
use crate::error::{ApiResult, ErrorBody, Json};
use crate::extract::AuthUser;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(report))
}

/// Reports a gig, a user or a message (one open report per target).
#[utoipa::path(post, path = "/reports", tag = "reports", request_body = ReportRequest,
    security(("bearer" = [])),
    responses((status = 201, body = ReportView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such target, or one the reporter cannot see"),
        (status = 409, body = ErrorBody, description = "already reported and not yet handled"),
        (status = 422, body = ErrorBody)))]
async fn report(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(request): Json<ReportRequest>,
) -> ApiResult<(StatusCode, Json<ReportView>)> {
    let view = file_report(&state, &auth.user, request).await?;
    Ok((StatusCode::CREATED, Json(view)))
}
