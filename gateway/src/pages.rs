//! The pages e-mailed links open. They are static; their script calls the
//! REST API with the token from the address, so following a link (or a mail
//! scanner prefetching it) never changes anything by itself.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

const VERIFY_EMAIL: &str = include_str!("../pages/verify-email.html");
const RESET_PASSWORD: &str = include_str!("../pages/reset-password.html");
const STYLE: &str = include_str!("../pages/pages.css");

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'",
                ),
            ),
        ],
        body,
    )
        .into_response()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/verify-email",
            get(|| async { page("text/html; charset=utf-8", VERIFY_EMAIL) }),
        )
        .route(
            "/reset-password",
            get(|| async { page("text/html; charset=utf-8", RESET_PASSWORD) }),
        )
        .route(
            "/pages.css",
            get(|| async { page("text/css; charset=utf-8", STYLE) }),
        )
}
