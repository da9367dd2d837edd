//! An automatic lottery's opening draw through the built worker under
//! workerd: whoever asks in the draw's window gets a ticket for its end,
//! whatever the moment they asked; at the end the tickets take their turns
//! in the draw's order, each told its turn to the millisecond, and a ticket
//! shown early — as a script at the exact second shows it — waits for its
//! turn. The stock goes to the earliest turns, a user's second ticket has the
//! same turn as the first, and a first attempt after the draw waits until
//! the turns are over.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use rushgate_client::{Client, Error};
use rushgate_core::event::{AdmissionInput, ModeInput};
use rushgate_core::{ErrorCode, Role, opening};
use rushgate_system_tests::{at, origin_buys, sale_input, stack, until_some};
use time::OffsetDateTime;

/// Sleeps until the wall clock reads `instant` (the stack shares this clock).
async fn until(instant: OffsetDateTime) {
    let wait = instant - OffsetDateTime::now_utc();
    if wait.is_positive() {
        tokio::time::sleep(wait.unsigned_abs()).await;
    }
}

/// What one showing of a ticket got: a hold, a turn to come back at with the
/// same or a new token, or a final refusal.
#[derive(Debug)]
enum Shown {
    Held,
    Turn(OffsetDateTime, String),
    Refused(ErrorCode),
}

async fn show(buyer: &Client, url: &str, tier: i64, token: &str) -> Shown {
    match buyer.buy(url, tier, 1, Some(token)).await {
        Ok(_) => Shown::Held,
        Err(e) => match (e.code(), e.body()) {
            (Some(ErrorCode::NotAdmitted), Some(b)) if b.retry_at.is_some() => Shown::Turn(
                b.retry_at.unwrap(),
                b.retry_token.clone().expect("a turn comes with its token"),
            ),
            (Some(code), _) => Shown::Refused(code),
            _ => panic!("{e}"),
        },
    }
}

/// A ticket: the `not_admitted` answer's instant and token.
fn ticket(e: &Error) -> (OffsetDateTime, String) {
    assert_eq!(e.code(), Some(ErrorCode::NotAdmitted), "{e}");
    let body = e.body().unwrap();
    (body.retry_at.unwrap(), body.retry_token.clone().unwrap())
}

#[tokio::test]
async fn the_opening_draw_admits_in_turn_order_not_in_order_of_asking() {
    draw_in_turns(&stack().await).await;
}

/// The same through eight isolates, requests sprayed over them: one draw for
/// the sale, not one per isolate — exactly 1.5 × the stock drawn, turns in
/// number order whichever isolate tells them.
#[tokio::test]
async fn one_opening_draw_for_the_sale_across_eight_isolates() {
    let mut options = rushgate_dev::Options::with_edge();
    options.isolates = 8;
    options.spread = rushgate_dev::edge::Spread::Spray;
    draw_in_turns(&rushgate_system_tests::stack_with(options).await).await;
}

