//! `/auth`: registration, e-mail verification, login, token refresh, logout
//! and password recovery.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use domain::account::{Email, Password, Role, User, Username};
use domain::auth::{NewSession, Rotation, TokenPurpose};
use domain::ids::SessionId;
use domain::live::EndedSessions;
use domain::mail::AccountMail;
use domain::validation::{FieldError, ValidationErrors};
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody, Json};
use crate::extract::{AuthUser, ClientAddr};
use crate::routes::me::MeView;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
        .routes(routes!(change_password))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    /// 3 to 30 of `a-z 0-9 _ -`, unique regardless of case.
    pub username: String,
    /// 8 to 128 characters.
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The token from the e-mailed link.
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// E-mail address or username.
    pub login: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// Revoke the session of this refresh token (when the access token has
    /// already expired). Without it, the bearer token's session is revoked.
    pub refresh_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub token: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Bearer token for `Authorization: Bearer ...`.
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Single use: `POST /auth/refresh` returns its replacement.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    pub user: MeView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifiedResponse {
    pub email_verified: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedResponse {
    pub message: &'static str,
}

/// Create an account and send the verification e-mail.
#[utoipa::path(post, path = "/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = MeView, description = "account created; a verification e-mail is on its way"),
        (status = 409, body = ErrorBody, description = "email or username already taken"),
        (status = 422, body = ErrorBody, description = "invalid fields"),
    ))]
#[tracing::instrument(skip_all)]
async fn register(
    State(state): State<AppState>,
    Json(body): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<MeView>)> {
    let mut errors = ValidationErrors::new();
    let email = errors.check(Email::parse(&body.email));
    let username = errors.check(Username::parse(&body.username));
    let password = errors.check(Password::parse("password", &body.password));
    let (email, username, password) = errors.finish(|| Some((email?, username?, password?)))?;

    let user = state
        .create_account(email, username, &password, Role::User, false)
        .await?;
    send_verification(&state, &user).await?;
    Ok((StatusCode::CREATED, Json(MeView::new(&user, false))))
}

async fn send_verification(state: &AppState, user: &User) -> ApiResult<()> {
    let link = issue_token(state, user, TokenPurpose::VerifyEmail, "/verify-email").await?;
    state
        .send_mail(
            user.email.clone(),
            AccountMail::VerifyEmail {
                username: user.username.to_string(),
                link,
                valid_hours: TokenPurpose::VerifyEmail.lifetime().num_hours(),
            },
        )
        .await;
    Ok(())
}

/// Replaces the user's outstanding tokens of this purpose with a new one and
/// returns the link that carries it.
async fn issue_token(
    state: &AppState,
    user: &User,
    purpose: TokenPurpose,
    path: &str,
) -> ApiResult<String> {
    let now = state.clock.now();
    let secret = adapters::token::generate();
    state.accounts.delete_tokens(user.id, purpose).await?;
    state
        .accounts
        .insert_token(&domain::auth::OneTimeToken {
            token_hash: adapters::token::hash(&secret),
            user_id: user.id,
            purpose,
            created_at: now,
            expires_at: now + purpose.lifetime(),
        })
        .await?;
    Ok(state.link(path, &secret))
}

/// Confirm the e-mail address with the token from the verification link.
#[utoipa::path(post, path = "/auth/verify-email", tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, body = VerifiedResponse),
        (status = 400, body = ErrorBody, description = "unknown, expired or already used token"),
    ))]
#[tracing::instrument(skip_all)]
async fn verify_email(
    State(state): State<AppState>,
    Json(body): Json<TokenRequest>,
) -> ApiResult<Json<VerifiedResponse>> {
    let now = state.clock.now();
    let user_id = state
        .accounts
        .consume_token(
            &adapters::token::hash(body.token.trim()),
            TokenPurpose::VerifyEmail,
            now,
        )
        .await?
        .ok_or_else(|| {
            ApiError::invalid_token("this verification link is invalid, expired or already used")
        })?;
    state.accounts.mark_email_verified(user_id, now).await?;
    tracing::info!(%user_id, "e-mail verified");
    Ok(Json(VerifiedResponse {
        email_verified: true,
    }))
}

/// Send a new verification e-mail. Always 202, whether or not the address
/// belongs to an unverified account.
#[utoipa::path(post, path = "/auth/resend-verification", tag = "auth",
    request_body = EmailRequest,
    responses((status = 202, body = AcceptedResponse)))]
