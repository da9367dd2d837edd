//! One sale, many isolates: the edge under workerd in eight isolates that
//! share one set of Durable Objects and one location cache, requests sprayed
//! over them at random, as on Cloudflare. Crowds of 5,000 in rounds, the
//! automatic lottery (with and without its opening draw) and the queue keep
//! every invariant and cost the origin about one `/buy` per unit whatever the
//! number of isolates; they really are separate isolates.

use std::collections::HashSet;

use rushgate_bench::crowd::{self, CrowdArgs, Mode};
use rushgate_dev::{Options, Stack, edge::Spread};
use rushgate_system_tests::stack_with;

const ISOLATES: usize = 8;

async fn sprayed() -> Stack {
    let mut options = Options::with_edge();
    options.isolates = ISOLATES;
    options.spread = Spread::Spray;
    stack_with(options).await
}

/// A crowd of `users` for `stock` units in `admission`: every invariant, the
/// sale sold out, at most 1.1 origin `/buy` per unit.
async fn crowd(stack: &Stack, users: u32, stock: i64, admission: &str) {
    crowd_opening_in(stack, users, stock, admission, 4).await;
}

/// `crowd`, the sale opening `opens_in_s` after it is made (a queue's crowd
/// joins before the opening).
async fn crowd_opening_in(stack: &Stack, users: u32, stock: i64, admission: &str, opens_in_s: i64) {
    let args = CrowdArgs {
        users,
        stock,
        per_user_limit: 1,
        admission: admission.into(),
        dedup_window_s: 5,
        opens_in_s,
        mode: Mode::Closed,
        concurrency: 500,
        max_seconds: 180,
        ..CrowdArgs::for_stack(stack)
    };
    let report = crowd::run(&args).await.expect("the crowd ran");
    println!(
        "{admission}, {users} for {stock}:\n{}",
        crowd::render(&report)
    );
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(
        report.units_sold, stock,
        "{admission}: demand far above stock sells all of it"
    );
    let per_unit = report.origin_buy_requests as f64 / stock as f64;
    assert!(
        per_unit <= 1.1,
        "{admission}, stock {stock}: {} origin /buy for {stock} units through {ISOLATES} isolates",
        report.origin_buy_requests
    );
}

#[tokio::test]
async fn crowds_through_eight_isolates_cost_the_origin_a_buy_per_unit() {
    let stack = sprayed().await;
    // Eight isolates answer, each its own.
    let edge = stack.client();
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let answer = edge
            .send(reqwest::Method::GET, "/api/edge/isolate", None, &[])
            .await
            .unwrap();
        seen.insert(answer.json()["isolate"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), ISOLATES, "{seen:?}");

    crowd(&stack, 5_000, 10, "1.0").await;
    crowd(&stack, 5_000, 100, "0.5,1.0").await;
    crowd(&stack, 5_000, 100, "auto:0").await;
    crowd(&stack, 5_000, 10, "auto").await;
    crowd_opening_in(&stack, 5_000, 100, "queue", 25).await;
}

/// Buys one unit through the edge as `buyer`, coming back with the retry
/// token as long as it is not admitted; the final answer.
async fn buy_patiently(
    buyer: &rushgate_client::Client,
    event: i64,
    tier: i64,
) -> Result<(), rushgate_core::ErrorCode> {
    let url = buyer
        .purchase_url(event)
        .await
        .map_err(|e| e.code().unwrap())?
        .url;
    let mut token: Option<String> = None;
    loop {
        match buyer.buy(&url, tier, 1, token.as_deref()).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code() == Some(rushgate_core::ErrorCode::NotAdmitted) => {
                let body = e.body().unwrap();
                token = body.retry_token.clone();
                let wait = body.retry_after_s.unwrap_or(1);
                tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            }
            Err(e) => return Err(e.code().unwrap()),
        }
    }
}

