//! Accounts through the whole system: a session ended at the origin — logged
//! out there directly, its account disabled from the console or given a new
//! role with the CLI — is refused by the edge too (purchase URLs, the door's
//! challenges, queue joins), through the origin's relay to the edge's shards;
//! and a login storm at the origin binary leaves its memory where it was.

use std::time::Duration;

use futures::StreamExt as _;
use rushgate_client::Client;
use rushgate_core::api::UserChange;
use rushgate_core::event::{AdmissionInput, ModeInput};
use rushgate_core::{ErrorCode, Role};
use rushgate_system_tests::{eventually, sale_input, stack};

/// Whether the edge refuses this client's session for every way in that
/// does not reach the origin.
async fn refused_at_the_edge(user: &Client, sale: i64, queue: i64) -> bool {
    let unauthenticated = |code: Option<ErrorCode>| code == Some(ErrorCode::Unauthenticated);
    unauthenticated(user.purchase_url(sale).await.err().and_then(|e| e.code()))
        && unauthenticated(
            user.challenge(sale, false)
                .await
                .err()
                .and_then(|e| e.code()),
        )
        && unauthenticated(user.join_queue(queue).await.err().and_then(|e| e.code()))
}

#[tokio::test]
async fn sessions_ended_at_the_origin_are_refused_by_the_edge() {
    let stack = stack().await;
    let sale = stack.sale(&sale_input(100)).await.unwrap().id;
    let mut queued = sale_input(100);
    queued.opens_at = rushgate_system_tests::at(300);
    queued.admission = Some(AdmissionInput {
        mode: Some(ModeInput::Queue),
        ..AdmissionInput::default()
    });
    let queue = stack.sale(&queued).await.unwrap().id;
    let edge = stack.client();
    let origin = Client::new(stack.origin_url(0));
    let signed_in = |name: &'static str| {
        let (edge, origin) = (edge.clone(), origin.clone());
        async move {
            edge.register(name, "correct horse").await.unwrap();
            let login = edge.login(name, "correct horse").await.unwrap();
            (
                login.user_id,
                edge.as_user(&login.token),
                origin.as_user(&login.token),
            )
        }
    };

    // Logged out at the origin directly: the edge hears of it from the relay.
    let (_, at_edge, at_origin) = signed_in("leaver").await;
    assert!(at_edge.purchase_url(sale).await.is_ok());
    assert!(at_edge.challenge(sale, false).await.is_ok());
    assert!(at_origin.logout().await.unwrap().ok);
    eventually(Duration::from_secs(10), || {
        refused_at_the_edge(&at_edge, sale, queue)
    })
    .await;

    // Disabled from the console.
    let (id, at_edge, _) = signed_in("disabled").await;
    assert!(at_edge.purchase_url(sale).await.is_ok());
    let admin = stack.admin().await.unwrap();
    let change = UserChange {
        disabled: Some(true),
        ..UserChange::default()
    };
    assert!(admin.change_user(id, &change).await.unwrap().disabled);
    eventually(Duration::from_secs(10), || {
        refused_at_the_edge(&at_edge, sale, queue)
    })
    .await;
    let again = edge.login("disabled", "correct horse").await.unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::BadCredentials));

    // A new role from the CLI; the new session of the new role works.
    let (_, at_edge, _) = signed_in("promoted").await;
    let out = stack
        .origin_cli(&[
            "user",
            "set-role",
            "--username",
            "promoted",
            "--role",
            "operator",
        ])
        .unwrap();
    assert!(out.contains("operator"), "{out}");
    eventually(Duration::from_secs(10), || {
        refused_at_the_edge(&at_edge, sale, queue)
    })
    .await;
    let login = edge.login("promoted", "correct horse").await.unwrap();
    assert_eq!(login.role, Role::Operator);
    let fresh = edge.as_user(&login.token);
    assert!(fresh.purchase_url(sale).await.is_ok());
    assert!(fresh.admin_events().await.is_ok());

    // Deleted with the CLI: gone at the edge, the name free again.
    stack
        .origin_cli(&["user", "delete", "--username", "promoted"])
        .unwrap();
    eventually(Duration::from_secs(10), || {
        refused_at_the_edge(&fresh, sale, queue)
    })
    .await;
    edge.register("promoted", "another password").await.unwrap();
}

/// Resident memory of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_login_storm_leaves_the_origin_s_memory_where_it_was() {
    let stack = stack().await;
    let origin = Client::new(stack.origin_url(0));
    origin.register("storm", "correct horse").await.unwrap();
    let pid = stack.describe()["pids"]["origins"][0].as_u64().unwrap() as u32;
    // Warm: every hashing thread has hashed once.
    for _ in 0..4 {
        origin.login("storm", "correct horse").await.unwrap();
    }
    let before = rss_kib(pid);
    let mut answered = [0usize; 2];
    for _ in 0..2 {
        let answers: Vec<_> = futures::stream::iter(0..500)
            .map(|_| {
                let origin = origin.clone();
                async move { origin.login("storm", "correct horse").await }
            })
            .buffer_unordered(500)
            .collect()
            .await;
        for answer in answers {
            match answer {
                Ok(_) => answered[0] += 1,
                Err(e) => {
                    assert_eq!(e.code(), Some(ErrorCode::Overloaded), "{e:?}");
                    answered[1] += 1;
                }
            }
        }
        assert!(origin.ready().await, "the origin stays ready");
    }
    let after = rss_kib(pid);
    let grown_mib = after.saturating_sub(before) / 1024;
    println!(
        "1,000 concurrent logins: {answered:?} (logged in, told to come back); RSS {before} → {after} KiB"
    );
    assert!(answered[0] >= 2, "{answered:?}");
    assert!(
        grown_mib < 64,
        "the origin grew by {grown_mib} MiB: {before} → {after} KiB"
    );
}
