//! One sale, many isolates: the edge under workerd in eight isolates that
//! share one set of Durable Objects and one location cache, requests sprayed
//! over them at random, as on Cloudflare. Crowds in every admission mode keep
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
/// sale sold out, at most 1.5 origin `/buy` per unit.
async fn crowd(stack: &Stack, users: u32, stock: i64, admission: &str) {
    let args = CrowdArgs {
        users,
        stock,
        per_user_limit: 1,
        admission: admission.into(),
        dedup_window_s: 5,
        opens_in_s: 4,
        mode: Mode::Closed,
        concurrency: 500,
        max_seconds: 120,
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
        per_unit <= 1.5,
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
}
