//! The compose file's edge: `rushgate-dev edge`, the entry point of
//! Dockerfile.edge, in front of an origin that runs on its own — pages, a
//! purchase URL, a purchase, the dedup Durable Objects' load — and stopped by
//! SIGTERM as `docker compose down` stops it.

use std::process::Command;
use std::time::Duration;

use reqwest::Method;
use rushgate_client::Client;
use rushgate_core::Role;
use rushgate_dev::proc::Proc;
use rushgate_dev::{Options, binaries, free_port, listening, root};
use rushgate_system_tests::{eventually, sale_input, stack_with};

#[tokio::test]
async fn the_edge_as_compose_runs_it_serves_and_sells() {
    let stack = stack_with(Options::default()).await;
    let key = stack.describe()["signing_key"].as_str().unwrap().to_owned();
    let dir = std::env::temp_dir().join(format!("rushgate-edge-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let mut command = Command::new(binaries(false).unwrap().join("rushgate-dev"));
    command
        .current_dir(root())
        .args(["edge", "--listen", "0.0.0.0", "--port", &port.to_string()])
        .arg("--dir")
        .arg(&dir)
        .env("RUSHGATE_EDGE_ORIGINS", stack.origin_url(0))
        .env("RUSHGATE_SIGNING_KEY", &key);
    let mut edge_proc = Proc::spawn("rushgate-dev edge", command, &dir.join("out.log")).unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually(Duration::from_secs(60), || {
        let ok = edge_proc.alive();
        let answer = http.get(format!("{url}/api/time")).send();
        async move { ok && matches!(answer.await, Ok(r) if r.status().is_success()) }
    })
    .await;

    let edge = Client::new(&url);
    let page = edge.send(Method::GET, "/event", None, &[]).await.unwrap();
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<html"));
    let sale = stack.sale(&sale_input(3)).await.unwrap();
    let (_, buyer) = stack.user(Role::Customer).await.unwrap();
    let buyer = buyer.at(&url);
    let purchase = buyer.purchase_url(sale.id).await.unwrap();
    let bought = buyer
        .buy(&purchase.url, sale.tiers[0].id, 1, None)
        .await
        .unwrap();
    assert!(!bought.replay);
    let (_, admin) = stack.user(Role::Admin).await.unwrap();
    let load = admin.at(&url).dedup_load().await.unwrap();
    assert_eq!(load.shards.len(), 64, "every shard answers");
    assert!(
        load.shards.iter().map(|s| s.asks).sum::<u64>() >= 2,
        "the purchase URL and the purchase asked a shard: {load:?}"
    );
    let (_, customer) = stack.user(Role::Customer).await.unwrap();
    let refused = customer.at(&url).dedup_load().await.unwrap_err();
    assert_eq!(refused.code(), Some(rushgate_core::ErrorCode::Forbidden));

    edge_proc.signal("TERM");
    eventually(Duration::from_secs(15), || {
        let stopped = !edge_proc.alive() && !listening(port);
        async move { stopped }
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
