//! The origin's one error type. Each variant is an outcome a client can act on and
//! maps to a code from the core error table; store failures become a logged 503
//! (dependency down) or a generic 500 without internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rushgate_core::event::FieldError;
use rushgate_core::{ErrorBody, ErrorCode};
use time::OffsetDateTime;

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidInput {
        field: Option<String>,
        message: String,
    },
    #[error("sign in first")]
    Unauthenticated,
    #[error("wrong username or password")]
    BadCredentials,
    #[error("your role may not do this")]
    Forbidden,
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("that username is taken")]
    UsernameTaken,
    #[error("{0}")]
    InvalidState(String),
    #[error("the sale has not opened yet")]
    NotOpen { opens_at: OffsetDateTime },
    #[error("sold out")]
    SoldOut,
    #[error("only {left} left in this tier")]
    SoldOutPartly { left: i64 },
    #[error("at most {limit} per person; you already hold {held}")]
    LimitExceeded { limit: u32, held: i64 },
    #[error("this purchase URL is not valid")]
    BadSignature,
    #[error("this purchase URL has expired; ask for a new one")]
    UrlExpired,
    #[error("this purchase URL belongs to someone else")]
    WrongUser,
    #[error("buy through the site, not the origin directly")]
    NotAdmittedByEdge,
    #[error("the payment window has passed")]
    Expired,
    #[error("the payment was declined")]
    PaymentDeclined,
    #[error("the sale is closed")]
    Closed,
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("send JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("too many requests, try again shortly")]
    Overloaded { retry_after_s: u64 },
    #[error("a dependency is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput { .. } => ErrorCode::InvalidInput,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::BadCredentials => ErrorCode::BadCredentials,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::UsernameTaken => ErrorCode::UsernameTaken,
            Self::InvalidState(_) => ErrorCode::InvalidState,
            Self::NotOpen { .. } => ErrorCode::NotOpen,
            Self::SoldOut | Self::SoldOutPartly { .. } => ErrorCode::SoldOut,
            Self::LimitExceeded { .. } => ErrorCode::LimitExceeded,
            Self::BadSignature => ErrorCode::BadSignature,
            Self::UrlExpired => ErrorCode::UrlExpired,
            Self::WrongUser => ErrorCode::WrongUser,
            Self::NotAdmittedByEdge => ErrorCode::NotAdmittedByEdge,
            Self::Expired => ErrorCode::Expired,
            Self::PaymentDeclined => ErrorCode::PaymentDeclined,
            Self::Closed => ErrorCode::Closed,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::Overloaded { .. } | Self::Unavailable(_) => ErrorCode::Overloaded,
            Self::Database(e) if is_unavailable(e) => ErrorCode::Overloaded,
            Self::Database(_) | Self::Internal(_) => ErrorCode::Internal,
        }
    }

    fn body(&self) -> ErrorBody {
        let code = self.code();
        let message = match code {
            ErrorCode::Internal => "internal error".to_owned(),
            ErrorCode::Overloaded => {
                "busy or temporarily unavailable, try again shortly".to_owned()
            }
            _ => self.to_string(),
        };
        let body = ErrorBody::new(code, message);
        match self {
            Self::InvalidInput {
                field: Some(field), ..
            } => body.with_field(field.clone()),
            Self::NotOpen { opens_at } => body.with_opens_at(*opens_at),
            Self::Overloaded { retry_after_s } => body.with_retry_after(*retry_after_s),
            Self::Unavailable(_) | Self::Database(_) if code == ErrorCode::Overloaded => {
                body.with_retry_after(1)
            }
            _ => body,
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

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::InvalidInput {
            field: Some(e.field),
            message: e.message,
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
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
        match self.code() {
            ErrorCode::Internal => tracing::error!(error = ?self, "request failed"),
            ErrorCode::Overloaded => tracing::warn!(error = ?self, "dependency unavailable"),
            _ => {}
        }
        respond(&self.body())
    }
}
