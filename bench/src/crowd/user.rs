//! One simulated buyer, following what the event page does: calibrate the clock
//! on `/api/time`, look at the event, wait for the opening, ask for a purchase
//! URL, buy — honouring `retry_after_s` and retry tokens — poll the order, and pay
//! with some probability. And one bot, behaving like the ticket-grabbing scripts
//! in the wild: hammering `/buy` every few milliseconds, replaying someone else's
//! URL, going straight to the origin.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
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

/// An answer: status, JSON body (or null).
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    fn retry_after(&self) -> Duration {
        Duration::from_secs(
            self.body["retry_after_s"]
                .as_u64()
                .unwrap_or(1)
                .clamp(1, 30),
        )
    }
}

async fn call(
    shared: &Shared,
    endpoint: Endpoint,
    request: reqwest::RequestBuilder,
) -> Option<Answer> {
    let started = Instant::now();
    let result = request.send().await;
    let (outcome, answer) = match result {
        Ok(response) => {
            let status = response.status();
            let body = response.json::<Value>().await.ok();
            let outcome = match body.as_ref().map(|b| b["error"].as_str()) {
                Some(Some(code)) => format!("{} {code}", status.as_u16()),
                Some(None) => status.as_u16().to_string(),
                // Neither rushgate's edge nor its origin answers anything but JSON.
                None => format!("{} not JSON", status.as_u16()),
            };
            let body = body.unwrap_or(Value::Null);
            (outcome, Some(Answer { status, body }))
        }
        Err(_) => ("no answer".to_owned(), None),
    };
    shared
        .recorder
        .record(endpoint, started.elapsed(), &outcome);
    answer
}

