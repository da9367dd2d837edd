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

/// A report the edge sends about itself (funnel counts, queue joins): its
/// `X-Rushgate-Forward` must attest this method, path and body, and its nonce
/// is spent here, so a report is taken once and a captured one cannot carry
/// another body. Else 403 `not_admitted_by_edge`.
#[derive(Debug)]
pub struct EdgeReported<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for EdgeReported<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = rushgate_core::attest::forwarded(
            &state.keys,
            req.headers()
                .get(rushgate_core::api::header::FORWARD)
                .and_then(|v| v.to_str().ok()),
            req.method().as_str(),
            req.uri().path(),
            now,
        )
        .ok_or(ApiError::from(ErrorCode::NotAdmittedByEdge))?;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        if !claims.covers(&bytes) {
            return Err(ErrorCode::NotAdmittedByEdge.into());
        }
        let spent = format!(
            "{}:{{fw{}}}",
            state.redis.keys.prefix(),
            hex::encode(claims.nonce)
        );
        let first: Option<String> = redis::cmd("SET")
            .arg(&spent)
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(2 * rushgate_core::token::AdmissionClaims::MAX_SKEW_S + 2)
            .query_async(&mut state.redis.conn.clone())
            .await?;
        if first.is_none() {
            return Err(ApiError::refused(
                ErrorCode::NotAdmittedByEdge,
                "this report was taken already",
            ));
        }
        parse_json(&bytes).map(Self)
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

/// The signed-in user, from `Authorization: Bearer <token>` or the session
/// cookie: an authentic, unexpired session that was not ended (logged out, or
/// its account changed since: `auth::revoked`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: i64,
    pub role: Role,
    pub generation: u32,
}

/// A signed-in operator or admin, checked against the account as it stands in
/// PostgreSQL: a session whose account is gone, disabled or of another
/// generation is 401, one whose account may not manage events 403. The
/// console's every call pays this one indexed read; purchases do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staff {
    pub user_id: i64,
    pub role: Role,
}

impl Staff {
    /// Admins only.
    pub fn reviewer(self) -> Result<Self, ApiError> {
        if self.role.reviews_events() {
            Ok(self)
        } else {
            Err(ApiError::from(ErrorCode::Forbidden))
        }
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let account = crate::users::get(&state.db, user.user_id)
            .await?
            .filter(|a| a.active() && a.generation() == user.generation)
            .ok_or(ApiError::from(ErrorCode::Unauthenticated))?;
        let role = account.role();
        if !role.manages_events() {
            return Err(ApiError::from(ErrorCode::Forbidden));
        }
        Ok(Self {
            user_id: user.user_id,
            role,
        })
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
            .filter(|c| !state.revocations.is_revoked(c))
            .ok_or(ApiError::from(ErrorCode::Unauthenticated))?;
        Ok(Self {
            user_id: claims.user_id,
            role: claims.role,
            generation: claims.generation,
        })
    }
}

/// The client's address: the one the edge attests (`X-Rushgate-Forward`,
/// from the CDN's own header) for a request it passed on, else the peer of
/// the connection. Behind another proxy every client has the proxy's
/// address, which the login limits tolerate: an address past its allowance
/// pays with work, it is never locked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let header = parts
            .headers
            .get(rushgate_core::api::header::FORWARD)
            .and_then(|v| v.to_str().ok());
        let attested = header.and_then(|h| {
            rushgate_core::attest::forwarded(
                &state.keys,
                Some(h),
                parts.method.as_str(),
                parts.uri.path(),
                now,
            )
        });
        if let Some(client) = attested.and_then(|c| c.client) {
            return Ok(Self(client));
        }
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
        Ok(Self(peer))
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
