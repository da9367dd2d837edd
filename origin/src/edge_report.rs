//! `POST /api/internal/edge-report`: funnel counters (and page views) from the
//! edge, in batches. Authenticated by the edge's word on this path and body
//! (`X-Rushgate-Forward`, signed with the shared key), taken once.

use std::collections::HashMap;

use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use futures::future::join_all;
use rushgate_core::api::{EDGE_REPORT_MAX_BYTES, EDGE_REPORT_PATH, EdgeReport};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt as _};
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::EdgeReported;

/// Days an event's counts are kept after it closes.
const KEEP_DAYS: i64 = 30;

/// The edge cuts its reports to `EDGE_REPORT_MAX_BYTES`; they are accepted at
/// that size whatever the general body limit, so a report is never refused
/// for its size.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(report).layer(DefaultBodyLimit::max(EDGE_REPORT_MAX_BYTES)))
}

#[utoipa::path(post, path = EDGE_REPORT_PATH, tag = "operations", request_body = EdgeReport, params(("x-rushgate-forward" = String, Header, description = "the edge's word on this path and body, with a nonce taken once")), responses((status = 204, description = "added to the funnel counters"), (status = 403, description = "`not_admitted_by_edge`", body = rushgate_core::ErrorBody), crate::openapi::Common))]
async fn report(
    State(state): State<AppState>,
    EdgeReported(report): EdgeReported<EdgeReport>,
) -> ApiResult<StatusCode> {
    if report.events.len() > 1000 || report.visitors.len() > 1000 {
        return Err(ApiError::invalid(
            "events",
            "at most 1000 events per report",
        ));
    }
    // Counts of events that do not exist are dropped (an edge counts only
    // reads it answered, but it may know an event the origin deleted); the
    // keys of those that do last a month past their close.
    let mut known: HashMap<i64, i64> = HashMap::new();
    let ids = report
        .events
        .iter()
        .map(|c| c.event_id)
        .chain(report.visitors.iter().map(|(id, _)| *id));
    for id in ids {
        if let std::collections::hash_map::Entry::Vacant(slot) = known.entry(id)
            && let Some(event) = state.events.get(id).await?
        {
            let keep_until = event.schedule.closes_at + time::Duration::days(KEEP_DAYS);
            slot.insert(keep_until.unix_timestamp());
        }
    }
    // An event's counters and visitors share its slot: one pipeline per event.
    let keys = &state.redis.keys;
    let mut pipes: HashMap<i64, redis::Pipeline> = HashMap::new();
    for counts in report
        .events
        .iter()
        .filter(|c| known.contains_key(&c.event_id))
    {
        let key = keys.funnel(counts.event_id);
        for (field, value) in [
            ("edge_arrivals", counts.edge_arrivals),
            ("deduped", counts.deduped),
            ("not_admitted", counts.not_admitted),
            ("sold_out_edge", counts.sold_out_edge),
            ("edge_forwarded", counts.edge_forwarded),
            ("page_views", counts.page_views),
        ] {
            if value > 0 {
                pipes
                    .entry(counts.event_id)
                    .or_default()
                    .hincr(&key, field, value)
                    .ignore();
            }
        }
    }
    for (event_id, visitors) in &report.visitors {
        if !visitors.is_empty() && known.contains_key(event_id) {
            pipes
                .entry(*event_id)
                .or_default()
                .pfadd(keys.visitors(*event_id), visitors)
                .ignore();
        }
    }
    for (event_id, pipe) in &mut pipes {
        let until = known[event_id];
        pipe.expire_at(keys.funnel(*event_id), until)
            .ignore()
            .expire_at(keys.visitors(*event_id), until)
            .ignore();
    }
    // The edge sends the whole report again if any part fails; counters that
    // did land then count twice, which a funnel tolerates better than a loss.
    let writes = pipes.into_values().map(|pipe| {
        let mut conn = state.redis.conn.clone();
        async move { pipe.query_async::<()>(&mut conn).await }
    });
    join_all(writes)
        .await
        .into_iter()
        .collect::<redis::RedisResult<()>>()?;
    Ok(StatusCode::NO_CONTENT)
}
