//! The pages e-mailed links open. Following a link (or a mail scanner
//! prefetching it) never changes anything by itself:
//!
//! - `/verify-email` and `/reset-password` are static; their script calls
//!   the REST API with the token from the address.
//! - `/unsubscribe?token=` says which e-mails the link turns off, with a
//!   button that posts to the same address; the post (also RFC 8058's
//!   one-click post from a mail client) turns that category of optional
//!   mail off, without signing in, and shows a button that posts to
//!   `/unsubscribe/undo?token=` to turn it back on. A token that is not one
//!   this server signed gets a 400 page and changes nothing
//!   (`adapters::mail::UnsubscribeTokens` says why tokens never expire).

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use domain::ids::UserId;
use domain::mail::MailCategory;
use domain::ports::{EmailPreferences, StoreError};

use crate::state::AppState;

const VERIFY_EMAIL: &str = include_str!("../pages/verify-email.html");
const RESET_PASSWORD: &str = include_str!("../pages/reset-password.html");
const UNSUBSCRIBE: &str = include_str!("../pages/unsubscribe.html");
const STYLE: &str = include_str!("../pages/pages.css");

/// The unsubscribe pages run no script; their forms post to this server.
const UNSUBSCRIBE_POLICY: &str =
    "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'";

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
        .route("/unsubscribe", get(unsubscribe_page).post(unsubscribe))
        .route("/unsubscribe/undo", post(undo_unsubscribe))
}

// ------------------------------------------------------------ unsubscribe

/// `GET /unsubscribe?token=`: what the link turns off, and the button that
/// does it. Changes nothing.
async fn unsubscribe_page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, Refused> {
    let (user, category, token) = verified(&state, query.as_deref())?;
    let enabled = state
        .store
        .mail_enabled(user, category)
        .await
        .map_err(Refused::failed)?;
    if !enabled {
        return Ok(unsubscribed(category, &token));
    }
    Ok(html_page(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "  <p>Stop receiving {summary}?</p>\n{always}\n{form}",
            summary = escape(category.summary()),
            always = still_sent(),
            form = button("/unsubscribe", &token, "Unsubscribe"),
        ),
    ))
}

/// `POST /unsubscribe?token=`: turns the category off (whatever the body:
/// the page's empty form, or `List-Unsubscribe=One-Click`).
async fn unsubscribe(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, Refused> {
    let (user, category, token) = verified(&state, query.as_deref())?;
    set(&state, user, category, false).await?;
    Ok(unsubscribed(category, &token))
}

/// `POST /unsubscribe/undo?token=`: turns the category back on.
async fn undo_unsubscribe(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, Refused> {
    let (user, category, token) = verified(&state, query.as_deref())?;
    set(&state, user, category, true).await?;
    Ok(html_page(
        StatusCode::OK,
        "You are subscribed again",
        &format!(
            "  <p class=\"ok\">You will receive {summary} again.</p>\n{form}",
            summary = escape(category.summary()),
            form = button("/unsubscribe", &token, "Unsubscribe again"),
        ),
    ))
}

/// Why an unsubscribe request changed nothing; answered with a page.
#[derive(Debug)]
enum Refused {
    /// Not a token this server signed (or none, or for an unknown user).
    InvalidLink,
    /// The store failed (logged when it happened).
    Failed,
}

impl Refused {
    fn failed(error: StoreError) -> Self {
        tracing::error!(%error, "reading or changing e-mail preferences failed");
        Refused::Failed
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::InvalidLink => html_page(
                StatusCode::BAD_REQUEST,
                "This link does not work",
                "  <p class=\"error\">This unsubscribe link is not valid, so nothing was changed. It may have been cut short when it was copied: open it from the e-mail again, or sign in and choose your e-mails in your account settings.</p>",
            ),
            Refused::Failed => html_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "  <p class=\"error\">Your e-mail preferences could not be changed just now. Try again in a moment.</p>",
            ),
        }
    }
}

/// The user and category the query's `token` names, and the token.
fn verified(
    state: &AppState,
    query: Option<&str>,
) -> Result<(UserId, MailCategory, String), Refused> {
    let token = query
        .and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "token")
                .map(|(_, token)| token.into_owned())
        })
        .ok_or(Refused::InvalidLink)?;
    match state.unsubscribe.verify(&token) {
        Ok((user, category)) => Ok((user, category, token)),
        Err(why) => {
            tracing::info!(reason = %why, "unsubscribe link refused");
            Err(Refused::InvalidLink)
        }
    }
}

async fn set(
    state: &AppState,
    user: UserId,
    category: MailCategory,
    enabled: bool,
) -> Result<(), Refused> {
    match state
        .store
        .set_mail_enabled(user, &[(category, enabled)], state.clock.now())
        .await
    {
        Ok(()) => {
            tracing::info!(user_id = %user, category = category.as_str(), enabled, "e-mail preference set by link");
            Ok(())
        }
        // Signed here for an account that is gone.
        Err(StoreError::NotFound) => Err(Refused::InvalidLink),
        Err(error) => Err(Refused::failed(error)),
    }
}

fn unsubscribed(category: MailCategory, token: &str) -> Response {
    html_page(
        StatusCode::OK,
        "You are unsubscribed",
        &format!(
            "  <p class=\"ok\">You will no longer receive {summary}.</p>\n{always}\n  <p>Changed your mind?</p>\n{form}",
            summary = escape(category.summary()),
            always = still_sent(),
            form = button("/unsubscribe/undo", token, "Turn them back on"),
        ),
    )
}

fn still_sent() -> String {
    format!(
        "  <p class=\"note\">{} and {} always arrive. Signed in, you can choose every kind of e-mail in your account settings.</p>",
        escape(&capitalised(MailCategory::Account.summary())),
        escape(MailCategory::Moderation.summary()),
    )
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// A form with one button that posts to `path?token=`.
fn button(path: &str, token: &str, label: &str) -> String {
    format!(
        "  <form class=\"action\" method=\"post\" action=\"{path}?token={token}\"><button type=\"submit\">{label}</button></form>",
        token = escape(token),
        label = escape(label),
    )
}

fn html_page(status: StatusCode, title: &str, content: &str) -> Response {
    let body = UNSUBSCRIBE
        .replace("{{title}}", &escape(title))
        .replace("{{content}}", content);
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(UNSUBSCRIBE_POLICY),
            ),
            // The address holds the token.
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
}

/// Escapes text for HTML content and quoted attributes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}
