//! A crowd through the edge — buyers who follow the page's flow and a share of
//! bots — with every SPEC §5 invariant checked afterwards by the simulator.

use rushgate_bench::crowd::{self, CrowdArgs, Mode};
use rushgate_system_tests::stack;

#[tokio::test]
async fn a_crowd_through_the_edge_keeps_every_invariant() {
    let stack = stack().await;
    let args = CrowdArgs {
        users: 2000,
        stock: 50,
        admission: "0.5,1.0".into(),
        dedup_window_s: 5,
        opens_in_s: 3,
        mode: Mode::Closed,
        concurrency: 250,
        rate: 0.0,
        bots: 0.05,
        bot_period_ms: 20,
        max_seconds: 90,
        ..CrowdArgs::for_stack(&stack)
    };
    let report = crowd::run(&args).await.expect("the crowd ran");
    println!("{}", crowd::render(&report));
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(
        report.units_sold, 50,
        "demand far above stock sells all of it"
    );
    assert!(report.reservations >= 25, "at most 2 units per reservation");
    // The origin sees load that grows with the stock, not with the crowd.
    assert!(
        report.origin_buy_requests <= 4 * 50,
        "{} origin /buy requests for 50 units",
        report.origin_buy_requests
    );
}
