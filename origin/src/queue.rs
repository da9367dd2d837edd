//! The origin's side of the fair queue (SPEC §4, "Queue"), which runs at the
//! edge: the feed the edge's frontier steps on (the secret seed, units left,
//! buyers so far), the joins and frontier steps the edge reports, and the draw
//! record published once the sale has closed.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use rushgate_core::api::{QueueStats, header};
use rushgate_core::draw::{self, DrawRecord, Entrant, Seed};
use rushgate_core::queue::wire::{self, MAX_JOINS_PER_REPORT, QueueFeed, QueueReport};
use rushgate_core::queue::{Frontier, Standing, fraction, unix_ms as ms};
use rushgate_core::{ErrorBody, attest};
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::events::repo::EventRecord;
use crate::extract::{EdgeReported, Id};
use crate::sale::stock;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(feed, report))
        .routes(routes!(draw_record))
}

/// The edge's attestation of an internal call about `id`.
fn attested(state: &AppState, headers: &HeaderMap, method: &str, id: i64) -> ApiResult<()> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let admit = headers.get(header::ADMIT).and_then(|v| v.to_str().ok());
    attest::verify(&state.keys, admit, method, &wire::internal_path(id), 0, now)?;
    Ok(())
}

/// An approved queue event and its seed.
async fn queue_event(state: &AppState, id: i64) -> ApiResult<(std::sync::Arc<EventRecord>, Seed)> {
    let event = state
        .events
        .get(id)
        .await?
        .ok_or(ApiError::not_found("event"))?;
    match event.draw_seed {
        Some(seed) if event.admission.queue_window_s().is_some() => Ok((event, seed)),
        _ => Err(ApiError::not_found("queue")),
    }
}

#[utoipa::path(get, path = "/api/internal/queue/{id}", tag = "operations", params(("id" = i64, Path, description = "event id"), ("x-rushgate-admit" = String, Header, description = "the edge's admission token for this path and user 0")), responses((status = 200, body = QueueFeed), (status = 403, description = "`not_admitted_by_edge`", body = ErrorBody), (status = 404, description = "`not_found`: no such queue", body = ErrorBody), crate::openapi::Common))]
async fn feed(
    State(state): State<AppState>,
    headers: HeaderMap,
    Id(id): Id,
) -> ApiResult<Json<QueueFeed>> {
    attested(&state, &headers, "GET", id)?;
    let (event, seed) = queue_event(&state, id).await?;
    let remaining = stock::remaining(&state.redis, &[&event]).await?;
    let (buyers, units): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT user_id), coalesce(sum(quantity), 0)::BIGINT \
         FROM orders WHERE event_id = $1",
    )
    .bind(id)
    .fetch_one(&state.db)
    .await?;
    Ok(Json(QueueFeed {
        seed: hex::encode(seed),
        opens_at_ms: ms(event.schedule.opens_at),
        closes_at_ms: ms(event.schedule.closes_at),
        window_s: event.admission.queue_window_s().unwrap_or_default(),
        remaining: stock::total(&event, &remaining),
        buyers: buyers.max(0) as u64,
        units_bought: units,
    }))
}