#[tracing::instrument(skip_all)]
async fn resend_verification(
    State(state): State<AppState>,
    Json(body): Json<EmailRequest>,
) -> ApiResult<(StatusCode, Json<AcceptedResponse>)> {
    if let Ok(email) = Email::parse(&body.email) {
        spawn_account_mail(state, email, |state, user| async move {
            if user.email_verified_at.is_none() {
                send_verification(&state, &user).await?;
            }
            Ok(())
        });
    }
    Ok(accepted(
        "if that address belongs to an unverified account, a new link is on its way",
    ))
}

fn accepted(message: &'static str) -> (StatusCode, Json<AcceptedResponse>) {
    (StatusCode::ACCEPTED, Json(AcceptedResponse { message }))
}

/// Runs `work` for the active account with this address, in the background
/// and within the per-account mail limit, so the response reveals nothing
/// about whether the account exists.
fn spawn_account_mail<F, Fut>(state: AppState, email: Email, work: F)
where
    F: FnOnce(AppState, User) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ApiResult<()>> + Send,
{
    tokio::spawn(
        async move {
            let user = match state.accounts.user_by_email(&email).await {
                Ok(Some(user)) if user.can_sign_in() => user,
                Ok(_) => return,
                Err(error) => {
                    tracing::error!(%error, "looking up account for e-mail failed");
                    return;
                }
            };
            let key = format!("mail:{}", user.id);
            let now = state.clock.now();
            if state.mail_limiter.check(&key, now).await.is_err() {
                tracing::warn!(user_id = %user.id, "account e-mail limit reached, not sending");
                return;
            }
            state.mail_limiter.record_failure(&key, now).await;
            if let Err(error) = work(state, user).await {
                tracing::error!(error = ?error, "account e-mail not sent");
            }
        }
        .instrument(tracing::Span::current()),
    );
}

/// Sign in with e-mail or username and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, body = ErrorBody, description = "unknown account or wrong password (one answer for both)"),
        (status = 403, body = ErrorBody, description = "the account is suspended"),
        (status = 429, body = ErrorBody, description = "too many failed logins; see Retry-After"),
    ))]
#[tracing::instrument(skip_all, fields(client = ?client.0))]
async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let now = state.clock.now();
    let address_key = client.limiter_key();
    if let Err(retry_after) = state.address_limiter.check(&address_key, now).await {
        tracing::warn!(key = %address_key, "login blocked by rate limit");
        return Err(ApiError::rate_limited(retry_after));
    }
    let login = body.login.trim().to_lowercase();
    let user = if login.contains('@') {
        match Email::parse(&login) {
            Ok(email) => state.accounts.user_by_email(&email).await?,
            Err(_) => None,
        }
    } else {
        match Username::parse(&login) {
            Ok(username) => state.accounts.user_by_username(&username).await?,
            Err(_) => None,
        }
    };
    // One budget per account, whichever name it is reached by.
    let account_key = match &user {
        Some(user) => account_limiter_key(user),
        None => format!("login:{login}"),
    };
    if let Err(retry_after) = state.account_limiter.check(&account_key, now).await {
        tracing::warn!(key = %account_key, "login blocked by rate limit");
        return Err(ApiError::rate_limited(retry_after));
    }
    let password_ok = match &user {
        Some(user)
            if user.deleted_at.is_none() && body.password.chars().count() <= Password::MAX_LEN =>
        {
            state
                .hasher
                .verify(&body.password, &user.password_hash)
                .await?
        }
        _ => state.hasher.verify_nothing(&body.password).await?,
    };
    let user = match user {
        Some(user) if password_ok => user,
        _ => {
            state
                .address_limiter
                .record_failure(&address_key, now)
                .await;
            state
                .account_limiter
                .record_failure(&account_key, now)
                .await;
            return Err(ApiError::unauthorized("wrong login or password"));
        }
    };
    if !user.can_sign_in() {
        return Err(ApiError::forbidden("this account is suspended"));
    }
    state.account_limiter.clear(&account_key).await;

    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect());
    let response =
        open_session(&state, &user, user_agent, client.0.map(|ip| ip.to_string())).await?;
    tracing::info!(user_id = %user.id, "signed in");
    Ok(Json(response))
}

