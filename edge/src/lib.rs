//! rushgate edge: a Cloudflare Worker (Rust → Wasm) in front of the origin.
//!
//! Static pages come from `static/` through wrangler's `[assets]`; everything else
//! reaches [`fetch`]: server time and purchase URLs are answered here, event reads
//! are cached here, `/buy` is filtered here so that the origin sees load that grows
//! with the stock rather than with the crowd, and the rest passes through. All
//! token, phase, admission and dedup logic is `rushgate-core`; this crate adds IO.

mod buy;
mod clock;
mod config;
mod dedup_load;
mod dedup_shard;
mod error;
mod events;
mod funnel;
mod origin;
mod session;
mod snapshot;

pub use dedup_shard::DedupShard;

use rushgate_core::ErrorCode;
use rushgate_core::api::ServerTime;
use worker::{Context, Env, Method, Request, Response, event};

use config::Config;
use error::{EdgeError, json};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let config = match config::load(&env) {
        Ok(config) => config,
        Err(e) => return Ok(e.into_response()),
    };
    let now_ms = clock::now_ms();
    let response = route(req, &env, &ctx, &config, now_ms)
        .await
        .unwrap_or_else(EdgeError::into_response);
    funnel::maybe_report(&ctx, &config, now_ms);
    Ok(response)
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
            events::count_view(&req, id);
            events::cached_read(&req, config, ctx, now_ms).await
        }
        (Method::Post, ["api", "events", id, "purchase-url"]) => {
            drain(&mut req).await;
            events::purchase_url(&req, env, config, event_id(id)?, now_ms).await
        }
        (Method::Post, ["buy", _, _]) => buy::buy(req, env, config, now_ms).await,
        (Method::Get, ["api", "edge", "dedup-load"]) => {
            dedup_load::report(&req, env, config, now_ms).await
        }
        (Method::Post, ["api", "auth", "logout"]) => {
            session::logout(req, env, config, now_ms / 1000).await
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
