//! The baseline server: one axum route, no middleware, a constant JSON answer.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;

pub async fn serve(bind: SocketAddr) -> anyhow::Result<()> {
    let app = Router::new().route(
        "/",
        get(|| async { ([("content-type", "application/json")], r#"{"ok":true}"#) }),
    );
    let listener = tokio::net::TcpListener::bind(bind).await?;
    eprintln!("trivial server on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
