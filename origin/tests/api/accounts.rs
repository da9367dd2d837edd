//! Accounts under attack and under change: wrong passwords slow an account
//! down; an address past its allowance of failed logins or new accounts pays
//! with work, never a lockout; hashing is bounded; and an account's role
//! change, disabling or deletion ends its sessions, here and at the other
//! origin processes.

use std::sync::Arc;

use futures::StreamExt as _;
use reqwest::{Method, StatusCode};
use rushgate_core::challenge;
use rushgate_core::{Keyring, Role};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, spawn_app, spawn_app_configured, spawn_app_sharing, test_config};

async fn register(app: &TestApp, username: &str) {
    let created = app
        .post(
            "/api/auth/register",
            None,
            json!({"username": username, "password": "correct horse"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
}

fn creds(username: &str, password: &str) -> Value {
    json!({"username": username, "password": password})
}

/// Logs in from `address` (as the edge attests it).
async fn login_from(app: &TestApp, address: &str, body: Value) -> crate::helpers::Answer {
    let bytes = serde_json::to_vec(&body).unwrap();
    let forward = rushgate_core::attest::forward(
        &app.state.keys,
        "POST",
        "/api/auth/login",
        &bytes,
        Some(address),
        time::OffsetDateTime::now_utc().unix_timestamp(),
        rand::random(),
    );
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .header(rushgate_core::api::header::FORWARD, forward)
        .body(bytes)
        .send()
        .await
        .unwrap();
    crate::helpers::answer_of(response).await
}

/// Solves a challenge of `GET /api/auth/challenge` as the client at `address`.
async fn solved(app: &TestApp, address: &str) -> (String, String, u8) {
    let forward = rushgate_core::attest::forward(
        &app.state.keys,
        "GET",
        "/api/auth/challenge",
        b"",
        Some(address),
        time::OffsetDateTime::now_utc().unix_timestamp(),
        rand::random(),
    );
    let response = app
        .client
        .get(app.url("/api/auth/challenge"))
        .header(rushgate_core::api::header::FORWARD, forward)
        .send()
        .await
        .unwrap();
    let got = crate::helpers::answer_of(response).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    let text = got.body["challenge"].as_str().unwrap().to_owned();
    let difficulty = got.body["difficulty"].as_u64().unwrap() as u8;
    let nonce = challenge::solve(&text, difficulty).to_string();
    (text, nonce, difficulty)
}

/// Moves an account's last failure back, as if `ms` had passed.
async fn age_failures(app: &TestApp, username: &str, ms: i64) {
    let mut conn = app.redis.conn.clone();
    let pattern = format!("{}:{{la*}}:failures", app.redis.keys.prefix());
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{username}: {keys:?}");
    let last: i64 = redis::cmd("HGET")
        .arg(&keys[0])
        .arg("t")
        .query_async(&mut conn)
        .await
        .unwrap();
    redis::cmd("HSET")
        .arg(&keys[0])
        .arg("t")
        .arg(last - ms)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
}

#[sqlx::test]
async fn wrong_passwords_slow_an_account_down_until_a_right_one(db: PgPool) {
    let app = spawn_app(db).await;
    register(&app, "victim").await;
    register(&app, "bystander").await;
    for _ in 0..rushgate_core::login::FREE_FAILURES {
        app.post("/api/auth/login", None, creds("victim", "wrong guess"))
            .await
            .assert_error(401, "bad_credentials");
    }
    // The account waits now, whatever the password, and is told how long.
    for password in ["another guess", "correct horse"] {
        let slowed = app
            .post("/api/auth/login", None, creds("victim", password))
            .await;
        slowed.assert_error(429, "slow_down");
        assert_eq!(slowed.body["retry_after_s"], 1, "{:?}", slowed.body);
    }
    // Case does not make another account.
    app.post("/api/auth/login", None, creds("VICTIM", "guess"))
        .await
        .assert_error(429, "slow_down");
    // Other accounts are not slowed.
    let other = app
        .post("/api/auth/login", None, creds("bystander", "correct horse"))
        .await;
    assert_eq!(other.status, 200, "{:?}", other.body);
    // Once the wait has passed, one more wrong password doubles it...
    age_failures(&app, "victim", 1_000).await;
    app.post("/api/auth/login", None, creds("victim", "wrong again"))
        .await
        .assert_error(401, "bad_credentials");
    let slowed = app
        .post("/api/auth/login", None, creds("victim", "correct horse"))
        .await;
    slowed.assert_error(429, "slow_down");
    assert_eq!(slowed.body["retry_after_s"], 2, "{:?}", slowed.body);
    // ...and the right one after it starts the count again.
    age_failures(&app, "victim", 2_000).await;
    let ok = app
        .post("/api/auth/login", None, creds("victim", "correct horse"))
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    app.post("/api/auth/login", None, creds("victim", "wrong"))
        .await
        .assert_error(401, "bad_credentials");
    // Unknown accounts are limited the same way (nothing tells them apart).
    for _ in 0..rushgate_core::login::FREE_FAILURES {
        app.post("/api/auth/login", None, creds("nobody-here", "guess"))
            .await
            .assert_error(401, "bad_credentials");
    }
    app.post("/api/auth/login", None, creds("nobody-here", "guess"))
        .await
        .assert_error(429, "slow_down");
}

#[sqlx::test]
async fn an_address_past_its_allowance_pays_with_work_and_others_do_not(db: PgPool) {
    let mut config = test_config();
    config.limits.login_failures_per_address = 3;
    let app = spawn_app_configured(db, config).await;
    register(&app, "alice").await;
    let farm = "198.51.100.7";
    // Three wrong passwords, on three accounts (no account waits).
    for name in ["a1", "a2", "a3"] {
        login_from(&app, farm, creds(name, "guess"))
            .await
            .assert_error(401, "bad_credentials");
    }
    // From now on every login from the address shows work, a right one too.
    let refused = login_from(&app, farm, creds("alice", "correct horse")).await;
    refused.assert_error(403, "challenge_required");
    assert!(refused.body["retry_after_s"].as_u64().unwrap() >= 1);
    // Another address is not concerned.
    let elsewhere = login_from(&app, "203.0.113.50", creds("alice", "correct horse")).await;
    assert_eq!(elsewhere.status, 200, "{:?}", elsewhere.body);

    let (text, nonce, difficulty) = solved(&app, farm).await;
    assert_eq!(difficulty, rushgate_core::login::BASE_BITS);
    let mut with_work = creds("alice", "correct horse");
    with_work["challenge"] = json!(text);
    with_work["nonce"] = json!("1");
    if !challenge::solves(&text, "1", difficulty) {
        login_from(&app, farm, with_work.clone())
            .await
            .assert_error(403, "challenge_failed");
    }
    with_work["nonce"] = json!(nonce);
    let ok = login_from(&app, farm, with_work.clone()).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    // A solved challenge counts once.
    login_from(&app, farm, with_work)
        .await
        .assert_error(403, "challenge_required");
    // More failures make the work harder: one bit per doubling.
    for name in ["a4", "a5", "a6"] {
        let (text, nonce, _) = solved(&app, farm).await;
        let mut guess = creds(name, "guess");
        guess["challenge"] = json!(text);
        guess["nonce"] = json!(nonce);
        login_from(&app, farm, guess)
            .await
            .assert_error(401, "bad_credentials");
    }
    let (_, _, harder) = solved(&app, farm).await;
    assert_eq!(harder, rushgate_core::login::BASE_BITS + 1);
}

#[sqlx::test]
async fn new_accounts_from_one_address_cost_work_past_the_allowance(db: PgPool) {
    let mut config = test_config();
    config.limits.registrations_per_address = 2;
    let app = spawn_app_configured(db, config).await;
    // Straight to the origin: the connection's peer is the address.
    register(&app, "first").await;
    register(&app, "second").await;
    let before = app.snapshot().await;
    let body = json!({"username": "third", "password": "correct horse"});
    app.post("/api/auth/register", None, body.clone())
        .await
        .assert_error(403, "challenge_required");
    assert_eq!(app.snapshot().await, before, "nothing made");
    let got = app.get("/api/auth/challenge", None).await;
    let text = got.body["challenge"].as_str().unwrap();
    let difficulty = got.body["difficulty"].as_u64().unwrap() as u8;
    let mut with_work = body;
    with_work["challenge"] = json!(text);
    with_work["nonce"] = json!(challenge::solve(text, difficulty).to_string());
    let made = app.post("/api/auth/register", None, with_work).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    app.get("/api/auth/challenge?lane=sideways", None)
        .await
        .assert_error(400, "invalid_input");
}

#[sqlx::test]
async fn a_login_storm_is_answered_at_once_beyond_the_hashers(db: PgPool) {
    let app = Arc::new(spawn_app(db).await);
    register(&app, "crowd").await;
    let answers: Vec<(StatusCode, Value)> = futures::stream::iter(0..200)
        .map(|_| {
            let app = app.clone();
            async move {
                let a = app
                    .post("/api/auth/login", None, creds("crowd", "correct horse"))
                    .await;
                (a.status, a.body)
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let busy = answers
        .iter()
        .filter(|(s, b)| *s == 503 && b["error"] == "overloaded" && b["retry_after_s"] == 1)
        .count();
    assert_eq!(ok + busy, answers.len(), "only 200 or 503: {answers:?}");
    assert!(
        ok >= 1 && busy >= 1,
        "{ok} logged in, {busy} told to come back"
    );
    // The process still answers, and logs in again once the storm is over.
    assert_eq!(app.get("/healthz", None).await.status, 200);
    let later = app
        .post("/api/auth/login", None, creds("crowd", "correct horse"))
        .await;
    assert_eq!(later.status, 200, "{:?}", later.body);
}

/// A staff account as the API makes it: registered, given a role by SQL (as
/// `user add` would), logged in.
async fn staff(app: &TestApp, username: &str, role: Role) -> (i64, String) {
    register(app, username).await;
    sqlx::query("UPDATE users SET role = $2 WHERE username = $1")
        .bind(username)
        .bind(role.as_str())
        .execute(&app.db)
        .await
        .unwrap();
    let login = app
        .post("/api/auth/login", None, creds(username, "correct horse"))
        .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    (
        login.body["user_id"].as_i64().unwrap(),
        login.body["token"].as_str().unwrap().to_owned(),
    )
}

#[sqlx::test]
async fn changing_an_account_ends_its_sessions_everywhere(db: PgPool) {
    let app = spawn_app(db).await;
    let other = spawn_app_sharing(&app).await;
    let (admin_id, admin) = staff(&app, "boss", Role::Admin).await;
    let (op_id, operator) = staff(&app, "oscar", Role::Operator).await;
    let (_, customer) = staff(&app, "carla", Role::Customer).await;
    let events = "/api/admin/events";
    assert_eq!(app.get(events, Some(&operator)).await.status, 200);
    assert_eq!(other.get(events, Some(&operator)).await.status, 200);

    // Only admins manage accounts; bad changes change nothing.
    let user_url = format!("/api/admin/users/{op_id}");
    let demote = json!({"role": "customer"});
    for token in [&operator, &customer] {
        app.request(Method::PATCH, &user_url, Some(token), Some(demote.clone()))
            .await
            .assert_error(403, "forbidden");
    }
    let before = app.snapshot().await;
    let bad = app
        .request(
            Method::PATCH,
            &user_url,
            Some(&admin),
            Some(json!({"role": "king"})),
        )
        .await;
    bad.assert_error(400, "invalid_input");
    app.request(
        Method::PATCH,
        "/api/admin/users/999999",
        Some(&admin),
        Some(demote.clone()),
    )
    .await
    .assert_error(404, "not_found");
    // The only admin cannot demote or delete themselves.
    app.request(
        Method::PATCH,
        &format!("/api/admin/users/{admin_id}"),
        Some(&admin),
        Some(demote.clone()),
    )
    .await
    .assert_error(409, "invalid_state");
    app.request(
        Method::DELETE,
        &format!("/api/admin/users/{admin_id}"),
        Some(&admin),
        None,
    )
    .await
    .assert_error(409, "invalid_state");
    assert_eq!(app.snapshot().await, before);

    // A new role ends the operator's session at once, here and, at its next
    // sync, at the other process.
    let changed = app
        .request(Method::PATCH, &user_url, Some(&admin), Some(demote))
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(changed.body["role"], "customer");
    app.get(events, Some(&operator))
        .await
        .assert_error(401, "unauthenticated");
    app.get("/api/me", Some(&operator))
        .await
        .assert_error(401, "unauthenticated");
    // The other process asks PostgreSQL for console calls...
    other
        .get(events, Some(&operator))
        .await
        .assert_error(401, "unauthenticated");
    // ...and knows for every call once it has synced.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    other
        .state
        .revocations
        .sync(&other.redis, now)
        .await
        .unwrap();
    other
        .get("/api/me", Some(&operator))
        .await
        .assert_error(401, "unauthenticated");
    // Logging in again gives a session of the new role.
    let again = app
        .post("/api/auth/login", None, creds("oscar", "correct horse"))
        .await;
    assert_eq!(again.body["role"], "customer", "{:?}", again.body);
    let fresh = again.body["token"].as_str().unwrap();
    assert_eq!(app.get("/api/me", Some(fresh)).await.status, 200);
    app.get(events, Some(fresh))
        .await
        .assert_error(403, "forbidden");

    // Disabled: no login, no session; enabled again: a login works.
    let off = app
        .request(
            Method::PATCH,
            &user_url,
            Some(&admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(off.body["disabled"], true, "{:?}", off.body);
    app.get("/api/me", Some(fresh))
        .await
        .assert_error(401, "unauthenticated");
    app.post("/api/auth/login", None, creds("oscar", "correct horse"))
        .await
        .assert_error(401, "bad_credentials");
    app.request(
        Method::PATCH,
        &user_url,
        Some(&admin),
        Some(json!({"disabled": false})),
    )
    .await;
    let back = app
        .post("/api/auth/login", None, creds("oscar", "correct horse"))
        .await;
    assert_eq!(back.status, 200, "{:?}", back.body);
    let back = back.body["token"].as_str().unwrap().to_owned();

    // Listed by name prefix; deleted: sessions end, the name is free again.
    let listed = app.get("/api/admin/users?username=osc", Some(&admin)).await;
    assert_eq!(
        listed.body["users"].as_array().unwrap().len(),
        1,
        "{:?}",
        listed.body
    );
    let gone = app
        .request(Method::DELETE, &user_url, Some(&admin), None)
        .await;
    assert_eq!(gone.status, 204, "{:?}", gone.body);
    app.get("/api/me", Some(&back))
        .await
        .assert_error(401, "unauthenticated");
    app.post("/api/auth/login", None, creds("oscar", "correct horse"))
        .await
        .assert_error(401, "bad_credentials");
    app.request(Method::DELETE, &user_url, Some(&admin), None)
        .await
        .assert_error(409, "invalid_state");
    register(&app, "oscar").await;
    let listed = app.get("/api/admin/users?username=osc", Some(&admin)).await;
    assert_eq!(
        listed.body["users"].as_array().unwrap().len(),
        1,
        "only the new oscar"
    );
}

/// An account removed from the database by hand: its session is refused as
/// unauthenticated, never an internal error.
#[sqlx::test]
async fn a_session_whose_account_is_gone_is_401(db: PgPool) {
    let app = spawn_app(db).await;
    let (id, operator) = staff(&app, "ghost", Role::Operator).await;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    app.post(
        "/api/admin/events",
        Some(&operator),
        crate::helpers::event_body(60, 3600),
    )
    .await
    .assert_error(401, "unauthenticated");
    app.get("/api/admin/events", Some(&operator))
        .await
        .assert_error(401, "unauthenticated");
}

/// What the edge sends about itself is bound to its body and taken once.
#[sqlx::test]
async fn edge_reports_are_bound_to_their_body_and_taken_once(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, _) = crate::buy::open_sale(&app, 10, 1, 1).await;
    let path = rushgate_core::api::EDGE_REPORT_PATH;
    let body = |arrivals: i64| {
        serde_json::to_vec(&json!({
            "events": [{"event_id": event_id, "edge_arrivals": arrivals}],
            "visitors": []
        }))
        .unwrap()
    };
    let sign = |keys: &Keyring, bytes: &[u8]| {
        rushgate_core::attest::forward(
            keys,
            "POST",
            path,
            bytes,
            None,
            time::OffsetDateTime::now_utc().unix_timestamp(),
            rand::random(),
        )
    };
    let send = |header: Option<String>, bytes: Vec<u8>| {
        let mut request = app
            .client
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(bytes);
        if let Some(header) = header {
            request = request.header(rushgate_core::api::header::FORWARD, header);
        }
        async move { crate::helpers::answer_of(request.send().await.unwrap()).await }
    };
    let arrivals = || async {
        let key = app.redis.keys.funnel(event_id);
        let n: Option<i64> = redis::cmd("HGET")
            .arg(key)
            .arg("edge_arrivals")
            .query_async(&mut app.redis.conn.clone())
            .await
            .unwrap();
        n.unwrap_or(0)
    };
    // No word, another key's, another body's, an admission token: refused.
    send(None, body(5))
        .await
        .assert_error(403, "not_admitted_by_edge");
    let foreign = Keyring::new(&[9; 32], None).unwrap();
    send(Some(sign(&foreign, &body(5))), body(5))
        .await
        .assert_error(403, "not_admitted_by_edge");
    send(Some(sign(&app.state.keys, &body(1))), body(500))
        .await
        .assert_error(403, "not_admitted_by_edge");
    let admit = rushgate_core::attest::sign(
        &app.state.keys,
        "POST",
        path,
        0,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    );
    send(Some(admit), body(5))
        .await
        .assert_error(403, "not_admitted_by_edge");
    assert_eq!(arrivals().await, 0);
    // The edge's own: taken once.
    let header = sign(&app.state.keys, &body(5));
    assert_eq!(send(Some(header.clone()), body(5)).await.status, 204);
    send(Some(header), body(5))
        .await
        .assert_error(403, "not_admitted_by_edge");
    assert_eq!(arrivals().await, 5);
    // Counts are kept a while after the sale, not for ever.
    let ttl: i64 = redis::cmd("TTL")
        .arg(app.redis.keys.funnel(event_id))
        .query_async(&mut app.redis.conn.clone())
        .await
        .unwrap();
    assert!(ttl > 30 * 86_400, "{ttl}");
    // Counts for an event that does not exist make no key.
    let without_nonces = |keys: Vec<String>| -> Vec<String> {
        keys.into_iter().filter(|k| !k.contains("{fw")).collect()
    };
    let before = without_nonces(app.redis_snapshot().await);
    let unknown = serde_json::to_vec(&json!({
        "events": [{"event_id": 999_999, "page_views": 7}],
        "visitors": [[999_999, ["a1b2c3"]]]
    }))
    .unwrap();
    let header = sign(&app.state.keys, &unknown);
    assert_eq!(send(Some(header), unknown).await.status, 204);
    assert_eq!(without_nonces(app.redis_snapshot().await), before);
}
