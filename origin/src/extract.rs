//! Request extractors that answer with the API's error shape: JSON bodies (with
//! the failing field named), path parameters, and the signed-in user.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{StatusCode, header, request::Parts};
use rushgate_core::api::is_json_object;
use rushgate_core::token::SessionClaims;
use rushgate_core::{Keyring, Role};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::app::AppState;
use crate::error::ApiError;
use rushgate_core::ErrorCode;

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
            return Err(ApiError::from(ErrorCode::UnsupportedMediaType));
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
        ApiError::from(ErrorCode::PayloadTooLarge)
    } else {
        ApiError::refused(ErrorCode::InvalidInput, "could not read the request body")
    }
}

/// Parses JSON, naming the path of the first offending field. The fast parser
/// runs first; only a body it refuses is parsed again to find the field.
/// Strings with a NUL character are refused here, for every endpoint: no text
/// column of PostgreSQL can store one.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Some(field) = field_with_nul(bytes) {
        return Err(ApiError::invalid_input(
            field,
            "must not contain the NUL character (\\u0000)",
        ));
    }
    if !is_json_object(bytes) {
        return Err(ApiError::refused(
            ErrorCode::InvalidInput,
            "the body must be a JSON object",
        ));
    }
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let not_json = || ApiError::refused(ErrorCode::InvalidInput, "body is not valid JSON");
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => not_json(),
            _ => ApiError::invalid_input(
                (path != "." && !path.is_empty()).then_some(path),
                strip_position(&inner.to_string()),
            ),
        }
    })?;
    // The fast parser refused it; a value followed by anything is not JSON.
    de.end().map_err(|_| not_json())?;
    Ok(value)
}

/// `Some(path)` if a string (or key) of the JSON document holds NUL; the path is
/// `None` for the document itself. JSON can only carry NUL escaped, so bodies
/// without `\u0000` in them are passed over without parsing.
fn field_with_nul(bytes: &[u8]) -> Option<Option<String>> {
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    fn find(value: &serde_json::Value, path: &str) -> Option<String> {
        let join = |key: &str| match path {
            "" => key.to_owned(),
            _ => format!("{path}.{key}"),
        };
        match value {
            serde_json::Value::String(s) => s.contains('\0').then(|| path.to_owned()),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| find(v, &format!("{path}[{i}]"))),
            serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
                if k.contains('\0') {
                    Some(path.to_owned())
                } else {
                    find(v, &join(k))
                }
            }),
            _ => None,
        }
    }
    let path = find(&value, "")?;
    Some((!path.is_empty()).then_some(path))
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

/// `raw` as a positive id, or 400 `invalid_input` naming `field`.
pub fn positive_id(raw: &str, field: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid(field, "must be a positive integer"))
}

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid("id", "must be a positive integer"))?;
        positive_id(&raw, "id").map(Self)
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
            Err(ApiError::from(ErrorCode::Forbidden))
        }
    }

    /// Admins only.
    pub fn reviewer(self) -> Result<Self, ApiError> {
        if self.role.reviews_events() {
            Ok(self)
        } else {
            Err(ApiError::from(ErrorCode::Forbidden))
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

/// The authentic, unexpired session a request carries, revoked or not.
pub fn session_claims(parts: &Parts, keys: &Keyring, now: i64) -> Option<SessionClaims> {
    keys.verify(session_token(parts)?, now).ok()
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = session_claims(parts, &state.keys, now)
            .filter(|c| !state.revocations.is_revoked(&c.sid))
            .ok_or(ApiError::from(ErrorCode::Unauthenticated))?;
        Ok(Self {
            user_id: claims.user_id,
            role: claims.role,
        })
    }
}

/// The `X-Rushgate-Admit` header, if any (no copy of the other headers): the
/// edge's word that it let this request through (`core::attest`).
pub struct EdgeAdmission(Option<axum::http::HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for EdgeAdmission {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get(rushgate_core::api::header::ADMIT)
                .cloned(),
        ))
    }
}

impl EdgeAdmission {
    /// With `RUSHGATE_REQUIRE_EDGE_ADMISSION` on, refuses (403
    /// `not_admitted_by_edge`) unless the header admits `method path` for
    /// `user_id` now; off, lets everything through.
    pub fn check(
        &self,
        state: &AppState,
        method: &str,
        path: &str,
        user_id: i64,
        now_s: i64,
    ) -> Result<(), ApiError> {
        if !state.config.require_edge_admission {
            return Ok(());
        }
        let header = self.0.as_ref().and_then(|v| v.to_str().ok());
        rushgate_core::attest::verify(&state.keys, header, method, path, user_id, now_s)
            .map_err(ApiError::from)
    }
}
