//! Refusals at the edge: bad `/buy` bodies stop there without being counted or
//! costing the buyer's dedup window, a logged-out session is refused, and text
//! PostgreSQL cannot store is bad input through the edge as at the origin.

use std::time::Duration;

use reqwest::Method;
use rushgate_core::{ErrorCode, Role};
use rushgate_system_tests::{eventually, origin_buys, sale_input, stack};
use serde_json::json;

#[tokio::test]
async fn bad_buy_bodies_stop_at_the_edge_and_cost_nothing() {
    let stack = stack().await;
    let mut input = sale_input(100);
    input.dedup_window_s = Some(30);
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let other_tier = stack.sale(&sale_input(100)).await.unwrap().tiers[0].id;
    let cases = [
        (json!({"tier_id": 999_999, "quantity": 1}), "tier_id"),
        (json!({"tier_id": other_tier, "quantity": 1}), "tier_id"),
        (json!({"tier_id": tier, "quantity": 0}), "quantity"),
        (json!({"tier_id": tier, "quantity": -1}), "quantity"),
        (json!({"tier_id": tier, "quantity": i64::MAX}), "quantity"),
        (json!({"tier_id": tier, "quantity": 3}), "quantity"),
        (json!([tier, 1]), ""),
    ];
    let mut held = 0;
    for (body, field) in cases {
        let (_, buyer) = stack.user(Role::Customer).await.unwrap();
        let url = buyer.purchase_url(event).await.unwrap().url;
        let refused = buyer
            .send(Method::POST, &url, Some(&body), &[])
            .await
            .unwrap();
        assert_eq!(refused.status, 400, "{body}: {}", refused.text);
        let answer = refused.json();
        assert_eq!(answer["error"], "invalid_input");
        if !field.is_empty() {
            assert_eq!(answer["field"], field, "{body}");
        }
        // The refusal opened no dedup window: the next valid click goes through.
        let bought = buyer.buy(&url, tier, 1, None).await;
        assert!(bought.is_ok(), "after {body}: {bought:?}");
        held += 1;
    }
    assert_eq!(
        origin_buys(&stack).await,
        held,
        "no bad body reached the origin"
    );
    // Only the valid clicks were counted as arrivals.
    let admin = stack.admin().await.unwrap();
    let edge = stack.client();
    eventually(Duration::from_secs(20), || async {
        let _ = edge.time().await;
        let funnel = admin.stats(event).await.unwrap().funnel;
        funnel.edge_arrivals == held as i64 && funnel.forwarded == held as i64
    })
    .await;
}

#[tokio::test]
async fn a_logged_out_session_is_refused_at_the_edge() {
    let stack = stack().await;
    let mut input = sale_input(100);
    input.dedup_window_s = Some(5);
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let edge = stack.client();
    edge.register("edge_dora", "correct horse").await.unwrap();
    let login = edge.login("edge_dora", "correct horse").await.unwrap();
    let dora = edge.as_user(login.token);
    let url = dora.purchase_url(event).await.unwrap().url;

    assert!(dora.logout().await.unwrap().ok);
    let again = dora.purchase_url(event).await.unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::Unauthenticated));
    let buy = dora.buy(&url, tier, 1, None).await.unwrap_err();
    assert_eq!(buy.code(), Some(ErrorCode::Unauthenticated));
    assert_eq!(origin_buys(&stack).await, 0);
}

#[tokio::test]
async fn a_nul_character_is_invalid_input_through_the_edge() {
    let stack = stack().await;
    let refused = stack
        .client()
        .login("p_alice\u{0}", "whatever it is")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::InvalidInput));
    assert_eq!(refused.body().unwrap().field.as_deref(), Some("username"));
}
