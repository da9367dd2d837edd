//! Reads of the origin that every isolate of a location shares: event views
//! (the pages' reads and the isolates' snapshots alike). An answer is kept in
//! the isolate and in the location's cache (Cache API); fresh for
//! `EVENT_CACHE_TTL_S`, then served stale for `EVENT_CACHE_SWR_S` while one
//! request refreshes it. A refresh takes a lock in the location's cache first,
//! so the isolates of a location fetch a resource once per TTL between them —
//! a cold isolate, or one whose copy went stale, looks for the copy another
//! isolate fetched and waits for one under way instead of sending its own.
//! (Without a location cache — `*.workers.dev`, a bare workerd — each isolate
//! fetches for itself, as before.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use worker::{Cache, Context, Delay, Headers, Response};

use crate::clock;
use crate::config::Config;
use crate::error::EdgeError;
use crate::origin;

/// When a cached answer was fetched from the origin (ms), on cached copies.
const CACHED_AT: &str = "x-rushgate-cached-at";

/// How long a refresh's lock lasts, s: a request that finds one waits for the
/// copy at most this long, then fetches itself.
const LOCK_S: u64 = 2;

/// How often a waiting request looks for the copy, ms.
const LOOK_EVERY_MS: u64 = 10;

/// The longest random pause before a request takes the lock, ms.
const LOCK_JITTER_MS: u64 = 20;

/// The last answer for a resource, as fetched from the origin.
#[derive(Clone)]
pub struct Copy {
    pub status: u16,
    pub body: Rc<[u8]>,
    pub fetched_ms: i64,
}

/// Where an answer came from, as `X-Rushgate-Cache` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Hit,
    Stale,
    Miss,
}

impl Served {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Stale => "stale",
            Self::Miss => "miss",
        }
    }
}

thread_local! {
    /// Requests cannot await each other's I/O in Workers, but they share memory:
    /// the one that fetches leaves its answer here for those waiting on it.
    static COPIES: RefCell<HashMap<String, Copy>> = RefCell::new(HashMap::new());
}

/// The key of the origin's resource `path` in the isolate and the location:
/// one for the pages' reads and the isolates' snapshots alike, so a location
/// refreshes each resource once per TTL, not once per kind of reader.
pub fn key(path: &str) -> String {
    format!("https://rushgate.internal{path}")
}

fn isolate_copy(key: &str) -> Option<Copy> {
    COPIES.with(|c| c.borrow().get(key).cloned())
}

/// The resource `path` (keyed `key`): the freshest copy the isolate or its
/// location has while fresh; a stale one while one request refreshes it (in
/// the background with `ctx`, else this request, unless another of the
/// isolate's is at it); otherwise a fetch, once per location.
pub async fn read(
    config: &Rc<Config>,
    ctx: Option<&Context>,
    key: &str,
    path: &str,
    now_ms: i64,
) -> Result<(Copy, Served), EdgeError> {
    let ttl = due_ms(config.event_ttl_ms as i64);
    let keep_ms = (config.event_ttl_ms + config.event_swr_ms) as i64;
    let mut copy = isolate_copy(key);
    if copy.as_ref().is_none_or(|c| now_ms - c.fetched_ms >= ttl)
        && let Some(found) = from_location(key).await
        && copy
            .as_ref()
            .is_none_or(|c| found.fetched_ms > c.fetched_ms)
    {
        store(key, &found);
        copy = Some(found);
    }
    if let Some(copy) = &copy {
        let age = now_ms - copy.fetched_ms;
        if age < ttl {
            return Ok((copy.clone(), Served::Hit));
        }
        if age < keep_ms {
            if let Some(claim) = origin::Refresh::claim(key) {
                match ctx {
                    Some(ctx) => {
                        let (config, key, path) = (config.clone(), key.to_owned(), path.to_owned());
                        ctx.wait_until(async move {
                            if let Err(e) = refresh(&config, &key, &path, clock::now_ms()).await {
                                worker::console_warn!("refresh of {key} failed: {:?}", e.0);
                            }
                            drop(claim);
                        });
                    }
                    None => {
                        let fresh = refresh(config, key, path, now_ms).await;
                        drop(claim);
                        if let Ok(fresh) = fresh {
                            return Ok((fresh, Served::Miss));
                        }
                    }
                }
            }
            return Ok((copy.clone(), Served::Stale));
        }
    }
    let claim = origin::Refresh::claim(key);
    if claim.is_none() {
        // Another request of this isolate is fetching it: wait for its copy.
        for _ in 0..LOCK_S * 1000 / LOOK_EVERY_MS {
            Delay::from(Duration::from_millis(LOOK_EVERY_MS)).await;
            // Fresh as of this request's start: a fetch slower than the
            // TTL still ends the wait of those who came while it was out.
            if let Some(copy) = isolate_copy(key)
                && now_ms - copy.fetched_ms < ttl
            {
                return Ok((copy, Served::Hit));
            }
        }
    }
    let fresh = refresh(config, key, path, now_ms).await;
    drop(claim);
    fresh.map(|copy| (copy, Served::Miss))
}

