//! One simulated buyer, following what the event page does: calibrate the clock
//! on `/api/time`, look at the event, wait for the opening, ask for a purchase
//! URL (in a queue sale: join the queue and poll it until admitted), buy —
//! honouring `retry_after_s` and retry tokens — poll the order, and pay
//! with some probability; through the sale's door when it asks, solving at a
//! browser's pace. And one bot, behaving like the ticket-grabbing scripts in the
//! wild: many accounts behind a few addresses, firing at the exact second,
//! solving the door at full native speed, hammering `/buy` every few
//! milliseconds, replaying someone else's URL, going straight to the origin.

use std::future::Future;
use std::time::{Duration, Instant};

use rushgate_client::{Bought, Client, Error};
use rushgate_core::ErrorCode;
use rushgate_core::api::{DoorAnswer, OrderStatus};
use rushgate_core::challenge;
use rushgate_core::queue::wire::QueueState;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Sale, Shared};
use crate::stats::Endpoint;

/// How a simulated buyer's attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Paid,
    Held,
    SoldOut,
    LimitReached,
    GaveUp,
}

/// Times a call and records its outcome: `ok` for a success, else the status
/// and error code (`"429 not_admitted"`, `"503 not JSON"`, `"no answer"`).
async fn call<T>(
    shared: &Shared,
    endpoint: Endpoint,
    ok: impl Fn(&T) -> &'static str,
    request: impl Future<Output = rushgate_client::Result<T>>,
) -> rushgate_client::Result<T> {
    let started = Instant::now();
    let result = request.await;
    let outcome = match &result {
        Ok(value) => ok(value).to_owned(),
        Err(e) => e.outcome(),
    };
    shared
        .recorder
        .record(endpoint, started.elapsed(), &outcome);
    result
}

fn ok200<T>(_: &T) -> &'static str {
    "200"
}

fn bought(b: &Bought) -> &'static str {
    if b.replay { "200" } else { "202" }
}

/// How long an answer asks to wait, 1–30 s.
fn retry_after(e: &Error) -> Duration {
    let seconds = e.body().and_then(|b| b.retry_after_s).unwrap_or(1);
    Duration::from_secs(seconds.clamp(1, 30))
}

/// Waits as a `not_admitted` answer asks: to its `retry_at` instant when it
/// names one (an opening draw's turn), else `retry_after_s`.
async fn wait_as_told(e: &Error, offset: time::Duration) {
    match e.body().and_then(|b| b.retry_at) {
        Some(at) => until_server_time(at, offset).await,
        None => tokio::time::sleep(retry_after(e)).await,
    }
}

/// Server time minus local time, measured at the midpoint of a round trip.
async fn clock_offset(shared: &Shared, client: &Client) -> time::Duration {
    let before = OffsetDateTime::now_utc();
    let answer = call(shared, Endpoint::Time, ok200, client.time()).await;
    let after = OffsetDateTime::now_utc();
    let midpoint = before + (after - before) / 2;
    answer.map_or(time::Duration::ZERO, |t| t.now - midpoint)
}

/// Sleeps until the server clock reads `instant`.
async fn until_server_time(instant: OffsetDateTime, offset: time::Duration) {
    let local = instant - offset;
    let wait = local - OffsetDateTime::now_utc();
    if wait.is_positive() {
        tokio::time::sleep(wait.unsigned_abs()).await;
    }
}

/// Who is asking: a person (an address of their own, a browser's pace at the
/// door) or a bot (numbered among the bots; a shared address, full speed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Person,
    Bot,
}

/// A person's client: signed in, from an address of their own.
fn person(shared: &Shared, sale: &Sale, user: usize) -> Client {
    let address = format!(
        "10.{}.{}.{}",
        (user >> 16) & 255,
        (user >> 8) & 255,
        user & 255
    );
    shared
        .client
        .as_user(&sale.users[user].1)
        .from_address(address)
}

/// Whether the door refused for want of a (good) answer.
fn door_asks(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(ErrorCode::ChallengeRequired | ErrorCode::ChallengeFailed)
    )
}

/// Solves the door's challenge for `client`: a person at the pace of their
/// browser, a bot as fast as this machine goes (its time counted).
async fn solve_door(shared: &Shared, sale: &Sale, client: &Client, who: Who) -> Option<DoorAnswer> {
    let asked = call(
        shared,
        Endpoint::Challenge,
        ok200,
        client.challenge(sale.event_id, false),
    )
    .await
    .ok()?;
    let started = Instant::now();
    let (text, difficulty) = (asked.challenge.clone(), asked.difficulty);
    let nonce = tokio::task::spawn_blocking(move || challenge::solve(&text, difficulty))
        .await
        .ok()?;
    match who {
        // The solver counts up from 0: the nonce tells the tries.
        Who::Bot => {
            shared
                .bot_hashes
                .fetch_add(nonce + 1, std::sync::atomic::Ordering::Relaxed);
        }
        Who::Person => {
            let browser = (nonce + 1) as f64 / shared.human_hashes_per_s;
            let spent = started.elapsed();
            tokio::time::sleep(Duration::from_secs_f64(browser).saturating_sub(spent)).await;
        }
    }
    Some(DoorAnswer {
        challenge: Some(asked.challenge),
        nonce: Some(nonce.to_string()),
        presale_code: None,
    })
}

