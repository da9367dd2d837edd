//! The edge in front of the origin: pages and cached reads, purchase URLs issued
//! at the edge, refusals at the edge, dedup, admission rounds, sell-out shielding,
//! funnel counters.

use std::time::{Duration, Instant};

use rushgate_core::Role;
use rushgate_core::purchase;
use rushgate_core::token::PurchaseClaims;
use serde_json::json;
use time::OffsetDateTime;

use crate::harness::System;

const BUY: &str = "/buy/{event_id}/{token}";

#[tokio::test]
async fn reads_purchase_urls_and_refusals_at_the_edge() {
    let sys = System::start().await;
    let e = sys.edge.clone();

    // Static pages come from static/, server time from the edge itself.
    let page = sys.client.get(format!("{e}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
    let (status, time) = sys.get(&e, "/api/time").await;
    assert_eq!(status, 200);
    assert!(time["now"].is_string());

    // A sale opening in 4 s: no URL before, one after, never from the origin.
    let (event, tier) = sys.sale(json!({"opens_at": at(4)})).await;
    let (user_id, alice) = sys.user(Role::Customer).await;
    let path = format!("/api/events/{event}/purchase-url");
    let early = sys.post(&e, &path, &alice, json!({})).await;
    assert_eq!(early.0, 403, "{}", early.1);
    assert_eq!(early.1["error"], "not_open");
    assert!(early.1["opens_at"].is_string());
    let until = Instant::now() + Duration::from_secs(20);
    let url = loop {
        let r = sys.post(&e, &path, &alice, json!({})).await;
        if r.0 == 200 {
            break r.1["url"].as_str().unwrap().to_owned();
        }
        assert_eq!(r.1["error"], "not_open", "{}", r.1);
        assert!(Instant::now() < until, "the sale never opened at the edge");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (_, token) = purchase::parse_path(&url).unwrap();
    let claims: PurchaseClaims = sys
        .keys
        .verify(token, OffsetDateTime::now_utc().unix_timestamp())
        .unwrap();
    assert_eq!((claims.event_id, claims.user_id), (event, user_id));
    assert_eq!(
        sys.origin_requests("/api/events/{id}/purchase-url").await,
        0
    );

    // A crowd reading the event costs the origin about one request per TTL.
    let event_path = format!("/api/events/{event}");
    assert_eq!(sys.get(&e, &event_path).await.0, 200);
    let before = sys.origin_requests("/api/events/{id}").await;
    let reads = (0..60).map(|_| sys.get(&e, &event_path));
    for (status, body) in futures::future::join_all(reads).await {
        assert_eq!(status, 200);
        assert_eq!(body["id"], event);
    }
    let origin_reads = sys.origin_requests("/api/events/{id}").await - before;
    assert!(
        origin_reads <= 3,
        "60 edge reads cost {origin_reads} origin reads"
    );

    // Forged, expired and other people's URLs stop at the edge.
    let buy = |token: &str, path: String| {
        let body = json!({"tier_id": tier, "quantity": 1});
        let token = token.to_owned();
        let sys = &sys;
        async move { sys.post(&sys.edge, &path, &token, body).await }
    };
    let mut tampered = url.clone().into_bytes();
    let i = tampered.len() - 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let expired = sys.keys.sign(&PurchaseClaims { exp: 1, ..claims });
    let (_, bob) = sys.user(Role::Customer).await;
    for (who, path, code) in [
        (
            &alice,
            String::from_utf8(tampered).unwrap(),
            "bad_signature",
        ),
        (&alice, format!("/buy/{event}/{expired}"), "url_expired"),
        (&bob, url.clone(), "wrong_user"),
    ] {
        let r = buy(who, path).await;
        assert_eq!((r.0, r.1["error"].as_str()), (403, Some(code)), "{}", r.1);
    }
    assert_eq!(
        sys.origin_requests(BUY).await,
        0,
        "refusals never reach the origin"
    );

    // Straight to the origin, without the edge's attestation: refused.
    let direct = sys
        .post(
            &sys.origin,
            &url,
            &alice,
            json!({"tier_id": tier, "quantity": 1}),
        )
        .await;
    assert_eq!(
        (direct.0, direct.1["error"].as_str()),
        (403, Some("not_admitted_by_edge"))
    );

    // Through the edge it is admitted (one round, p = 1).
    let bought = buy(&alice, url.clone()).await;
    assert_eq!(bought.0, 202, "{}", bought.1);
}

#[tokio::test]
async fn dedup_window_and_admission_rounds() {
    let sys = System::start().await;
    let e = sys.edge.clone();

    // Second click inside the window is dropped at the edge.
    let (event, tier) = sys.sale(json!({"dedup_window_s": 30})).await;
    let (_, alice) = sys.user(Role::Customer).await;
    let url = url_for(&sys, event, &alice).await;
    let body = json!({"tier_id": tier, "quantity": 1});
    assert_eq!(sys.post(&e, &url, &alice, body.clone()).await.0, 202);
    let again = sys.post(&e, &url, &alice, body.clone()).await;
    assert_eq!(
        (again.0, again.1["error"].as_str()),
        (429, Some("duplicate_request"))
    );
    assert!(again.1["retry_after_s"].as_u64().unwrap() >= 1);

    // Round one admits with p = 0.3: over 500 attempts the admitted share is
    // Binomial(500, 0.3) — within 5 standard deviations.
    let (event, tier) = sys
        .sale(json!({
            "dedup_window_s": 0,
            "per_user_limit": 100,
            "admission": {"rounds": [0.3, 1.0]},
            "tiers": [{"name": "GA", "price_cents": 1000, "stock": 100000}]
        }))
        .await;
    let body = json!({"tier_id": tier, "quantity": 1});
    let buyers = buyers_with_urls(&sys, event, 20).await;
    let count = buyers.len();
    let attempts = (0..500).map(|i| {
        let (token, url) = &buyers[i % count];
        let attempt = sys.post(&e, url, token, body.clone());
        async move { (i % count, attempt.await) }
    });
    let mut admitted = 0;
    let mut loser = None;
    for (buyer, (status, answer, _)) in futures::future::join_all(attempts).await {
        match status {
            200 | 202 => admitted += 1,
            429 => {
                assert_eq!(answer["error"], "not_admitted", "{answer}");
                assert!(answer["retry_after_s"].as_u64().unwrap() >= 1);
                let token = answer["retry_token"].as_str().unwrap().to_owned();
                loser.get_or_insert((buyer, token));
            }
            other => panic!("{other}: {answer}"),
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
    let owner = &buyers[buyer];
    let headers = [("x-retry-token", retry_token.as_str())];
    let until = Instant::now() + Duration::from_secs(15);
    let retried = loop {
        let r = sys
            .post_with(&e, &owner.1, &owner.0, body.clone(), &headers)
            .await;
        if r.0 != 429 || r.1["error"] != "not_admitted" {
            break r;
        }
        assert!(Instant::now() < until, "retry never became valid: {}", r.1);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(retried.0 == 200 || retried.0 == 202, "{}", retried.1);
    let reused = sys
        .post_with(&e, &owner.1, &owner.0, body.clone(), &headers)
        .await;
    assert_eq!(
        (reused.0, reused.1["error"].as_str()),
        (429, Some("duplicate_request"))
    );
}

#[tokio::test]
async fn after_sell_out_the_origin_sees_no_more_buys() {
    let sys = System::start().await;
    let e = sys.edge.clone();
    let (event, tier) = sys
        .sale(json!({
            "dedup_window_s": 0,
            "per_user_limit": 1,
            "tiers": [{"name": "GA", "price_cents": 1000, "stock": 5}]
        }))
        .await;
    let body = json!({"tier_id": tier, "quantity": 1});
    let crowd = buyers_with_urls(&sys, event, 60).await;
    for (token, url) in &crowd[..5] {
        let r = sys.post(&e, url, token, body.clone()).await;
        assert_eq!(r.0, 202, "{}", r.1);
    }
    let forwarded = sys.origin_requests(BUY).await;
    assert_eq!(forwarded, 5);
    let rest = crowd[5..]
        .iter()
        .map(|(token, url)| sys.post(&e, url, token, body.clone()));
    for (status, answer, _) in futures::future::join_all(rest).await {
        assert_eq!(
            (status, answer["error"].as_str()),
            (409, Some("sold_out")),
            "{answer}"
        );
    }
    assert_eq!(
        sys.origin_requests(BUY).await,
        forwarded,
        "the edge answered every sold-out attempt"
    );
    assert_eq!(
        sys.origin_requests(BUY).await as f64 / 5.0,
        1.0,
        "one origin request per unit sold"
    );

    // The edge's funnel reaches the admin stats in batches.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let _ = sys.get(&e, "/api/time").await;
        let stats = sys
            .admin_get(&format!("/api/admin/events/{event}/stats"))
            .await;
        let funnel = &stats["funnel"];
        // Edges and origins both report in batches, and the counts of one
        // request can land in consecutive reports: wait for all of them.
        if funnel["edge_arrivals"] == 60
            && funnel["forwarded"] == 5
            && funnel["sold_out_rejections"] == 55
        {
            assert_eq!(funnel["reserved"], 5, "{stats}");
            break;
        }
        assert!(
            Instant::now() < until,
            "edge counters never arrived: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_crowd_at_once_sends_the_origin_about_one_attempt_per_unit() {
    let sys = System::start().await;
    let e = sys.edge.clone();
    let stock: u64 = 5;
    let (event, tier) = sys
        .sale(json!({
            "dedup_window_s": 0,
            "per_user_limit": 1,
            "tiers": [{"name": "GA", "price_cents": 1000, "stock": stock}]
        }))
        .await;
    let body = json!({"tier_id": tier, "quantity": 1});
    let crowd = buyers_with_urls(&sys, event, 80).await;
    // Everyone clicks at once, and every round admits (p = 1): only the units
    // in flight limit what reaches the origin.
    let clicks = crowd
        .iter()
        .map(|(token, url)| sys.post(&e, url, token, body.clone()));
    let mut held = 0;
    for (status, answer, _) in futures::future::join_all(clicks).await {
        match (status, answer["error"].as_str()) {
            (202, _) => held += 1,
            (409, Some("sold_out")) => {}
            (429, Some("not_admitted")) => assert!(answer["retry_token"].is_string(), "{answer}"),
            _ => panic!("{status} {answer}"),
        }
    }
    assert_eq!(held, stock, "every unit sold");
    let forwarded = sys.origin_requests(BUY).await;
    assert!(
        (stock..=2 * stock).contains(&forwarded),
        "{forwarded} origin /buy requests for {stock} units"
    );
}

/// `n` new customers, each with a session token and a purchase URL for `event`.
async fn buyers_with_urls(sys: &System, event: i64, n: usize) -> Vec<(String, String)> {
    let mut buyers = Vec::with_capacity(n);
    for _ in 0..n {
        let (_, token) = sys.user(Role::Customer).await;
        let url = url_for(sys, event, &token).await;
        buyers.push((token, url));
    }
    buyers
}

async fn url_for(sys: &System, event: i64, token: &str) -> String {
    let r = sys
        .post(
            &sys.edge,
            &format!("/api/events/{event}/purchase-url"),
            token,
            json!({}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    r.1["url"].as_str().unwrap().to_owned()
}

fn at(seconds: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
