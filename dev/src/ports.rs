//! Free loopback ports and waiting for servers to answer.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::proc::Proc;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a loopback port")
}

/// Waits until `check` holds, failing with the process's output if it exits or
/// `limit` passes.
pub async fn ready<F, Fut>(proc: &mut Proc, limit: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + limit;
    loop {
        if check().await {
            return Ok(());
        }
        anyhow::ensure!(proc.alive(), "{} exited:\n{}", proc.name(), proc.output());
        anyhow::ensure!(
            Instant::now() < until,
            "{} not ready in {limit:?}:\n{}",
            proc.name(),
            proc.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether something accepts connections on `port`.
pub fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Whether `url` answers 200.
pub async fn answers(http: &reqwest::Client, url: &str) -> bool {
    matches!(http.get(url).send().await, Ok(r) if r.status().is_success())
}
