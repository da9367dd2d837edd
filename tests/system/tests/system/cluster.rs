//! The whole system on a Redis Cluster of three masters, each with a replica,
//! with two origins and two worker processes behind the edge: a crowd buys a
//! sale split into six buckets over the masters, and every SPEC §5 invariant
//! is checked afterwards — undisturbed, with `kill -9` of the master holding
//! the most stock mid-sale, and with `kill -9` of one origin mid-sale.
//!
//! The cluster tests take turns: each runs a crowd against a full stack.

use std::time::Duration;

use rushgate_bench::crowd::{self, CrowdArgs, Mode, Report};
use rushgate_core::{ErrorCode, Role};
use rushgate_dev::{Options, Stack};
use rushgate_system_tests::{buyers_with_urls, eventually, sale_input, stack_with, until_some};
use time::OffsetDateTime;
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const STOCK: i64 = 600;
const BUCKETS: u32 = 6;

fn cluster() -> Options {
    Options {
        redis_cluster: Some(3),
        origins: 2,
        workers: 2,
        ..Options::with_edge()
    }
}

/// 2,000 buyers arriving 100 a second through the edge, for 600 units in six
/// buckets.
fn crowd_args(stack: &Stack) -> CrowdArgs {
    CrowdArgs {
        users: 2000,
        stock: STOCK,
        dedup_window_s: 0,
        opens_in_s: 2,
        mode: Mode::Open,
        concurrency: 0,
        rate: 100.0,
        pay_probability: 0.5,
        bot_period_ms: 20,
        max_seconds: 90,
        buckets: Some(BUCKETS),
        ..CrowdArgs::for_stack(stack)
    }
}

fn assert_sold_out_within_the_rules(report: &Report) {
    println!("{}", crowd::render(report));
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.units_sold, STOCK, "the sale sells out");
}

async fn orders(stack: &Stack, event: i64) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders WHERE event_id = $1")
        .bind(event)
        .fetch_one(stack.db().await.unwrap())
        .await
        .unwrap()
}

/// Waits until the crowd has bought `n` units' worth of orders.
async fn until_orders(stack: &Stack, event: i64, n: i64) {
    eventually(Duration::from_secs(60), || async move {
        orders(stack, event).await >= n
    })
    .await;
}

/// The end of a log, for a failure message.
fn last_lines(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[tokio::test]
async fn a_sale_in_six_buckets_sells_out_on_the_cluster() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = stack_with(cluster()).await;
    let args = crowd_args(&stack);
    let report = crowd::run(&args).await.expect("the crowd ran");
    assert_sold_out_within_the_rules(&report);

    // The edge and both origins agree it is over.
    let (_, late) = stack.user(Role::Customer).await.unwrap();
    let event = report.event_id;
    until_some(Duration::from_secs(10), || {
        let late = late.clone();
        async move {
            let refused = late.purchase_url(event).await.err()?;
            (refused.code() == Some(ErrorCode::SoldOut)).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn killing_the_master_with_the_most_stock_mid_sale_loses_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut stack = stack_with(cluster()).await;
    let args = crowd_args(&stack);
    let prepared = crowd::prepare(&args).await.unwrap();
    let (event, tier) = (prepared.sale.event_id, prepared.sale.tier_id);
    let running = tokio::spawn({
        let args = args.clone();
        async move { crowd::run_prepared(&args, prepared).await }
    });
    until_orders(&stack, event, STOCK / 5).await;

    // The master whose buckets hold the most units now.
    let prefix = stack.redis_prefix.clone();
    let nodes = stack.redis_cluster_nodes().unwrap();
    let victim = nodes.busiest_master(&prefix, event, tier, BUCKETS).unwrap();
    assert!(victim.units > 0, "{victim:?}");

    let killed_at = OffsetDateTime::now_utc();
    nodes.crash(victim.port);
    // Its replica takes over; then the node comes back as the new replica.
    nodes
        .wait_taken_over(victim.port, &victim.slots)
        .await
        .unwrap();
    let failed_over_at = OffsetDateTime::now_utc();
    nodes.restart(victim.port).await.unwrap();

    let report = match running.await.unwrap() {
        Ok(report) => report,
        Err(e) => panic!(
            "the crowd failed: {e:#}\n{}",
            last_lines(&stack.origin_output(0))
        ),
    };
    assert_sold_out_within_the_rules(&report);
    // The other masters kept selling while the victim's slots had no master.
    let during: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE event_id = $1 AND created_at BETWEEN $2 AND $3",
    )
    .bind(event)
    .bind(killed_at)
    .bind(failed_over_at)
    .fetch_one(stack.db().await.unwrap())
    .await
    .unwrap();
    let window = (failed_over_at - killed_at).as_seconds_f64();
    println!("{during} orders during the {window:.1} s failover");
    assert!(during > 0, "nothing sold in the {window:.1} s failover");
}

#[tokio::test]
async fn killing_one_origin_mid_sale_loses_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut stack = stack_with(cluster()).await;
    let args = crowd_args(&stack);
    let prepared = crowd::prepare(&args).await.unwrap();
    let event = prepared.sale.event_id;
    let running = tokio::spawn({
        let args = args.clone();
        async move { crowd::run_prepared(&args, prepared).await }
    });
    until_orders(&stack, event, STOCK / 5).await;
    // The edge sends to both; the crowd's admin calls use origin 0.
    stack.crash_origin(1);
    let report = running.await.unwrap().expect("the crowd ran");
    assert_sold_out_within_the_rules(&report);
    let sold_after: i64 = orders(&stack, event).await;
    assert!(sold_after > STOCK / 5);
}

#[tokio::test]
async fn a_few_buyers_empty_six_buckets_through_the_edge() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = stack_with(cluster()).await;
    let mut input = sale_input(24);
    input.buckets = Some(6);
    input.per_user_limit = 2;
    input.dedup_window_s = Some(0);
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let buyers = buyers_with_urls(&stack, event, 30).await;
    let mut held = 0;
    let mut refused = Vec::new();
    for (i, (buyer, url)) in buyers.iter().enumerate() {
        match buyer.buy(url, tier, 1, None).await {
            Ok(_) => held += 1,
            Err(e) => {
                assert_eq!(e.code(), Some(ErrorCode::SoldOut), "{e}");
                refused.push(format!("buyer {i} after {held} held: {e}"));
            }
        }
    }
    let stats = stack.admin().await.unwrap().stats(event).await.unwrap();
    assert_eq!(
        held, 24,
        "borrowing between buckets sells every unit; refusals: {refused:#?}; stats: {stats:?}"
    );
    assert_eq!(stats.tiers[0].remaining, 0);
    assert_eq!(stats.tiers[0].reserved, 24);
}
