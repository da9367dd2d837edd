//! Request extractors that answer with the API's error shape: JSON bodies (with
//! the failing field named), path parameters, and the signed-in user.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{StatusCode, header, request::Parts};
use rushgate_core::Role;
use rushgate_core::token::SessionClaims;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::app::AppState;
use crate::error::ApiError;

/// A JSON body: `Content-Type: application/json`, within the size cap, and of the
/// right shape, or a 4xx naming what is wrong.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(Self)
    }
}

/// An optional JSON body: empty means `T::default()`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        parse_json(&bytes).map(Self)
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::InvalidInput {
            field: None,
            message: "could not read the request body".into(),
        }
    }
}

/// Parses JSON, naming the path of the first offending field. The fast parser
/// runs first; only a body it refuses is parsed again to find the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "body is not valid JSON".to_owned()
            }
            _ => strip_position(&inner.to_string()),
        };
        ApiError::InvalidInput {
            field: (path != "." && !path.is_empty()).then_some(path),
            message,
        }
    })
}

/// serde_json appends "at line L column C"; people need the field, not the column.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A numeric id from the path.
#[derive(Debug, Clone, Copy)]
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid("id", "must be a positive integer"))?;
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Self)
            .ok_or_else(|| ApiError::invalid("id", "must be a positive integer"))
    }
}

/// The signed-in user, from `Authorization: Bearer <token>` or the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: i64,
    pub role: Role,
}

impl AuthUser {
    /// Operators and admins only.
    pub fn manager(self) -> Result<Self, ApiError> {
        if self.role.manages_events() {
            Ok(self)
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// Admins only.
    pub fn reviewer(self) -> Result<Self, ApiError> {
        if self.role.reviews_events() {
            Ok(self)
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// The session token a request carries, if any.
pub fn session_token(parts: &Parts) -> Option<&str> {
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let cookies = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    rushgate_core::session::token(authorization, cookies)
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = session_token(parts).ok_or(ApiError::Unauthenticated)?;
        let claims: SessionClaims = state
            .keys
            .verify(token, OffsetDateTime::now_utc().unix_timestamp())
            .map_err(|_| ApiError::Unauthenticated)?;
        Ok(Self {
            user_id: claims.user_id,
            role: claims.role,
        })
    }
}