/// An isolate holds a lease on the whole stock and never comes back: no
/// other isolate sends the origin anything until the lease runs out, then the
/// stock sells.
#[tokio::test]
async fn a_lease_an_isolate_never_uses_expires_and_its_units_sell() {
    let stack = sprayed().await;
    let mut input = rushgate_system_tests::sale_input(10);
    input.per_user_limit = 1;
    input.dedup_window_s = Some(0);
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let now = time::OffsetDateTime::now_utc();
    let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    // A test playing an isolate at the sale's desk: all ten units.
    let lease = stack
        .client()
        .send(
            reqwest::Method::GET,
            &format!(
                "/__dev/desk/{event}/lease?i=424242&t={tier}&w=10&v=0&n={now_ms}&r=10&a={now_ms}"
            ),
            None,
            &[],
        )
        .await
        .unwrap();
    assert!(lease.text.starts_with("10 "), "{}", lease.text);
    let mut buyers = Vec::new();
    for _ in 0..20 {
        buyers.push(stack.user(rushgate_core::Role::Customer).await.unwrap().1);
    }
    // While the lease holds, every attempt is turned away at the edge.
    let first = futures::future::join_all(buyers.iter().map(|b| async move {
        let url = b.purchase_url(event).await.unwrap().url;
        b.buy(&url, tier, 1, None).await.unwrap_err().code()
    }))
    .await;
    assert!(
        first
            .iter()
            .all(|c| *c == Some(rushgate_core::ErrorCode::NotAdmitted)),
        "{first:?}"
    );
    assert_eq!(rushgate_system_tests::origin_buys(&stack).await, 0);
    // Once it has run out, the stock sells.
    let outcomes =
        futures::future::join_all(buyers.iter().map(|b| buy_patiently(b, event, tier))).await;
    let held = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(held, 10, "{outcomes:?}");
    for outcome in outcomes.iter().filter(|o| o.is_err()) {
        assert_eq!(*outcome, Err(rushgate_core::ErrorCode::SoldOut));
    }
    assert_eq!(rushgate_system_tests::origin_buys(&stack).await, 10);
}

/// Thirty-two isolates answer a queue's polls from the event's frontier:
/// they read it through the location's cache, so the frontier object answers
/// about one read a second, not one per isolate.
#[tokio::test]
async fn a_queue_s_frontier_is_read_once_a_second_whatever_the_isolates() {
    let mut options = Options::with_edge();
    options.isolates = 32;
    options.spread = Spread::Spray;
    let stack = stack_with(options).await;
    let mut input = rushgate_system_tests::sale_input(1_000);
    input.per_user_limit = 1;
    input.opens_at = rushgate_system_tests::at(4);
    input.admission = Some(rushgate_core::event::AdmissionInput {
        mode: Some(rushgate_core::event::ModeInput::Queue),
        ..Default::default()
    });
    let event = stack.sale(&input).await.unwrap().id;
    let mut waiting = Vec::new();
    for _ in 0..100 {
        let buyer = stack.user(rushgate_core::Role::Customer).await.unwrap().1;
        let pass = buyer.join_queue(event).await.unwrap().pass.unwrap();
        waiting.push((buyer, pass));
    }
    // Everyone polls, several times a second, for eight seconds from the
    // opening on: every isolate needs the frontier, again and again.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(12);
    futures::future::join_all(waiting.iter().map(|(buyer, pass)| async move {
        while std::time::Instant::now() < until {
            let _ = buyer.queue_status(event, pass).await;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }))
    .await;
    let admin = stack.admin().await.unwrap().at(stack.edge_url().unwrap());
    let load = admin.dedup_load_with(Some(event)).await.unwrap();
    let frontier = load.frontier.expect("the frontier's load");
    // Each isolate reading for itself: 32 a second. Through the location's
    // cache: about one a second — its lock is a best effort (the Cache API
    // has no compare-and-set), so a second may see a few.
    assert!(frontier.asks > 0);
    assert!(
        frontier.peak_per_s <= 6 && frontier.asks <= 2 * 12 + 6,
        "the frontier answered {} asks in its busiest second, {} in all",
        frontier.peak_per_s,
        frontier.asks
    );
}
