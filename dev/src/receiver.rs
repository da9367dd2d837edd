//! A webhook receiver, as an organiser's system would run one: it checks each
//! delivery's `X-Rushgate-Signature` (HMAC and replay window), records it, and
//! answers 204 — or, when told to, an error status or nothing for a while. The
//! tests and the bench read what it recorded; the demo writes each delivery to
//! a log as one JSON line.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use rushgate_core::webhook::{self, SIGNATURE_HEADER, WebhookEvent};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One delivery as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived, by the receiver's clock.
    pub at: OffsetDateTime,
    /// The body, when it parsed.
    pub event: Option<WebhookEvent>,
    /// The signature checked out (HMAC and time).
    pub signed: bool,
    /// What the receiver answered.
    pub status: u16,
}

#[derive(Default)]
struct Behaviour {
    /// Answer this status instead of acknowledging.
    fail_with: Option<u16>,
    /// Wait this long before answering.
    delay: Duration,
}

struct Shared {
    secret: Vec<u8>,
    behaviour: Mutex<Behaviour>,
    received: Mutex<Vec<Received>>,
    log: Option<Mutex<std::fs::File>>,
}

/// A receiver on a free loopback port, until dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Starts a receiver that verifies with `secret`.
    pub async fn start(secret: &str) -> anyhow::Result<Self> {
        Self::serve(secret, None, "127.0.0.1:0").await
    }

    /// Starts one on `bind` that also appends each delivery to `log` as a
    /// JSON line (the demo's).
    pub async fn logging(secret: &str, log: &Path, bind: &str) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        Self::serve(secret, Some(file), bind).await
    }

    async fn serve(secret: &str, log: Option<std::fs::File>, bind: &str) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            secret: secret.as_bytes().to_vec(),
            behaviour: Mutex::new(Behaviour::default()),
            received: Mutex::new(Vec::new()),
            log: log.map(Mutex::new),
        });
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/", post(receive))
            .route("/{*path}", post(receive))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    /// From now on answer `status` (`None`: acknowledge with 204).
    pub fn fail_with(&self, status: Option<u16>) {
        self.shared.behaviour.lock().unwrap().fail_with = status;
    }

    /// From now on wait `delay` before answering (a delivery is recorded
    /// when it arrives).
    pub fn delay(&self, delay: Duration) {
        self.shared.behaviour.lock().unwrap().delay = delay;
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// How many deliveries it acknowledged.
    pub fn acknowledged(&self) -> usize {
        self.shared
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .count()
    }
}

/// The most deliveries that arrived within any one second.
pub fn densest_second(received: &[Received]) -> usize {
    densest_within(received, std::time::Duration::from_secs(1))
}

/// The most deliveries that arrived within any `window` (a sliding window).
pub fn densest_within(received: &[Received], window: std::time::Duration) -> usize {
    let window = window.as_nanos() as i128;
    let mut times: Vec<i128> = received
        .iter()
        .map(|r| r.at.unix_timestamp_nanos())
        .collect();
    times.sort_unstable();
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|&&t| t < times[i] + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = OffsetDateTime::now_utc();
    let (fail_with, delay) = {
        let b = shared.behaviour.lock().unwrap();
        (b.fail_with, b.delay)
    };
    let signed = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|header| {
            webhook::verify(
                &shared.secret,
                header,
                &body,
                at.unix_timestamp(),
                webhook::TOLERANCE_S,
            )
            .is_ok()
        });
    let event: Option<WebhookEvent> = serde_json::from_slice(&body).ok();
    let status = match (fail_with, signed) {
        (Some(status), _) => status,
        (None, false) => 401,
        (None, true) => 204,
    };
    if let Some(log) = &shared.log {
        let line = serde_json::json!({
            "received_at": at.unix_timestamp(),
            "signed": signed,
            "answered": status,
            "event": serde_json::from_slice::<serde_json::Value>(&body).ok(),
        });
        let mut file = log.lock().unwrap();
        let _ = writeln!(file, "{line}");
    }
    // Recorded on arrival: a sender that dies while the answer is delayed
    // has still delivered.
    shared.received.lock().unwrap().push(Received {
        at,
        event,
        signed,
        status,
    });
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
