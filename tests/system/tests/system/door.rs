//! The door through the built worker under workerd: a sale that always asks
//! for a proof of work refuses a join without one, admits a solved one once,
//! refuses a wrong, reused, someone else's or early answer, slows down an
//! account that keeps asking, raises the difficulty for an address with many
//! accounts, and guards the purchase URL of a lottery sale the same way.

use rushgate_core::api::DoorAnswer;
use rushgate_core::challenge::{
    self, ChallengeMode, QUIET_ACCOUNTS_ON_ADDRESS, SLOW_LANE_EASIER_BITS,
};
use rushgate_core::event::{AdmissionInput, ModeInput};
use rushgate_core::velocity::{DEFAULT_ACCOUNT_TRIES_PER_MIN, Limits};
use rushgate_core::{ErrorCode, Role};
use rushgate_system_tests::{at, sale_input, stack};

fn solved(c: &rushgate_core::api::Challenge) -> DoorAnswer {
    DoorAnswer {
        challenge: Some(c.challenge.clone()),
        nonce: Some(challenge::solve(&c.challenge, c.difficulty).to_string()),
        presale_code: None,
    }
}

#[tokio::test]
async fn the_door_asks_checks_and_spends_its_challenges() {
    let stack = stack().await;
    let mut input = sale_input(10);
    input.opens_at = at(600);
    input.closes_at = at(3_600);
    input.challenge = Some(ChallengeMode::Always);
    input.admission = Some(AdmissionInput {
        mode: Some(ModeInput::Queue),
        ..AdmissionInput::default()
    });
    let sale = stack.sale(&input).await.unwrap();
    let event = sale.id;
    assert_eq!(sale.challenge, ChallengeMode::Always);

    let (_, alice) = stack.user(Role::Customer).await.unwrap();
    let alice = alice.from_address("192.0.2.1");
    // No answer: the door asks.
    let refused = alice.join_queue(event).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Some(ErrorCode::ChallengeRequired),
        "{refused}"
    );

    // A calm sale that always asks asks little.
    let c = alice.challenge(event, false).await.unwrap();
    assert_eq!(c.difficulty, 8);
    // A wrong nonce fails, and spends nothing.
    let good = solved(&c);
    let wrong = (0u64..)
        .map(|n| n.to_string())
        .find(|n| !challenge::solves(&c.challenge, n, c.difficulty))
        .unwrap();
    let failed = alice
        .join_queue_with(
            event,
            &DoorAnswer {
                nonce: Some(wrong),
                ..good.clone()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Some(ErrorCode::ChallengeFailed), "{failed}");
    // Someone else's solved challenge is not Bob's.
    let (_, bob) = stack.user(Role::Customer).await.unwrap();
    let bob = bob.from_address("192.0.2.2");
    let borrowed = bob.join_queue_with(event, &good).await.unwrap_err();
    assert_eq!(borrowed.code(), Some(ErrorCode::ChallengeRequired));
    // Alice's answer admits her once.
    let joined = alice.join_queue_with(event, &good).await.unwrap();
    assert!(joined.pass.is_some());
    let reused = alice.join_queue_with(event, &good).await.unwrap_err();
    assert_eq!(
        reused.code(),
        Some(ErrorCode::ChallengeRequired),
        "{reused}"
    );
    // A fresh one joins again, to the same pass.
    let again = alice
        .join_queue_with(
            event,
            &solved(&alice.challenge(event, false).await.unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(again.pass, joined.pass);

    // The slow lane: easier, and its answer counts only later.
    let slow = bob.challenge(event, true).await.unwrap();
    assert_eq!(slow.difficulty, 8 - SLOW_LANE_EASIER_BITS);
    assert!(slow.not_before > rushgate_system_tests::at(5));
    let early = bob
        .join_queue_with(event, &solved(&slow))
        .await
        .unwrap_err();
    assert_eq!(early.code(), Some(ErrorCode::ChallengeRequired));
    assert!(
        early
            .body()
            .and_then(|b| b.retry_after_s)
            .is_some_and(|s| s > 0)
    );

    // Many accounts behind one address: harder, never refused for it.
    // (The accounts are made first, so that their asks come within one second:
    // fewer than the door's busy rate.)
    let shared = "198.51.100.7";
    let mut accounts = Vec::new();
    for _ in 0..(QUIET_ACCOUNTS_ON_ADDRESS * 4) {
        let (_, someone) = stack.user(Role::Customer).await.unwrap();
        accounts.push(someone.from_address(shared));
    }
    let mut last = 0;
    for someone in &accounts {
        last = someone.challenge(event, false).await.unwrap().difficulty;
    }
    // The door says what it saw: every account behind the address, and the
    // difficulty is the schedule's for that.
    let c = accounts[0].challenge(event, false).await.unwrap();
    assert_eq!(
        c.conditions.accounts_on_address,
        QUIET_ACCOUNTS_ON_ADDRESS * 4
    );
    assert_eq!(
        Some(c.difficulty),
        challenge::difficulty(ChallengeMode::Always, &c.conditions)
    );
    let calm_for_one = challenge::Conditions {
        accounts_on_address: 1,
        account_tries_per_min: 1,
        ..c.conditions
    };
    assert_eq!(
        challenge::difficulty(ChallengeMode::Always, &calm_for_one),
        Some(c.difficulty - 2),
        "four times a household's accounts: two bits more"
    );
    assert!(last >= 8 + 2, "{last}");

    // One account asking over and over is told to slow down.
    let (_, eager) = stack.user(Role::Customer).await.unwrap();
    let eager = eager.from_address("203.0.113.50");
    let mut slowed = None;
    for _ in 0..=DEFAULT_ACCOUNT_TRIES_PER_MIN + 1 {
        if let Err(e) = eager.challenge(event, false).await {
            slowed = Some(e);
            break;
        }
    }
    let slowed = slowed.expect("the account was slowed down");
    assert_eq!(slowed.code(), Some(ErrorCode::SlowDown), "{slowed}");
    assert!(
        slowed
            .body()
            .and_then(|b| b.retry_after_s)
            .is_some_and(|s| (1..=60).contains(&s))
    );

    // A lottery sale's purchase URL is behind the same door, whose limits are
    // the event's: here 5 tries a minute per account.
    let mut lottery = sale_input(10);
    lottery.challenge = Some(ChallengeMode::Always);
    lottery.velocity = Some(Limits {
        account_per_min: 5,
        ..Limits::default()
    });
    let lottery = stack.sale(&lottery).await.unwrap();
    assert_eq!(lottery.velocity.account_per_min, 5);
    let lottery = lottery.id;
    let (_, hasty) = stack.user(Role::Customer).await.unwrap();
    let hasty = hasty.from_address("203.0.113.51");
    let tries: Vec<bool> = futures::future::join_all(
        (0..7).map(|_| async { hasty.challenge(lottery, false).await.is_ok() }),
    )
    .await;
    // Seven at once: the shard counts them in turn.
    assert_eq!(tries.iter().filter(|ok| **ok).count(), 5, "{tries:?}");
    let (_, carol) = stack.user(Role::Customer).await.unwrap();
    let carol = carol.from_address("192.0.2.9");
    let refused = carol.purchase_url(lottery).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::ChallengeRequired));
    let c = carol.challenge(lottery, false).await.unwrap();
    let url = carol.purchase_url_with(lottery, &solved(&c)).await.unwrap();
    assert!(url.url.starts_with("/buy/"));
    // A challenge for one event does not open another's door.
    let other = carol.join_queue_with(event, &solved(&c)).await.unwrap_err();
    assert_eq!(other.code(), Some(ErrorCode::ChallengeRequired));
}
