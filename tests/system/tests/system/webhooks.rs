//! Webhooks through the real binaries: the delivery worker's process is
//! killed (`kill -9`) while deliveries are in flight; after its restart every
//! order event has reached the receiver at least once, and every duplicate
//! carries the same idempotency key. The origin's `/metrics` shows the backlog.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rushgate_dev::Options;
use rushgate_dev::receiver::Receiver;
use rushgate_system_tests::{buyers_with_urls, eventually, sale_input, stack_with};
use uuid::Uuid;

const SECRET: &str = "the-system-test-webhook-secret";

#[tokio::test]
async fn a_worker_killed_mid_delivery_delivers_every_event_with_one_key_each() {
    let receiver = Receiver::start(SECRET).await.unwrap();
    // Answers take half a second, so deliveries are in flight at the kill.
    receiver.delay(Duration::from_millis(500));
    let env = |name: &str, value: &str| (name.to_owned(), value.to_owned());
    let mut stack = stack_with(Options {
        workers: 1,
        origin_env: vec![
            env("RUSHGATE_WEBHOOK_URLS", &receiver.url()),
            env("RUSHGATE_WEBHOOK_SECRET", SECRET),
            env("RUSHGATE_WEBHOOK_RATE_PER_S", "40"),
            env("RUSHGATE_WEBHOOK_TIMEOUT_MS", "2000"),
        ],
        ..Options::default()
    })
    .await;
    let sale = stack.sale(&sale_input(100)).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let buyers = buyers_with_urls(&stack, event, 60).await;
    futures::future::join_all(
        buyers
            .iter()
            .map(|(buyer, url)| async move { buyer.buy(url, tier, 1, None).await.unwrap() }),
    )
    .await;

    eventually(Duration::from_secs(60), || async {
        receiver.received().len() >= 30
    })
    .await;
    stack.crash_worker(0);
    let at_kill = receiver.received().len();
    stack.start_worker(0).unwrap();

    let db = stack.db().await.unwrap().clone();
    let recorded = || async {
        sqlx::query_as::<_, (Uuid, Uuid, String)>("SELECT id, order_id, type FROM order_events")
            .fetch_all(&db)
            .await
            .unwrap()
    };
    eventually(Duration::from_secs(90), || async {
        let events = recorded().await;
        let delivered: HashSet<Uuid> = receiver
            .received()
            .iter()
            .filter(|r| r.status == 204)
            .filter_map(|r| r.event.as_ref().map(|e| e.id))
            .collect();
        events.len() == 120 && events.iter().all(|(id, _, _)| delivered.contains(id))
    })
    .await;

    let received = receiver.received();
    assert!(received.iter().all(|r| r.signed));
    // Every change went out under one key, however often it went out.
    let mut keys: HashMap<(Uuid, String), HashSet<Uuid>> = HashMap::new();
    for r in &received {
        let e = r.event.as_ref().unwrap();
        keys.entry((e.data.id, e.kind.as_str().to_owned()))
            .or_default()
            .insert(e.id);
    }
    assert_eq!(keys.len(), 120);
    assert!(keys.values().all(|ids| ids.len() == 1));
    let recorded: HashMap<(Uuid, String), Uuid> = recorded()
        .await
        .into_iter()
        .map(|(id, order, kind)| ((order, kind), id))
        .collect();
    for (change, ids) in &keys {
        assert!(ids.contains(&recorded[change]), "{change:?}");
    }
    // The deliveries in flight at the kill went out again.
    assert!(
        received.len() > 120,
        "{} deliveries for 120 events ({at_kill} before the kill)",
        received.len()
    );

    let metrics = format!("{}/metrics", stack.origin_url(0));
    eventually(Duration::from_secs(30), || async {
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        text.lines().any(|l| l == "rushgate_webhook_pending 0")
            && text.lines().any(|l| l == "rushgate_webhook_dead 0")
    })
    .await;
}
