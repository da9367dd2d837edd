//! Error answers: the core error table and JSON shape, same as the origin's.

use rushgate_core::{ErrorBody, ErrorCode};
use worker::Response;

#[derive(Debug)]
pub struct EdgeError(pub ErrorBody);

impl EdgeError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(ErrorBody::new(code, message))
    }

    /// The origin could not be reached or answered garbage.
    pub fn origin_unavailable() -> Self {
        Self(ErrorBody::from(ErrorCode::Overloaded).with_retry_after(1))
    }

    pub fn into_response(self) -> Response {
        let response = json_response(self.0.status(), &self.0.to_json());
        if let Some(retry) = self.0.retry_after_s {
            let _ = response.headers().set("retry-after", &retry.to_string());
        }
        response
    }
}

impl From<ErrorCode> for EdgeError {
    /// A refusal with the code's default message.
    fn from(code: ErrorCode) -> Self {
        Self(ErrorBody::from(code))
    }
}

impl From<rushgate_core::event::FieldError> for EdgeError {
    fn from(e: rushgate_core::event::FieldError) -> Self {
        Self(ErrorBody::new(ErrorCode::InvalidInput, e.message).with_field(e.field))
    }
}

impl From<worker::Error> for EdgeError {
    fn from(e: worker::Error) -> Self {
        worker::console_error!("edge error: {e}");
        Self::origin_unavailable()
    }
}

/// A JSON answer with `status`; `body` is already JSON text.
pub fn json_response(status: u16, body: &str) -> Response {
    // The builder's own headers: a second `Headers` would cost a JS object.
    let builder = Response::builder().with_status(status);
    let builder = builder
        .with_header("content-type", "application/json")
        .and_then(|b| b.with_header("cache-control", "no-store"))
        .unwrap_or_else(|_| Response::builder().with_status(status));
    builder.fixed(body.as_bytes().to_vec())
}

/// A JSON answer from a serializable value.
pub fn json<T: serde::Serialize>(status: u16, value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => json_response(status, &body),
        Err(_) => EdgeError::new(ErrorCode::Internal, "internal error").into_response(),
    }
}
