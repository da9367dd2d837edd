//! Talking to the origins: passing requests through, and fetching event
//! snapshots. Requests go round the origins of `ORIGIN_URLS`; one that gets no
//! answer is sent to the next origin if it cannot happen twice
//! (`core::origins::retry_safe`), and an origin that did not answer is tried
//! last for a while.

use std::cell::RefCell;
use std::collections::HashSet;

use rushgate_core::api::header;
use rushgate_core::origins::retry_safe;
use worker::{Fetch, Headers, Method, Request, RequestInit, Response};

use crate::config::Config;
use crate::error::EdgeError;

/// Request headers that are forwarded to the origin as they are.
const FORWARDED: &[&str] = &[
    "authorization",
    "cookie",
    "content-type",
    "accept",
    "user-agent",
    header::RETRY_TOKEN,
];

fn forwarded_headers(from: &Headers) -> Headers {
    let headers = Headers::new();
    for name in FORWARDED {
        if let Ok(Some(value)) = from.get(name) {
            let _ = headers.set(name, &value);
        }
    }
    headers
}

/// Sends `method path` with `headers` and `body` to an origin: the next in
/// turn, then, if it gives no answer and the request is safe to repeat, the
/// others.
pub async fn send(
    config: &Config,
    method: Method,
    path: &str,
    headers: Headers,
    body: Option<Vec<u8>>,
) -> Result<Response, EdgeError> {
    let now = crate::clock::now_ms() as f64;
    let (order, urls) = {
        let mut origins = config.origins.borrow_mut();
        (origins.next_order(now), origins.urls().to_vec())
    };
    let route = path.split('?').next().unwrap_or(path);
    let tries = if retry_safe(method.as_ref(), route) {
        order.len()
    } else {
        1
    };
    let mut failure = None;
    for &i in order.iter().take(tries) {
        let mut init = RequestInit::new();
        init.with_method(method.clone())
            .with_headers(headers.clone());
        if let Some(body) = &body {
            init.with_body(Some(js_sys_bytes(body)));
        }
        let request = Request::new_with_init(&format!("{}{path}", urls[i]), &init)?;
        match Fetch::Request(request).send().await {
            Ok(response) => {
                config.origins.borrow_mut().answered(i);
                return Ok(response);
            }
            Err(e) => {
                let now = crate::clock::now_ms() as f64;
                config.origins.borrow_mut().failed(i, now);
                failure = Some(e);
            }
        }
    }
    Err(failure.map_or_else(
        || EdgeError::new(rushgate_core::ErrorCode::Overloaded, "no origin configured"),
        EdgeError::from,
    ))
}

fn js_sys_bytes(bytes: &[u8]) -> wasm_bindgen::JsValue {
    worker::js_sys::Uint8Array::from(bytes).into()
}

/// Headers of the edge's own call `method path` to the origin: JSON, with an
/// admission token for the path and user 0 (`core::attest`).
pub fn attested(config: &Config, method: &str, path: &str, now_ms: i64) -> Headers {
    let admit = rushgate_core::attest::sign(&config.keys, method, path, 0, now_ms.div_euclid(1000));
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set(rushgate_core::api::header::ADMIT, &admit);
    headers
}

/// POSTs one of the edge's own reports to `path`, with the edge's word bound
/// to its body and a nonce the origin spends (`X-Rushgate-Forward`); whether
/// the origin took it.
pub async fn report(
    config: &Config,
    path: &str,
    report: &impl serde::Serialize,
    now_ms: i64,
) -> bool {
    let Ok(body) = serde_json::to_vec(report) else {
        return false;
    };
    let forward = rushgate_core::attest::forward(
        &config.keys,
        "POST",
        path,
        &body,
        None,
        now_ms.div_euclid(1000),
        crate::clock::random(),
    );
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set(header::FORWARD, &forward);
    match send(config, Method::Post, path, headers, Some(body)).await {
        Ok(response) => response.status_code() < 300,
        Err(_) => false,
    }
}

/// Forwards the request unchanged (method, path and query, the headers that
/// matter, body) and relays the answer.
pub async fn pass_through(config: &Config, mut req: Request) -> Result<Response, EdgeError> {
    let url = req.inner().url();
    let path = match query(&url) {
        Some(query) => format!("{}?{query}", req.path()),
        None => req.path(),
    };
    let method = req.method();
    let headers = forwarded_headers(req.headers());
    let body = match method {
        Method::Get | Method::Head => None,
        _ => Some(req.bytes().await?),
    };
    send(config, method, &path, headers, body).await
}

/// Passes a login or a registration on with the edge's word on it
/// (`X-Rushgate-Forward`, bound to the body): the client's address, when the
/// platform gives one that can be trusted (`TRUST_CF_CONNECTING_IP`), so the
/// origin's limits count tries per client rather than per edge.
pub async fn pass_through_from_client(
    config: &Config,
    mut req: Request,
    now_ms: i64,
) -> Result<Response, EdgeError> {
    let path = req.path();
    let headers = forwarded_headers(req.headers());
    let body = req.bytes().await?;
    let client = config.client_address(req.headers());
    let forward = rushgate_core::attest::forward(
        &config.keys,
        "POST",
        &path,
        &body,
        client.as_deref(),
        now_ms.div_euclid(1000),
        crate::clock::random(),
    );
    headers.set(header::FORWARD, &forward)?;
    send(config, Method::Post, &path, headers, Some(body)).await
}

/// The query string of a URL, without `?` and fragment. (Parsing the whole URL
/// would pull the `url` crate and its IDNA tables into the Wasm.)
pub fn query(url: &str) -> Option<&str> {
    let after = url.split_once('?')?.1;
    let query = after.split('#').next().unwrap_or("");
    (!query.is_empty()).then_some(query)
}

/// GET `path` at the origin: status and body.
pub async fn get(config: &Config, path: &str) -> Result<(u16, Vec<u8>), EdgeError> {
    let mut response = send(config, Method::Get, path, Headers::new(), None).await?;
    let body = response.bytes().await?;
    Ok((response.status_code(), body))
}

thread_local! {
    /// Paths this isolate is refreshing. (Requests cannot await each other's I/O
    /// in Workers, so concurrent requests do not wait for one fetch; while one
    /// refreshes, the others use the copy they have.)
    static REFRESHING: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// The right to refresh `path`, held until dropped; `None` if another request
/// of this isolate holds it.
pub struct Refresh(String);

impl Refresh {
    pub fn claim(path: &str) -> Option<Self> {
        REFRESHING
            .with(|r| r.borrow_mut().insert(path.to_owned()))
            .then(|| Self(path.to_owned()))
    }
}

impl Drop for Refresh {
    fn drop(&mut self) {
        REFRESHING.with(|r| r.borrow_mut().remove(&self.0));
    }
}

/// The forwarded headers of a request, for handlers that build their own.
pub fn headers_of(headers: &Headers) -> Headers {
    forwarded_headers(headers)
}
