//! Requests another site could forge in a visitor's name: one that changes
//! something, rides on the session cookie and carries a body type a form or a
//! plain `fetch` sends without asking first (`core::session::forgeable`) is
//! refused with 415 before it reaches a handler. The pages send JSON.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rushgate_core::ErrorCode;

use crate::error::ApiError;

pub async fn refuse_forgeable(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let cookies: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let forged = rushgate_core::session::forgeable(
        request.method().as_str(),
        headers.contains_key(header::AUTHORIZATION),
        Some(cookies.join("; ").as_str()).filter(|c| !c.is_empty()),
        text(header::CONTENT_TYPE),
    );
    if forged {
        return ApiError::refused(
            ErrorCode::UnsupportedMediaType,
            "send JSON with Content-Type: application/json",
        )
        .into_response();
    }
    next.run(request).await
}
