//! The edge in front of the origin: pages and cached reads, purchase URLs issued
//! at the edge, refusals at the edge, dedup, admission rounds, sell-out shielding,
//! funnel counters.

use std::time::Duration;

use reqwest::Method;
use rushgate_client::Client;
use rushgate_core::event::AdmissionInput;
use rushgate_core::token::PurchaseClaims;
use rushgate_core::{ErrorCode, Role, purchase};
use rushgate_system_tests::{
    at, buyers_with_urls, eventually, origin_buys, sale_input, stack, until_some,
};
use time::OffsetDateTime;

#[tokio::test]
async fn reads_purchase_urls_and_refusals_at_the_edge() {
    let stack = stack().await;
    let edge = stack.client();
    let origin = Client::new(stack.origin_url(0));

    // Static pages come from static/, server time from the edge itself.
    let page = edge.send(Method::GET, "/", None, &[]).await.unwrap();
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<html"));
    edge.time().await.unwrap();

    // A sale opening in 4 s: no URL before, one after, never from the origin.
    let mut input = sale_input(100);
    input.opens_at = at(4);
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let (user_id, alice) = stack.user(Role::Customer).await.unwrap();
    let early = alice.purchase_url(event).await.unwrap_err();
    assert_eq!(early.code(), Some(ErrorCode::NotOpen), "{early}");
    assert!(early.body().unwrap().opens_at.is_some());
    let url = until_some(Duration::from_secs(20), || async {
        match alice.purchase_url(event).await {
            Ok(issued) => Some(issued.url),
            Err(e) => {
                assert_eq!(e.code(), Some(ErrorCode::NotOpen), "{e}");
                None
            }
        }
    })
    .await;
    let (_, token) = purchase::parse_path(&url).unwrap();
    let claims: PurchaseClaims = stack
        .keys
        .verify(token, OffsetDateTime::now_utc().unix_timestamp())
        .unwrap();
    assert_eq!((claims.event_id, claims.user_id), (event, user_id));
    let route = "/api/events/{id}/purchase-url";
    assert_eq!(origin.route_requests(route).await.unwrap(), 0);

    // A crowd reading the event costs the origin about one request per TTL.
    edge.event(event).await.unwrap();
    let before = origin.route_requests("/api/events/{id}").await.unwrap();
    let reads = (0..60).map(|_| edge.event(event));
    for read in futures::future::join_all(reads).await {
        assert_eq!(read.unwrap().id, event);
    }
    let origin_reads = origin.route_requests("/api/events/{id}").await.unwrap() - before;
    assert!(
        origin_reads <= 3,
        "60 edge reads cost {origin_reads} origin reads"
    );

    // Forged, expired and other people's URLs stop at the edge.
    let mut tampered = url.clone().into_bytes();
    let i = tampered.len() - 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let expired = stack.keys.sign(&PurchaseClaims { exp: 1, ..claims });
    let (_, bob) = stack.user(Role::Customer).await.unwrap();
    for (who, path, code) in [
        (
            &alice,
            String::from_utf8(tampered).unwrap(),
            ErrorCode::BadSignature,
        ),
        (
            &alice,
            format!("/buy/{event}/{expired}"),
            ErrorCode::UrlExpired,
        ),
        (&bob, url.clone(), ErrorCode::WrongUser),
    ] {
        let refused = who.buy(&path, tier, 1, None).await.unwrap_err();
        assert_eq!(refused.code(), Some(code), "{refused}");
        assert_eq!(refused.status().map(|s| s.as_u16()), Some(403));
    }
    assert_eq!(
        origin_buys(&stack).await,
        0,
        "refusals never reach the origin"
    );

    // Straight to the origin, without the edge's attestation: refused.
    let direct = alice
        .at(stack.origin_url(0))
        .buy(&url, tier, 1, None)
        .await
        .unwrap_err();
    assert_eq!(direct.code(), Some(ErrorCode::NotAdmittedByEdge));

    // Through the edge it is admitted (one round, p = 1).
    let bought = alice.buy(&url, tier, 1, None).await.unwrap();
    assert!(!bought.replay);
}

