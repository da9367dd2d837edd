//! Error answers: the core error table and JSON shape, same as the origin's.

use rushgate_core::{ErrorBody, ErrorCode};
use worker::wasm_bindgen::JsValue;
use worker::{Response, web_sys};

use crate::inits::{self, Inits};

/// An error answer (boxed: results stay small on the hot path).
#[derive(Debug)]
pub struct EdgeError(pub Box<ErrorBody>);

impl From<ErrorBody> for EdgeError {
    fn from(body: ErrorBody) -> Self {
        Self(Box::new(body))
    }
}

impl EdgeError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody::new(code, message).into()
    }

    /// The origin could not be reached or answered garbage.
    pub fn origin_unavailable() -> Self {
        ErrorBody::from(ErrorCode::Overloaded)
            .with_retry_after(1)
            .into()
    }

    pub fn into_response(self) -> Response {
        let response = json_response(self.0.status(), &self.0.to_json());
        if let Some(retry) = self.0.retry_after_s {
            let _ = response.headers().set("retry-after", &retry.to_string());
        }
        response
    }

    /// As the runtime's own response object (the `/buy` path).
    pub fn into_raw(self) -> web_sys::Response {
        raw_json(self.0.status(), &self.0.to_json(), self.0.retry_after_s)
    }
}

impl From<JsValue> for EdgeError {
    fn from(e: JsValue) -> Self {
        worker::Error::from(e).into()
    }
}

thread_local! {
    /// JSON answers' inits by status and `retry-after`.
    static INITS: Inits<(u16, Option<u64>)> = const { Inits::new() };
}

fn init(status: u16, retry_after_s: Option<u64>) -> Result<web_sys::ResponseInit, JsValue> {
    INITS.with(|inits| {
        inits.get(&(status, retry_after_s), || {
            let retry = retry_after_s.map(|r| r.to_string());
            let mut headers = vec![
                ("content-type", "application/json"),
                ("cache-control", "no-store"),
            ];
            if let Some(retry) = &retry {
                headers.push(("retry-after", retry));
            }
            inits::make(Some(status), &headers)
        })
    })
}

/// A JSON answer built on the runtime's own objects: no `worker` builder, no
/// copy of the body into a byte array.
pub fn raw_json(status: u16, body: &str, retry_after_s: Option<u64>) -> web_sys::Response {
    init(status, retry_after_s)
        .and_then(|init| web_sys::Response::new_with_opt_str_and_init(Some(body), &init))
        .unwrap_or_else(|_| {
            web_sys::Response::new_with_opt_str(Some(body)).expect("a response from text")
        })
}

impl From<ErrorCode> for EdgeError {
    /// A refusal with the code's default message.
    fn from(code: ErrorCode) -> Self {
        ErrorBody::from(code).into()
    }
}

impl From<rushgate_core::event::FieldError> for EdgeError {
    fn from(e: rushgate_core::event::FieldError) -> Self {
        ErrorBody::new(ErrorCode::InvalidInput, e.message)
            .with_field(e.field)
            .into()
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
