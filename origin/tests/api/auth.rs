//! Accounts: register, login, sessions, and bad input that changes nothing.

use reqwest::Method;
use rushgate_core::Role;
use rushgate_core::token::SessionClaims;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{TEST_KEY, spawn_app};

#[sqlx::test]
async fn register_login_and_use_the_session(db: PgPool) {
    let app = spawn_app(db).await;
    let creds = json!({"username": "alice", "password": "correct horse"});
    let registered = app.post("/api/auth/register", None, creds.clone()).await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    let user_id = registered.body["user_id"].as_i64().unwrap();

    let login = app.post("/api/auth/login", None, creds).await;
    assert_eq!(login.status, 200);
    assert_eq!(login.body["user_id"], user_id);
    assert_eq!(login.body["role"], "customer");
    assert!(login.body["expires_at"].as_str().unwrap().ends_with('Z'));
    let cookie = login.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("rushgate_session="));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("Secure"), "development serves plain HTTP");
    let token = login.body["token"].as_str().unwrap();

    let me = app.get("/api/me", Some(token)).await;
    assert_eq!(me.body, json!({"user_id": user_id, "role": "customer"}));

    let session = cookie.split(';').next().unwrap();
    let by_cookie = app
        .client
        .get(app.url("/api/me"))
        .header("cookie", format!("theme=dark; {session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);

    let logout = app.post("/api/auth/logout", Some(token), json!({})).await;
    assert!(
        logout.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

/// In production the session cookie travels over HTTPS only, unless the
/// deployment says otherwise.
#[sqlx::test]
async fn production_cookies_are_secure(db: PgPool) {
    let mut config = crate::helpers::test_config();
    config.environment = rushgate_origin::config::Environment::Production;
    let app = crate::helpers::spawn_app_configured(db, config).await;
    let creds = json!({"username": "carol", "password": "correct horse"});
    app.post("/api/auth/register", None, creds.clone()).await;
    let login = app.post("/api/auth/login", None, creds).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let cookie = login.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let token = login.body["token"].as_str().unwrap();
    let logout = app.post("/api/auth/logout", Some(token), json!({})).await;
    let cleared = logout.headers["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("; Secure"), "{cleared}");
}

#[sqlx::test]
async fn taken_usernames_and_wrong_passwords(db: PgPool) {
    let app = spawn_app(db).await;
    let creds = json!({"username": "bob", "password": "password one"});
    assert_eq!(
        app.post("/api/auth/register", None, creds.clone())
            .await
            .status,
        201
    );
    let before = app.snapshot().await;
    app.post(
        "/api/auth/register",
        None,
        json!({"username": "bob", "password": "other password"}),
    )
    .await
    .assert_error(409, "username_taken");
    app.post(
        "/api/auth/login",
        None,
        json!({"username": "bob", "password": "password two"}),
    )
    .await
    .assert_error(401, "bad_credentials");
    app.post(
        "/api/auth/login",
        None,
        json!({"username": "nobody", "password": "password one"}),
    )
    .await
    .assert_error(401, "bad_credentials");
    // Only the tries were counted (`auth::limits`).
    assert_eq!(app.snapshot_but_tries().await, before);
}

#[sqlx::test]
async fn bad_registration_input_changes_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    let before = app.snapshot().await;
    let cases = [
        (
            json!({"username": "ab", "password": "long enough"}),
            Some("username"),
        ),
        (
            json!({"username": "has space", "password": "long enough"}),
            Some("username"),
        ),
        (
            json!({"username": "carol", "password": "short"}),
            Some("password"),
        ),
        (
            json!({"username": "carol", "password": "x".repeat(129)}),
            Some("password"),
        ),
        (json!({"username": "carol"}), None),
        (
            json!({"username": 5, "password": "long enough"}),
            Some("username"),
        ),
        (json!([1, 2]), None),
        (json!("text"), None),
    ];
    for (body, field) in cases {
        let answer = app.post("/api/auth/register", None, body.clone()).await;
        answer.assert_error(400, "invalid_input");
        if let Some(field) = field {
            assert_eq!(answer.body["field"], field, "{body}");
        }
    }
    app.post_raw("/api/auth/register", None, "application/json", "{not json")
        .await
        .assert_error(400, "invalid_input");
    app.post_raw(
        "/api/auth/register",
        None,
        "text/plain",
        r#"{"username":"carol","password":"long enough"}"#,
    )
    .await
    .assert_error(415, "unsupported_media_type");
    let huge = format!(
        r#"{{"username":"carol","password":"{}"}}"#,
        "x".repeat(20_000)
    );
    app.post_raw("/api/auth/register", None, "application/json", huge)
        .await
        .assert_error(413, "payload_too_large");
    app.post_raw("/api/auth/login", None, "application/json", "")
        .await
        .assert_error(400, "invalid_input");
    assert_eq!(app.snapshot().await, before);
}

#[sqlx::test]
async fn forged_expired_and_missing_sessions_are_refused(db: PgPool) {
    let app = spawn_app(db).await;
    let (user_id, token) = app.user(Role::Customer).await;
    assert_eq!(app.get("/api/me", Some(&token)).await.status, 200);
    app.get("/api/me", None)
        .await
        .assert_error(401, "unauthenticated");

    let mut tampered = token.clone().into_bytes();
    tampered[10] ^= 1;
    let tampered = String::from_utf8(tampered).unwrap();
    app.get("/api/me", Some(&tampered))
        .await
        .assert_error(401, "unauthenticated");

    let expired = app.state.keys.sign(&SessionClaims {
        user_id,
        role: Role::Admin,
        exp: 1,
        sid: [1; 16],
        generation: 0,
    });
    app.get("/api/me", Some(&expired))
        .await
        .assert_error(401, "unauthenticated");

    let other_key = rushgate_core::Keyring::new(&[9u8; 32], None).unwrap();
    let foreign = other_key.sign(&SessionClaims {
        user_id,
        role: Role::Admin,
        exp: i64::MAX,
        sid: [1; 16],
        generation: 0,
    });
    app.get("/api/me", Some(&foreign))
        .await
        .assert_error(401, "unauthenticated");

    // A purchase token signed with the right key is still not a session.
    let keys = rushgate_core::Keyring::from_hex(TEST_KEY, None).unwrap();
    let purchase = keys.sign(&rushgate_core::token::PurchaseClaims {
        event_id: 1,
        user_id,
        exp: i64::MAX,
        nonce: [0; 16],
    });
    app.get("/api/me", Some(&purchase))
        .await
        .assert_error(401, "unauthenticated");

    let basic = app
        .client
        .request(Method::GET, app.url("/api/me"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
}

#[sqlx::test]
async fn a_nul_character_is_invalid_input_everywhere(db: PgPool) {
    let app = spawn_app(db).await;
    let creds = json!({"username": "p_alice", "password": "correct horse"});
    assert_eq!(
        app.post("/api/auth/register", None, creds).await.status,
        201
    );
    let before = app.snapshot().await;
    for (path, body, field) in [
        (
            "/api/auth/login",
            json!({"username": "p_alice\u{0}", "password": "correct horse"}),
            "username",
        ),
        (
            "/api/auth/login",
            json!({"username": "p_alice", "password": "correct\u{0}horse"}),
            "password",
        ),
        (
            "/api/auth/register",
            json!({"username": "p_bob\u{0}", "password": "correct horse"}),
            "username",
        ),
    ] {
        let answer = app.post(path, None, body).await;
        answer.assert_error(400, "invalid_input");
        assert_eq!(answer.body["field"], field, "{path}: {:?}", answer.body);
    }
    // Escaped backslashes are not NUL: this is an ordinary wrong password.
    app.post_raw(
        "/api/auth/login",
        None,
        "application/json",
        r#"{"username": "p_alice", "password": "\\u0000"}"#,
    )
    .await
    .assert_error(401, "bad_credentials");
    assert_eq!(app.snapshot_but_tries().await, before);
}

#[sqlx::test]
async fn logging_out_ends_the_session_for_bearer_and_cookie(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let creds = json!({"username": "dora", "password": "correct horse"});
    assert_eq!(
        app.post("/api/auth/register", None, creds.clone())
            .await
            .status,
        201
    );
    let ended = login(&app, &creds).await;
    let other = login(&app, &creds).await;
    let with_cookie = |token: &str| {
        app.client
            .get(app.url("/api/me"))
            .header("cookie", format!("rushgate_session={token}"))
            .send()
    };
    // A second origin process on the same Redis, as another replica.
    let replica = crate::helpers::spawn_app_sharing(&app).await;
    assert_eq!(replica.get("/api/me", Some(&ended)).await.status, 200);

    // Logging out with the cookie ends the session, whichever way it comes.
    let logout = app
        .client
        .post(app.url("/api/auth/logout"))
        .header("cookie", format!("rushgate_session={ended}"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    app.get("/api/me", Some(&ended))
        .await
        .assert_error(401, "unauthenticated");
    assert_eq!(with_cookie(&ended).await.unwrap().status(), 401);
    app.post("/api/events/1/purchase-url", Some(&ended), json!({}))
        .await
        .assert_error(401, "unauthenticated");

    // The replica learns it at its next sync (every second in `serve`).
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let learned = replica
        .state
        .revocations
        .sync(&replica.redis, now)
        .await
        .unwrap();
    assert_eq!(learned, 1);
    replica
        .get("/api/me", Some(&ended))
        .await
        .assert_error(401, "unauthenticated");

    // Other sessions of the same user, and new logins, are untouched.
    assert_eq!(app.get("/api/me", Some(&other)).await.status, 200);
    assert_eq!(replica.get("/api/me", Some(&other)).await.status, 200);
    let fresh = login(&app, &creds).await;
    assert_eq!(app.get("/api/me", Some(&fresh)).await.status, 200);
    // Logging out twice, or without a session, is harmless.
    assert_eq!(
        app.post("/api/auth/logout", Some(&ended), json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        app.post("/api/auth/logout", None, json!({})).await.status,
        200
    );
}

async fn login(app: &crate::helpers::TestApp, creds: &serde_json::Value) -> String {
    let answer = app.post("/api/auth/login", None, creds.clone()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["token"].as_str().unwrap().to_owned()
}

/// A request riding on the session cookie with a body type another site's
/// form could send is refused and changes nothing; JSON, or a Bearer token,
/// goes through.
#[sqlx::test]
async fn cookie_requests_another_site_could_forge_are_refused(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = crate::buy::open_sale(&app, 10, 1, 1).await;
    let (_, token) = app.user(Role::Customer).await;
    let url = app.purchase_url(event_id, &token).await;
    let bought = app.buy(&url, &token, tier_id, 1).await;
    let order = bought.body["reservation_id"].as_str().unwrap().to_owned();
    app.drain_orders().await;
    let cancel = app.url(&format!("/api/orders/{order}/cancel"));
    let cookie = format!("rushgate_session={token}");
    let before = app.snapshot().await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = app.client.post(&cancel).header("cookie", &cookie).body("");
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), 415, "{content_type:?}");
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "unsupported_media_type");
    }
    assert_eq!(app.snapshot().await, before, "nothing changed");
    // The page's way: JSON, even without a body.
    let done = app
        .client
        .post(&cancel)
        .header("cookie", &cookie)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(done.headers()["x-content-type-options"], "nosniff");
    // A Bearer token cannot be sent by another site: no type needed.
    let me = app
        .client
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}