pub async fn buyer(shared: &Shared, sale: &Sale, user: usize) -> Ending {
    let client = person(shared, sale, user);
    let offset = clock_offset(shared, &client).await;
    let visitor = format!("v{user}");
    let _ = call(
        shared,
        Endpoint::Event,
        ok200,
        client.view_event(sale.event_id, &visitor),
    )
    .await;
    let url = if shared.queue {
        // In line as soon as they arrive; the queue says when to buy.
        let deadline = Instant::now() + shared.max_duration;
        queue_turn(shared, sale, &client, Who::Person, deadline).await
    } else {
        // People do not all click in the same millisecond.
        let jitter = time::Duration::milliseconds(rand::random_range(0..250));
        until_server_time(sale.opens_at + jitter, offset).await;
        let deadline = Instant::now() + shared.max_duration;
        purchase_url(shared, sale, &client, Who::Person, deadline).await
    };
    let Some(url) = url else {
        return Ending::SoldOut;
    };
    let deadline = Instant::now() + shared.max_duration;

    let mut retry_token: Option<String> = None;
    // A 503 or no answer may come after the units were held (e.g. Redis's
    // replicas did not confirm in time); a later refusal then checks the
    // orders, as the page does.
    let mut unsure = false;
    let reservation = loop {
        if Instant::now() > deadline {
            return Ending::GaveUp;
        }
        let attempt = client.buy(&url, sale.tier_id, shared.quantity, retry_token.as_deref());
        match call(shared, Endpoint::Buy, bought, attempt).await {
            Ok(b) => {
                shared.held(b.reservation.reservation_id, user, sale.opens_at);
                break b.reservation.reservation_id;
            }
            Err(e) => match e.code() {
                Some(ErrorCode::NotAdmitted) => {
                    retry_token = e.body().and_then(|b| b.retry_token.clone());
                    if let Some(at) = e.body().and_then(|b| b.retry_at) {
                        shared.turn(user, at);
                    }
                    wait_as_told(&e, offset).await;
                }
                Some(ErrorCode::SoldOut | ErrorCode::LimitExceeded)
                    if unsure
                        && let Some(id) = live_order(shared, &client, sale.event_id).await =>
                {
                    shared.held(id, user, sale.opens_at);
                    break id;
                }
                Some(ErrorCode::SoldOut) => {
                    shared.told_sold_out();
                    return Ending::SoldOut;
                }
                Some(ErrorCode::LimitExceeded) => return Ending::LimitReached,
                Some(ErrorCode::DuplicateRequest | ErrorCode::Overloaded) | None => {
                    unsure |= e.status().is_none_or(|s| s.as_u16() == 503);
                    tokio::time::sleep(retry_after(&e)).await;
                }
                _ => return Ending::GaveUp,
            },
        }
    };
    settle(shared, &client, reservation, deadline).await
}

/// The user's live order of the sale, if there is one.
async fn live_order(shared: &Shared, client: &Client, event_id: i64) -> Option<Uuid> {
    let orders = call(shared, Endpoint::Order, ok200, client.my_orders()).await;
    orders.ok()?.orders.into_iter().find_map(|o| {
        let live = matches!(
            o.status,
            OrderStatus::Queued | OrderStatus::AwaitingPayment | OrderStatus::Paid
        );
        (o.event_id == event_id && live).then_some(o.id)
    })
}

/// Asks for a purchase URL, waiting out `not_open` and answering the door
/// when it asks; `None` if sold out or closed. A person waits as told when
/// slowed down; a bot tries again at once.
async fn purchase_url(
    shared: &Shared,
    sale: &Sale,
    client: &Client,
    who: Who,
    deadline: Instant,
) -> Option<String> {
    let mut door = DoorAnswer::default();
    loop {
        let answer = call(
            shared,
            Endpoint::PurchaseUrl,
            ok200,
            client.purchase_url_with(sale.event_id, &door),
        )
        .await;
        door = DoorAnswer::default();
        match answer {
            Ok(issued) => return Some(issued.url),
            Err(e) if door_asks(&e) => {
                door = solve_door(shared, sale, client, who)
                    .await
                    .unwrap_or_default();
            }
            Err(e) if e.code() == Some(ErrorCode::SlowDown) => match who {
                Who::Person => tokio::time::sleep(retry_after(&e)).await,
                Who::Bot => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Err(e) if e.code() == Some(ErrorCode::SoldOut) => {
                shared.told_sold_out();
                return None;
            }
            Err(e)
                if e.code() == Some(ErrorCode::NotOpen)
                    || e.status().is_some_and(|s| s.as_u16() == 503) =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_) => return None,
        }
        if Instant::now() > deadline {
            return None;
        }
    }
}

