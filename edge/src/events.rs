//! Event reads cached at the edge with stale-while-revalidate, and purchase URLs
//! issued at the edge from the event snapshot — no origin call.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use rushgate_core::api::{PurchaseUrl, header};
use rushgate_core::challenge::ChallengeMode;
use rushgate_core::{ErrorBody, ErrorCode, Phase, attest, purchase};
use time::OffsetDateTime;
use worker::{Cache, Context, Delay, Env, Headers, Method, Request, Response};

use crate::clock;
use crate::config::Config;
use crate::door;
use crate::error::{EdgeError, json};
use crate::funnel::{self, Step};
use crate::origin;
use crate::session;
use crate::snapshot;

/// When a cached answer was fetched from the origin (ms), on cached copies.
const CACHED_AT: &str = "x-rushgate-cached-at";

/// How long a request that found another request of its isolate fetching the
/// same resource waits for that copy before fetching itself, and how often it
/// looks.
const WAIT_FOR_COPY_MS: u64 = 2_000;
const LOOK_EVERY_MS: u64 = 10;

/// The last answer this isolate fetched for a resource.
#[derive(Clone)]
struct Copy {
    status: u16,
    body: Rc<[u8]>,
    fetched_ms: i64,
}

thread_local! {
    /// Requests cannot await each other's I/O in Workers, but they share memory:
    /// the one that fetches leaves its answer here for those waiting on it.
    static COPIES: RefCell<HashMap<String, Copy>> = RefCell::new(HashMap::new());
}

fn isolate_copy(key: &str) -> Option<Copy> {
    COPIES.with(|c| c.borrow().get(key).cloned())
}

/// `GET /api/events` and `GET /api/events/{id}`, keyed on the resource alone
/// (the event page adds its visitor id, which never changes the answer):
/// served from this isolate's copy, else the location's cache (Cache API, where
/// there is one), while fresh; while stale, up to the SWR window, served at once
/// and refreshed in the background by one request; otherwise fetched by one
/// request of the isolate while the others wait for its answer. A crowd costs
/// the origin about one request per TTL per isolate.
pub async fn cached_read(
    req: &Request,
    config: &Rc<Config>,
    ctx: &Context,
    now_ms: i64,
) -> Result<Response, EdgeError> {
    let url = req.inner().url();
    let key = url.split(['?', '#']).next().unwrap_or(&url).to_owned();
    let path = req.path();
    let ttl = config.event_ttl_ms as i64;
    let keep = (config.event_ttl_ms + config.event_swr_ms) as i64;
    let copy = match isolate_copy(&key) {
        Some(copy) => Some(copy),
        None => from_location_cache(&key).await,
    };
    if let Some(copy) = copy {
        let age = now_ms - copy.fetched_ms;
        if age < ttl {
            return Ok(for_browser(copy.status, &copy.body, "hit"));
        }
        if age < keep {
            if let Some(claim) = origin::Refresh::claim(&key) {
                let (config, key) = (config.clone(), key.clone());
                ctx.wait_until(async move {
                    if let Err(e) = refresh(&config, &key, &path, clock::now_ms()).await {
                        worker::console_warn!("refresh of {key} failed: {:?}", e.0);
                    }
                    drop(claim);
                });
            }
            return Ok(for_browser(copy.status, &copy.body, "stale"));
        }
    }
    let claim = origin::Refresh::claim(&key);
    if claim.is_none() {
        // Another request of this isolate is fetching it: wait for its copy.
        for _ in 0..WAIT_FOR_COPY_MS / LOOK_EVERY_MS {
            Delay::from(Duration::from_millis(LOOK_EVERY_MS)).await;
            if let Some(copy) = isolate_copy(&key)
                && clock::now_ms() - copy.fetched_ms < ttl
            {
                return Ok(for_browser(copy.status, &copy.body, "hit"));
            }
        }
    }
    let (status, body) = refresh(config, &key, &path, now_ms).await?;
    drop(claim);
    Ok(for_browser(status, &body, "miss"))
}

/// The location's cached copy, if it has a cache (not on `*.workers.dev`, nor
/// under a bare `workerd`) and the copy.
async fn from_location_cache(key: &str) -> Option<Copy> {
    let mut response = Cache::default().get(key, false).await.ok()??;
    let fetched_ms = response
        .headers()
        .get(CACHED_AT)
        .ok()??
        .parse::<i64>()
        .ok()?;
    let copy = Copy {
        status: response.status_code(),
        body: response.bytes().await.ok()?.into(),
        fetched_ms,
    };
    COPIES.with(|c| c.borrow_mut().insert(key.to_owned(), copy.clone()));
    Some(copy)
}

