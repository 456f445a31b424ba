//! Request extractors: the signed-in user and the client's address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use domain::account::User;
use domain::ids::SessionId;

use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::TokenRejection;

/// A request with a valid access token, whose session is open and whose
/// account may act.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub user: User,
    pub session_id: SessionId,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("sign in first: missing bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be 'Bearer <token>'")
            })?;
        authenticate(state, token).await.map(|(user, _)| user)
    }
}

/// Checks an access token: signature and expiry, an open session, an
/// account that may act. Answers the user and when the token expires.
pub async fn authenticate(
    state: &AppState,
    token: &str,
) -> Result<(AuthUser, chrono::DateTime<chrono::Utc>), ApiError> {
    let now = state.clock.now();
    let claims = state
        .tokens
        .verify(token, now)
        .map_err(|rejection| match rejection {
            TokenRejection::Expired => ApiError::unauthorized("the access token has expired"),
            TokenRejection::Invalid => ApiError::unauthorized("the access token is not valid"),
        })?;
    let session = state
        .sessions
        .session(claims.session_id)
        .await?
        .filter(|s| s.user_id == claims.user_id && s.is_active(now))
        .ok_or_else(|| ApiError::unauthorized("the session has ended, sign in again"))?;
    let user = state
        .accounts
        .user_by_id(claims.user_id)
        .await?
        .filter(User::can_sign_in)
        .ok_or_else(|| ApiError::unauthorized("the account can no longer sign in"))?;
    Ok((
        AuthUser {
            user,
            session_id: session.id,
        },
        claims.expires_at,
    ))
}

/// Anonymous when there is no `Authorization` header; a header that is
/// there must be valid.
impl OptionalFromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        if parts.headers.contains_key(AUTHORIZATION) {
            <AuthUser as FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The address of the client: the peer, or behind a trusted proxy the last
/// `X-Forwarded-For` entry (the one the proxy appended).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.settings.server.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|v| v.trim().parse::<IpAddr>().ok())
                .next_back();
            if forwarded.is_some() {
                return Ok(Self(forwarded));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Self(peer))
    }
}

impl ClientAddr {
    pub fn limiter_key(&self) -> String {
        match self.0 {
            Some(ip) => format!("addr:{ip}"),
            None => "addr:unknown".into(),
        }
    }
}
