//! The closed set of error codes a client can receive, over REST or any
//! later transport. Each maps to exactly one HTTP status at the edge.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request could not be read (malformed JSON, wrong content type).
    BadRequest,
    /// Missing, invalid or expired credentials.
    Unauthorized,
    /// Authenticated, but not allowed to do this.
    Forbidden,
    NotFound,
    MethodNotAllowed,
    /// A single-use or refresh token that is unknown, expired or already used.
    InvalidToken,
    UnsupportedMediaType,
    /// The request conflicts with existing state (a duplicate).
    Conflict,
    PayloadTooLarge,
    /// Well-formed, but some fields are invalid.
    ValidationFailed,
    RateLimited,
    /// A live-event cursor older than the events still kept: reload and
    /// start again from the newest.
    CursorExpired,
    /// A dependency (the database) is not reachable.
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::CursorExpired => "cursor_expired",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