async fn open_session(
    state: &AppState,
    user: &User,
    user_agent: Option<String>,
    ip: Option<String>,
) -> ApiResult<TokenResponse> {
    let now = state.clock.now();
    let refresh_token = adapters::token::generate();
    let session = state
        .sessions
        .create_session(&NewSession {
            id: SessionId::new(),
            user_id: user.id,
            refresh_token_hash: adapters::token::hash(&refresh_token),
            created_at: now,
            expires_at: now + state.refresh_ttl(),
            user_agent,
            ip,
        })
        .await?;
    token_response(state, user, session.id, refresh_token)
}

fn token_response(
    state: &AppState,
    user: &User,
    session_id: SessionId,
    refresh_token: String,
) -> ApiResult<TokenResponse> {
    let now = state.clock.now();
    let access_token = state
        .tokens
        .issue(user.id, session_id, now)
        .map_err(ApiError::internal)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl().num_seconds(),
        refresh_token,
        refresh_expires_in: state.refresh_ttl().num_seconds(),
        user: MeView::new(user, false),
    })
}

/// Trade a refresh token for a new access token and a new refresh token.
/// Each refresh token works once; presenting a used one ends the session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, body = ErrorBody, description = "unknown, expired, revoked or reused refresh token"),
    ))]
#[tracing::instrument(skip_all)]
async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let now = state.clock.now();
    let next = adapters::token::generate();
    let rotation = state
        .sessions
        .rotate(
            &adapters::token::hash(body.refresh_token.trim()),
            &adapters::token::hash(&next),
            now,
            now + state.refresh_ttl(),
        )
        .await?;
    match rotation {
        Rotation::Rotated(session) => {
            let user = state.accounts.user_by_id(session.user_id).await?;
            match user.filter(User::can_sign_in) {
                Some(user) => Ok(Json(token_response(&state, &user, session.id, next)?)),
                None => {
                    state.sessions.revoke(session.id, now).await?;
                    state.end_live_sessions(session.user_id, EndedSessions::One(session.id));
                    Err(ApiError::unauthorized("the account can no longer sign in"))
                }
            }
        }
        Rotation::Reused {
            session_id,
            user_id,
        } => {
            tracing::warn!(%session_id, %user_id, "refresh token reused, session revoked");
            state.end_live_sessions(user_id, EndedSessions::One(session_id));
            Err(ApiError::unauthorized(
                "this refresh token was already used; the session has been ended, sign in again",
            ))
        }
        Rotation::Invalid => Err(ApiError::unauthorized(
            "the refresh token is invalid or expired, sign in again",
        )),
    }
}

/// End a session: the bearer token's, or the one of the given refresh token.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    request_body(content = Option<LogoutRequest>),
    responses(
        (status = 204, description = "session ended"),
        (status = 401, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
async fn logout(
    State(state): State<AppState>,
    auth: Result<AuthUser, ApiError>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<StatusCode> {
    let now = state.clock.now();
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                domain::error::ErrorCode::PayloadTooLarge,
                "the body is larger than 1 MiB",
            )
        } else {
            ApiError::new(domain::error::ErrorCode::BadRequest, e.body_text())
        }
    })?;
    // The body is optional: an empty one means "the bearer token's session".
    let body: LogoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            if e.is_data() {
                ApiError::new(
                    domain::error::ErrorCode::ValidationFailed,
                    format!("the body does not match the expected shape: {e}"),
                )
            } else {
                ApiError::new(
                    domain::error::ErrorCode::BadRequest,
                    "the body is not valid JSON",
                )
            }
        })?
    };
    let refresh_token = body.refresh_token;
    match (refresh_token, auth) {
        (Some(token), _) => {
            let session_id = state
                .sessions
                .revoke_by_token(&adapters::token::hash(token.trim()), now)
                .await?
                .ok_or_else(|| ApiError::unauthorized("the refresh token is not valid"))?;
            if let Some(session) = state.sessions.session(session_id).await? {
                state.end_live_sessions(session.user_id, EndedSessions::One(session_id));
            }
        }
        (None, Ok(auth)) => {
            state.sessions.revoke(auth.session_id, now).await?;
            state.end_live_sessions(auth.user.id, EndedSessions::One(auth.session_id));
        }
        (None, Err(error)) => return Err(error),
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Ask for a password reset link. Always 202, whether or not the address
/// belongs to an account.
#[utoipa::path(post, path = "/auth/forgot-password", tag = "auth",
    request_body = EmailRequest,
    responses((status = 202, body = AcceptedResponse)))]