fn at(value: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(
        value.as_str()?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()
}

/// Server time minus local time, measured at the midpoint of a round trip.
async fn clock_offset(shared: &Shared) -> time::Duration {
    let before = OffsetDateTime::now_utc();
    let answer = call(
        shared,
        Endpoint::Time,
        shared.client.get(format!("{}/api/time", shared.target)),
    )
    .await;
    let after = OffsetDateTime::now_utc();
    let midpoint = before + (after - before) / 2;
    answer
        .and_then(|a| at(&a.body["now"]))
        .map_or(time::Duration::ZERO, |server| server - midpoint)
}

/// Sleeps until the server clock reads `instant`.
async fn until_server_time(instant: OffsetDateTime, offset: time::Duration) {
    let local = instant - offset;
    let wait = local - OffsetDateTime::now_utc();
    if wait.is_positive() {
        tokio::time::sleep(wait.unsigned_abs()).await;
    }
}

pub async fn buyer(shared: &Shared, sale: &Sale, user: usize) -> Ending {
    let token = &sale.users[user].1;
    let offset = clock_offset(shared).await;
    let visitor = format!("v{user}");
    call(
        shared,
        Endpoint::Event,
        shared.client.get(format!(
            "{}/api/events/{}?view={visitor}",
            shared.target, sale.event_id
        )),
    )
    .await;
    // People do not all click in the same millisecond.
    let jitter = time::Duration::milliseconds(rand::random_range(0..250));
    until_server_time(sale.opens_at + jitter, offset).await;

    let deadline = Instant::now() + shared.max_duration;
    let Some(url) = purchase_url(shared, sale, token, deadline).await else {
        return Ending::SoldOut;
    };

    let mut retry_token: Option<String> = None;
    let reservation = loop {
        if Instant::now() > deadline {
            return Ending::GaveUp;
        }
        let mut request = shared
            .client
            .post(format!("{}{url}", shared.target))
            .bearer_auth(token)
            .json(&json!({"tier_id": sale.tier_id, "quantity": shared.quantity}));
        if let Some(retry) = &retry_token {
            request = request.header("x-retry-token", retry);
        }
        let Some(answer) = call(shared, Endpoint::Buy, request).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        match (answer.status.as_u16(), answer.code()) {
            (200 | 202, _) => {
                let Some(id) = answer.body["reservation_id"]
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                else {
                    return Ending::GaveUp;
                };
                shared.held(id);
                break id;
            }
            (429, "not_admitted") => {
                retry_token = answer.body["retry_token"].as_str().map(str::to_owned);
                tokio::time::sleep(answer.retry_after()).await;
            }
            (429, _) | (503, _) => tokio::time::sleep(answer.retry_after()).await,
            (409, _) => {
                shared.told_sold_out();
                return Ending::SoldOut;
            }
            (403, "limit_exceeded") => return Ending::LimitReached,
            _ => return Ending::GaveUp,
        }
    };
    settle(shared, token, reservation, deadline).await
}

/// Asks for a purchase URL, waiting out `not_open`; `None` if sold out or closed.
async fn purchase_url(
    shared: &Shared,
    sale: &Sale,
    token: &str,
    deadline: Instant,
) -> Option<String> {
    loop {
        let answer = call(
            shared,
            Endpoint::PurchaseUrl,
            shared
                .client
                .post(format!(
                    "{}/api/events/{}/purchase-url",
                    shared.target, sale.event_id
                ))
                .bearer_auth(token),
        )
        .await;
        match answer {
            Some(a) if a.status == StatusCode::OK => {
                return a.body["url"].as_str().map(str::to_owned);
            }
            Some(a) if a.code() == "sold_out" => {
                shared.told_sold_out();
                return None;
            }
            Some(a) if a.code() == "not_open" || a.status.as_u16() == 503 => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => return None,
        }
        if Instant::now() > deadline {
            return None;
        }
    }
}

/// Polls the order until it is written, then pays with the configured probability.
async fn settle(shared: &Shared, token: &str, id: Uuid, deadline: Instant) -> Ending {
    let order_url = format!("{}/api/orders/{id}", shared.target);
    loop {
        let answer = call(
            shared,
            Endpoint::Order,
            shared.client.get(&order_url).bearer_auth(token),
        )
        .await;
        match answer
            .as_ref()
            .map(|a| a.body["status"].as_str().unwrap_or(""))
        {
            Some("awaiting_payment") => break,
            _ if Instant::now() > deadline => return Ending::Held,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    if rand::random::<f64>() >= shared.pay_probability {
        return Ending::Held;
    }
    let paid = call(
        shared,
        Endpoint::Pay,
        shared
            .client
            .post(format!("{order_url}/pay"))
            .bearer_auth(token),
    )
    .await;
    match paid {
        Some(a) if a.status == StatusCode::OK => Ending::Paid,
        _ => Ending::Held,
    }
}

/// A ticket bot: one legitimate purchase URL, then `/buy` every `period`
/// regardless of answers, sometimes with another user's URL, sometimes straight
/// at the origin, until it holds something, is told sold out or runs out of
/// attempts.
pub async fn bot(shared: &Shared, sale: &Sale, user: usize, period: Duration) -> Ending {
    let token = &sale.users[user].1;
    let offset = clock_offset(shared).await;
    until_server_time(sale.opens_at, offset).await;
    let deadline = Instant::now() + shared.max_duration;
    let Some(url) = purchase_url(shared, sale, token, deadline).await else {
        return Ending::SoldOut;
    };
    let stolen = sale.users[(user + 1) % sale.users.len()].1.clone();
    for attempt in 0..200u32 {
        let (base, who) = match attempt % 10 {
            3 => (&shared.target, stolen.as_str()),
            7 => (
                shared.origin.as_ref().unwrap_or(&shared.target),
                token.as_str(),
            ),
            _ => (&shared.target, token.as_str()),
        };
        let request = shared
            .client
            .post(format!("{base}{url}"))
            .bearer_auth(who)
            .json(&json!({"tier_id": sale.tier_id, "quantity": shared.quantity}));
        if let Some(answer) = call(shared, Endpoint::Buy, request).await {
            match answer.status.as_u16() {
                200 | 202 => {
                    if let Some(id) = answer.body["reservation_id"]
                        .as_str()
                        .and_then(|s| Uuid::parse_str(s).ok())
                    {
                        shared.held(id);
                        return Ending::Held;
                    }
                }
                409 => {
                    shared.told_sold_out();
                    return Ending::SoldOut;
                }
                _ => {}
            }
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(period).await;
    }
    Ending::GaveUp
}