async fn draw_in_turns(stack: &rushgate_dev::Stack) {
    const USERS: usize = 60;
    const STOCK: i64 = 10;
    // A connection of its own for every request: the buyers go quiet for
    // seconds between their tries, and a pooled connection the edge closed
    // meanwhile would fail a try before it was sent.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut buyers = Vec::new();
    for _ in 0..=USERS {
        let (_, signed_in) = stack.user(Role::Customer).await.unwrap();
        let token = signed_in.token().unwrap().to_owned();
        buyers.push(Client::with_http(http.clone(), signed_in.base()).as_user(token));
    }
    let late = buyers.pop().unwrap();
    let mut input = sale_input(STOCK);
    input.per_user_limit = 1;
    input.dedup_window_s = Some(1);
    // Whole seconds, as the edge's instants are whole milliseconds.
    input.opens_at = at(3).replace_nanosecond(0).unwrap();
    input.admission = Some(AdmissionInput {
        mode: Some(ModeInput::Auto),
        // Long enough for a busy machine to ask for 60 URLs and tickets.
        draw_s: Some(8),
        ..AdmissionInput::default()
    });
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let ends = sale.opens_at + time::Duration::seconds(8);
    let spread_ends = ends + time::Duration::milliseconds(opening::SPREAD_MS);

    until(sale.opens_at).await;
    let urls = join_all(
        buyers
            .iter()
            .map(|b| async move { b.purchase_url(event).await.unwrap().url }),
    )
    .await;

    // Everyone asks inside the window, half at once and half after: all get a
    // ticket for the draw's end, none is admitted.
    let ask = |range: std::ops::Range<usize>| {
        join_all(range.map(|i| {
            let (buyer, url) = (&buyers[i], &urls[i]);
            async move { ticket(&buyer.buy(url, tier, 1, None).await.unwrap_err()) }
        }))
    };
    let mut tickets = ask(0..USERS / 2).await;
    tickets.extend(ask(USERS / 2..USERS).await);
    assert!(tickets.iter().all(|(at, _)| *at == ends), "{tickets:?}");
    assert!(
        OffsetDateTime::now_utc() < ends,
        "the draw's window was long enough"
    );
    // Asking again once the dedup window is over: a second ticket.
    let second = until_some(Duration::from_secs(5), || async {
        match buyers[0].buy(&urls[0], tier, 1, None).await {
            Err(e) if e.code() == Some(ErrorCode::DuplicateRequest) => None,
            other => Some(ticket(&other.unwrap_err())),
        }
    })
    .await;
    assert_eq!(second.0, ends);
    // A ticket shown before the draw's end keeps it, unspent.
    let early = buyers[1]
        .buy(&urls[1], tier, 1, Some(&tickets[1].1))
        .await
        .unwrap_err();
    assert_eq!(early.code(), Some(ErrorCode::NotAdmitted), "{early}");

    // At the draw's end every ticket is shown at once, as a script would show
    // it; each is admitted at its turn or told it.
    until(ends).await;
    let shown_at = OffsetDateTime::now_utc();
    let first_showing =
        join_all((0..USERS).map(|i| show(&buyers[i], &urls[i], tier, &tickets[i].1))).await;
    let mut turns: HashMap<usize, OffsetDateTime> = HashMap::new();
    let mut held = Vec::new();
    let mut waiting = Vec::new();
    for (i, shown) in first_showing.into_iter().enumerate() {
        match shown {
            Shown::Held => {
                turns.insert(i, shown_at);
                held.push(i);
            }
            Shown::Turn(turn, token) => {
                assert!(turn >= ends && turn <= spread_ends, "{turn}");
                turns.insert(i, turn);
                waiting.push((i, turn, token));
            }
            Shown::Refused(code) => panic!("user {i} refused at the draw's end: {code}"),
        }
    }
    // The same user, the same turn, whichever ticket.
    match show(&buyers[0], &urls[0], tier, &second.1).await {
        Shown::Turn(turn, _) => assert_eq!(turn, turns[&0]),
        Shown::Refused(code) => assert_eq!(code, ErrorCode::LimitExceeded, "user 0 held already"),
        // User 0's turn came while the others were shown.
        Shown::Held => {
            assert!(!held.contains(&0), "user 0 held twice");
            assert!(
                OffsetDateTime::now_utc() >= turns[&0],
                "user 0 held before its turn"
            );
            held.push(0);
            waiting.retain(|(i, _, _)| *i != 0);
        }
    }
    // A first attempt after the draw waits until the turns are over.
    let late_url = late.purchase_url(event).await.unwrap().url;
    let (late_turn, late_token) = ticket(&late.buy(&late_url, tier, 1, None).await.unwrap_err());
    assert_eq!(late_turn, spread_ends);
    let drawn = turns.values().filter(|t| **t < spread_ends).count();
    assert_eq!(
        drawn,
        (opening::MARGIN * STOCK as f64).ceil() as usize,
        "1.5 × the stock is drawn, of {USERS}"
    );

    // Everyone comes back exactly at their turn.
    let losers: Vec<usize> = join_all(waiting.into_iter().map(|(i, turn, mut token)| {
        let (buyer, url) = (&buyers[i], &urls[i]);
        async move {
            until(turn).await;
            loop {
                match show(buyer, url, tier, &token).await {
                    Shown::Held => return (i, true),
                    Shown::Turn(next, _) if next < turn => {
                        panic!("user {i}'s turn moved from {turn} to {next}")
                    }
                    // Back a millisecond early by the edge's clock, or every
                    // unit left was on its way for earlier turns: again, a
                    // moment later.
                    Shown::Turn(next, again) => {
                        assert!(
                            next <= OffsetDateTime::now_utc() + time::Duration::seconds(1),
                            "user {i} held over to {next}"
                        );
                        token = again;
                        until(next).await;
                    }
                    Shown::Refused(ErrorCode::SoldOut) => return (i, false),
                    // The undrawn at the turns' end: the lottery, with nothing left.
                    Shown::Refused(ErrorCode::NotAdmitted) if turn == spread_ends => {
                        return (i, false);
                    }
                    Shown::Refused(code) => panic!("user {i}: {code}"),
                }
            }
        }
    }))
    .await
    .into_iter()
    .filter_map(|(i, got)| {
        if got {
            held.push(i);
            None
        } else {
            Some(i)
        }
    })
    .collect();
    assert_eq!(held.len(), STOCK as usize, "the stock sold, once each");
    // The stock went by turns: no holder's turn came after a loser's (beyond
    // the jitter of two clients coming back within a few milliseconds).
    let last_held = held.iter().map(|i| turns[i]).max().unwrap();
    let first_lost = losers.iter().map(|i| turns[i]).min().unwrap();
    assert!(
        last_held <= first_lost + time::Duration::milliseconds(100),
        "a holder's turn {last_held} came after a loser's {first_lost}"
    );
    assert!(last_held < spread_ends, "the drawn bought the stock");

    // The late first attempt's round comes when the stock is gone.
    until(late_turn).await;
    let after = late.buy(&late_url, tier, 1, Some(&late_token)).await;
    assert_eq!(after.unwrap_err().code(), Some(ErrorCode::SoldOut));
    // The origin saw the drawn at their turns, not the crowd.
    let buys = origin_buys(stack).await;
    assert!(
        buys <= drawn as u64 + 2,
        "{buys} origin /buy requests for {drawn} drawn"
    );
}