#[utoipa::path(post, path = "/api/internal/queue/{id}", tag = "operations", params(("id" = i64, Path, description = "event id"), ("x-rushgate-forward" = String, Header, description = "the edge's word on this path and body, with a nonce taken once")), request_body = QueueReport, responses((status = 204, description = "joins kept (again is harmless), the frontier moved forward (never back)"), (status = 403, description = "`not_admitted_by_edge`", body = ErrorBody), (status = 404, description = "`not_found`: no such queue", body = ErrorBody), crate::openapi::Common))]
async fn report(
    State(state): State<AppState>,
    Id(id): Id,
    EdgeReported(report): EdgeReported<QueueReport>,
) -> ApiResult<StatusCode> {
    queue_event(&state, id).await?;
    if report.joins.len() > MAX_JOINS_PER_REPORT {
        return Err(ApiError::invalid(
            "joins",
            format!("at most {MAX_JOINS_PER_REPORT} joins per report"),
        ));
    }
    if let Some(f) = &report.frontier
        && !(0.0..=1.0).contains(&f.drawn)
    {
        return Err(ApiError::invalid("frontier.drawn", "must be in [0, 1]"));
    }
    let mut tx = state.db.begin().await?;
    if !report.joins.is_empty() {
        let users: Vec<i64> = report.joins.iter().map(|j| j.user_id).collect();
        let times: Vec<i64> = report.joins.iter().map(|j| j.joined_ms).collect();
        sqlx::query(
            "INSERT INTO queue_entrants (event_id, user_id, joined_ms) \
             SELECT $1, u, t FROM UNNEST($2::BIGINT[], $3::BIGINT[]) AS j (u, t) \
             ON CONFLICT (event_id, user_id) DO NOTHING",
        )
        .bind(id)
        .bind(&users)
        .bind(&times)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(f) = report.frontier {
        sqlx::query(
            "INSERT INTO queue_frontiers (event_id, drawn, late_until_ms, admitted) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO UPDATE SET \
             drawn = GREATEST(queue_frontiers.drawn, EXCLUDED.drawn), \
             late_until_ms = GREATEST(queue_frontiers.late_until_ms, EXCLUDED.late_until_ms), \
             admitted = GREATEST(queue_frontiers.admitted, EXCLUDED.admitted), \
             updated_at = now()",
        )
        .bind(id)
        .bind(f.drawn)
        .bind(f.late_until_ms)
        .bind(i64::try_from(f.admitted).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/events/{id}/draw", tag = "events", params(("id" = i64, Path, description = "event id")), responses((status = 200, description = "the draw record: seed, entrants, admitted order", body = DrawRecord), (status = 404, description = "`not_found`: no such queue, or its sale has not closed", body = ErrorBody), crate::openapi::Common))]
async fn draw_record(State(state): State<AppState>, Id(id): Id) -> ApiResult<Json<DrawRecord>> {
    let now = OffsetDateTime::now_utc();
    let (event, seed) = queue_event(&state, id).await?;
    if !event.is_public(now) || now < event.schedule.closes_at {
        return Err(ApiError::refused(
            rushgate_core::ErrorCode::NotFound,
            "the draw is published when the sale closes",
        ));
    }
    let joined: Vec<(i64, i64)> =
        sqlx::query_as("SELECT user_id, joined_ms FROM queue_entrants WHERE event_id = $1")
            .bind(id)
            .fetch_all(&state.db)
            .await?;
    let frontier: Option<(f64, i64)> =
        sqlx::query_as("SELECT drawn, late_until_ms FROM queue_frontiers WHERE event_id = $1")
            .bind(id)
            .fetch_optional(&state.db)
            .await?;
    let opens_ms = ms(event.schedule.opens_at);
    let frontier = frontier.map_or(Frontier::new(opens_ms), |(drawn, late_until_ms)| Frontier {
        drawn,
        late_until_ms,
    });
    Ok(Json(record(&seed, opens_ms, frontier, &joined)))
}

/// The console's figures of a queue event.
pub async fn stats(state: &AppState, event: &EventRecord) -> ApiResult<QueueStats> {
    let id = event.id;
    let opens_ms = ms(event.schedule.opens_at);
    let (pre_queue, late): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE joined_ms < $2), count(*) FILTER (WHERE joined_ms >= $2) \
         FROM queue_entrants WHERE event_id = $1",
    )
    .bind(id)
    .bind(opens_ms)
    .fetch_one(&state.db)
    .await?;
    let frontier: Option<(f64, i64, i64)> = sqlx::query_as(
        "SELECT drawn, late_until_ms, admitted FROM queue_frontiers WHERE event_id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    let converted: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT user_id) FROM orders WHERE event_id = $1")
            .bind(id)
            .fetch_one(&state.db)
            .await?;
    let joins_per_minute: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT joined_ms / 60000 * 60000 AS minute, count(*) FROM queue_entrants \
         WHERE event_id = $1 GROUP BY 1 ORDER BY 1",
    )
    .bind(id)
    .fetch_all(&state.db)
    .await?;
    let now = OffsetDateTime::now_utc();
    Ok(QueueStats {
        pre_queue,
        late,
        admitted: frontier.map_or(0, |f| f.2),
        converted,
        drawn: frontier.map_or(0.0, |f| f.0),
        late_until_ms: frontier
            .map(|f| f.1)
            .filter(|_| frontier.is_some_and(|f| f.0 >= 1.0)),
        joins_per_minute,
        draw_published: event.draw_seed.is_some() && now >= event.schedule.closes_at,
    })
}

/// The published record: pre-queue entrants with their numbers, and everyone
/// the frontier passed — the pre-queue by number, then late joiners by arrival.
fn record(seed: &Seed, opens_ms: i64, frontier: Frontier, joined: &[(i64, i64)]) -> DrawRecord {
    let mut drawn = Vec::new();
    let mut late = Vec::new();
    for &(user, joined_ms) in joined {
        if joined_ms < opens_ms {
            drawn.push(Entrant {
                entry: draw::entry(user),
                number: draw::number(seed, user),
            });
        } else if frontier.admits(Standing::Late { joined_ms }) {
            late.push((joined_ms, user));
        }
    }
    // The draw order (`draw::order`): by number, then entry.
    drawn.sort_by(|a, b| (&a.number, &a.entry).cmp(&(&b.number, &b.entry)));
    let passed = |e: &Entrant| {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&e.number, &mut bytes).is_ok()
            && frontier.admits(Standing::Drawn {
                fraction: fraction(&bytes),
            })
    };
    let mut admitted: Vec<String> = drawn
        .iter()
        .take_while(|e| passed(e))
        .map(|e| e.entry.clone())
        .collect();
    late.sort_unstable();
    admitted.extend(late.into_iter().map(|(_, user)| draw::entry(user)));
    DrawRecord {
        seed: hex::encode(seed),
        commitment: draw::commitment(seed),
        entrants: drawn,
        admitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_lists_whom_the_frontier_passed_in_order_and_verifies() {
        let seed = [3u8; 32];
        let opens = 1_000;
        let mut joined: Vec<(i64, i64)> = (1..=200).map(|u| (u, u)).collect();
        joined.extend((201..=210).map(|u| (u, opens + u)));
        let half = Frontier {
            drawn: 0.5,
            late_until_ms: opens,
        };
        let r = record(&seed, opens, half, &joined);
        assert_eq!(r.entrants.len(), 200);
        assert!(
            (80..120).contains(&r.admitted.len()),
            "{}",
            r.admitted.len()
        );
        draw::verify(&r).unwrap();
        let all = Frontier {
            drawn: 1.0,
            late_until_ms: opens + 206,
        };
        let r = record(&seed, opens, all, &joined);
        assert_eq!(r.admitted.len(), 205);
        assert_eq!(r.admitted[200], draw::entry(201));
        draw::verify(&r).unwrap();
        assert_eq!(draw::verify_own(&r, 7).unwrap().map(|p| p > 0), Some(true));
    }
}
