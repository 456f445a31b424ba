//! The one error shape every endpoint answers with.
//!
//! ```json
//! {"code": "validation_failed", "message": "some fields are invalid",
//!  "fields": [{"field": "email", "code": "invalid", "message": "is not a valid e-mail address"}]}
//! ```
//!
//! `code` is stable and maps to exactly one status. Internal details are
//! logged, never sent.

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::error::ErrorCode;
use domain::ports::{MailError, StoreError};
use domain::validation::{FieldError, ValidationErrors};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code: `bad_request`, `unauthorized`,
    /// `forbidden`, `not_found`, `method_not_allowed`, `invalid_token`,
    /// `conflict`, `payload_too_large`, `unsupported_media_type`,
    /// `validation_failed`, `rate_limited`, `cursor_expired`, `unavailable`,
    /// `internal`.
    pub code: String,
    /// Human explanation, safe to show.
    pub message: String,
    /// For `validation_failed` and `conflict`: which fields and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldErrorBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldErrorBody {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl From<&FieldError> for FieldErrorBody {
    fn from(error: &FieldError) -> Self {
        Self {
            field: error.field.clone(),
            code: error.code.to_string(),
            message: error.message.clone(),
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    fields: Vec<FieldErrorBody>,
    retry_after: Option<Duration>,
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest | ErrorCode::InvalidToken => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::CursorExpired => StatusCode::GONE,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after: None,
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn invalid_token(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidToken, message)
    }

    pub fn rate_limited(retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(ErrorCode::RateLimited, "too many attempts, try again later")
        }
    }

    /// Something failed that the client cannot fix; the detail goes to the log.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(ErrorCode::Internal, "something went wrong on our side")
    }

    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            fields: vec![FieldErrorBody {
                field: field.to_string(),
                code: "taken".into(),
                message: message.clone(),
            }],
            ..Self::new(ErrorCode::Conflict, message)
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        for field in self
            .fields
            .iter()
            .filter(|field| field.message != self.message)
        {
            write!(f, "; {}: {}", field.field, field.message)?;
        }
        Ok(())
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        Self {
            fields: errors.errors().iter().map(FieldErrorBody::from).collect(),
            ..Self::new(ErrorCode::ValidationFailed, "some fields are invalid")
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ValidationErrors::from(error).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(field) => ApiError::conflict(
                field,
                format!("this {} is already taken", field.replace('_', " ")),
            ),
            StoreError::NotFound => ApiError::not_found("not found"),
            StoreError::VersionConflict => ApiError::new(
                ErrorCode::Conflict,
                "this was changed at the same time by another request, try again",
            ),
            StoreError::Backend(detail) => ApiError::internal(detail),
        }
    }
}

impl From<adapters::password::PasswordError> for ApiError {
    fn from(error: adapters::password::PasswordError) -> Self {
        ApiError::internal(error)
    }
}

impl From<MailError> for ApiError {
    fn from(error: MailError) -> Self {
        ApiError::internal(error)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => Self::new(
                ErrorCode::ValidationFailed,
                format!(
                    "the body does not match the expected shape: {}",
                    e.body_text()
                ),
            ),
            JsonRejection::JsonSyntaxError(_) => {
                Self::new(ErrorCode::BadRequest, "the body is not valid JSON")
            }
            JsonRejection::MissingJsonContentType(_) => Self::new(
                ErrorCode::UnsupportedMediaType,
                "expected a body with Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(ErrorCode::PayloadTooLarge, "the body is larger than 1 MiB")
            }
            other => Self::new(ErrorCode::BadRequest, other.body_text()),
        }
    }
}

impl ApiError {
    /// The error as the body clients receive (also in socket error frames).
    pub fn into_body(self) -> ErrorBody {
        ErrorBody {
            code: self.code.as_str().to_string(),
            message: self.message,
            fields: self.fields,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.code);
        let retry_after = self.retry_after;
        let code = self.code;
        let body = self.into_body();
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(retry_after) = retry_after {
            // Round up: a client that waits the advertised time must get in.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if code == ErrorCode::Unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// `axum::Json`, with rejections in the API's error shape.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(
            ErrorCode::ValidationFailed,
            format!("the query string is invalid: {}", rejection.body_text()),
        )
    }
}

/// `axum::extract::Query`, with rejections in the API's error shape.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);
