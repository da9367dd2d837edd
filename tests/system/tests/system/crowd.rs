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

#[tokio::test]
async fn bots_behind_the_door_solve_for_every_account_and_the_invariants_hold() {
    let stack = stack().await;
    let args = CrowdArgs {
        users: 400,
        stock: 20,
        per_user_limit: 1,
        admission: "auto".into(),
        dedup_window_s: 5,
        opens_in_s: 4,
        mode: Mode::Closed,
        concurrency: 400,
        bots: 0.1,
        bot_addresses: 5,
        challenge: rushgate_core::challenge::ChallengeMode::Always,
        max_seconds: 90,
        ..CrowdArgs::for_stack(&stack)
    };
    let report = crowd::run(&args).await.expect("the crowd ran");
    println!("{}", crowd::render(&report));
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(
        report.units_sold, 20,
        "demand far above stock sells all of it"
    );
    let challenges = report
        .endpoints
        .iter()
        .find(|e| e.endpoint == rushgate_bench::stats::Endpoint::Challenge)
        .map_or(0, |e| e.requests);
    assert!(
        challenges >= 40,
        "every bot met the door: {challenges} challenges"
    );
    let bots = report.bots_report.expect("a crowd with bots reports them");
    assert_eq!(bots.share_of_crowd, 0.1);
    assert!(
        bots.hashes >= 40 && bots.cpu_s > 0.0,
        "the bots paid for their answers"
    );
    assert!(report.human_median_hold_s.is_some(), "people got holds");
}