/// Fetches from the origin; keeps successful answers in this isolate and in
/// the location's cache (where there is one).
async fn refresh(
    config: &Config,
    key: &str,
    path: &str,
    now_ms: i64,
) -> Result<(u16, Rc<[u8]>), EdgeError> {
    let (status, body) = origin::get(config, path).await?;
    let body: Rc<[u8]> = body.into();
    if status == 200 {
        let fetched_ms = clock::now_ms().max(now_ms);
        let copy = Copy {
            status,
            body: body.clone(),
            fetched_ms,
        };
        COPIES.with(|c| c.borrow_mut().insert(key.to_owned(), copy));
        let keep_s = (config.event_ttl_ms + config.event_swr_ms) / 1000 + 1;
        let stored = copy_response(
            status,
            &body,
            &[
                (CACHED_AT, fetched_ms.to_string()),
                ("cache-control", format!("public, max-age={keep_s}")),
            ],
        );
        if let Err(e) = Cache::default().put(key, stored).await {
            worker::console_debug!("no location cache: {e}");
        }
    }
    Ok((status, body))
}

/// A JSON answer with `status`, `body` and extra headers (answers from `fetch`
/// and the cache have immutable headers, so they are rebuilt).
fn copy_response(status: u16, body: &[u8], extra: &[(&str, String)]) -> Response {
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
fn for_browser(status: u16, body: &[u8], state: &str) -> Response {
    copy_response(
        status,
        body,
        &[
            ("cache-control", "public, max-age=1".to_owned()),
            (header::CACHE, state.to_owned()),
        ],
    )
}

/// Counts a view of an event page that exists (the read answered 200): the
/// page asks for the event with `?view=<visitor id>` once per load. The count
/// goes to the origin with the funnel reports; the read itself is served from
/// the cache like any other.
pub fn count_view(req: &Request, config: &Config, event_id: i64, now_ms: i64) {
    let url = req.inner().url();
    let visitor = origin::query(&url)
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("view="));
    if let Some(visitor) = visitor {
        funnel::bump(event_id, Step::PageView);
        let address = config.client_address(req.headers());
        funnel::visitor(event_id, visitor, address.as_deref(), now_ms);
    }
}

/// `POST /api/events/{id}/purchase-url`: the same URL the origin would issue,
/// signed here with core once the snapshot's phase, at this instant, is open.
/// In a presale the origin, which holds the codes, checks the buyer's code
/// and issues the URL, after the door.
pub async fn purchase_url(
    req: &Request,
    env: &Env,
    config: &Rc<Config>,
    event_id: i64,
    body: &[u8],
    now_ms: i64,
) -> Result<Response, EdgeError> {
    let now = clock::now();
    let user = session::user(req.headers(), &config.keys, now.unix_timestamp())?;
    let view = snapshot::public_view(config, event_id, now_ms).await?;
    let phase = snapshot::phase(&view, now);
    if phase == Phase::Presale {
        door::pass(req, env, config, &user, &view, body, now_ms).await?;
        let path = format!("/api/events/{event_id}/purchase-url");
        let headers = origin::headers_of(req.headers());
        // The origin hands out purchase URLs only to what the door let by.
        let admit = attest::sign(
            &config.keys,
            "POST",
            &path,
            user.user_id,
            now_ms.div_euclid(1000),
        );
        headers.set(header::ADMIT, &admit)?;
        let response = origin::send(config, Method::Post, &path, headers, Some(body.to_vec()));
        return response.await;
    }
    if view.admission.queue_window_s().is_some() {
        return Err(ErrorCode::QueueRequired.into());
    }
    if let Err(code) = purchase::check_phase(phase) {
        let body = match code {
            ErrorCode::NotOpen => ErrorBody::from(code).with_opens_at(view.opens_at),
            ErrorCode::NotFound => ErrorBody::new(code, "no such event"),
            code => ErrorBody::from(code),
        };
        return Err(EdgeError::from(body));
    }
    // The door checks the session with the try, in the user's shard; without
    // a door it is asked on its own.
    door::pass(req, env, config, &user, &view, body, now_ms).await?;
    if view.challenge == ChallengeMode::Off {
        session::not_revoked(env, config, &user, now_ms).await?;
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
