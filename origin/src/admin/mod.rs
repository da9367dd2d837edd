//! The operator and admin console API.

mod events;
mod stats;

use axum::Router;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new().merge(events::router()).merge(stats::router())
}