#[tracing::instrument(skip_all)]
async fn forgot_password(
    State(state): State<AppState>,
    Json(body): Json<EmailRequest>,
) -> ApiResult<(StatusCode, Json<AcceptedResponse>)> {
    if let Ok(email) = Email::parse(&body.email) {
        spawn_account_mail(state, email, |state, user| async move {
            let link = issue_token(
                &state,
                &user,
                TokenPurpose::ResetPassword,
                "/reset-password",
            )
            .await?;
            state
                .send_mail(
                    user.email.clone(),
                    AccountMail::ResetPassword {
                        username: user.username.to_string(),
                        link,
                        valid_minutes: TokenPurpose::ResetPassword.lifetime().num_minutes(),
                    },
                )
                .await;
            Ok(())
        });
    }
    Ok(accepted(
        "if that address belongs to an account, a reset link is on its way",
    ))
}

/// Choose a new password with the token from the reset link. Ends every session.
#[utoipa::path(post, path = "/auth/reset-password", tag = "auth",
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "password changed; every session ended"),
        (status = 400, body = ErrorBody, description = "unknown, expired or already used token"),
        (status = 422, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
async fn reset_password(
    State(state): State<AppState>,
    Json(body): Json<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    let password = Password::parse("password", &body.password)?;
    let password_hash = state.hasher.hash(&password).await?;
    let now = state.clock.now();
    let user_id = state
        .accounts
        .consume_token(
            &adapters::token::hash(body.token.trim()),
            TokenPurpose::ResetPassword,
            now,
        )
        .await?
        .ok_or_else(|| {
            ApiError::invalid_token("this reset link is invalid, expired or already used")
        })?;
    let user = state
        .accounts
        .user_by_id(user_id)
        .await?
        .filter(User::can_sign_in)
        .ok_or_else(|| {
            ApiError::invalid_token("this reset link is invalid, expired or already used")
        })?;
    state
        .accounts
        .set_password_hash(user.id, &password_hash, now)
        .await?;
    // Following the link proved the address is theirs.
    state.accounts.mark_email_verified(user.id, now).await?;
    let ended = state
        .sessions
        .revoke_all_for_user(user.id, None, now)
        .await?;
    state.end_live_sessions(user.id, EndedSessions::AllExcept(None));
    tracing::info!(user_id = %user.id, sessions_ended = ended, "password reset");
    password_changed(&state, &user).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn password_changed(state: &AppState, user: &User) {
    state
        .send_mail(
            user.email.clone(),
            AccountMail::PasswordChanged {
                username: user.username.to_string(),
                changed_at: state.clock.now(),
            },
        )
        .await;
}

/// Change the password, knowing the current one. Ends every other session.
#[utoipa::path(post, path = "/auth/change-password", tag = "auth",
    request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "password changed; other sessions ended"),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "new password invalid or current password wrong"),
        (status = 429, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn change_password(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    let password = Password::parse("new_password", &body.new_password)?;
    check_password(
        &state,
        &auth.user,
        &body.current_password,
        "current_password",
    )
    .await?;
    let password_hash = state.hasher.hash(&password).await?;
    let now = state.clock.now();
    state
        .accounts
        .set_password_hash(auth.user.id, &password_hash, now)
        .await?;
    // A reset link mailed before the change must not undo it.
    state
        .accounts
        .delete_tokens(auth.user.id, TokenPurpose::ResetPassword)
        .await?;
    let ended = state
        .sessions
        .revoke_all_for_user(auth.user.id, Some(auth.session_id), now)
        .await?;
    state.end_live_sessions(
        auth.user.id,
        EndedSessions::AllExcept(Some(auth.session_id)),
    );
    tracing::info!(sessions_ended = ended, "password changed");
    password_changed(&state, &auth.user).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Confirms a signed-in user's password before a sensitive action; wrong
/// guesses count towards the account's login limit.
pub async fn check_password(
    state: &AppState,
    user: &User,
    password: &str,
    field: &str,
) -> ApiResult<()> {
    let now = state.clock.now();
    let key = account_limiter_key(user);
    if let Err(retry_after) = state.account_limiter.check(&key, now).await {
        return Err(ApiError::rate_limited(retry_after));
    }
    if state.hasher.verify(password, &user.password_hash).await? {
        return Ok(());
    }
    state.account_limiter.record_failure(&key, now).await;
    Err(FieldError::new(field, "incorrect", "is not your current password").into())
}

fn account_limiter_key(user: &User) -> String {
    format!("account:{}", user.id)
}
