//! Event reads cached at the edge with stale-while-revalidate, and purchase URLs
//! issued at the edge from the event snapshot — no origin call.

use std::rc::Rc;

use rushgate_core::api::PurchaseUrl;
use rushgate_core::{ErrorBody, ErrorCode, purchase};
use time::OffsetDateTime;
use worker::{Cache, Context, Headers, Request, Response};

use crate::clock;
use crate::config::Config;
use crate::error::{EdgeError, json};
use crate::funnel::{self, Step};
use crate::origin;
use crate::session;
use crate::snapshot;

/// When a cached answer was fetched from the origin (ms), on cached copies.
const CACHED_AT: &str = "x-rushgate-cached-at";

/// `GET /api/events` and `GET /api/events/{id}`: served from the Cache API while
/// fresh; while stale (up to the SWR window) served at once and refreshed in the
/// background; otherwise fetched. A crowd costs the origin about one request per
/// TTL per edge location.
pub async fn cached_read(
    req: &Request,
    config: &Rc<Config>,
    ctx: &Context,
    now_ms: i64,
) -> Result<Response, EdgeError> {
    let key = req.inner().url();
    let path = req.path();
    let cache = Cache::default();
    if let Some(response) = cache.get(key.as_str(), false).await? {
        let age = response
            .headers()
            .get(CACHED_AT)?
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(i64::MAX, |at| now_ms - at);
        if age < config.event_ttl_ms as i64 {
            return for_browser(response, "hit").await;
        }
        if age < (config.event_ttl_ms + config.event_swr_ms) as i64 {
            if let Some(claim) = origin::Refresh::claim(&key) {
                let (config, key) = (config.clone(), key.clone());
                ctx.wait_until(async move {
                    if let Err(e) = refresh(&config, &key, &path, clock::now_ms()).await {
                        worker::console_warn!("refresh of {key} failed: {:?}", e.0);
                    }
                    drop(claim);
                });
            }
            return for_browser(response, "stale").await;
        }
    }
    let (status, body) = refresh(config, &key, &path, now_ms).await?;
    Ok(copy(
        status,
        &body,
        &[
            ("cache-control", "public, max-age=1".to_owned()),
            ("x-rushgate-cache", "miss".to_owned()),
        ],
    ))
}

/// Fetches from the origin; stores successful answers in the cache.
async fn refresh(
    config: &Config,
    key: &str,
    path: &str,
    now_ms: i64,
) -> Result<(u16, Vec<u8>), EdgeError> {
    let fetched = origin::get(config, path).await?;
    let (status, body) = (fetched.0, &fetched.1);
    if status == 200 {
        let keep_s = (config.event_ttl_ms + config.event_swr_ms) / 1000 + 1;
        let stored = copy(
            status,
            body,
            &[
                (CACHED_AT, now_ms.to_string()),
                ("cache-control", format!("public, max-age={keep_s}")),
            ],
        );
        Cache::default().put(key, stored).await?;
    }
    Ok(fetched)
}

/// A JSON answer with `status`, `body` and extra headers (answers from `fetch`
/// and the cache have immutable headers, so they are rebuilt).
fn copy(status: u16, body: &[u8], extra: &[(&str, String)]) -> Response {
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json");
    for (name, value) in extra {
        let _ = headers.set(name, value);
    }
    Response::builder()
        .with_status(status)
        .with_headers(headers)
        .fixed(body.to_vec())
}

/// Browsers may keep the answer for a second; the edge does the real caching.
async fn for_browser(mut response: Response, state: &str) -> Result<Response, EdgeError> {
    let status = response.status_code();
    let body = response.bytes().await?;
    Ok(copy(
        status,
        &body,
        &[
            ("cache-control", "public, max-age=1".to_owned()),
            ("x-rushgate-cache", state.to_owned()),
        ],
    ))
}

/// Counts a view of an event page (the page asks for the event with
/// `?view=<visitor id>`).
pub fn count_view(req: &Request, event_id: i64) {
    let url = req.inner().url();
    let visitor = origin::query(&url)
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("view="));
    if let Some(visitor) = visitor.filter(|v| v.bytes().all(|b| b.is_ascii_alphanumeric())) {
        funnel::bump(event_id, Step::PageView);
        funnel::visitor(event_id, visitor);
    }
}

/// `POST /api/events/{id}/purchase-url`: the same URL the origin would issue,
/// signed here with core once the snapshot's phase, at this instant, is open.
pub async fn purchase_url(
    req: &Request,
    config: &Rc<Config>,
    event_id: i64,
    now_ms: i64,
) -> Result<Response, EdgeError> {
    let now = clock::now();
    let user = session::user(req, &config.keys, now.unix_timestamp())?;
    let view = snapshot::view(config, event_id, now_ms)
        .await?
        .ok_or_else(|| EdgeError::new(ErrorCode::NotFound, "no such event"))?;
    let phase = snapshot::phase(&view, now);
    if let Err(code) = purchase::check_phase(phase) {
        let body = match code {
            ErrorCode::NotOpen => {
                ErrorBody::new(code, "the sale has not opened yet").with_opens_at(view.opens_at)
            }
            ErrorCode::SoldOut => ErrorBody::new(code, "sold out"),
            ErrorCode::Closed => ErrorBody::new(code, "the sale is closed"),
            _ => ErrorBody::new(code, "no such event"),
        };
        return Err(EdgeError(body));
    }
    let issued = purchase::issue(
        &config.keys,
        event_id,
        user.user_id,
        now,
        config.purchase_url_ttl_s,
        view.closes_at,
        clock::random(),
    );
    let expires_at =
        OffsetDateTime::from_unix_timestamp(issued.claims.exp).unwrap_or(view.closes_at);
    Ok(json(
        200,
        &PurchaseUrl {
            url: issued.path,
            expires_at,
        },
    ))
}
