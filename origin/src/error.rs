//! The origin's one error type: a refusal the client can act on — a code from
//! the core error table with its message and extras, answered as it is — or an
//! infrastructure failure, which becomes a logged 503 (a dependency is down) or
//! a generic 500 without internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rushgate_core::event::FieldError;
use rushgate_core::{ErrorBody, ErrorCode};

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A refusal: its code, message and extras go to the client as they are.
    #[error("{}: {}", .0.error, .0.message)]
    Refused(Box<ErrorBody>),
    #[error("a dependency is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A refusal with `code` and a message more specific than the default.
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody::new(code, message).into()
    }

    /// 400 `invalid_input` naming the field at fault.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody::new(ErrorCode::InvalidInput, message)
            .with_field(field)
            .into()
    }

    /// 400 `invalid_input`, naming the field at fault when it is known.
    pub fn invalid_input(field: Option<String>, message: impl Into<String>) -> Self {
        let body = ErrorBody::new(ErrorCode::InvalidInput, message);
        match field {
            Some(field) => body.with_field(field),
            None => body,
        }
        .into()
    }

    /// 404 `not_found` for a kind of thing (`"event"`, `"order"`).
    pub fn not_found(what: &str) -> Self {
        Self::refused(ErrorCode::NotFound, format!("no such {what}"))
    }

    /// 409 `invalid_state` saying why.
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::refused(ErrorCode::InvalidState, message)
    }

    /// 503 `overloaded`: try again in `retry_after_s`.
    pub fn overloaded(retry_after_s: u64) -> Self {
        ErrorBody::from(ErrorCode::Overloaded)
            .with_retry_after(retry_after_s)
            .into()
    }

    /// The code the client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Refused(body) => body.error,
            Self::Unavailable(_) => ErrorCode::Overloaded,
            Self::Database(e) if is_unavailable(e) => ErrorCode::Overloaded,
            Self::Database(_) | Self::Internal(_) => ErrorCode::Internal,
        }
    }

    fn body(self) -> ErrorBody {
        match self {
            Self::Refused(body) => *body,
            other => match other.code() {
                ErrorCode::Overloaded => ErrorBody::from(ErrorCode::Overloaded).with_retry_after(1),
                code => ErrorBody::from(code),
            },
        }
    }
}

/// PostgreSQL is down or the pool is exhausted: the client should retry.
fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
    )
}

impl From<ErrorCode> for ApiError {
    /// A refusal with the code's default message.
    fn from(code: ErrorCode) -> Self {
        ErrorBody::from(code).into()
    }
}

impl From<ErrorBody> for ApiError {
    fn from(body: ErrorBody) -> Self {
        Self::Refused(Box::new(body))
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::invalid(e.field, e.message)
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        Self::Unavailable(e.into())
    }
}

impl From<crate::sale::Error> for ApiError {
    /// Redis did not answer, or its replicas did not confirm a write in time:
    /// either way the client retries, and the same purchase URL finds what
    /// was held.
    fn from(e: crate::sale::Error) -> Self {
        Self::Unavailable(e.into())
    }
}

/// Renders any core error body as a response.
pub fn respond(body: &ErrorBody) -> Response {
    let status = StatusCode::from_u16(body.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body.to_json()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(seconds) = body.retry_after_s {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match (&self, self.code()) {
            (Self::Refused(_), _) => {}
            (_, ErrorCode::Overloaded) => tracing::warn!(error = ?self, "dependency unavailable"),
            _ => tracing::error!(error = ?self, "request failed"),
        }
        respond(&self.body())
    }
}
