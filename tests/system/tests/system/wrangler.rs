//! The edge as users run it, under `wrangler dev` (workerd behind wrangler's
//! proxy, `[assets]` from wrangler.toml): pages, a purchase URL, a purchase,
//! and the sold-out short-circuit.

use reqwest::Method;
use rushgate_core::{ErrorCode, Role};
use rushgate_dev::{Options, Runtime};
use rushgate_system_tests::{origin_buys, sale_input, stack_with};

#[tokio::test]
async fn the_edge_under_wrangler_dev_serves_and_sells() {
    let stack = stack_with(Options {
        edge: Some(Runtime::Wrangler),
        ..Options::default()
    })
    .await;
    let edge = stack.client();
    for page in ["/", "/event", "/login"] {
        let answer = edge.send(Method::GET, page, None, &[]).await.unwrap();
        assert_eq!(answer.status, 200, "{page}");
        assert!(answer.text.contains("<html"), "{page}");
    }
    let mut input = sale_input(1);
    input.per_user_limit = 1;
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    assert_eq!(edge.event(event).await.unwrap().id, event);
    let (_, alice) = stack.user(Role::Customer).await.unwrap();
    let url = alice.purchase_url(event).await.unwrap().url;
    let bought = alice.buy(&url, tier, 1, None).await.unwrap();
    assert!(!bought.replay);
    let (_, bob) = stack.user(Role::Customer).await.unwrap();
    let url = bob.purchase_url(event).await.unwrap().url;
    let refused = bob.buy(&url, tier, 1, None).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::SoldOut));
    assert_eq!(origin_buys(&stack).await, 1, "the edge knew it was gone");
}
