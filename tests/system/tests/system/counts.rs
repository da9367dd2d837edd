//! What the edge counts for the console — page views, unique visitors, the
//! funnel — and that counting never costs the origin a read or loses a count.

use std::time::Duration;

use rushgate_client::Client;
use rushgate_dev::Stack;
use rushgate_system_tests::{eventually, sale_input, stack};

/// Views of the event page as browsers make them: each with its visitor id,
/// 16 hex digits as the page makes them.
async fn page_views(stack: &Stack, event: i64, visitors: std::ops::Range<u32>) {
    let edge = stack.client();
    let ids: Vec<String> = visitors.map(|v| format!("{v:016x}")).collect();
    let reads = ids.iter().map(|id| edge.view_event(event, id));
    for read in futures::future::join_all(reads).await {
        assert_eq!(read.unwrap().id, event);
    }
}

/// Waits until the console shows `views` page views and about `visitors` unique
/// visitors (a HyperLogLog: within 2 %).
async fn counted(stack: &Stack, event: i64, views: i64, visitors: i64) {
    let admin = stack.admin().await.unwrap();
    let edge = stack.client();
    eventually(Duration::from_secs(30), || async {
        // Reports leave in the background of edge requests.
        let _ = edge.time().await;
        let stats = admin.stats(event).await.unwrap();
        stats.page_views == views && (stats.unique_visitors - visitors).abs() * 50 <= visitors
    })
    .await;
}

#[tokio::test]
async fn a_crowd_of_visitors_costs_the_origin_a_few_reads_and_is_counted() {
    let stack = stack().await;
    let event = stack.sale(&sale_input(100)).await.unwrap().id;
    let origin = Client::new(stack.origin_url(0));
    let route = "/api/events/{id}";
    let before = origin.route_requests(route).await.unwrap();
    // Every visitor's page asks with its own id; the cache holds one entry.
    page_views(&stack, event, 0..400).await;
    let reads = origin.route_requests(route).await.unwrap() - before;
    assert!(reads <= 3, "400 visitors cost the origin {reads} reads");
    counted(&stack, event, 400, 400).await;
}

/// A script that sends a new visitor id with every read from one address
/// adds a few visitors a minute, not one per read.
#[tokio::test]
async fn one_address_brings_a_few_new_visitors_a_minute() {
    let stack = stack().await;
    let event = stack.sale(&sale_input(100)).await.unwrap().id;
    let script = stack.client().from_address("203.0.113.9");
    for v in 0..100u32 {
        script
            .view_event(event, &format!("{v:016x}"))
            .await
            .unwrap();
    }
    let cap = i64::from(rushgate_core::funnel::NEW_VISITORS_PER_ADDRESS_PER_MIN);
    let admin = stack.admin().await.unwrap();
    let edge = stack.client();
    eventually(Duration::from_secs(30), || async {
        let _ = edge.time().await;
        let stats = admin.stats(event).await.unwrap();
        // Within a minute, or across the turn of one.
        stats.page_views == 100 && (cap..=2 * cap).contains(&stats.unique_visitors)
    })
    .await;
    // A read of an event that does not exist counts nothing.
    assert!(
        script
            .view_event(999_999, "ffffffffffffffff")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn counts_made_while_the_origin_is_down_arrive_when_it_returns() {
    let mut stack = stack().await;
    let event = stack.sale(&sale_input(100)).await.unwrap().id;
    page_views(&stack, event, 0..1).await;
    counted(&stack, event, 1, 1).await;

    stack.stop_origin(0);
    // The page is served stale from the edge meanwhile; every report fails.
    page_views(&stack, event, 1..1000).await;
    let edge = stack.client();
    for _ in 0..5 {
        let _ = edge.time().await;
    }
    stack.start_origin(0).await.unwrap();
    counted(&stack, event, 1000, 1000).await;
}
