//! Logs (tracing) and metrics (Prometheus), set up once per process.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use clap::{Args, ValueEnum};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// Log filter, e.g. `info` or `rushgate_origin=debug,info`.
    #[arg(
        long,
        env = "RUSHGATE_LOG",
        default_value = "info,sqlx=warn",
        global = true
    )]
    pub log: String,
    /// text or json.
    #[arg(
        long,
        env = "RUSHGATE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

/// Installs the global tracing subscriber.
pub fn init_tracing(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests); ours still renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Counts requests by route and status and records their latency.
pub async fn track(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "other",
    };
    let start = Instant::now();
    let response = next.run(request).await;
    let code = response.status().as_u16();
    let status = STATUSES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("other", |(_, s)| *s);
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    record(route, method, status, start.elapsed().as_secs_f64());
    response
}

/// The metric handles of one route. Building a labelled metric key on every
/// request allocates and hashes it in the registry; a handle does neither.
struct RouteMetrics {
    duration: Histogram,
    /// (method, status) → request counter.
    requests: HashMap<(&'static str, &'static str), Counter>,
}

fn record(route: &str, method: &'static str, status: &'static str, seconds: f64) {
    // Routes are the router's patterns, so the map stays small.
    static ROUTES: OnceLock<RwLock<HashMap<String, RouteMetrics>>> = OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    {
        let known = routes.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(metrics) = known.get(route)
            && let Some(requests) = metrics.requests.get(&(method, status))
        {
            requests.increment(1);
            metrics.duration.record(seconds);
            return;
        }
    }
    let mut known = routes.write().unwrap_or_else(PoisonError::into_inner);
    let metrics = known
        .entry(route.to_owned())
        .or_insert_with(|| RouteMetrics {
            duration: metrics::histogram!(
                "rushgate_http_request_duration_seconds", "route" => route.to_owned()
            ),
            requests: HashMap::new(),
        });
    metrics
        .requests
        .entry((method, status))
        .or_insert_with(|| {
            metrics::counter!(
                "rushgate_http_requests_total",
                "method" => method, "route" => route.to_owned(), "status" => status
            )
        })
        .increment(1);
    metrics.duration.record(seconds);
}

const STATUSES: &[(u16, &str)] = &[
    (200, "200"),
    (201, "201"),
    (202, "202"),
    (400, "400"),
    (401, "401"),
    (402, "402"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (409, "409"),
    (410, "410"),
    (413, "413"),
    (415, "415"),
    (429, "429"),
    (500, "500"),
    (503, "503"),
];
