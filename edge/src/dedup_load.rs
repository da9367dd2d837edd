//! `GET /api/edge/dedup-load` (admins only): each dedup Durable Object's load
//! since it started, in this location — how evenly users spread over the
//! shards, and how close the busiest object comes to what one Durable Object
//! can answer. One request asks every shard, hence the role check first. With
//! `?event=<id>`, the load of that event's queue frontier object and of its
//! sale desk too; always the funnel tallies'.

use rushgate_core::api::{DedupLoad, ShardLoad};
use rushgate_core::{ErrorCode, Role};
use worker::{Env, Request, Response};

use crate::config::Config;
use crate::desk;
use crate::error::{EdgeError, json};
use crate::frontier;
use crate::objects::parse_load;
use crate::session;
use crate::shard::{self, ShardAsk};
use crate::tally;

pub async fn report(
    req: &Request,
    env: &Env,
    config: &Config,
    now_ms: i64,
) -> Result<Response, EdgeError> {
    let claims = session::user(req.headers(), &config.keys, now_ms / 1000)?;
    if claims.role != Role::Admin {
        return Err(ErrorCode::Forbidden.into());
    }
    session::not_revoked(env, config, &claims, now_ms).await?;
    let mut shards = Vec::with_capacity(config.dedup_shards as usize);
    for shard in 0..config.dedup_shards {
        let answer = shard::ask_at(env, shard, &ShardAsk::Load).await?;
        let (asks, peak_per_s) = parse_load(&answer).ok_or_else(EdgeError::origin_unavailable)?;
        shards.push(ShardLoad {
            shard,
            asks,
            peak_per_s,
        });
    }
    let event = crate::origin::query(&req.inner().url()).and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("event="))
            .and_then(|id| id.parse::<i64>().ok())
    });
    let load = |answer: &str| {
        parse_load(answer).map(|(asks, peak_per_s)| ShardLoad {
            shard: 0,
            asks,
            peak_per_s,
        })
    };
    let mut tallies = Vec::new();
    for n in 0..config.tally_shards {
        if let Some(at) = load(&tally::load(env, n).await?) {
            tallies.push(ShardLoad { shard: n, ..at });
        }
    }
    let (frontier, desk) = match event {
        Some(id) => {
            let (_, at_frontier) = frontier::ask(env, id, frontier::LOAD_URL).await?;
            let at_desk = desk::ask(env, id, desk::LOAD_URL).await?;
            (load(&at_frontier), load(&at_desk))
        }
        None => (None, None),
    };
    Ok(json(
        200,
        &DedupLoad {
            shards,
            frontier,
            desk,
            tallies,
        },
    ))
}
