//! The operator and admin console API.

mod events;
mod stats;

pub use events::managed;

use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(events::router())
        .merge(stats::router())
}
