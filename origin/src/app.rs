//! The application: shared state, the router assembled from the feature routers,
//! and the server loop with graceful shutdown.

use std::num::NonZeroU32;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use metrics_exporter_prometheus::PrometheusHandle;
use rushgate_core::{ErrorCode, Keyring};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::password::Hashers;
use crate::auth::revoked::Revocations;
use crate::config::AppConfig;
use crate::error::ApiError;
use crate::events::cache::EventCache;
use crate::funnel::FunnelCounters;
use crate::orders::payment::{FakeProvider, PaymentProvider};
use crate::overload::Limiter;
use crate::sale::Replicas;
use crate::sale::soldout::SoldOutFlags;
use crate::store::redis::Redis;
use crate::worker::expiry::Sweeper;
use crate::{
    admin, auth, buy, edge_report, events, health, openapi, orders, presale, queue, telemetry,
};

/// Everything a request handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: AppConfig,
    pub keys: Keyring,
    pub db: PgPool,
    pub redis: Redis,
    pub replicas: Replicas,
    pub events: EventCache,
    pub flags: SoldOutFlags,
    pub funnel: FunnelCounters,
    pub revocations: Revocations,
    pub hashers: Hashers,
    pub buy_limiter: Limiter,
    pub limiter: DefaultDirectRateLimiter,
    pub payments: Arc<dyn PaymentProvider>,
    pub sweeper: Sweeper,
    pub metrics: PrometheusHandle,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(
        config: AppConfig,
        keys: Keyring,
        db: PgPool,
        redis: Redis,
        replicas: Replicas,
    ) -> Self {
        let events = EventCache::new(
            db.clone(),
            config.event_cache_refresh(),
            config.event_cache_negative(),
        );
        let flags = SoldOutFlags::default();
        let rate = NonZeroU32::new(config.buy_rate_per_s).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.buy_burst).unwrap_or(rate);
        let limiter = RateLimiter::direct(Quota::per_second(rate).allow_burst(burst));
        let sweeper = Sweeper::new(
            db.clone(),
            redis.clone(),
            replicas.clone(),
            Some(flags.clone()),
        );
        let buy_limiter = Limiter::new(config.buy_max_in_flight, config.buy_target());
        Self(Arc::new(Shared {
            config,
            keys,
            db,
            redis,
            replicas,
            events,
            flags,
            funnel: FunnelCounters::default(),
            revocations: Revocations::default(),
            hashers: Hashers::per_core(),
            buy_limiter,
            limiter,
            payments: Arc::new(FakeProvider),
            sweeper,
            metrics: telemetry::metrics_handle(),
        }))
    }
}

/// Every documented route: the API and its OpenAPI description, gathered from
/// the feature routers.
fn routes(limiter: Limiter) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::router())
        .merge(auth::router())
        .merge(events::router())
        .merge(admin::router())
        .merge(buy::router(limiter))
        .merge(orders::router())
        .merge(edge_report::router())
        .merge(queue::router())
        .merge(presale::router())
        .merge(crate::webhooks::console::router())
        .merge(crate::users::console::router())
}

/// The OpenAPI description of the API (`GET /api/openapi.json`).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, mut document) = routes(Limiter::new(1, Duration::ZERO)).split_for_parts();
    openapi::describe_itself(&mut document);
    document
}

/// All routes, with JSON answers for unknown routes and methods, a body cap,
/// panic recovery and request metrics.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let request_timeout = state.config.request_timeout();
    let (router, mut document) = routes(state.buy_limiter.clone()).split_for_parts();
    openapi::describe_itself(&mut document);
    let document = Arc::new(document.to_json().unwrap_or_else(|_| "{}".into()));
    router
        .route(
            openapi::PATH,
            get(move || {
                let document = document.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        (*document).clone(),
                    )
                }
            }),
        )
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::from(ErrorCode::MethodNotAllowed) })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyTimeoutLayer::new(request_timeout))
        .layer(middleware::from_fn(crate::forgery::refuse_forgeable))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(middleware::from_fn(telemetry::track))
        .layer(CatchPanicLayer::custom(|_| panic_response()))
        .with_state(state)
}

fn panic_response() -> Response {
    tracing::error!("handler panicked");
    let body = rushgate_core::ErrorBody::new(rushgate_core::ErrorCode::Internal, "internal error");
    let mut response = crate::error::respond(&body);
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.into_response()
}

/// Serves until `shutdown` is cancelled, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let timeout = state.config.request_timeout();
    crate::server::run(listener, router(state), timeout, shutdown).await
}

/// A token cancelled on ctrl-c or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing the SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    token
}
