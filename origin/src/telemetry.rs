//! Logs (tracing) and metrics (Prometheus), set up once per process.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use clap::{Args, ValueEnum};
use metrics::SharedString;
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

/// Counts requests by route and status and records their latency. Labels are
/// borrowed, not built, so the hot path allocates nothing here.
pub async fn track(request: Request, next: Next) -> Response {
    let route: SharedString = match request.extensions().get::<MatchedPath>() {
        Some(path) => SharedString::from_shared(Arc::from(path.as_str())),
        None => SharedString::const_str("unmatched"),
    };
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
    metrics::counter!("rushgate_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("rushgate_http_request_duration_seconds", "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
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
