//! The whole system on a Redis Cluster of three masters, each with a replica:
//! selling across buckets on different masters.

use rushgate_core::{ErrorCode, Role};
use rushgate_dev::Options;
use rushgate_system_tests::{buyers_with_urls, sale_input, stack_with};

fn cluster() -> Options {
    Options {
        redis_cluster: Some(3),
        ..Options::with_edge()
    }
}

#[tokio::test]
async fn a_sale_in_six_buckets_sells_out_on_the_cluster() {
    let stack = stack_with(cluster()).await;
    let mut input = sale_input(24);
    input.buckets = Some(6);
    input.per_user_limit = 2;
    input.dedup_window_s = Some(0);
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let buyers = buyers_with_urls(&stack, event, 30).await;
    let mut held = 0;
    for (buyer, url) in &buyers {
        match buyer.buy(url, tier, 1, None).await {
            Ok(_) => held += 1,
            Err(e) => assert_eq!(e.code(), Some(ErrorCode::SoldOut), "{e}"),
        }
    }
    assert_eq!(held, 24);
    let stats = stack.admin().await.unwrap().stats(event).await.unwrap();
    assert_eq!(stats.tiers[0].remaining, 0);
    assert_eq!(stats.tiers[0].reserved, 24);
    let (_, late) = stack.user(Role::Customer).await.unwrap();
    let refused = late.purchase_url(event).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::SoldOut));
}
