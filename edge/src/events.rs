//! Event reads cached at the edge (through the location: `location`), and
//! purchase URLs issued at the edge from the event snapshot — no origin call.

use std::rc::Rc;

use rushgate_core::api::{PurchaseUrl, header};
use rushgate_core::challenge::ChallengeMode;
use rushgate_core::{ErrorBody, ErrorCode, Phase, attest, purchase};
use time::OffsetDateTime;
use worker::{Context, Env, Method, Request, Response};

use crate::clock;
use crate::config::Config;
use crate::door;
use crate::error::{EdgeError, json};
use crate::funnel::{self, Step};
use crate::location;
use crate::origin;
use crate::session;
use crate::snapshot;

/// `GET /api/events` and `GET /api/events/{id}`, keyed on the resource alone
/// (the event page adds its visitor id, which never changes the answer) with
/// the same key as the isolates' snapshots (`location::key`), read
/// through the location (`location::read`): a crowd costs the origin about
/// one request per TTL per location, whatever the number of isolates.
pub async fn cached_read(
    req: &Request,
    config: &Rc<Config>,
    ctx: &Context,
    now_ms: i64,
) -> Result<Response, EdgeError> {
    let path = req.path();
    let (copy, served) =
        location::read(config, Some(ctx), &location::key(&path), &path, now_ms).await?;
    Ok(for_browser(copy.status, &copy.body, served.as_str()))
}

/// Browsers may keep the answer for a second; the edge does the real caching.
fn for_browser(status: u16, body: &[u8], state: &str) -> Response {
    location::stored(
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
