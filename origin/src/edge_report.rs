//! `POST /api/internal/edge-report`: funnel counters (and page views) from the
//! edge, in batches. Authenticated like a forwarded purchase: an admission token
//! for this path, signed with the shared key.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use rushgate_core::api::{EDGE_REPORT_PATH, EdgeReport};
use rushgate_core::token::AdmissionClaims;
use time::OffsetDateTime;

use crate::app::AppState;
use crate::buy::ADMIT_HEADER;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;

pub fn router() -> Router<AppState> {
    Router::new().route(EDGE_REPORT_PATH, post(report))
}

async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(report): ApiJson<EdgeReport>,
) -> ApiResult<StatusCode> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let signed = headers
        .get(ADMIT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| state.keys.verify_signature::<AdmissionClaims>(v).ok())
        .is_some_and(|c| c.admits("POST", EDGE_REPORT_PATH, 0, now));
    if !signed {
        return Err(ApiError::NotAdmittedByEdge);
    }
    if report.events.len() > 1000 || report.visitors.len() > 1000 {
        return Err(ApiError::invalid(
            "events",
            "at most 1000 events per report",
        ));
    }
    let keys = &state.redis.keys;
    let mut pipe = redis::pipe();
    let mut any = false;
    for counts in &report.events {
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
                pipe.hincr(&key, field, value).ignore();
                any = true;
            }
        }
    }
    for (event_id, visitors) in &report.visitors {
        if !visitors.is_empty() {
            pipe.pfadd(keys.visitors(*event_id), visitors).ignore();
            any = true;
        }
    }
    if any {
        pipe.query_async::<()>(&mut state.redis.conn.clone())
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