#[tokio::test]
async fn dedup_window_and_admission_rounds() {
    let stack = stack().await;

    // Second click inside the window is dropped at the edge.
    let mut input = sale_input(100);
    input.dedup_window_s = Some(30);
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let (_, alice) = stack.user(Role::Customer).await.unwrap();
    let url = alice.purchase_url(event).await.unwrap().url;
    alice.buy(&url, tier, 1, None).await.unwrap();
    let again = alice.buy(&url, tier, 1, None).await.unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::DuplicateRequest));
    assert!(again.body().unwrap().retry_after_s.unwrap() >= 1);

    // Round one admits with p = 0.3: over 500 attempts the admitted share is
    // Binomial(500, 0.3) — within 5 standard deviations.
    let mut input = sale_input(100_000);
    input.dedup_window_s = Some(0);
    input.per_user_limit = 100;
    input.admission = Some(AdmissionInput {
        rounds: Some(vec![0.3, 1.0]),
        ..AdmissionInput::default()
    });
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let buyers = buyers_with_urls(&stack, event, 20).await;
    let count = buyers.len();
    let attempts = (0..500).map(|i| {
        let (buyer, url) = &buyers[i % count];
        let attempt = buyer.buy(url, tier, 1, None);
        async move { (i % count, attempt.await) }
    });
    let mut admitted = 0;
    let mut loser = None;
    for (buyer, answer) in futures::future::join_all(attempts).await {
        match answer {
            Ok(_) => admitted += 1,
            Err(e) => {
                assert_eq!(e.code(), Some(ErrorCode::NotAdmitted), "{e}");
                let body = e.body().unwrap();
                assert!(body.retry_after_s.unwrap() >= 1);
                loser.get_or_insert((buyer, body.retry_token.clone().unwrap()));
            }
        }
    }
    let (n, p) = (500.0, 0.3);
    let sd = f64::sqrt(n * p * (1.0 - p));
    assert!(
        (f64::from(admitted) - n * p).abs() < 5.0 * sd,
        "admitted {admitted} of 500 at p = 0.3"
    );

    // A loser's retry token enters round two (p = 1.0) once its wait is over, and
    // only once.
    let (buyer, retry_token) = loser.expect("someone lost round one");
    let (client, url) = &buyers[buyer];
    let retried = until_some(Duration::from_secs(15), || async {
        match client.buy(url, tier, 1, Some(&retry_token)).await {
            Err(e) if e.code() == Some(ErrorCode::NotAdmitted) => None,
            other => Some(other),
        }
    })
    .await;
    retried.expect("the retry was admitted");
    let reused = client
        .buy(url, tier, 1, Some(&retry_token))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Some(ErrorCode::DuplicateRequest));
}

#[tokio::test]
async fn after_sell_out_the_origin_sees_no_more_buys() {
    let stack = stack().await;
    let mut input = sale_input(5);
    input.dedup_window_s = Some(0);
    input.per_user_limit = 1;
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let crowd = buyers_with_urls(&stack, event, 60).await;
    for (buyer, url) in &crowd[..5] {
        buyer.buy(url, tier, 1, None).await.unwrap();
    }
    let forwarded = origin_buys(&stack).await;
    assert_eq!(forwarded, 5);
    let rest = crowd[5..]
        .iter()
        .map(|(buyer, url)| buyer.buy(url, tier, 1, None));
    for answer in futures::future::join_all(rest).await {
        assert_eq!(answer.unwrap_err().code(), Some(ErrorCode::SoldOut));
    }
    assert_eq!(
        origin_buys(&stack).await,
        forwarded,
        "the edge answered every sold-out attempt"
    );
    assert_eq!(
        origin_buys(&stack).await as f64 / 5.0,
        1.0,
        "one origin request per unit sold"
    );

    // The edge's funnel reaches the admin stats in batches.
    let admin = stack.admin().await.unwrap();
    let edge = stack.client();
    eventually(Duration::from_secs(20), || async {
        let _ = edge.time().await;
        let funnel = admin.stats(event).await.unwrap().funnel;
        // Edges and origins both report in batches, and the counts of one
        // request can land in consecutive reports: wait for all of them.
        if funnel.edge_arrivals == 60 && funnel.forwarded == 5 && funnel.sold_out_rejections == 55 {
            assert_eq!(funnel.reserved, 5, "{funnel:?}");
            return true;
        }
        false
    })
    .await;
}

#[tokio::test]
async fn a_crowd_at_once_sends_the_origin_about_one_attempt_per_unit() {
    let stack = stack().await;
    let stock: u64 = 5;
    let mut input = sale_input(stock as i64);
    input.dedup_window_s = Some(0);
    input.per_user_limit = 1;
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let crowd = buyers_with_urls(&stack, event, 80).await;
    // Everyone clicks at once, and every round admits (p = 1): only the units
    // in flight limit what reaches the origin.
    let clicks = crowd
        .iter()
        .map(|(buyer, url)| buyer.buy(url, tier, 1, None));
    let mut held = 0;
    for answer in futures::future::join_all(clicks).await {
        match answer {
            Ok(_) => held += 1,
            Err(e) => match e.code() {
                Some(ErrorCode::SoldOut) => {}
                Some(ErrorCode::NotAdmitted) => {
                    assert!(e.body().unwrap().retry_token.is_some(), "{e}");
                }
                _ => panic!("{e}"),
            },
        }
    }
    assert_eq!(held, stock, "every unit sold");
    let forwarded = origin_buys(&stack).await;
    assert!(
        (stock..=2 * stock).contains(&forwarded),
        "{forwarded} origin /buy requests for {stock} units"
    );
}
