//! Sessions and one-time tokens.
//!
//! A login opens a [`Session`]: a family of refresh tokens. Each refresh
//! consumes the presented token and issues the next one; presenting a token
//! that was already consumed means it leaked, so the whole family is revoked.
//! Tokens are only ever stored as hashes.

use chrono::{DateTime, TimeDelta, Utc};

use crate::ids::{SessionId, UserId};

/// What a one-time token proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::ResetPassword => "reset_password",
        }
    }

    /// How long a token of this purpose stays valid.
    pub fn lifetime(self) -> TimeDelta {
        match self {
            TokenPurpose::VerifyEmail => TimeDelta::hours(24),
            TokenPurpose::ResetPassword => TimeDelta::hours(1),
        }
    }
}

/// A single-use token sent by e-mail, stored by the hash of its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneTimeToken {
    pub token_hash: String,
    pub user_id: UserId,
    pub purpose: TokenPurpose,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A login session as stored: one family of refresh tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl Session {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// A session about to be opened, with the hash of its first refresh token.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub id: SessionId,
    pub user_id: UserId,
    pub refresh_token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// What presenting a refresh token led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: it is now consumed and the next one stored.
    Rotated(Session),
    /// The token had already been consumed: the whole session was revoked.
    Reused {
        session_id: SessionId,
        user_id: UserId,
    },
    /// Unknown, expired, or its session was revoked. Nothing changed.
    Invalid,
}
