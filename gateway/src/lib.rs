//! The marketplace server: configuration, the HTTP API and the pages that
//! e-mailed links open. `main.rs` turns it into the `marketplace` binary.
//!
//! Layout:
//! - [`admin`]: moderation: the queue, actions, the audit log and live
//!   statistics, over REST and the admin socket at `/admin/ws`.
//! - [`config`]: typed settings from defaults, a TOML file and `MARKETPLACE_*`.
//! - [`state`]: [`AppState`], the adapters chosen by configuration.
//! - [`routes`]: REST handlers under `/api/v1`, with their OpenAPI descriptions.
//! - [`error`]: the single JSON error shape and its status codes, and
//!   the `Json`/`Query` extractors that answer in it.
//! - [`extract`]: the signed-in user and the client address.
//! - [`tokens`]: signed short-lived access tokens.
//! - [`pages`]: the small HTML pages behind e-mailed links.
//! - [`seed`]: demo data and generated gigs for benchmarks.
//! - [`telemetry`]: structured logging setup.
//! - [`ws`]: the live socket at `/ws` and its session actors.
//!
//! [`run`] serves on a listener it is given until a shutdown future
//! completes; the binary and the tests call the same function.

pub mod admin;
pub mod config;
pub mod error;
pub mod extract;
pub mod pages;
pub mod routes;
pub mod seed;
pub mod state;
pub mod telemetry;
pub mod tokens;
pub mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Request, Response};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use domain::error::ErrorCode;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
pub use crate::state::AppState;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Marketplace API",
        description = "REST interface of the marketplace. Errors always have the shape of `ErrorBody`."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Registration, login, tokens and password recovery"),
        (name = "me", description = "The signed-in account"),
        (name = "users", description = "Public profiles"),
        (name = "gigs", description = "Gigs, their images and the category taxonomy"),
        (name = "search", description = "Gig search, suggestions and similar gigs"),
        (name = "conversations", description = "Chat: conversations, messages, read receipts, attachments, and the live event log"),
        (name = "notifications", description = "The notification list and its read state"),
        (name = "offers", description = "Custom offers a seller sends in a conversation"),
        (name = "checkout", description = "Placing and paying orders"),
        (name = "orders", description = "The order lifecycle: requirements, delivery, revisions, extensions, cancellation, disputes, and each order's ledger"),
        (name = "reviews", description = "Reviews both ways after an order, replies, and ratings"),
        (name = "saved", description = "Favourite gigs and saved searches, with their alerts and digest"),
        (name = "reports", description = "Reporting a gig, a user or a message to the marketplace team"),
        (name = "admin", description = "Moderation (admins only): the queue, claims, actions on users, gigs and orders, the audit log, lists and statistics"),
        (name = "webhooks", description = "Events from the payment provider"),
        (name = "ops", description = "Health and readiness"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router(config::MediaSettings::default().max_upload_bytes).into_openapi()
}

fn api_router(max_upload_bytes: usize) -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .merge(routes::auth::router())
        .merge(routes::me::router())
        .merge(routes::email_preferences::router())
        .merge(routes::users::router())
        .merge(routes::gigs::router(max_upload_bytes))
        .merge(routes::search::router())
        .merge(routes::conversations::router(max_upload_bytes))
        .merge(routes::notifications::router())
        .merge(routes::orders::router(max_upload_bytes))
        .merge(routes::payments::router())
        .merge(routes::reports::router())
        .merge(routes::saved::router())
        .merge(routes::reviews::router())
        .merge(admin::routes::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .merge(routes::ops::router())
}

/// The whole HTTP application.
pub fn app(state: AppState) -> anyhow::Result<Router> {
    let (router, spec) = api_router(state.settings.media.max_upload_bytes).split_for_parts();
    let spec = spec.to_json()?;
    let request_id = header::HeaderName::from_static("x-request-id");
    let router = router
        .route(
            "/api/openapi.json",
            get(move || async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    spec,
                )
            }),
        )
        .merge(pages::router())
        .merge(routes::gigs::media_router())
        .merge(ws::router())
        .merge(admin::socket::router())
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not accept that method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|request: &Request<Body>| {
                            let id = request
                                .headers()
                                .get("x-request-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            tracing::info_span!(
                                "request",
                                request_id = %id,
                                method = %request.method(),
                                path = %request.uri().path(),
                            )
                        })
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::custom(
                    |_: Box<dyn std::any::Any + Send>| -> Response<Body> {
                        ApiError::internal("handler panicked").into_response()
                    },
                )),
        )
        .with_state(state);
    Ok(router)
}

/// Serves until `shutdown` completes, then lets in-flight requests finish
/// for up to the configured grace period.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grace = Duration::from_secs(state.settings.server.shutdown_grace_secs);
    let store = state.store.clone();
    let gig_actors = state.gig_actors.clone();
    let chat = state.chat.clone();
    let orders = state.orders.clone();
    let saved = state.saved.clone();
    let closing = state.closing.clone();
    let app = app(state)?;
    tracing::info!(address = %listener.local_addr()?, "marketplace listening");
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    // Small frames (socket replies, events) go out at once instead of
    // waiting for the peer's delayed acknowledgement.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down, finishing in-flight requests");
        // Live sessions close with 1001 so clients reconnect elsewhere.
        let _ = closing.send(true);
        let _ = stopping_tx.send(());
    });
    let deadline = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!("grace period over, closing remaining connections"),
    }
    gig_actors.stop();
    chat.stop();
    orders.stop();
    saved.stop();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