/// Joins the sale's queue and polls as the page does (`poll_after_s`, plus up
/// to a quarter) — a bot every quarter second; the purchase URL once
/// admitted, `None` once sold out or closed.
async fn queue_turn(
    shared: &Shared,
    sale: &Sale,
    client: &Client,
    who: Who,
    deadline: Instant,
) -> Option<String> {
    let mut door = DoorAnswer::default();
    let mut status = loop {
        let join = call(
            shared,
            Endpoint::Queue,
            ok200,
            client.join_queue_with(sale.event_id, &door),
        )
        .await;
        door = DoorAnswer::default();
        match join {
            Ok(status) => break status,
            Err(e) if door_asks(&e) => {
                door = solve_door(shared, sale, client, who)
                    .await
                    .unwrap_or_default();
            }
            Err(e) if e.code() == Some(ErrorCode::SoldOut) => {
                shared.told_sold_out();
                return None;
            }
            Err(e) if e.status().is_none_or(|s| s.as_u16() == 503) => {
                tokio::time::sleep(retry_after(&e)).await;
            }
            Err(_) => return None,
        }
        if Instant::now() > deadline {
            return None;
        }
    };
    let pass = status.pass.clone()?;
    loop {
        match status.state {
            QueueState::Admitted => return status.purchase_url,
            QueueState::SoldOut | QueueState::Closed => {
                shared.told_sold_out();
                return None;
            }
            QueueState::PreQueue | QueueState::Waiting => {}
        }
        if Instant::now() > deadline {
            return None;
        }
        let wait = match who {
            Who::Person => {
                status.poll_after_s.clamp(1, 30) as f64 * (1.0 + rand::random::<f64>() * 0.25)
            }
            Who::Bot => 0.25,
        };
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        let poll = call(
            shared,
            Endpoint::Queue,
            ok200,
            client.queue_status(sale.event_id, &pass),
        )
        .await;
        if let Ok(next) = poll {
            status = next;
        }
    }
}

/// Polls the order until it is written, then pays with the configured probability.
async fn settle(shared: &Shared, client: &Client, id: Uuid, deadline: Instant) -> Ending {
    loop {
        let order = call(shared, Endpoint::Order, ok200, client.order(id)).await;
        match order.map(|o| o.status) {
            Ok(OrderStatus::AwaitingPayment) => break,
            _ if Instant::now() > deadline => return Ending::Held,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    if rand::random::<f64>() >= shared.pay_probability {
        return Ending::Held;
    }
    match call(shared, Endpoint::Pay, ok200, client.pay(id)).await {
        Ok(_) => Ending::Paid,
        Err(_) => Ending::Held,
    }
}

/// A ticket bot: one legitimate purchase URL (at the opening's exact second;
/// in a queue sale from the queue, polled four times a second), then `/buy` every `period`
/// regardless of answers, sometimes with another user's URL, sometimes straight
/// at the origin, until it holds something, is told sold out or runs out of
/// attempts. A retry token it is given it keeps, and comes back with at the
/// exact instant the answer names (an opening draw's turn).
pub async fn bot(
    shared: &Shared,
    sale: &Sale,
    user: usize,
    number: usize,
    period: Duration,
) -> Ending {
    let address = format!("198.51.100.{}", number as u32 % shared.bot_addresses);
    let client = shared
        .client
        .as_user(&sale.users[user].1)
        .from_address(address);
    let offset = clock_offset(shared, &client).await;
    let deadline = Instant::now() + shared.max_duration;
    let url = if shared.queue {
        // In line at once (the pre-queue's order is a draw), then polling hard.
        queue_turn(shared, sale, &client, Who::Bot, deadline).await
    } else {
        until_server_time(sale.opens_at, offset).await;
        purchase_url(shared, sale, &client, Who::Bot, deadline).await
    };
    let Some(url) = url else {
        return Ending::SoldOut;
    };
    let stolen = shared
        .client
        .as_user(&sale.users[(user + 1) % sale.users.len()].1);
    let direct = shared.origin.as_ref().map(|origin| client.at(origin));
    let mut kept: Option<String> = None;
    for attempt in 0..200u32 {
        let (who, token) = match attempt % 10 {
            // A kept token goes first, at once.
            _ if kept.is_some() => (&client, kept.take()),
            3 => (&stolen, None),
            7 => (direct.as_ref().unwrap_or(&client), None),
            _ => (&client, kept.take()),
        };
        let answer = call(
            shared,
            Endpoint::Buy,
            bought,
            who.buy(&url, sale.tier_id, shared.quantity, token.as_deref()),
        )
        .await;
        match answer {
            Ok(b) => {
                // (A replayed URL never holds: it is bound to its user.)
                shared.held(b.reservation.reservation_id, user, sale.opens_at);
                return Ending::Held;
            }
            Err(e) if e.code() == Some(ErrorCode::SoldOut) => {
                shared.told_sold_out();
                return Ending::SoldOut;
            }
            Err(e) => {
                if let Some(given) = e.body().and_then(|b| b.retry_token.clone()) {
                    kept = Some(given);
                }
                if let Some(at) = e.body().and_then(|b| b.retry_at) {
                    shared.turn(user, at);
                    until_server_time(at, offset).await;
                    continue;
                }
            }
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(period).await;
    }
    Ending::GaveUp
}