/// How old a copy may be in this isolate, for a resource fresh for `ttl_ms`:
/// isolates go stale at instants of their own over the last third of it, so
/// the first refreshes the location's copy for the others.
pub fn due_ms(ttl_ms: i64) -> i64 {
    ttl_ms - clock::skew_ms(ttl_ms / 3)
}

fn store(key: &str, copy: &Copy) {
    COPIES.with(|c| c.borrow_mut().insert(key.to_owned(), copy.clone()));
}

/// The location's copy, if it has a cache (not on `*.workers.dev`, nor under a
/// bare `workerd`) and a copy.
async fn from_location(key: &str) -> Option<Copy> {
    let mut response = Cache::default().get(key, false).await.ok()??;
    let fetched_ms = response
        .headers()
        .get(CACHED_AT)
        .ok()??
        .parse::<i64>()
        .ok()?;
    Some(Copy {
        status: response.status_code(),
        body: response.bytes().await.ok()?.into(),
        fetched_ms,
    })
}

fn lock_key(key: &str) -> String {
    format!("{key}#refreshing")
}

/// Fetches from the origin — unless another isolate of the location holds
/// the lock, in which case its copy is awaited — and keeps a successful
/// answer in this isolate and in the location's cache.
async fn refresh(config: &Config, key: &str, path: &str, now_ms: i64) -> Result<Copy, EdgeError> {
    let keep_s = (config.event_ttl_ms + config.event_swr_ms) / 1000 + 1;
    let fetch = async {
        let (status, body) = origin::get(config, path).await?;
        Ok((status, body))
    };
    fetch_once(key, config.event_ttl_ms as i64, keep_s, now_ms, fetch).await
}

/// `fetch`, once per location: unless another isolate holds the lock on
/// `key`, in which case its copy (fresh by `due_ms` of `ttl_ms` as of
/// `now_ms`, the request's start — a copy is as of its ask, and an ask slower
/// than the TTL must still end the waits it caused) is awaited; a 200
/// is kept in this isolate and in the location's cache for `keep_s`. The
/// Cache API has no compare-and-set, so the lock is taken after a random
/// pause and a second look — isolates going stale at the same instant mostly
/// find each other's lock — and given back as soon as the copy is stored.
pub async fn fetch_once(
    key: &str,
    ttl_ms: i64,
    keep_s: u64,
    now_ms: i64,
    fetch: impl std::future::Future<Output = Result<(u16, Vec<u8>), EdgeError>>,
) -> Result<Copy, EdgeError> {
    let cache = Cache::default();
    let lock = lock_key(key);
    let locked = || async { matches!(cache.get(lock.as_str(), false).await, Ok(Some(_))) };
    let mut wait = locked().await;
    if !wait {
        let [jitter] = clock::random::<1>();
        Delay::from(Duration::from_millis(u64::from(jitter) % LOCK_JITTER_MS)).await;
        if let Some(copy) = fresh_copy(key, ttl_ms, now_ms).await {
            return Ok(copy);
        }
        wait = locked().await;
    }
    if wait {
        for look in 0..LOCK_S * 1000 / LOOK_EVERY_MS {
            Delay::from(Duration::from_millis(LOOK_EVERY_MS)).await;
            // Fresh as of this request's start (see `read`).
            if let Some(copy) = fresh_copy(key, ttl_ms, now_ms).await {
                return Ok(copy);
            }
            // The holder gave the lock back with no copy (its fetch failed):
            // this request fetches.
            if look % 5 == 4 && !locked().await {
                break;
            }
        }
    }
    let taken = stored(
        200,
        b"{}",
        &[("cache-control", format!("public, max-age={LOCK_S}"))],
    );
    let _ = cache.put(lock.as_str(), taken).await;
    // A copy is as of the instant it was asked for: the origin answered
    // after it, so it holds whatever the origin had said before.
    let asked_ms = clock::now_ms().max(now_ms);
    let fetched = fetch.await;
    let copy = fetched.map(|(status, body)| Copy {
        status,
        body: body.into(),
        fetched_ms: asked_ms,
    });
    if let Ok(copy) = &copy
        && copy.status == 200
    {
        store(key, copy);
        let response = stored(
            copy.status,
            &copy.body,
            &[
                (CACHED_AT, copy.fetched_ms.to_string()),
                ("cache-control", format!("public, max-age={keep_s}")),
            ],
        );
        if let Err(e) = cache.put(key, response).await {
            worker::console_debug!("no location cache: {e}");
        }
    }
    let _ = cache.delete(lock.as_str(), false).await;
    copy
}

/// The freshest copy of `key` this isolate or its location has, if it is
/// fresh (`due_ms` of `ttl_ms`).
pub async fn fresh_copy(key: &str, ttl_ms: i64, now_ms: i64) -> Option<Copy> {
    let ttl_ms = due_ms(ttl_ms);
    let mine = isolate_copy(key);
    if let Some(copy) = &mine
        && now_ms - copy.fetched_ms < ttl_ms
    {
        return mine;
    }
    let found = from_location(key).await?;
    if now_ms - found.fetched_ms >= ttl_ms {
        return None;
    }
    store(key, &found);
    Some(found)
}

/// A JSON answer with `status`, `body` and extra headers (answers from `fetch`
/// and the cache have immutable headers, so they are rebuilt).
pub fn stored(status: u16, body: &[u8], extra: &[(&str, String)]) -> Response {
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
