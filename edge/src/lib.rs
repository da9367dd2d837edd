//! rushgate edge: a Cloudflare Worker (Rust → Wasm) in front of the origin.
//!
//! Static pages come from `static/` through wrangler's `[assets]`; everything else
//! reaches [`fetch`]: server time and purchase URLs are answered here, event reads
//! are cached here, `/buy` is filtered here so that the origin sees load that grows
//! with the stock rather than with the crowd, queues are run here, and the rest
//! passes through. All
//! token, phase, admission and dedup logic is `rushgate-core`; this crate adds IO.

mod buy;
mod clock;
mod config;
mod dedup_load;
mod desk;
mod door;
mod entrants;
mod error;
mod events;
mod flight;
mod frontier;
mod funnel;
mod inits;
mod location;
mod objects;
mod origin;
mod query;
mod queue;
mod session;
mod shard;
mod snapshot;
mod tally;

pub use desk::SaleDesk;
pub use frontier::QueueFrontier;
pub use shard::DedupShard;
pub use tally::FunnelTally;

use rushgate_core::ErrorCode;
use rushgate_core::api::ServerTime;
use worker::{Context, Env, Method, Request, Response, event, web_sys};

use config::Config;
use error::{EdgeError, json};

#[event(fetch)]
async fn fetch(raw: web_sys::Request, env: Env, ctx: Context) -> worker::Result<web_sys::Response> {
    let config = match config::load(&env) {
        Ok(config) => config,
        Err(e) => return Ok(e.into_raw()),
    };
    let now_ms = clock::now_ms();
    if forgeable(&raw) {
        let refused = EdgeError::new(
            ErrorCode::UnsupportedMediaType,
            "send JSON with Content-Type: application/json",
        );
        return Ok(refused.into_raw());
    }
    let url = raw.url();
    let path = path_of(&url);
    // `/buy` works on the runtime's request and response; the rest on the
    // `worker` crate's.
    let response = if is_buy(&raw.method(), path) {
        buy::buy(&raw, path, &env, &ctx, &config, now_ms)
            .await
            .unwrap_or_else(EdgeError::into_raw)
    } else {
        route(Request::from(raw), &env, &ctx, &config, now_ms)
            .await
            .unwrap_or_else(EdgeError::into_response)
            .into()
    };
    funnel::maybe_report(&ctx, &env, &config, now_ms);
    Ok(response)
}

/// Whether another site's page could have sent this in the visitor's name
/// (`core::session::forgeable`): the origin refuses those too, but the edge
/// answers some routes itself.
fn forgeable(raw: &web_sys::Request) -> bool {
    let method = raw.method();
    if method == "GET" || method == "HEAD" {
        return false;
    }
    let headers = raw.headers();
    let get = |name: &str| headers.get(name).ok().flatten();
    rushgate_core::session::forgeable(
        &method,
        get("authorization").is_some(),
        get("cookie").as_deref(),
        get("content-type").as_deref(),
    )
}

/// `POST /buy/{event_id}/{token}`.
fn is_buy(method: &str, path: &str) -> bool {
    method == "POST"
        && path
            .strip_prefix("/buy/")
            .is_some_and(|rest| rest.split('/').count() == 2)
}

/// The path of a URL as the runtime gives it (`scheme://host/path?query`),
/// without parsing the whole URL.
fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme
        .find('/')
        .map_or("/", |start| &after_scheme[start..]);
    path.split(['?', '#']).next().unwrap_or(path)
}

async fn route(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    config: &std::rc::Rc<Config>,
    now_ms: i64,
) -> Result<Response, EdgeError> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (Method::Get, ["api", "time"]) => Ok(json(200, &ServerTime { now: clock::now() })),
        (Method::Get, ["api", "events"]) => events::cached_read(&req, config, ctx, now_ms).await,
        (Method::Get, ["api", "events", id]) => {
            let id = event_id(id)?;
            let read = events::cached_read(&req, config, ctx, now_ms).await?;
            if read.status_code() == 200 {
                events::count_view(&req, config, id, now_ms);
            }
            Ok(read)
        }
        (Method::Post, ["api", "events", id, "purchase-url"]) => {
            let body = req.bytes().await.unwrap_or_default();
            events::purchase_url(&req, env, config, event_id(id)?, &body, now_ms).await
        }
        (Method::Get, ["api", "events", id, "challenge"]) => {
            door::challenge(&req, env, config, event_id(id)?, now_ms).await
        }
        (Method::Post, ["api", "events", id, "queue"]) => {
            let body = req.bytes().await.unwrap_or_default();
            queue::join(&req, env, config, event_id(id)?, &body, now_ms).await
        }
        (Method::Get, ["api", "events", id, "queue"]) => {
            queue::status(&req, env, config, event_id(id)?, now_ms).await
        }
        (Method::Get, ["api", "edge", "isolate"]) => Ok(json(200, &clock::isolate())),
        (Method::Get, ["api", "edge", "dedup-load"]) => {
            dedup_load::report(&req, env, config, now_ms).await
        }
        (Method::Post, ["api", "auth", "logout"]) => {
            session::logout(req, env, config, now_ms / 1000).await
        }
        (Method::Post, ["api", "edge", "revocations"]) => {
            session::relayed(req, env, config, now_ms).await
        }
        (Method::Post, ["api", "auth", "login" | "register"]) => {
            origin::pass_through_from_client(config, req, now_ms).await
        }
        (_, ["api", ..]) | (_, ["healthz" | "readyz"]) => origin::pass_through(config, req).await,
        _ => {
            drain(&mut req).await;
            Err(EdgeError::new(ErrorCode::NotFound, "no such route"))
        }
    }
}

/// Reads a body the route has no use for, so that the connection can carry the
/// client's next request (a server that answers with the body unread must drop
/// the connection).
async fn drain(req: &mut Request) {
    let _ = req.bytes().await;
}

fn event_id(raw: &str) -> Result<i64, EdgeError> {
    raw.parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| EdgeError::new(ErrorCode::InvalidInput, "id must be a positive integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_come_from_urls_without_query_or_fragment() {
        assert_eq!(path_of("https://edge.example/buy/1/tok?x=1"), "/buy/1/tok");
        assert_eq!(path_of("http://127.0.0.1:8787/"), "/");
        assert_eq!(path_of("http://127.0.0.1:8787"), "/");
        assert_eq!(path_of("http://h/api/events#top"), "/api/events");
    }

    #[test]
    fn only_posts_to_a_purchase_url_are_purchases() {
        assert!(is_buy("POST", "/buy/1/token"));
        assert!(!is_buy("GET", "/buy/1/token"));
        assert!(!is_buy("POST", "/buy/1"));
        assert!(!is_buy("POST", "/buy/1/token/more"));
        assert!(!is_buy("POST", "/api/buy/1/token"));
    }
}
